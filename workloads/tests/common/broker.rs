//! A real Kafka-protocol broker for tests: tansu (`$TANSU_BIN`) with in-memory storage.
//!
//! ```ignore
//! mod common;
//! let broker = common::Broker::start();
//! let bootstrap = broker.bootstrap_servers(); // "127.0.0.1:PORT"
//! ```
//!
//! Every broker gets its own free port and its own memory storage, so tests run in parallel.
//! The process is killed when the [`Broker`] is dropped (also when the test panics).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How long a freshly spawned broker gets to answer its first metadata request.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Broker {
    child: Child,
    port: u16,
    log_path: PathBuf,
    // Holds the log file's directory alive until the broker is gone.
    _log_dir: tempfile::TempDir,
}

impl Broker {
    /// Spawns tansu on a free 127.0.0.1 port and waits until it answers a metadata request.
    ///
    /// Panics (failing the test) when `TANSU_BIN` is unset or does not point at an executable,
    /// or when the broker does not come up.
    pub fn start() -> Broker {
        let bin = tansu_bin();
        let port = free_port();
        let log_dir = tempfile::tempdir().expect("cannot create a temporary directory for the broker log");
        let log_path = log_dir.path().join("tansu.log");
        let log = std::fs::File::create(&log_path).expect("cannot create the broker log file");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot share the broker log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the tansu broker {}: {e}", bin.display()));
        let mut broker = Broker { child, port, log_path, _log_dir: log_dir };
        broker.wait_until_ready();
        broker
    }

    /// `127.0.0.1:PORT`, the value for `bootstrap.servers` / `kafka.bootstrap_servers`.
    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `kafka` config section for this broker, with test-friendly consumer timeouts
    /// (tansu hands out the first records ≈3 s after a group join).
    pub fn kafka_config(&self) -> spikewatch::config::KafkaConfig {
        let mut kafka = spikewatch::config::KafkaConfig {
            bootstrap_servers: self.bootstrap_servers(),
            partitions: 3,
            ..Default::default()
        };
        kafka.properties.insert("session.timeout.ms".into(), "6000".into());
        kafka.properties.insert("heartbeat.interval.ms".into(), "500".into());
        kafka
    }

    /// What the broker printed so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_until_ready(&mut self) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap_servers())
            .set("log_level", "3")
            .create()
            .expect("cannot create the metadata client");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the tansu broker exited during startup ({status}); its log:\n{}", self.log());
            }
            if consumer.fetch_metadata(None, Duration::from_secs(1)).is_ok() {
                return;
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tansu_bin() -> PathBuf {
    let Some(bin) = std::env::var_os("TANSU_BIN") else {
        panic!("TANSU_BIN is not set: run `source scripts/env` (after `scripts/setup`) before the broker tests");
    };
    let bin = PathBuf::from(bin);
    if !bin.is_file() {
        panic!(
            "TANSU_BIN={} does not exist: run `scripts/setup` and `source scripts/env` before the broker tests",
            bin.display()
        );
    }
    bin
}

/// A port nobody listens on right now: bind :0, read it back, release it for the broker.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
    listener.local_addr().expect("bound listener has an address").port()
}
