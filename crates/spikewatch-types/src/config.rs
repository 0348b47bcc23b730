//! One configuration file format (YAML) for every subcommand, with environment overrides.
//!
//! Precedence: built-in defaults < config file (`--config` / `SPIKEWATCH_CONFIG`) < environment.
//! Every environment variable is prefixed `SPIKEWATCH_` ([`ENV_VARS`]); the names without the
//! prefix (those of the original runbook) are deprecated aliases.
//!
//! Keys this version does not know are ignored and reported ([`Config::load_reporting_unknown`]),
//! not refused: a config file written for a newer version (by a newer operator) still starts an
//! older workload.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::domain::{Feed, ModelVariant};

mod validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
#[serde(default)]
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
#[serde(default)]
pub struct MirrorConfig {
    /// Directory the rotated NDJSON files are written to.
    pub dir: String,
    pub max_bytes: u64,
    pub max_age_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
#[serde(default)]
pub struct TopicsConfig {
    pub raw: String,
    pub features: String,
    pub predictions: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
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
#[serde(default)]
pub struct FeaturesConfig {
    /// A silence longer than this resets the product's windows.
    pub max_gap_secs: f64,
    /// Ticks older than the product's latest by at most this are still used; older ones are dropped.
    pub out_of_order_tolerance_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    pub variant: ModelVariant,
    /// With `variant: ml`: stop (exit non-zero) when the ML model cannot be loaded, instead of
    /// serving the baseline in its place (reported by `/version`, the live page, the summary
    /// line and `model_fallback_active`).
    pub require_ml: bool,
    /// `builtin:spikewatch-gbdt` (the model built into the binary, the default), a local path, an
    /// `https://` URL, or `models:/<name>/<version|@alias>` (MLflow registry).
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
#[serde(default)]
pub struct ApiConfig {
    pub bind: String,
    pub max_body_bytes: usize,
    pub max_rows: usize,
    pub request_timeout_ms: u64,
    /// File holding the bearer token of the admin endpoints; unset = admin endpoints disabled.
    pub admin_token_file: Option<String>,
    /// Serve the admin endpoints (`serve`'s and `predict`'s) on this address only, not on the
    /// API or metrics port, so a NetworkPolicy can admit them from fewer peers. Unset: beside
    /// the others.
    pub admin_bind: Option<String>,
    /// Refuse `/predict` rows with absent fields (422) instead of filling them with the
    /// training medians (`?strict=true` does it per request).
    pub strict_rows: bool,
    /// `serve`: feed `/predictions/stream` and `/predictions/latest` from `kafka.topics.predictions`.
    pub predictions_from_kafka: bool,
    /// Predictions a `/predictions/stream` client may fall behind by before it loses the oldest.
    pub stream_buffer: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
            // The final-test winner (models/artifacts/spikewatch-gbdt/model_card.md).
            variant: ModelVariant::Baseline,
            require_ml: false,
            // Built into the `spikewatch` binary (workloads/src/model/builtin.rs).
            source: "builtin:spikewatch-gbdt".into(),
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
            admin_bind: None,
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse { path: String, source: serde_yaml::Error },
    #[error("invalid value {value:?} for environment variable {var}: {reason}")]
    Env { var: &'static str, value: String, reason: String },
    /// A setting that parses but cannot work (`Config::validate`).
    #[error("invalid setting {setting}: {reason}")]
    Invalid { setting: &'static str, reason: String },
}

impl Config {
    /// Loads `path` (if any) over the defaults, then applies the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_reporting_unknown(path).map(|(config, _)| config)
    }

    /// [`Config::load`], also returning the keys of the file this version does not know.
    pub fn load_reporting_unknown(path: Option<&Path>) -> Result<(Config, Vec<String>), ConfigError> {
        let (mut config, unknown) = match path {
            Some(path) => Config::from_yaml_file_reporting_unknown(path)?,
            None => (Config::default(), vec![]),
        };
        config.apply_env(|var| std::env::var(var).ok())?;
        Ok((config, unknown))
    }

    pub fn from_yaml_file(path: &Path) -> Result<Config, ConfigError> {
        Config::from_yaml_file_reporting_unknown(path).map(|(config, _)| config)
    }

    fn from_yaml_file_reporting_unknown(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let display = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: display.clone(), source })?;
        Config::from_yaml_reporting_unknown(&text).map_err(|source| ConfigError::Parse { path: display, source })
    }

    pub fn from_yaml(text: &str) -> Result<Config, serde_yaml::Error> {
        Config::from_yaml_reporting_unknown(text).map(|(config, _)| config)
    }

    /// Parses `text` over the defaults; returns the config and the dotted paths of the keys it
    /// ignored because this version does not know them (such as `kafka.linger_ms`).
    pub fn from_yaml_reporting_unknown(text: &str) -> Result<(Config, Vec<String>), serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok((Config::default(), vec![]));
        }
        let mut unknown = vec![];
        let config = serde_ignored::deserialize(serde_yaml::Deserializer::from_str(text), |path| {
            unknown.push(path.to_string())
        })?;
        Ok((config, unknown))
    }

