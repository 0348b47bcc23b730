use rdkafka::error::KafkaError;

/// Why a transport operation failed; [`TransportError::kind`] is the `error_type` metric label.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid Kafka client configuration: {0}")]
    Config(#[source] KafkaError),
    #[error("Kafka admin request failed: {0}")]
    Admin(String),
    #[error("cannot subscribe to {topic}: {source}")]
    Subscribe { topic: String, source: KafkaError },
    #[error("cannot serialize the value for {topic}: {source}")]
    Serialize { topic: String, source: serde_json::Error },
    #[error("the broker did not acknowledge {failed} record(s) on {topic}: {first_error}")]
    Produce { topic: String, failed: u64, first_error: String },
    #[error("cannot commit consumed offsets: {0}")]
    Commit(#[source] KafkaError),
    #[error("the stage function failed: {0}")]
    Process(String),
}

/// Error classes counted by the stage loop (`errors_total{error_type=...}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An input record whose value is not the expected JSON: counted, skipped, committed.
    Deserialize,
    /// An output record the broker did not acknowledge.
    Produce,
    /// Storing or committing consumed offsets failed (e.g. the partition was revoked).
    Commit,
    /// The consumer reported an error while polling.
    Consume,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 4] = [ErrorKind::Deserialize, ErrorKind::Produce, ErrorKind::Commit, ErrorKind::Consume];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Deserialize => "deserialize",
            ErrorKind::Produce => "produce",
            ErrorKind::Commit => "commit",
            ErrorKind::Consume => "consume",
        }
    }
}

impl TransportError {
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::Config(_) => "config",
            TransportError::Admin(_) => "admin",
            TransportError::Subscribe { .. } => "subscribe",
            TransportError::Serialize { .. } => "serialize",
            TransportError::Produce { .. } => ErrorKind::Produce.as_str(),
            TransportError::Commit(_) => ErrorKind::Commit.as_str(),
            TransportError::Process(_) => "process",
        }
    }
}
