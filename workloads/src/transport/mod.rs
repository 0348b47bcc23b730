//! Message transport between stages: Kafka (rdkafka) or in-memory channels.
//!
//! [`kafka`] is what the Kubernetes workloads use (`ingest`, `replay`, `featurize`, `predict`);
//! [`memory`] is what `spikewatch run` uses to execute the same stages in one process.

pub mod kafka;
pub mod memory;
