//! Topic creation at start: missing topics are created with the configured partition count and
//! replication factor through the admin API, so a topic never appears through broker
//! auto-creation with the broker's default partition count.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::TransportError;
use super::client::admin_config;
use crate::config::KafkaConfig;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`ensure_topics`] found or did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStatus {
    pub name: String,
    /// Partition count on the broker (the configured count for a topic created just now).
    pub partitions: i32,
    /// True when this call created the topic.
    pub created: bool,
}

/// Creates every topic of `topics` that does not exist yet, with `kafka.partitions` partitions
/// and `kafka.replication_factor` replicas. Idempotent: existing topics are left alone (a
/// partition count different from the configured one is logged, never changed, because that
/// would move keys between partitions), and a concurrent creation by another process counts as
/// existing.
pub async fn ensure_topics(kafka: &KafkaConfig, topics: &[&str]) -> Result<Vec<TopicStatus>, TransportError> {
    let mut config = admin_config(kafka);
    // The admin client is a producer underneath, whose default allows metadata requests to
    // auto-create topics; it must not.
    config.set("allow.auto.create.topics", "false");
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(config.create().map_err(TransportError::Config)?);

    let existing = existing_partitions(admin.clone()).await?;
    let mut statuses = Vec::new();
    let mut missing = Vec::new();
    for &name in topics {
        match existing.iter().find(|(topic, _)| topic == name) {
            Some((_, partitions)) => {
                if *partitions != kafka.partitions {
                    tracing::warn!(
                        topic = name,
                        partitions,
                        configured = kafka.partitions,
                        "topic exists with a different partition count; leaving it as it is"
                    );
                }
                statuses.push(TopicStatus { name: name.to_string(), partitions: *partitions, created: false });
            }
            None => missing.push(name),
        }
    }
    if missing.is_empty() {
        return Ok(statuses);
    }

    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|name| NewTopic::new(name, kafka.partitions, TopicReplication::Fixed(kafka.replication_factor)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT)).request_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| TransportError::Admin(format!("CreateTopics {missing:?}: {e}")))?;
    for result in results {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, partitions = kafka.partitions, replication = kafka.replication_factor, "created topic");
                statuses.push(TopicStatus { name, partitions: kafka.partitions, created: true });
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::info!(topic = %name, "topic was created concurrently by another client");
                statuses.push(TopicStatus { name, partitions: kafka.partitions, created: false });
            }
            Err((name, code)) => return Err(TransportError::Admin(format!("CreateTopics {name}: {code}"))),
        }
    }
    Ok(statuses)
}

/// `(topic, partition count)` of every topic on the cluster.
async fn existing_partitions(
    admin: Arc<AdminClient<DefaultClientContext>>,
) -> Result<Vec<(String, i32)>, TransportError> {
    // Metadata requests block; keep them off the async workers.
    tokio::task::spawn_blocking(move || {
        // All topics (None), never one by name: a by-name request may auto-create it.
        let metadata = admin
            .inner()
            .fetch_metadata(None, ADMIN_TIMEOUT)
            .map_err(|e| TransportError::Admin(format!("Metadata: {e}")))?;
        Ok(metadata.topics().iter().map(|t| (t.name().to_string(), t.partitions().len() as i32)).collect())
    })
    .await
    .map_err(|e| TransportError::Admin(format!("metadata task failed: {e}")))?
}
