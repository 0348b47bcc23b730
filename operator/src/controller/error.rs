//! One error type for the reconciler. Each variant says whether a retry can help and has a
//! short metric label, so `spikewatch_operator_reconcile_errors_total{reason}` counts failures
//! by kind.

use crate::topics::TopicError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),

    /// The finalizer helper failed, or the step it wrapped did.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    /// The brokers could not be reached or refused a topic change.
    #[error("Kafka topics: {0}")]
    Topics(#[source] TopicError),

    /// A Secret the spec references does not exist (yet): retried, it may be created later.
    #[error("{0}")]
    MissingSecret(String),

    /// The spec passed the API server's validation but cannot be realized (a reference to a
    /// Secret without the needed keys, for example). Retrying will not help until it changes.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),

    /// A desired object could not be serialized (a bug, not an input problem).
    #[error("cannot serialize {kind} {name}: {source}")]
    Serialization { kind: &'static str, name: String, source: serde_json::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Label for the error counter: stable, low-cardinality.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => "kube_conflict",
            Error::Kube(kube::Error::Api(status)) if status.code == 403 => "kube_forbidden",
            Error::Kube(_) => "kube",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => {
                    e.metric_label()
                }
                _ => "finalizer",
            },
            Error::Topics(TopicError::Unreachable { .. }) => "broker_unreachable",
            Error::Topics(TopicError::Rejected { .. }) => "broker_rejected",
            Error::Topics(TopicError::Config(_)) => "kafka_settings",
            Error::MissingSecret(_) => "missing_secret",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Serialization { .. } => "serialization",
        }
    }

    /// CamelCase reason for a condition or an event.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Topics(e) => e.reason(),
            Error::MissingSecret(_) => "SecretNotFound",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => {
                    e.reason()
                }
                _ => "FinalizerFailed",
            },
            Error::Kube(_) => "KubernetesApiError",
            Error::Serialization { .. } => "InternalError",
        }
    }

    /// Whether the same spec may succeed on a later attempt without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Kube(kube::Error::Api(status)) => !matches!(status.code, 400 | 403 | 422),
            Error::Kube(_) => true,
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => {
                    e.is_retryable()
                }
                _ => true,
            },
            Error::Topics(TopicError::Unreachable { .. }) | Error::MissingSecret(_) => true,
            Error::Topics(TopicError::Rejected { .. } | TopicError::Config(_)) => false,
            Error::InvalidSpec(_) | Error::Serialization { .. } => false,
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}

impl From<TopicError> for Error {
    fn from(e: TopicError) -> Self {
        Error::Topics(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_wrapped_errors_are_counted_by_their_cause() {
        let inner =
            Error::Topics(TopicError::Unreachable { bootstrap_servers: "b:9092".into(), reason: "refused".into() });
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(inner)));
        assert_eq!(wrapped.metric_label(), "broker_unreachable");
        assert!(wrapped.is_retryable());
    }

    #[test]
    fn invalid_specs_are_not_retried_quickly() {
        let e = Error::InvalidSpec("Secret kafka has no password".into());
        assert_eq!(e.metric_label(), "invalid_spec");
        assert!(!e.is_retryable());
    }
}
