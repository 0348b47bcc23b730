//! The seam between the reconciler and a broker: a trait object in the controller's context,
//! so tests can stand in a broker that is unreachable or that records what it was asked.

use futures::future::BoxFuture;

use super::{KafkaConnection, ShrinkRefused, TopicChange, TopicSpec};

/// What [`TopicAdmin::ensure`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicReport {
    /// Changes made on the broker (empty when the topics already matched).
    pub applied: Vec<TopicChange>,
    /// Partition counts the spec asks to lower, which Kafka cannot do.
    pub shrink_refused: Vec<ShrinkRefused>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TopicError {
    /// No broker answered (DNS, connection refused, TLS or SASL handshake, timeout).
    #[error("Kafka brokers {bootstrap_servers} unreachable: {reason}")]
    Unreachable { bootstrap_servers: String, reason: String },
    /// The broker answered and refused the operation (e.g. replication factor above the
    /// number of brokers, invalid config, not authorized).
    #[error("broker refused to {operation} topic {topic}: {reason}")]
    Rejected { operation: &'static str, topic: String, reason: String },
    /// The connection settings themselves are unusable (e.g. a CA certificate that cannot be written).
    #[error("invalid Kafka client settings: {0}")]
    Config(String),
}

impl TopicError {
    /// Condition reason (CamelCase, as Kubernetes conventions ask).
    pub fn reason(&self) -> &'static str {
        match self {
            TopicError::Unreachable { .. } => "BrokerUnreachable",
            TopicError::Rejected { .. } => "BrokerRejected",
            TopicError::Config(_) => "InvalidKafkaSettings",
        }
    }
}

/// Creates, grows and deletes a pipeline's topics.
pub trait TopicAdmin: Send + Sync {
    /// Makes the broker's topics match `desired` (create missing, grow partitions, set retention).
    /// Idempotent: a second call with the same input changes nothing.
    fn ensure<'a>(
        &'a self,
        connection: &'a KafkaConnection,
        desired: &'a [TopicSpec],
    ) -> BoxFuture<'a, Result<TopicReport, TopicError>>;

    /// Deletes the named topics; topics that do not exist are not an error.
    fn delete<'a>(
        &'a self,
        connection: &'a KafkaConnection,
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<(), TopicError>>;
}
