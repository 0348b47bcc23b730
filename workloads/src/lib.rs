//! spikewatch: real-time volatility spike detection for crypto markets.
//!
//! The data flow reads from the module tree:
//! [`sources`] (Coinbase WebSocket feeds, recordings) → [`features`] (the one feature engine)
//! → [`model`] (HAR-RV baseline, or with the ONNX GBDT correction) → [`sinks`] (tables, mirrors)
//! and [`api`] (with [`prediction_feed`], the predictions it streams to the live page).
//! [`quality`] judges the predictions once their outcome is known and measures the features'
//! drift. [`transport`] (Kafka or in-memory channels) is chosen at the edges and [`pipeline`]
//! wires the stages so that `spikewatch run` and the Kubernetes workloads execute the same core.
//! Around them: [`admin`] (the model-switch lever of every serving process), [`http`] (what
//! every HTTP server shares: errors, JSON bodies, connection limits), [`telemetry`] (logging,
//! the metrics and health endpoint of the Kafka workloads) and [`cli`] (the subcommands).

pub mod admin;
pub mod api;
pub mod cli;
pub mod features;
pub mod fuzzing;
pub mod http;
pub mod model;
pub mod pipeline;
pub mod prediction_feed;
pub mod quality;
pub mod sinks;
pub mod sources;
pub mod telemetry;
pub mod transport;

/// The version this binary reports (`/version`, `--version`, the Open Inference Protocol's server
/// metadata): `SPIKEWATCH_VERSION` at build time (the image's version: the Dockerfile passes its
/// `VERSION` build argument), else the crate's.
pub const VERSION: &str = match option_env!("SPIKEWATCH_VERSION") {
    Some(version) => version,
    None => env!("CARGO_PKG_VERSION"),
};

// The config file format, the topic messages and the metric names live in `spikewatch-types`,
// shared with the operator; their paths stay `spikewatch::config`, `spikewatch::domain` and
// `spikewatch::metric_names`.
pub use spikewatch_types::{config, domain, metric_names};
