//! The desired children of a pipeline, from the pure builders in [`crate::desired`], in the
//! untyped form the apply step takes, each with the pipeline as controlling owner.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use serde_json::Value;

use super::apply::DesiredChild;
use super::error::{Error, Result};
use crate::crd::{VolatilityPipeline, Workload};
use crate::discovery::Capabilities;

/// Label selector of the children the operator watches (`.owns(...)`).
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=spikewatch-operator";

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
}

impl DesiredChildren {
    pub fn all(&self) -> impl Iterator<Item = &DesiredChild> {
        self.core
            .iter()
            .chain(self.deployments.iter().map(|(_, d)| d))
            .chain(self.monitoring.iter())
            .chain(self.dashboard.iter())
            .chain(self.kafka_topics.iter())
    }
}

/// Every child the spec asks for, each owned by `vp`.
pub fn desired_children(
    vp: &VolatilityPipeline,
    _capabilities: &Capabilities,
) -> Result<DesiredChildren> {
    let owner = vp
        .controller_owner_ref(&())
        .ok_or_else(|| Error::InvalidSpec("the pipeline has no name or uid yet".into()))?;
    let mut children = build(vp)?;
    for child in children
        .core
        .iter_mut()
        .chain(children.deployments.iter_mut().map(|(_, d)| d))
        .chain(children.monitoring.iter_mut())
        .chain(children.dashboard.iter_mut())
        .chain(children.kafka_topics.iter_mut())
    {
        ensure_owner(&mut child.object, &owner);
    }
    Ok(children)
}

/// Puts `owner` among the object's owner references (replacing an entry with the same uid).
fn ensure_owner(object: &mut Value, owner: &OwnerReference) {
    let owner = serde_json::to_value(owner).unwrap_or(Value::Null);
    let metadata = &mut object["metadata"];
    let references = metadata["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut references: Vec<Value> = references
        .into_iter()
        .filter(|r| r.get("uid") != owner.get("uid"))
        .collect();
    references.push(owner);
    metadata["ownerReferences"] = Value::Array(references);
}

fn build(vp: &VolatilityPipeline) -> Result<DesiredChildren> {
    interim::build(vp)
}

/// Minimal children used until the builders of `crate::desired` are wired in.
mod interim {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
    use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use kube::ResourceExt;
    use kube::api::ObjectMeta;
    use std::collections::BTreeMap;

    pub fn build(vp: &VolatilityPipeline) -> Result<DesiredChildren> {
        let name = vp.name_any();
        let labels = |component: &str| {
            BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "spikewatch-operator".to_string(),
                ),
                ("app.kubernetes.io/instance".to_string(), name.clone()),
                (
                    "app.kubernetes.io/component".to_string(),
                    component.to_string(),
                ),
            ])
        };
        let config = ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("{name}-config")),
                labels: Some(labels("config")),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "config.yaml".to_string(),
                "{}".to_string(),
            )])),
            ..Default::default()
        };
        let mut children = DesiredChildren {
            core: vec![DesiredChild::from_typed(&config)?],
            ..Default::default()
        };
        for workload in Workload::ALL {
            let labels = labels(workload.component());
            let deployment = Deployment {
                metadata: ObjectMeta {
                    name: Some(format!("{name}-{}", workload.component())),
                    labels: Some(labels.clone()),
                    ..Default::default()
                },
                spec: Some(DeploymentSpec {
                    replicas: Some(1),
                    selector: LabelSelector {
                        match_labels: Some(labels.clone()),
                        ..Default::default()
                    },
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels),
                            ..Default::default()
                        }),
                        spec: Some(PodSpec {
                            containers: vec![Container {
                                name: workload.component().into(),
                                image: Some(vp.spec.image.reference()),
                                args: Some(vec![workload.subcommand().into()]),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }),
                    },
                    ..Default::default()
                }),
                ..Default::default()
            };
            children
                .deployments
                .push((workload, DesiredChild::from_typed(&deployment)?));
        }
        Ok(children)
    }
}