    /// Applies environment overrides ([`ENV_VARS`]); `lookup` is `std::env::var` in production,
    /// a map in tests. A variable's deprecated name ([`deprecated_env_vars`]) applies when its
    /// `SPIKEWATCH_` name is unset.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(var: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse::<T>().map_err(|e| ConfigError::Env { var, value: value.clone(), reason: e.to_string() })
        }
        // The value and the name it was found under.
        let get = |name: &'static str| -> Option<(&'static str, String)> {
            let old = ENV_VARS.iter().find(|(new, _)| *new == name).map(|(_, old)| *old);
            lookup(name).map(|v| (name, v)).or_else(|| old.and_then(|old| lookup(old).map(|v| (old, v))))
        };
        if let Some((_, v)) = get("SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS") {
            self.kafka.bootstrap_servers = v;
        }
        if let Some((_, v)) = get("SPIKEWATCH_KAFKA_SECURITY_PROTOCOL") {
            self.kafka.security.protocol = Some(v);
        }
        if let Some((_, v)) = get("SPIKEWATCH_KAFKA_SASL_MECHANISM") {
            self.kafka.security.sasl_mechanism = Some(v);
        }
        if let Some((_, v)) = get("SPIKEWATCH_KAFKA_SASL_USERNAME") {
            self.kafka.security.sasl_username = Some(v);
        }
        if let Some((_, v)) = get("SPIKEWATCH_KAFKA_SASL_PASSWORD") {
            self.kafka.security.sasl_password = Some(v);
        }
        if let Some((_, v)) = get("SPIKEWATCH_KAFKA_SSL_CA_LOCATION") {
            self.kafka.security.ssl_ca_location = Some(v);
        }
        if let Some((var, v)) = get("SPIKEWATCH_MODEL_VARIANT") {
            self.model.variant = parse(var, v)?;
        }
        if let Some((_, v)) = get("SPIKEWATCH_MODEL_SOURCE") {
            self.model.source = v;
        }
        if let Some((_, v)) = get("SPIKEWATCH_MLFLOW_TRACKING_URI") {
            self.model.mlflow_tracking_uri = Some(v);
        }
        if let Some((var, v)) = get("SPIKEWATCH_PORT") {
            let port: u16 = parse(var, v)?;
            self.api.bind = with_port(&self.api.bind, port);
        }
        if let Some((var, v)) = get("SPIKEWATCH_METRICS_PORT") {
            let port: u16 = parse(var, v)?;
            self.metrics.bind = with_port(&self.metrics.bind, port);
        }
        if let Some((_, v)) = get("SPIKEWATCH_ADMIN_TOKEN_FILE") {
            self.api.admin_token_file = Some(v);
        }
        if let Some((_, v)) = get("SPIKEWATCH_ADMIN_BIND") {
            self.api.admin_bind = Some(v);
        }
        if let Some((var, v)) = get("SPIKEWATCH_PREDICTIONS_FROM_KAFKA") {
            self.api.predictions_from_kafka = parse(var, v)?;
        }
        Ok(())
    }
}

/// The environment variables that override the config file, each with the name it had before
/// the `SPIKEWATCH_` prefix (still read, with a deprecation warning, for one release). Generic
/// names such as `PORT` are set by many hosting platforms and by Kubernetes service links.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    ("SPIKEWATCH_KAFKA_SECURITY_PROTOCOL", "KAFKA_SECURITY_PROTOCOL"),
    ("SPIKEWATCH_KAFKA_SASL_MECHANISM", "KAFKA_SASL_MECHANISM"),
    ("SPIKEWATCH_KAFKA_SASL_USERNAME", "KAFKA_SASL_USERNAME"),
    ("SPIKEWATCH_KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD"),
    ("SPIKEWATCH_KAFKA_SSL_CA_LOCATION", "KAFKA_SSL_CA_LOCATION"),
    ("SPIKEWATCH_MODEL_VARIANT", "MODEL_VARIANT"),
    ("SPIKEWATCH_MODEL_SOURCE", "MODEL_SOURCE"),
    ("SPIKEWATCH_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_URI"),
    ("SPIKEWATCH_PORT", "PORT"),
    ("SPIKEWATCH_METRICS_PORT", "METRICS_PORT"),
    ("SPIKEWATCH_ADMIN_TOKEN_FILE", "ADMIN_TOKEN_FILE"),
    ("SPIKEWATCH_ADMIN_BIND", "ADMIN_BIND"),
    ("SPIKEWATCH_PREDICTIONS_FROM_KAFKA", "PREDICTIONS_FROM_KAFKA"),
];

/// `(deprecated name, name to use)` of each variable set only under its deprecated name: what
/// a workload warns about at start.
pub fn deprecated_env_vars(lookup: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, &'static str)> {
    ENV_VARS
        .iter()
        .map(|&(new, old)| (old, new))
        .filter(|(old, new)| lookup(new).is_none() && lookup(old).is_some())
        .collect()
}

