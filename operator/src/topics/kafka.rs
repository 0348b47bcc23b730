//! [`TopicAdmin`] over the Kafka Admin API (librdkafka through `rdkafka`).
//!
//! Each call opens its own admin client: pipelines may point at different clusters with
//! different credentials, and topic changes are rare enough that a connection per reconcile
//! costs nothing worth caching.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigResource, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::connection::client_config;
use super::{KafkaConnection, ObservedTopic, TopicAdmin, TopicChange, TopicError, TopicReport, TopicSpec, plan};

type Admin = AdminClient<DefaultClientContext>;

const RETENTION_MS: &str = "retention.ms";

#[derive(Debug, Clone)]
pub struct KafkaTopicAdmin {
    /// Bound on each broker round trip (metadata, create, alter, delete).
    timeout: Duration,
}

impl Default for KafkaTopicAdmin {
    fn default() -> Self {
        KafkaTopicAdmin { timeout: Duration::from_secs(10) }
    }
}

impl KafkaTopicAdmin {
    pub fn with_timeout(timeout: Duration) -> Self {
        KafkaTopicAdmin { timeout }
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new().request_timeout(Some(self.timeout)).operation_timeout(Some(self.timeout))
    }

    /// Lists the topics the broker knows, with their partition counts.
    async fn topic_partitions(
        &self,
        admin: &Arc<Admin>,
        connection: &KafkaConnection,
    ) -> Result<HashMap<String, i32>, TopicError> {
        let admin = Arc::clone(admin);
        let timeout = self.timeout;
        // fetch_metadata blocks the calling thread until the broker answers or the timeout passes.
        let metadata = tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, timeout))
            .await
            .map_err(|e| unreachable_error(connection, format!("metadata task failed: {e}")))?
            .map_err(|e| unreachable_error(connection, e.to_string()))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    }

    /// Reads the topic-level configuration of `names` (for the retention comparison and to
    /// carry the other dynamic settings through a non-incremental AlterConfigs).
    async fn topic_configs(
        &self,
        admin: &Admin,
        connection: &KafkaConnection,
        names: &[&str],
    ) -> Result<HashMap<String, ConfigResource>, TopicError> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let specifiers: Vec<ResourceSpecifier<'_>> = names.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
        let results = admin
            .describe_configs(specifiers.iter(), &self.options())
            .await
            .map_err(|e| op_error(connection, "describe", names, e))?;
        let mut configs = HashMap::new();
        for (name, result) in names.iter().zip(results) {
            match result {
                Ok(resource) => {
                    configs.insert(name.to_string(), resource);
                }
                Err(code) => return Err(rejected("describe", name, code)),
            }
        }
        Ok(configs)
    }

    async fn ensure_topics(
        &self,
        connection: &KafkaConnection,
        desired: &[TopicSpec],
    ) -> Result<TopicReport, TopicError> {
        let (config, _ca_file) = client_config(connection)?;
        let admin: Arc<Admin> = Arc::new(
            config.create().map_err(|e| TopicError::Config(format!("cannot create a Kafka admin client: {e}")))?,
        );
        let partitions = self.topic_partitions(&admin, connection).await?;
        let with_retention: Vec<&str> = desired
            .iter()
            .filter(|t| t.retention_ms.is_some() && partitions.contains_key(&t.name))
            .map(|t| t.name.as_str())
            .collect();
        let configs = self.topic_configs(&admin, connection, &with_retention).await?;
        let observed: Vec<ObservedTopic> = partitions
            .iter()
            .map(|(name, count)| ObservedTopic {
                name: name.clone(),
                partitions: *count,
                retention_ms: configs.get(name).and_then(topic_retention_ms),
            })
            .collect();

        let plan = plan(desired, &observed);
        for change in &plan.changes {
            self.apply(&admin, connection, change, configs.get(change.topic())).await?;
        }
        Ok(TopicReport { applied: plan.changes, shrink_refused: plan.shrink_refused })
    }

    async fn apply(
        &self,
        admin: &Admin,
        connection: &KafkaConnection,
        change: &TopicChange,
        config: Option<&ConfigResource>,
    ) -> Result<(), TopicError> {
        let name = change.topic();
        match change {
            TopicChange::Create(spec) => {
                let retention = spec.retention_ms.map(|ms| ms.to_string());
                let mut topic =
                    NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(spec.replication_factor));
                if let Some(retention) = &retention {
                    topic = topic.set(RETENTION_MS, retention);
                }
                let results = admin
                    .create_topics([&topic], &self.options())
                    .await
                    .map_err(|e| op_error(connection, "create", &[name], e))?;
                for result in results {
                    match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((_, code)) => return Err(rejected("create", name, code)),
                    }
                }
            }
            TopicChange::GrowPartitions { to, .. } => {
                let partitions = NewPartitions::new(name, *to as usize);
                let results = admin
                    .create_partitions([&partitions], &self.options())
                    .await
                    .map_err(|e| op_error(connection, "grow partitions of", &[name], e))?;
                for result in results {
                    if let Err((_, code)) = result {
                        return Err(rejected("grow partitions of", name, code));
                    }
                }
            }
            TopicChange::SetRetention { to, .. } => {
                // AlterConfigs replaces the topic's whole dynamic configuration: carry the other
                // topic-level settings over so only retention changes.
                let retention = to.to_string();
                let kept: Vec<(String, String)> = config
                    .map(|c| {
                        c.entries
                            .iter()
                            .filter(|e| {
                                e.source == ConfigSource::DynamicTopic && e.name != RETENTION_MS && !e.is_read_only
                            })
                            .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut alter = AlterConfig::new(ResourceSpecifier::Topic(name)).set(RETENTION_MS, &retention);
                for (key, value) in &kept {
                    alter = alter.set(key, value);
                }
                let results = admin
                    .alter_configs([&alter], &self.options())
                    .await
                    .map_err(|e| op_error(connection, "set retention of", &[name], e))?;
                for result in results {
                    if let Err((_, code)) = result {
                        return Err(rejected("set retention of", name, code));
                    }
                }
            }
        }
        tracing::info!(topic = name, "{change}");
        Ok(())
    }

    async fn delete_topics(&self, connection: &KafkaConnection, topics: &[String]) -> Result<(), TopicError> {
        if topics.is_empty() {
            return Ok(());
        }
        let (config, _ca_file) = client_config(connection)?;
        let admin: Admin =
            config.create().map_err(|e| TopicError::Config(format!("cannot create a Kafka admin client: {e}")))?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let results = admin
            .delete_topics(&names, &self.options())
            .await
            .map_err(|e| op_error(connection, "delete", &names, e))?;
        for result in results {
            match result {
                Ok(name) => tracing::info!(topic = %name, "deleted topic"),
                Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((name, code)) => return Err(rejected("delete", &name, code)),
            }
        }
        Ok(())
    }
}

