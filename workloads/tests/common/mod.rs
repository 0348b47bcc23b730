//! Shared harness for the integration tests: `mod common;` at the top of a test file.
//!
//! - [`broker`]: a real tansu broker on a free port (`Broker::start()`), killed on drop.
//! - [`topics`]: reading topics back (no consumer group), committed offsets.
//! - [`process`]: running the `spikewatch` binary with a config file.
//! - [`sse`]: reading Server-Sent Events (`/predictions/stream`).
//! - [`market`]: predictions of a reproducible market and their online quality.
//!
//! Each test binary uses a different subset of these helpers, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod artifact;
pub mod broker;
pub mod market;
pub mod process;
pub mod sse;
pub mod topics;

#[allow(unused_imports)]
pub use broker::Broker;

/// A file of the shared recordings in `data/coinbase/`.
pub fn recording(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/coinbase").join(name)
}

pub const EXCHANGE_RECORDING: &str = "exchange-ticker-btcusd-2025-11-12.ndjson";
pub const ADVANCED_TRADE_RECORDING: &str = "advanced-trade-ticker-btcusd-2025-11-08.ndjson";
