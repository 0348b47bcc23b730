//! Where the pipeline's events live: the Kafka cluster, its credentials and the three topics.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kafka cluster, credentials and topics.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.topicManagement != 'strimzi' || (has(self.strimziCluster) && self.strimziCluster != '')").message("strimziCluster is required when topicManagement is strimzi"))]
#[x_kube(validation = Rule::new("!self.securityProtocol.startsWith('SASL') || (has(self.authSecretRef) && has(self.saslMechanism))").message("SASL_PLAINTEXT and SASL_SSL need authSecretRef and saslMechanism"))]
#[x_kube(validation = Rule::new("!self.caFromSecret || (has(self.authSecretRef) && self.securityProtocol.endsWith('SSL'))").message("caFromSecret needs authSecretRef and securityProtocol SSL or SASL_SSL"))]
pub struct KafkaSpec {
    /// Comma-separated `host:port` list of bootstrap brokers, such as `kafka-0.kafka:9092,kafka-1.kafka:9092`.
    /// A host without a dot is a Service of the pipeline's namespace: the operator (which runs
    /// in its own namespace) and the workloads both use it as `<host>.<namespace>.svc`.
    #[schemars(length(min = 1, max = 4096), regex(pattern = r"^[^,\s]+(,[^,\s]+)*$"))]
    pub bootstrap_servers: String,

    /// Secret (in the pipeline's namespace) holding the Kafka credentials. Keys: `username` and
    /// `password` (SASL), `ca.crt` (PEM CA bundle of the brokers, used when `caFromSecret` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<SecretRef>,

    /// Protocol used to talk to the brokers.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,

    /// SASL mechanism; required with `SASL_PLAINTEXT` and `SASL_SSL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<SaslMechanism>,

    /// Trust the brokers' certificates through the `ca.crt` key of `authSecretRef` instead of the
    /// image's system trust store.
    #[serde(default)]
    pub ca_from_secret: bool,

    /// How topics are created: `admin` (the operator uses the Kafka Admin API) or `strimzi`
    /// (the operator creates Strimzi `KafkaTopic` objects).
    #[serde(default)]
    pub topic_management: TopicManagement,

    /// Name of the Strimzi `Kafka` cluster (the `strimzi.io/cluster` label of the `KafkaTopic`
    /// objects); required when `topicManagement` is `strimzi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub strimzi_cluster: Option<String>,

    /// Topic names.
    #[serde(default)]
    pub topics: TopicsSpec,

    /// Partitions of each topic. Partitions only grow: lowering this never shrinks a topic.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 1000))]
    pub partitions: i32,

    /// Replication factor of each topic (set at creation, not changed afterwards).
    #[serde(default = "default_replication_factor")]
    #[schemars(range(min = 1, max = 10))]
    pub replication_factor: i32,

    /// `retention.ms` of each topic; `-1` keeps events forever.
    #[serde(default = "default_retention_ms")]
    #[schemars(range(min = -1))]
    pub retention_ms: i64,

    /// What happens to the topics when the pipeline is deleted: `Retain` (default) keeps them,
    /// `Delete` deletes them.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl KafkaSpec {
    /// [`Self::bootstrap_servers`] as every client of the pipeline uses it: the operator's own
    /// connections (topics, consumer lag), the workloads' config and KEDA's trigger. See
    /// [`qualify_bootstrap_servers`].
    pub fn bootstrap_servers_in(&self, namespace: &str) -> String {
        qualify_bootstrap_servers(&self.bootstrap_servers, namespace)
    }
}

/// Qualifies each `host:port` of a bootstrap list whose host has no dot with
/// `.<namespace>.svc`, so that a Service name written for the pipeline's namespace
/// (`kafka:9092`) resolves the same from any namespace: the operator's, KEDA's, the pipeline's.
/// Left as written: hosts with a dot (already qualified, or an IPv4 address), bracketed IPv6
/// addresses, `localhost`, and every host when `namespace` is empty.
pub fn qualify_bootstrap_servers(servers: &str, namespace: &str) -> String {
    servers.split(',').map(|server| qualify_server(server.trim(), namespace)).collect::<Vec<_>>().join(",")
}

