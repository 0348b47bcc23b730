//! A real Kafka-protocol broker for tests: tansu (`$TANSU_BIN`) on a free 127.0.0.1 port.
//!
//! - [`Broker::start`]: in-memory storage, gone with the process.
//! - [`Broker::start_persistent`]: tansu's S3 storage engine on an S3 server of the broker's own
//!   ([`ObjectStore`], moto), so [`Broker::kill`] (SIGKILL) and [`Broker::restart`] (same port,
//!   same storage) model a broker crash: what tansu acknowledged is still there afterwards.
//!
//! Every broker gets its own port and storage, so tests run in parallel. The processes are
//! killed when the [`Broker`] is dropped (also when the test panics).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::object_store::ObjectStore;

/// How long a freshly spawned broker gets to answer its first metadata request.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Spawn attempts on the same port: right after a kill the port can still be taken for a moment.
const SPAWN_ATTEMPTS: u32 = 10;

pub struct Broker {
    child: Option<Child>,
    port: u16,
    storage: Option<ObjectStore>,
    starts: u32,
    log_path: PathBuf,
    // Holds the log file's directory alive until the broker is gone.
    _log_dir: tempfile::TempDir,
}

impl Broker {
    /// Spawns tansu with in-memory storage and waits until it answers a metadata request.
    ///
    /// Panics (failing the test) when `TANSU_BIN` is unset or does not point at a file, or
    /// when the broker does not come up.
    pub fn start() -> Broker {
        Broker::launch(None)
    }

    /// Spawns tansu on S3 storage held by an [`ObjectStore`] of its own (started first), which
    /// lives as long as this `Broker`: [`Broker::kill`] and [`Broker::restart`] leave it alone.
    ///
    /// Panics as [`Broker::start`] does, and when `MOTO_SERVER_BIN` is unset or the object
    /// store does not come up.
    pub fn start_persistent() -> Broker {
        Broker::launch(Some(ObjectStore::start()))
    }

    fn launch(storage: Option<ObjectStore>) -> Broker {
        let log_dir = tempfile::tempdir().expect("cannot create a temporary directory for the broker log");
        let log_path = log_dir.path().join("tansu.log");
        File::create(&log_path).expect("cannot create the broker log file");
        let mut broker = Broker { child: None, port: free_port(), storage, starts: 0, log_path, _log_dir: log_dir };
        broker.spawn_until_ready();
        broker
    }

    /// `127.0.0.1:PORT`, the value for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the tansu process is running (false after [`Broker::kill`]).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Whether the storage outlives the process ([`Broker::start_persistent`]).
    pub fn is_persistent(&self) -> bool {
        self.storage.is_some()
    }

    /// SIGKILL to tansu (no shutdown of any kind) and wait until it is gone. The storage stays.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the broker is not running");
        child.kill().expect("cannot kill the broker");
        child.wait().expect("cannot wait for the killed broker");
        self.note(&format!("killed (SIGKILL) after start {}", self.starts));
    }

    /// Waits until the storage has served no request for `quiet` (persistent brokers only): with
    /// its clients paused, the broker is then not in the middle of any request. Panics after a
    /// minute of steady traffic.
    pub fn wait_for_quiet_storage(&self, quiet: Duration) {
        let storage = self.storage.as_ref().expect("wait_for_quiet_storage needs Broker::start_persistent");
        let deadline = Instant::now() + Duration::from_secs(60) + quiet;
        let (mut served, mut since) = (storage.requests_served(), Instant::now());
        while since.elapsed() < quiet {
            assert!(Instant::now() < deadline, "the broker kept using its storage for a minute");
            std::thread::sleep(Duration::from_millis(50));
            let now = storage.requests_served();
            if now != served {
                (served, since) = (now, Instant::now());
            }
        }
    }

    /// Starts tansu again on the same port and the same storage and waits until it answers a
    /// metadata request. With in-memory storage this is an empty broker.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() needs a killed broker: call kill() first");
        self.spawn_until_ready();
    }

    /// What the broker printed so far, over all its starts (for assertion messages).
    pub fn log(&self) -> String {
        let mut log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        if let Some(storage) = &self.storage {
            log.push_str("\n--- object store ---\n");
            log.push_str(&storage.log_tail(40));
        }
        log
    }

    fn log_since(&self, offset: usize) -> String {
        let log = std::fs::read(&self.log_path).unwrap_or_default();
        String::from_utf8_lossy(log.get(offset..).unwrap_or_default()).into_owned()
    }

    fn note(&self, line: &str) {
        if let Ok(mut log) = OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(log, "--- harness: {line} ---");
        }
    }

    fn spawn(&mut self) -> Child {
        let bin = tansu_bin();
        let log = OpenOptions::new().append(true).open(&self.log_path).expect("cannot open the broker log file");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut command = Command::new(&bin);
        command
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot share the broker log file"))
            .stderr(log);
        match &self.storage {
            None => {
                command.args(["--storage-engine", "memory://tansu/"]);
            }
            Some(storage) => {
                command.args(["--storage-engine", &storage.storage_url()]).envs(storage.client_env());
            }
        }
        command.spawn().unwrap_or_else(|e| panic!("cannot start the tansu broker {}: {e}", bin.display()))
    }

    fn spawn_until_ready(&mut self) {
        for attempt in 1..=SPAWN_ATTEMPTS {
            self.starts += 1;
            self.note(&format!("start {} on port {}", self.starts, self.port));
            let log_before = std::fs::metadata(&self.log_path).map_or(0, |m| m.len() as usize);
            let child = self.spawn();
            self.child = Some(child);
            match self.wait_until_ready() {
                Ok(()) => return,
                // The previous process's port may still be held for a moment after a kill.
                Err(status)
                    if attempt < SPAWN_ATTEMPTS && self.log_since(log_before).contains("Address already in use") =>
                {
                    self.child = None;
                    self.note(&format!("exited ({status}): port busy, retrying"));
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(status) => {
                    panic!("the tansu broker exited during startup ({status}); its log:\n{}", self.log())
                }
            }
        }
    }

    /// Ok once the broker answers a metadata request; Err with the exit status when it exited.
    fn wait_until_ready(&mut self) -> Result<(), std::process::ExitStatus> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap_servers())
            .set("log_level", "3")
            .create()
            .expect("cannot create the metadata client");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                return Err(status);
            }
            if consumer.fetch_metadata(None, Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!(
                    "the tansu broker did not answer a metadata request on {} within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    self.bootstrap_servers(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The object store (if any) is dropped after the broker, which no longer needs it.
    }
}

fn tansu_bin() -> PathBuf {
    crate::env_bin("TANSU_BIN", "the tansu broker binary")
}

/// A port nobody listens on right now: bind :0, read it back, release it for the broker.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
    listener.local_addr().expect("bound listener has an address").port()
}
