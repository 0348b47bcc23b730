//! The desired children of a pipeline, from the pure builders in [`crate::desired`], in the
//! untyped form the apply step takes, each with the pipeline as controlling owner.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ApiResource;
use serde_json::Value;

use super::apply::DesiredChild;
use super::error::{Error, Result};
use crate::crd::{VolatilityPipeline, Workload};
use crate::desired;

/// Label selector of the children the operator watches (`.owns(...)`).
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=spikewatch-operator";
const _: () = assert!(matches!(desired::MANAGER.as_bytes(), b"spikewatch-operator"));

#[derive(Debug, Clone, Default)]
pub struct DesiredChildren {
    /// ConfigMap, ServiceAccount, Services, PodDisruptionBudget, NetworkPolicy: applied before
    /// the Deployments that reference them.
    pub core: Vec<DesiredChild>,
    pub deployments: Vec<(Workload, DesiredChild)>,
    /// ServiceMonitors and the PrometheusRule (need monitoring.coreos.com).
    pub monitoring: Vec<DesiredChild>,
    /// The Grafana dashboard ConfigMap (a core kind: applied whatever the cluster serves).
    pub dashboard: Option<DesiredChild>,
    /// KafkaTopic objects (`topicManagement: strimzi` only).
    pub kafka_topics: Vec<DesiredChild>,
    /// KEDA TriggerAuthentication and ScaledObject (`autoscaling.engine: keda` only).
    pub keda: Vec<DesiredChild>,
    /// Children the spec no longer asks for, to be removed when the operator created them:
    /// the API's PodDisruptionBudget once the API runs fewer than two pods.
    pub unwanted: Vec<(ApiResource, String)>,
}

impl DesiredChildren {
    pub fn all(&self) -> impl Iterator<Item = &DesiredChild> {
        self.core
            .iter()
            .chain(self.deployments.iter().map(|(_, d)| d))
            .chain(self.monitoring.iter())
            .chain(self.dashboard.iter())
            .chain(self.kafka_topics.iter())
            .chain(self.keda.iter())
    }
}

/// Every child the spec asks for, each owned by `vp`.
pub fn desired_children(vp: &VolatilityPipeline, options: &desired::RenderOptions) -> Result<DesiredChildren> {
    let owner = desired::owner_reference(vp).map_err(invalid)?;
    let state = desired::desired_state(vp, options).map_err(invalid)?;
    let mut children = DesiredChildren::default();
    children.core.push(DesiredChild::from_typed(&state.service_account)?);
    children.core.push(DesiredChild::from_typed(&state.config_map)?);
    for service in &state.services {
        children.core.push(DesiredChild::from_typed(service)?);
    }
    match &state.pod_disruption_budget {
        Some(budget) => children.core.push(DesiredChild::from_typed(budget)?),
        None => children
            .unwanted
            .push((ApiResource::erase::<PodDisruptionBudget>(&()), desired::workload_name(vp, Workload::Api))),
    }
    children.core.push(DesiredChild::from_typed(&state.network_policy)?);
    for (workload, deployment) in Workload::ALL.iter().zip(&state.deployments) {
        let child = DesiredChild::from_typed(deployment)?.with_create_only(desired::create_only_fields(*workload));
        children.deployments.push((*workload, child));
    }
    for topic in &state.kafka_topics {
        children
            .kafka_topics
            .push(DesiredChild::from_dynamic_object(topic, desired::kafka_topic_resource(state.kafka_topic_version))?);
    }
    for monitor in &state.service_monitors {
        children.monitoring.push(DesiredChild::from_dynamic_object(monitor, desired::service_monitor_resource())?);
    }
    if let Some(rule) = &state.prometheus_rule {
        children.monitoring.push(DesiredChild::from_dynamic_object(rule, desired::prometheus_rule_resource())?);
    }
    if let Some(dashboard) = &state.dashboard {
        children.dashboard = Some(DesiredChild::from_typed(dashboard)?);
    }
    if let Some(auth) = &state.trigger_authentication {
        children.keda.push(DesiredChild::from_dynamic_object(auth, desired::trigger_authentication_resource())?);
    }
    if let Some(scaled) = &state.scaled_object {
        children.keda.push(DesiredChild::from_dynamic_object(scaled, desired::scaled_object_resource())?);
    }
    for child in children
        .core
        .iter_mut()
        .chain(children.deployments.iter_mut().map(|(_, d)| d))
        .chain(children.monitoring.iter_mut())
        .chain(children.dashboard.iter_mut())
        .chain(children.kafka_topics.iter_mut())
        .chain(children.keda.iter_mut())
    {
        ensure_owner(&mut child.object, &owner);
    }
    Ok(children)
}

fn invalid(e: desired::DesiredError) -> Error {
    Error::InvalidSpec(e.to_string())
}

/// Puts `owner` among the object's owner references (replacing an entry with the same uid).
/// The builders already set it; this keeps the guarantee in one place for every child.
fn ensure_owner(object: &mut Value, owner: &OwnerReference) {
    let owner = serde_json::to_value(owner).unwrap_or(Value::Null);
    let metadata = &mut object["metadata"];
    let references = metadata["ownerReferences"].as_array().cloned().unwrap_or_default();
    let mut references: Vec<Value> = references.into_iter().filter(|r| r.get("uid") != owner.get("uid")).collect();
    references.push(owner);
    metadata["ownerReferences"] = Value::Array(references);
}
