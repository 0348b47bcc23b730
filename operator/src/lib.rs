//! The spikewatch operator: `VolatilityPipeline` custom resource → workloads, topics, monitoring.

pub mod crd;
pub mod crdgen;
pub mod desired;
