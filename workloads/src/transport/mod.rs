//! Message transport between stages: Kafka (rdkafka) or in-memory channels.
