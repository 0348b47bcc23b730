//! The workloads' config file, in the workloads' own format (`spikewatch_types::config::Config`).
//!
//! Credentials never go into the ConfigMap: the pods read them from the auth Secret through
//! environment variables, which override the file.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use sha2::{Digest, Sha256};
use spikewatch_types::config::{Config, KafkaSecurity};

use super::DesiredError;
use super::deployment::ADMIN_TOKEN_PATH;
use super::meta::{CONFIG_KEY, PIPELINE_COMPONENT, child_meta, config_map_name};
use crate::crd::VolatilityPipeline;

/// Where the auth Secret's `ca.crt` is mounted when `kafka.caFromSecret` is set.
pub const KAFKA_CA_PATH: &str = "/etc/spikewatch-kafka/ca.crt";

/// The config every workload of the pipeline runs with.
pub fn desired_config(vp: &VolatilityPipeline) -> Config {
    let spec = &vp.spec;
    let name = vp.name_any();
    let namespace = vp.namespace().unwrap_or_default();
    let mut config = Config::default();

    config.feed.kind = spec.feed.into();
    config.feed.products = spec.products.clone();

    let kafka = &mut config.kafka;
    kafka.bootstrap_servers = spec.kafka.bootstrap_servers.clone();
    kafka.topics.raw = spec.kafka.topics.raw.clone();
    kafka.topics.features = spec.kafka.topics.features.clone();
    kafka.topics.predictions = spec.kafka.topics.predictions.clone();
    kafka.partitions = spec.kafka.partitions;
    kafka.replication_factor = spec.kafka.replication_factor;
    // The operator owns the topics (Admin API or Strimzi); workloads never create them.
    kafka.create_topics = false;
    // One consumer group per pipeline, so two pipelines on one cluster never share offsets.
    kafka.featurizer_group_id = format!("spikewatch.{namespace}.{name}.featurizer");
    kafka.predictor_group_id = format!("spikewatch.{namespace}.{name}.predictor");
    kafka.security = KafkaSecurity {
        protocol: Some(spec.kafka.security_protocol.as_config_str().to_string()),
        sasl_mechanism: spec.kafka.sasl_mechanism.map(|m| m.as_str().to_string()),
        sasl_username: None,
        sasl_password: None,
        ssl_ca_location: spec.kafka.ca_from_secret.then(|| KAFKA_CA_PATH.to_string()),
    };

    config.model.variant = spec.model.variant.into();
    config.model.source = spec.model.source_uri.clone();
    config.model.mlflow_tracking_uri = spec.model.mlflow_tracking_uri.clone();
    config.model.threshold = spec.model.threshold;

    config.api.bind = "0.0.0.0:8000".into();
    // The admin endpoints (API and predictor) accept the operator's token, mounted from the
    // pipeline's admin token Secret; the other workloads have no admin endpoint.
    config.api.admin_token_file = Some(ADMIN_TOKEN_PATH.to_string());
    config.metrics.bind = "0.0.0.0:8001".into();
    config
}

/// The config as the YAML text mounted at `/etc/spikewatch/config.yaml`.
pub fn desired_config_yaml(vp: &VolatilityPipeline) -> Result<String, DesiredError> {
    serde_yaml::to_string(&desired_config(vp)).map_err(|e| DesiredError::Serialize(e.to_string()))
}

/// Hex SHA-256 of the config text; the pods' `spikewatch.io/config-hash` annotation.
pub fn config_hash(config_yaml: &str) -> String {
    let digest = Sha256::digest(config_yaml.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ConfigMap holding `config.yaml`.
pub fn desired_config_map(vp: &VolatilityPipeline) -> Result<ConfigMap, DesiredError> {
    Ok(ConfigMap {
        metadata: child_meta(vp, config_map_name(vp), PIPELINE_COMPONENT)?,
        data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), desired_config_yaml(vp)?)])),
        ..ConfigMap::default()
    })
}
