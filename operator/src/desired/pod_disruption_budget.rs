//! A PodDisruptionBudget for the API when it runs two or more pods: voluntary disruptions (node
//! drains) take them one at a time, so the API keeps answering. A single API pod gets none: a
//! budget could only block its drain or promise nothing.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::DesiredError;
use super::deployment::desired_replicas;
use super::meta::{child_meta, selector_labels, workload_name};
use crate::crd::{VolatilityPipeline, Workload};

/// Fewest API replicas that get a budget.
pub const PDB_MIN_API_REPLICAS: i32 = 2;

/// `maxUnavailable: 1` rather than `minAvailable`, so that the budget follows the replica count;
/// `None` for fewer than [`PDB_MIN_API_REPLICAS`] API pods (the reconciler then removes a
/// budget it created earlier).
pub fn desired_pod_disruption_budget(vp: &VolatilityPipeline) -> Result<Option<PodDisruptionBudget>, DesiredError> {
    if desired_replicas(vp, Workload::Api) < PDB_MIN_API_REPLICAS {
        return Ok(None);
    }
    let component = Workload::Api.component();
    Ok(Some(PodDisruptionBudget {
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
    }))
}