fn qualify_server(server: &str, namespace: &str) -> String {
    let (host, port) = match server.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => (host, Some(port)),
        _ => (server, None),
    };
    let local = host.is_empty() || host.contains(['.', '[', ':']) || host.eq_ignore_ascii_case("localhost");
    if local || namespace.is_empty() {
        return server.to_string();
    }
    match port {
        Some(port) => format!("{host}.{namespace}.svc:{port}"),
        None => format!("{host}.{namespace}.svc"),
    }
}

fn default_partitions() -> i32 {
    3
}
fn default_replication_factor() -> i32 {
    1
}
fn default_retention_ms() -> i64 {
    7 * 24 * 3600 * 1000
}

/// Reference to a Secret in the pipeline's namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
}

/// Protocol used to talk to the brokers (librdkafka `security.protocol`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka spelling, as the workloads' config expects it.
    pub fn as_config_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// SASL mechanism (librdkafka `sasl.mechanism`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// How topics are created.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum TopicManagement {
    /// The operator creates and grows topics through the Kafka Admin API.
    #[default]
    Admin,
    /// The operator creates Strimzi `KafkaTopic` objects; the Strimzi topic operator does the rest.
    Strimzi,
}

/// What happens to the topics when the pipeline is deleted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Keep the topics and their events.
    #[default]
    Retain,
    /// Delete the topics (through the Admin API, or by deleting the `KafkaTopic` objects).
    Delete,
}

/// Topic names; the three must differ.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.raw != self.features && self.raw != self.predictions && self.features != self.predictions").message("topic names must be distinct"))]
pub struct TopicsSpec {
    /// Normalized ticks (ingestor → featurizer).
    #[serde(default = "default_raw_topic")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub raw: String,
    /// Feature vectors (featurizer → predictor).
    #[serde(default = "default_features_topic")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub features: String,
    /// Predictions (predictor → consumers of the pipeline).
    #[serde(default = "default_predictions_topic")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub predictions: String,
}

impl TopicsSpec {
    /// The three topic names, in data-flow order.
    pub fn names(&self) -> [&str; 3] {
        [&self.raw, &self.features, &self.predictions]
    }
}

impl Default for TopicsSpec {
    fn default() -> Self {
        TopicsSpec {
            raw: default_raw_topic(),
            features: default_features_topic(),
            predictions: default_predictions_topic(),
        }
    }
}

fn default_raw_topic() -> String {
    spikewatch_types::config::TopicsConfig::default().raw
}
fn default_features_topic() -> String {
    spikewatch_types::config::TopicsConfig::default().features
}
fn default_predictions_topic() -> String {
    spikewatch_types::config::TopicsConfig::default().predictions
}

#[cfg(test)]
mod tests {
    use super::qualify_bootstrap_servers;

    #[test]
    fn short_service_names_are_qualified_with_the_pipelines_namespace() {
        for (written, expected) in [
            ("kafka:9092", "kafka.markets.svc:9092"),
            ("spikewatch-kafka-bootstrap:9092", "spikewatch-kafka-bootstrap.markets.svc:9092"),
            ("kafka-0.kafka:9092,kafka-1:9092", "kafka-0.kafka:9092,kafka-1.markets.svc:9092"),
            ("kafka", "kafka.markets.svc"),
            ("kafka.other.svc.cluster.local:9093", "kafka.other.svc.cluster.local:9093"),
            ("broker.example.com:9093", "broker.example.com:9093"),
            ("10.0.0.7:9092", "10.0.0.7:9092"),
            ("[fd00::7]:9092", "[fd00::7]:9092"),
            ("localhost:9092", "localhost:9092"),
        ] {
            assert_eq!(qualify_bootstrap_servers(written, "markets"), expected, "{written}");
        }
    }

    #[test]
    fn without_a_namespace_nothing_changes() {
        assert_eq!(qualify_bootstrap_servers("kafka:9092", ""), "kafka:9092");
    }
}
