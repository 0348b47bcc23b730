//! Test support shared by the workspace's integration tests: a real Kafka-protocol broker
//! (tansu) per test, and reading topics back.
//!
//! ```no_run
//! use spikewatch_test_broker::{Broker, topics};
//!
//! let broker = Broker::start(); // in-memory storage, its own free port
//! let bootstrap = broker.bootstrap_servers(); // "127.0.0.1:PORT"
//! # let _ = bootstrap;
//!
//! // A broker whose storage outlives the process: killed with SIGKILL, restarted on the same
//! // port, everything it acknowledged is still there.
//! let mut broker = Broker::start_persistent();
//! broker.kill();
//! broker.restart();
//! let records = topics::read_at_least::<serde_json::Value>(&broker.bootstrap_servers(), "ticks.raw", 10);
//! # let _ = records;
//! ```
//!
//! The binaries come from the environment that `source scripts/env` sets up: `TANSU_BIN` (the
//! broker) and, for [`Broker::start_persistent`], `MOTO_SERVER_BIN` (an S3 server). A missing
//! one fails the test with a message saying so; nothing is skipped.

mod broker;
mod object_store;
pub mod topics;

pub use broker::Broker;

/// The executable a variable names; panics with a hint when it is unset or not a file.
fn env_bin(var: &str, what: &str) -> std::path::PathBuf {
    let Some(bin) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
        panic!("{var} ({what}) is not set: run `source scripts/env` (after `scripts/setup`) before the broker tests");
    };
    let bin = std::path::PathBuf::from(bin);
    if !bin.is_file() {
        panic!(
            "{var}={} ({what}) does not exist: run `scripts/setup` and `source scripts/env` before the broker tests",
            bin.display()
        );
    }
    bin
}