/// The top-level sections of the config file each subcommand that runs in a cluster reads
/// (`ingest` and `replay`, `featurize`, `predict`, `serve`). The operator hashes only these into
/// a workload's pods, so a change restarts the workloads that read it and no other: a new model
/// restarts the API and the predictor, not the ingestor and the featurizer.
pub fn sections_read_by(subcommand: &str) -> &'static [&'static str] {
    match subcommand {
        "ingest" | "replay" => &["feed", "kafka", "metrics"],
        "featurize" => &["features", "kafka", "metrics"],
        // The predictor's admin endpoint reads `api.admin_token_file`.
        "predict" => &["api", "kafka", "metrics", "model"],
        // `api.predictions_from_kafka` streams the predictions topic.
        "serve" => &["api", "kafka", "model"],
        _ => &["api", "features", "feed", "kafka", "metrics", "model"],
    }
}

/// `host:port` with the port replaced.
fn with_port(bind: &str, port: u16) -> String {
    let host = bind.rsplit_once(':').map(|(host, _)| host).unwrap_or("0.0.0.0");
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_match_the_original_system() {
        let c = Config::default();
        assert_eq!(c.kafka.topics.raw, "ticks.raw");
        assert_eq!(c.kafka.topics.features, "ticks.features");
        assert_eq!(c.kafka.topics.predictions, "ticks.predictions");
        assert_eq!(c.api.bind, "0.0.0.0:8000");
        assert_eq!(c.metrics.bind, "0.0.0.0:8001");
        // Not the original's: the variant that ranked the final-test dates better serves.
        assert_eq!(c.model.variant, ModelVariant::Baseline);
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let mut c =
            Config::from_yaml("kafka:\n  bootstrap_servers: file:9092\n  partitions: 6\nmodel:\n  variant: ml\n")
                .unwrap();
        assert_eq!(c.kafka.partitions, 6);
        let env: HashMap<&str, &str> = [
            ("SPIKEWATCH_KAFKA_BOOTSTRAP_SERVERS", "env:9092"),
            ("SPIKEWATCH_MODEL_VARIANT", "baseline"),
            ("SPIKEWATCH_PORT", "9000"),
            ("SPIKEWATCH_PREDICTIONS_FROM_KAFKA", "true"),
        ]
        .into();
        assert!(!c.api.predictions_from_kafka, "off by default");
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(c.api.predictions_from_kafka);
        assert_eq!(c.kafka.bootstrap_servers, "env:9092");
        assert_eq!(c.model.variant, ModelVariant::Baseline);
        assert_eq!(c.api.bind, "0.0.0.0:9000");
        assert_eq!(c.kafka.partitions, 6, "untouched by env");
    }

    #[test]
    fn unknown_keys_are_ignored_and_reported_with_their_path() {
        let (c, unknown) = Config::from_yaml_reporting_unknown(
            "kafka:\n  bootstrap_servers: k:9092\n  linger_ms: 5\n  topics:\n    audit: a\nsinks: {}\n",
        )
        .unwrap();
        assert_eq!(c.kafka.bootstrap_servers, "k:9092", "the known keys still apply");
        assert_eq!(unknown, ["kafka.linger_ms", "kafka.topics.audit", "sinks"]);
        assert_eq!(Config::from_yaml_reporting_unknown("kafka:\n  partitions: 6\n").unwrap().1, Vec::<String>::new());
    }

    #[test]
    fn a_known_key_of_the_wrong_type_and_bad_env_values_are_errors() {
        assert!(Config::from_yaml("kafka:\n  partitions: many\n").is_err());
        let mut c = Config::default();
        let err = c.apply_env(|k| (k == "SPIKEWATCH_MODEL_VARIANT").then(|| "gpt".to_string())).unwrap_err();
        assert!(err.to_string().contains("SPIKEWATCH_MODEL_VARIANT"), "{err}");
        let err = c.apply_env(|k| (k == "PREDICTIONS_FROM_KAFKA").then(|| "yes".to_string())).unwrap_err();
        assert!(err.to_string().contains("variable PREDICTIONS_FROM_KAFKA:"), "the name it was set under: {err}");
    }

    #[test]
    fn deprecated_names_apply_when_the_prefixed_one_is_unset_and_are_reported() {
        let env: HashMap<&str, &str> =
            [("PORT", "9000"), ("METRICS_PORT", "9001"), ("SPIKEWATCH_METRICS_PORT", "9101")].into();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let mut c = Config::default();
        c.apply_env(lookup).unwrap();
        assert_eq!(c.api.bind, "0.0.0.0:9000", "the deprecated name alone applies");
        assert_eq!(c.metrics.bind, "0.0.0.0:9101", "the prefixed name wins");
        assert_eq!(deprecated_env_vars(lookup), [("PORT", "SPIKEWATCH_PORT")], "only the one used alone");
        assert!(ENV_VARS.iter().all(|(new, _)| new.starts_with("SPIKEWATCH_")));
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::from_yaml("  \n").unwrap(), Config::default());
    }
}
