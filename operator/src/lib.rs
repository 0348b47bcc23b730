//! The spikewatch operator: `VolatilityPipeline` custom resource → workloads, topics, monitoring.

pub mod automation;
pub mod crd;
pub mod crdgen;
pub mod desired;

pub mod controller;
pub mod discovery;
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures;
pub mod generated;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod observe;
pub mod render;
pub mod run;
pub mod telemetry;
pub mod topics;
pub mod validate;

pub use controller::error::{Error, Result};