impl TopicAdmin for KafkaTopicAdmin {
    fn ensure<'a>(
        &'a self,
        connection: &'a KafkaConnection,
        desired: &'a [TopicSpec],
    ) -> BoxFuture<'a, Result<TopicReport, TopicError>> {
        self.ensure_topics(connection, desired).boxed()
    }

    fn delete<'a>(
        &'a self,
        connection: &'a KafkaConnection,
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<(), TopicError>> {
        self.delete_topics(connection, topics).boxed()
    }
}

/// The topic's effective `retention.ms`. Compared by value whatever its source: a broker default
/// that already equals the spec needs no override (and tansu reports topic-level values with
/// source `Default`).
fn topic_retention_ms(config: &ConfigResource) -> Option<i64> {
    config.get(RETENTION_MS).and_then(|e| e.value.as_deref()).and_then(|v| v.parse().ok())
}

fn unreachable_error(connection: &KafkaConnection, reason: String) -> TopicError {
    TopicError::Unreachable { bootstrap_servers: connection.bootstrap_servers.clone(), reason }
}

/// A whole admin request failed (as opposed to one topic in it): either the broker did not
/// answer, or it does not implement the request (tansu 0.6 has no CreatePartitions, for one).
fn op_error(connection: &KafkaConnection, operation: &'static str, topics: &[&str], error: KafkaError) -> TopicError {
    let topic = topics.join(", ");
    let code = match &error {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    match code {
        Some(code) if !is_transport_failure(code) => rejected(operation, &topic, code),
        _ => unreachable_error(connection, format!("{operation} {topic}: {error}")),
    }
}

fn is_transport_failure(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        BrokerTransportFailure
            | AllBrokersDown
            | OperationTimedOut
            | RequestTimedOut
            | NetworkException
            | Resolve
            | BrokerNotAvailable
            | LeaderNotAvailable
            | Authentication
            | SaslAuthenticationFailed
            | SSL
            | TimedOutQueue
    )
}

fn rejected(operation: &'static str, topic: &str, code: RDKafkaErrorCode) -> TopicError {
    TopicError::Rejected { operation, topic: topic.to_string(), reason: code.to_string() }
}
