//! How good the served predictions are, measured while serving: the online evaluation of each
//! prediction once its 60 s outcome is known ([`online`]) and the drift of the features away
//! from the training rows ([`drift`]), exported as Prometheus metrics ([`metrics`]) and reported offline by `spikewatch drift`
//! ([`report`]).

pub mod drift;
pub mod metrics;
pub mod online;
pub mod report;

pub use drift::DriftMonitor;
pub use metrics::QualityMetrics;
pub use online::{OnlineConfig, OnlineEvaluator, Outcome, Quality};
