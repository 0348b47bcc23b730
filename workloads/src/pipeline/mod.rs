//! Stage wiring: sources → features → model → sinks over a transport (Kafka or in-memory).
//!
//! - [`replay`]: recordings → Ticks at the original pace × speed (`spikewatch replay`).
//! - [`featurize`]: Ticks → FeatureVectors (`spikewatch featurize`, and the feature stage of `run`).
//! - [`predict`]: FeatureVectors → Predictions (`spikewatch predict`, and the predict stage of `run`).
//! - [`local`]: the `spikewatch run` topology over in-memory links, with the console [`summary`].
//! - [`publish`]: a link of Ticks → Kafka; [`pacing`]: replay timing; [`shutdown`]: signals.

pub mod featurize;
pub mod local;
pub mod pacing;
pub mod predict;
pub mod publish;
pub mod rebuild;
pub mod replay;
pub mod shutdown;
pub mod summary;
