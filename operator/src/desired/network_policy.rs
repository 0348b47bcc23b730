//! A NetworkPolicy admitting traffic to the pipeline's pods only on the API and metrics ports.
//! Egress stays open: the pods reach Kafka, Coinbase and the model registry.

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPort, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::DesiredError;
use super::meta::{PIPELINE_COMPONENT, child_meta, pipeline_selector_labels};
use crate::crd::{VolatilityPipeline, Workload};

/// The NetworkPolicy selecting every pod of the pipeline.
pub fn desired_network_policy(vp: &VolatilityPipeline) -> Result<NetworkPolicy, DesiredError> {
    let mut ports: Vec<i32> = Workload::ALL.iter().map(|w| w.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    Ok(NetworkPolicy {
        metadata: child_meta(vp, vp.name_any(), PIPELINE_COMPONENT)?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(pipeline_selector_labels(vp)),
                match_expressions: None,
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: None,
                ports: Some(
                    ports
                        .into_iter()
                        .map(|port| NetworkPolicyPort {
                            port: Some(IntOrString::Int(port)),
                            protocol: Some("TCP".into()),
                            end_port: None,
                        })
                        .collect(),
                ),
            }]),
            egress: None,
        }),
    })
}
