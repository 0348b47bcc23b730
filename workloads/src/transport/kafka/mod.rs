//! Kafka through rdkafka (bundled librdkafka).
//!
//! - [`client_config`]: the ONE place a `KafkaConfig` becomes an rdkafka `ClientConfig`
//!   (bootstrap, SASL/TLS, extra properties last); [`producer_config`] / [`consumer_config`]
//!   add the role-specific settings on top.
//! - [`create_producer`]: idempotent producer (`enable.idempotence=true`, `acks=all`), and
//!   [`JsonPublisher`], which publishes JSON values keyed by product id and tracks acks.
//! - [`ensure_topics`]: creates missing topics with the configured partition count through the
//!   admin API; consumers never auto-create topics.
//! - [`reader_config`]: a reader that assigns partitions by hand and never joins a group or
//!   commits, for watching a topic without touching the stages' offsets.
//! - [`create_group_consumer`]: a consumer-group `StreamConsumer` with manual offset commits and a
//!   context that logs rebalances and commits on revoke.
//! - [`wait_for_brokers`]: at start, waits for the brokers to answer, logging `broker
//!   unreachable` meanwhile, and gives up when the process is told to stop.
//! - [`Stage`]: the generic at-least-once consume → process → produce → ack → commit loop that
//!   the featurizer and the predictor run.

mod admin;
mod client;
mod consumer;
mod error;
mod latest;
mod metrics;
mod publisher;
mod reachable;
mod stage;

pub use admin::{TopicStatus, ensure_topics};
pub use client::{client_config, consumer_config, producer_config, reader_config};
pub use consumer::{Assignments, StageConsumer, StageContext, create_group_consumer};
pub use error::{ErrorKind, TransportError};
pub use latest::latest_event_time;
pub use metrics::{StageMetricNames, StageMetrics};
pub use publisher::{JsonPublisher, PublishTotals, create_producer};
pub use reachable::wait_for_brokers;
pub use stage::{BatchPolicy, COMMIT_INTERVAL, Inbound, Outbound, Stage, StageSpec, StageTotals};
