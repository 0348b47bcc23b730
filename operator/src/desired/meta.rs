//! Names, labels and metadata shared by every child object.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use super::DesiredError;
use crate::crd::{VolatilityPipeline, Workload};

/// `app.kubernetes.io/managed-by` of every child, and the server-side apply field manager.
pub const MANAGER: &str = "spikewatch-operator";
/// Pod annotation carrying the hash of the workloads' config, so a config change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "spikewatch.io/config-hash";
/// Where the ConfigMap is mounted in every workload pod.
pub const CONFIG_DIR: &str = "/etc/spikewatch";
/// Key of the workloads' config in the ConfigMap.
pub const CONFIG_KEY: &str = "config.yaml";
/// The config file every workload is started with.
pub const CONFIG_PATH: &str = "/etc/spikewatch/config.yaml";

/// Component label of objects shared by the whole pipeline (ConfigMap, ServiceAccount, ...).
pub const PIPELINE_COMPONENT: &str = "pipeline";
/// Component label of the monitoring objects.
pub const MONITORING_COMPONENT: &str = "monitoring";

/// Name of a workload's Deployment, Service and ServiceMonitor: `<pipeline>-<component>`.
pub fn workload_name(vp: &VolatilityPipeline, workload: Workload) -> String {
    format!("{}-{}", vp.name_any(), workload.component())
}

/// Name of the workloads' ConfigMap.
pub fn config_map_name(vp: &VolatilityPipeline) -> String {
    format!("{}-config", vp.name_any())
}

/// Name of the Secret holding the bearer token of the API's and predictor's admin endpoints
/// (created by the operator with a random token, mounted into those pods).
pub fn admin_token_secret_name(vp: &VolatilityPipeline) -> String {
    format!("{}-admin-token", vp.name_any())
}

/// Name of the pods' ServiceAccount.
pub fn service_account_name(vp: &VolatilityPipeline) -> String {
    vp.name_any()
}

/// Labels selecting one workload's pods. A subset of [`labels`], stable for a Deployment's life
/// (a Deployment's selector is immutable).
pub fn selector_labels(vp: &VolatilityPipeline, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "spikewatch".to_string()),
        ("app.kubernetes.io/instance".to_string(), vp.name_any()),
        ("app.kubernetes.io/component".to_string(), component.to_string()),
    ])
}

/// Labels selecting every pod of the pipeline.
pub fn pipeline_selector_labels(vp: &VolatilityPipeline) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "spikewatch".to_string()),
        ("app.kubernetes.io/instance".to_string(), vp.name_any()),
    ])
}

/// The recommended `app.kubernetes.io/*` labels of a child.
pub fn labels(vp: &VolatilityPipeline, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(vp, component);
    labels.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    labels.insert("app.kubernetes.io/part-of".into(), "spikewatch".into());
    labels
}

/// Owner reference making the pipeline the controller of a child: deleting the pipeline
/// garbage-collects the child, and `Controller::owns` maps child events back to the pipeline.
pub fn owner_reference(vp: &VolatilityPipeline) -> Result<OwnerReference, DesiredError> {
    let mut owner = vp.controller_owner_ref(&()).ok_or(DesiredError::MissingMetadata("metadata.uid"))?;
    owner.block_owner_deletion = Some(true);
    Ok(owner)
}

/// Namespace of the pipeline (every child lives there).
pub fn namespace(vp: &VolatilityPipeline) -> Result<String, DesiredError> {
    vp.namespace().ok_or(DesiredError::MissingMetadata("metadata.namespace"))
}

/// Metadata of a child: name, namespace, labels, owner reference.
pub fn child_meta(vp: &VolatilityPipeline, name: String, component: &str) -> Result<ObjectMeta, DesiredError> {
    if vp.meta().name.is_none() {
        return Err(DesiredError::MissingMetadata("metadata.name"));
    }
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(namespace(vp)?),
        labels: Some(labels(vp, component)),
        owner_references: Some(vec![owner_reference(vp)?]),
        ..ObjectMeta::default()
    })
}
