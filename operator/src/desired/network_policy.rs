//! A NetworkPolicy admitting traffic to the pipeline's pods only on the API and metrics ports,
//! and, with `networkPolicy.adminFromOperatorOnly`, on the admin port from the operator's
//! namespace alone. Egress stays open: the pods reach Kafka, Coinbase and the model registry.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::meta::{PIPELINE_COMPONENT, child_meta, pipeline_selector_labels};
use super::{DesiredError, RenderOptions};
use crate::crd::{VolatilityPipeline, Workload};

/// The label every namespace carries with its own name (set by the API server).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Whether the API's and predictor's admin endpoints listen on [`Workload::ADMIN_PORT`] alone.
pub fn admin_port_apart(vp: &VolatilityPipeline) -> bool {
    vp.spec.network_policy.admin_from_operator_only
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(IntOrString::Int(port)), protocol: Some("TCP".into()), end_port: None }
}

/// The NetworkPolicy selecting every pod of the pipeline.
pub fn desired_network_policy(vp: &VolatilityPipeline, options: &RenderOptions) -> Result<NetworkPolicy, DesiredError> {
    let mut ports: Vec<i32> = Workload::ALL.iter().map(|w| w.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    let mut ingress = vec![NetworkPolicyIngressRule { from: None, ports: Some(ports.into_iter().map(tcp).collect()) }];
    if admin_port_apart(vp) {
        let operator = options.operator_namespace.clone().ok_or(DesiredError::InvalidSpec(
            "networkPolicy.adminFromOperatorOnly needs the operator's namespace, which is unknown \
             (POD_NAMESPACE, or render's --operator-namespace)",
        ))?;
        ingress.push(NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), operator)])),
                    match_expressions: None,
                }),
                ..NetworkPolicyPeer::default()
            }]),
            ports: Some(vec![tcp(Workload::ADMIN_PORT)]),
        });
    }
    Ok(NetworkPolicy {
        metadata: child_meta(vp, vp.name_any(), PIPELINE_COMPONENT)?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(pipeline_selector_labels(vp)),
                match_expressions: None,
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            egress: None,
        }),
    })
}
