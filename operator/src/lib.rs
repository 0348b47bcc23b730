//! The spikewatch operator: `VolatilityPipeline` custom resource → workloads, topics, monitoring.
