//! Shared harness for the integration tests: `mod common;` at the top of a test file.
//!
//! - [`Broker`], [`topics`]: the workspace's tansu harness (`spikewatch-test-broker`): a real
//!   broker on a free port (`Broker::start()`), killed on drop; reading topics back (no consumer
//!   group), committed offsets. [`kafka_config`] is the `kafka` config section for a broker.
//! - [`process`]: running the `spikewatch` binary with a config file.
//! - [`sse`]: reading Server-Sent Events (`/predictions/stream`).
//! - [`market`]: predictions of a reproducible market and their online quality.
//! - [`naive`]: every feature recomputed from its definition, for the engine's tests.
//!
//! Each test binary uses a different subset of these helpers, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod artifact;
pub mod market;
pub mod naive;
pub mod process;
pub mod sse;

#[allow(unused_imports)]
pub use spikewatch_test_broker::{Broker, topics};

/// The `kafka` config section for `broker`, with test-friendly consumer timeouts (tansu hands
/// out the first records ≈3 s after a group join).
pub fn kafka_config(broker: &Broker) -> spikewatch::config::KafkaConfig {
    let mut kafka = spikewatch::config::KafkaConfig {
        bootstrap_servers: broker.bootstrap_servers(),
        partitions: 3,
        ..Default::default()
    };
    kafka.properties.insert("session.timeout.ms".into(), "6000".into());
    kafka.properties.insert("heartbeat.interval.ms".into(), "500".into());
    kafka
}

/// A file of the shared recordings in `data/coinbase/`.
pub fn recording(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/coinbase").join(name)
}

pub const EXCHANGE_RECORDING: &str = "exchange-ticker-btcusd-2025-11-12.ndjson";
pub const ADVANCED_TRADE_RECORDING: &str = "advanced-trade-ticker-btcusd-2025-11-08.ndjson";
