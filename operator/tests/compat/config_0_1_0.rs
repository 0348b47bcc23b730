//! The config types of spikewatch 0.1.0, frozen: a copy of `crates/spikewatch-types/src/config.rs`
//! (and of the two enums it uses) as released, environment overrides left out. Workloads of
//! that version parse their file with these types, `deny_unknown_fields` included: a key they
//! do not know stops them. `config_compat.rs` runs today's operator output through them.
//! Never edit this file to follow a change of today's types; that is what it guards against.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feed {
    Exchange,
    AdvancedTrade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelVariant {
    Ml,
    Baseline,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub struct Config {
    pub feed: FeedConfig,
    pub kafka: KafkaConfig,
    pub features: FeaturesConfig,
    pub model: ModelConfig,
    pub api: ApiConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// `advanced_trade` (default) or `exchange`.
    pub kind: Feed,
    /// WebSocket URL; defaults to the public endpoint of `kind`.
    pub url: Option<String>,
    pub products: Vec<String>,
    /// No frame (not even a heartbeat) for this long → reconnect.
    pub heartbeat_timeout_secs: u64,
    pub reconnect_initial_backoff_ms: u64,
    pub reconnect_max_backoff_ms: u64,
    /// Frames larger than this are rejected (counted as `oversized`) without being parsed.
    pub max_frame_bytes: usize,
    /// Optional NDJSON mirror of the raw frames.
    pub mirror: Option<MirrorConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MirrorConfig {
    /// Directory the rotated NDJSON files are written to.
    pub dir: String,
    pub max_bytes: u64,
    pub max_age_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub topics: TopicsConfig,
    /// Partitions of topics created at start when missing.
    pub partitions: i32,
    pub replication_factor: i32,
    /// Create missing topics at start (never relies on broker auto-creation).
    pub create_topics: bool,
    pub featurizer_group_id: String,
    pub predictor_group_id: String,
    pub security: KafkaSecurity,
    /// Extra librdkafka properties, applied last.
    pub properties: BTreeMap<String, String>,
    /// Most input records a consuming stage (featurizer) processes per produce/ack/commit cycle.
    pub max_batch: usize,
    /// Longest a consuming stage waits to fill a batch once its first record arrived; 0 = take
    /// only the records already fetched.
    pub max_batch_wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicsConfig {
    pub raw: String,
    pub features: String,
    pub predictions: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSecurity {
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<String>,
    /// PEM file of the CA that signed the brokers' certificates.
    pub ssl_ca_location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturesConfig {
    /// A silence longer than this resets the product's windows.
    pub max_gap_secs: f64,
    /// Ticks older than the product's latest by at most this are still used; older ones are dropped.
    pub out_of_order_tolerance_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub variant: ModelVariant,
    /// Local path, `https://` URL, or `models:/<name>/<version|@alias>` (MLflow registry).
    pub source: String,
    pub mlflow_tracking_uri: Option<String>,
    /// Overrides the decision threshold stored with the model.
    pub threshold: Option<f64>,
    /// Largest micro-batch the predictor scores at once.
    pub max_batch: usize,
    /// Longest the predictor waits to fill a micro-batch; 0 = take only the vectors already fetched.
    pub max_batch_wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub bind: String,
    pub max_body_bytes: usize,
    pub max_rows: usize,
    pub request_timeout_ms: u64,
    /// File holding the bearer token of the admin endpoints; unset = admin endpoints disabled.
    pub admin_token_file: Option<String>,
    /// Refuse `/predict` rows with absent fields (422) instead of filling them with the
    /// training medians (`?strict=true` does it per request).
    pub strict_rows: bool,
    /// `serve`: feed `/predictions/stream` and `/predictions/latest` from `kafka.topics.predictions`.
    pub predictions_from_kafka: bool,
    /// Predictions a `/predictions/stream` client may fall behind by before it loses the oldest.
    pub stream_buffer: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the `/metrics` (and `/health`) endpoint of `ingest`, `featurize` and `predict`.
    pub bind: String,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            kind: Feed::AdvancedTrade,
            url: None,
            products: vec!["BTC-USD".into(), "ETH-USD".into()],
            heartbeat_timeout_secs: 30,
            reconnect_initial_backoff_ms: 500,
            reconnect_max_backoff_ms: 30_000,
            max_frame_bytes: 1024 * 1024,
            mirror: None,
        }
    }
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig { dir: "mirror".into(), max_bytes: 64 * 1024 * 1024, max_age_secs: 3600 }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "localhost:9092".into(),
            topics: TopicsConfig::default(),
            partitions: 3,
            replication_factor: 1,
            create_topics: true,
            featurizer_group_id: "spikewatch-featurizer".into(),
            predictor_group_id: "spikewatch-predictor".into(),
            security: KafkaSecurity::default(),
            properties: BTreeMap::new(),
            max_batch: 500,
            max_batch_wait_ms: 0,
        }
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            raw: "ticks.raw".into(),
            features: "ticks.features".into(),
            predictions: "ticks.predictions".into(),
        }
    }
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig { max_gap_secs: 30.0, out_of_order_tolerance_ms: 2_000 }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            variant: ModelVariant::Ml,
            source: "models/artifacts/spikewatch-gbdt".into(),
            mlflow_tracking_uri: None,
            threshold: None,
            max_batch: 256,
            max_batch_wait_ms: 0,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            bind: "0.0.0.0:8000".into(),
            max_body_bytes: 1024 * 1024,
            max_rows: 1024,
            request_timeout_ms: 2_000,
            admin_token_file: None,
            strict_rows: false,
            predictions_from_kafka: false,
            stream_buffer: 1024,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { bind: "0.0.0.0:8001".into() }
    }
}
