//! The workloads' config file, in the workloads' own format (`spikewatch_types::config::Config`).
//!
//! The file holds only what the pipeline's spec decides and what the operator must set for a
//! cluster (its own topics, consumer groups, ports, the admin token), never the workloads'
//! built-in defaults: those belong to the workload image, so an operator upgrade that adds a
//! config key or changes a default neither breaks an older image nor restarts a pipeline.
//!
//! Credentials never go into the ConfigMap: the pods read them from the auth Secret through
//! environment variables, which override the file.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use spikewatch_types::config::{Config, sections_read_by};

use super::DesiredError;
use super::deployment::ADMIN_TOKEN_PATH;
use super::meta::{CONFIG_KEY, PIPELINE_COMPONENT, child_meta, config_map_name};
use crate::crd::{VolatilityPipeline, Workload};

/// Where the auth Secret's `ca.crt` is mounted when `kafka.caFromSecret` is set.
pub const KAFKA_CA_PATH: &str = "/etc/spikewatch-kafka/ca.crt";

/// The config file's content: the keys the spec sets and those the operator must set, nothing
/// else. Absent optional values are left out rather than written as `null`.
pub fn desired_config_value(vp: &VolatilityPipeline) -> Value {
    let spec = &vp.spec;
    let name = vp.name_any();
    let namespace = vp.namespace().unwrap_or_default();
    let kafka = &spec.kafka;

    let mut security = Map::new();
    security.insert("protocol".into(), json!(kafka.security_protocol.as_config_str()));
    if let Some(mechanism) = kafka.sasl_mechanism {
        security.insert("sasl_mechanism".into(), json!(mechanism.as_str()));
    }
    if kafka.ca_from_secret {
        security.insert("ssl_ca_location".into(), json!(KAFKA_CA_PATH));
    }
    let mut model = Map::new();
    model.insert("variant".into(), json!(spikewatch_types::domain::ModelVariant::from(spec.model.variant)));
    model.insert("source".into(), json!(spec.model.source_uri));
    if let Some(uri) = &spec.model.mlflow_tracking_uri {
        model.insert("mlflow_tracking_uri".into(), json!(uri));
    }
    if let Some(threshold) = spec.model.threshold {
        model.insert("threshold".into(), json!(threshold));
    }

    json!({
        "feed": {
            "kind": spikewatch_types::domain::Feed::from(spec.feed),
            "products": spec.products,
        },
        "kafka": {
            // One name everywhere: the one the operator itself connects to.
            "bootstrap_servers": kafka.bootstrap_servers_in(&namespace),
            "topics": {
                "raw": kafka.topics.raw,
                "features": kafka.topics.features,
                "predictions": kafka.topics.predictions,
            },
            // The operator owns the topics (Admin API or Strimzi); workloads never create them.
            "create_topics": false,
            // One consumer group per pipeline, so two pipelines on one cluster never share offsets.
            "featurizer_group_id": format!("spikewatch.{namespace}.{name}.featurizer"),
            "predictor_group_id": format!("spikewatch.{namespace}.{name}.predictor"),
            "security": security,
        },
        "model": model,
        "api": {
            "bind": format!("0.0.0.0:{}", Workload::Api.port()),
            // The admin endpoints (API and predictor) accept the operator's token, mounted from
            // the pipeline's admin token Secret; the other workloads have no admin endpoint.
            "admin_token_file": ADMIN_TOKEN_PATH,
        },
        "metrics": { "bind": format!("0.0.0.0:{}", Workload::Predictor.port()) },
    })
}

/// The config every workload of the pipeline runs with: the file over the workloads' defaults.
pub fn desired_config(vp: &VolatilityPipeline) -> Config {
    // Built from values this module writes itself: it always deserializes.
    serde_json::from_value(desired_config_value(vp)).expect("the rendered config is a valid Config")
}

/// The config as the YAML text mounted at `/etc/spikewatch/config.yaml`.
pub fn desired_config_yaml(vp: &VolatilityPipeline) -> Result<String, DesiredError> {
    serde_yaml::to_string(&desired_config_value(vp)).map_err(|e| DesiredError::Serialize(e.to_string()))
}

/// Hex SHA-256 of a text.
pub fn config_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `spikewatch.io/config-hash` of one workload's pods: the hash of the sections of the
/// config file that workload reads, so that a change rolls exactly the workloads it concerns.
pub fn workload_config_hash(vp: &VolatilityPipeline, workload: Workload) -> Result<String, DesiredError> {
    let config = desired_config_value(vp);
    let read: BTreeMap<&str, &Value> = sections_read_by(workload.subcommand())
        .iter()
        .filter_map(|section| config.get(*section).map(|value| (*section, value)))
        .collect();
    let text = serde_yaml::to_string(&read).map_err(|e| DesiredError::Serialize(e.to_string()))?;
    Ok(config_hash(&text))
}

/// The ConfigMap holding `config.yaml`.
pub fn desired_config_map(vp: &VolatilityPipeline) -> Result<ConfigMap, DesiredError> {
    Ok(ConfigMap {
        metadata: child_meta(vp, config_map_name(vp), PIPELINE_COMPONENT)?,
        data: Some(BTreeMap::from([(CONFIG_KEY.to_string(), desired_config_yaml(vp)?)])),
        ..ConfigMap::default()
    })
}
