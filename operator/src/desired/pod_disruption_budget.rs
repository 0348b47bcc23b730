//! A PodDisruptionBudget for the API: voluntary disruptions (node drains) take its pods one at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::DesiredError;
use super::meta::{child_meta, selector_labels, workload_name};
use crate::crd::{VolatilityPipeline, Workload};

/// `maxUnavailable: 1` rather than `minAvailable`, so a single-replica API never blocks a drain.
pub fn desired_pod_disruption_budget(vp: &VolatilityPipeline) -> Result<PodDisruptionBudget, DesiredError> {
    let component = Workload::Api.component();
    Ok(PodDisruptionBudget {
        metadata: child_meta(vp, workload_name(vp, Workload::Api), component)?,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(vp, component)),
                match_expressions: None,
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}
