//! The spikewatch operator: `VolatilityPipeline` custom resource → workloads, topics, monitoring.
pub mod topics;
