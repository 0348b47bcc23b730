//! Automation on top of the converged pipeline: model rollback when the serving model
//! misbehaves, and predictor scaling on consumer lag. Runs last in every reconcile, after the
//! children are applied, in two halves:
//!
//! 1. [`plan`] observes (pods, metrics, consumer lag, `/version`), decides with the pure
//!    functions of [`crate::automation`], and returns the status to record and the actions to
//!    take: [`rollback`] plans the model switch, [`scaling`] the predictor's replicas. Checks run
//!    at most once per `rollback.intervalSeconds`, lag measurements once per
//!    `autoscaling.pollingIntervalSeconds`, whatever triggers the reconcile.
//! 2. The reconciler patches the status (the decision is recorded before anything acts on it,
//!    so the Deployments render the same variant the pods are switched to), then [`act()`]
//!    switches the running pods through their admin endpoints, scales the predictor through
//!    the Deployment's scale subresource, and publishes the events.
//!
//! Two places, one per side of the I/O edge: [`crate::automation`] holds the decisions as pure
//! functions (no client, no clock of its own); this module observes, calls them and acts.

mod act;
mod rollback;
mod scaling;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::Context;
use super::status::AutomationStatus;
use crate::crd::{ModelVariant, VolatilityPipeline, Workload, WorkloadsStatus};
use crate::observe::{self, ServingPod};

pub use act::{AUTOSCALER_FIELD_MANAGER, act};
pub use scaling::ScalingMemory;

/// What the automation decided in one reconcile.
#[derive(Debug, Default)]
pub struct Plan {
    /// Recorded in the status before any action.
    pub status: AutomationStatus,
    pub actions: Vec<Act>,
    /// When the next check or measurement is due.
    pub requeue: Option<Duration>,
}

/// An action, taken after the status recorded the decision behind it.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    /// Switch the running API and predictor pods to `variant` (they answer at once; the
    /// Deployments render the same variant, so replaced pods start on it).
    SwitchModel {
        variant: ModelVariant,
        /// Event reason: `RolledBack`, `ProbationStarted`, `RollbackReleased`.
        reason: &'static str,
        note: String,
        /// For a rollback: its reason and the seconds from the first failed check to the decision.
        rollback: Option<(&'static str, f64)>,
    },
    /// Scale the predictor Deployment.
    Scale { from: i32, to: i32, note: String },
    /// Publish an event.
    Event { warning: bool, reason: &'static str, note: String },
}

/// The pipeline's `namespace/name`.
fn key(vp: &VolatilityPipeline) -> String {
    format!("{}/{}", vp.namespace().unwrap_or_default(), vp.name_any())
}

/// Observes and decides. Never fails: what cannot be observed is reported as such (an
/// inconclusive check, an unavailable lag) and nothing is done on its account.
pub async fn plan(vp: &VolatilityPipeline, ctx: &Context, namespace: &str, workloads: &WorkloadsStatus) -> Plan {
    let now = Timestamp::now();
    let mut plan = Plan::default();
    rollback::plan(vp, ctx, namespace, workloads, now, &mut plan).await;
    scaling::plan(vp, ctx, namespace, workloads, now, &mut plan).await;
    plan
}

/// The serving pods of one workload, or why they cannot be listed.
async fn list_pods(
    ctx: &Context,
    vp: &VolatilityPipeline,
    namespace: &str,
    workload: Workload,
) -> Result<Vec<ServingPod>, String> {
    observe::pods::list(&ctx.client, vp, namespace, workload)
        .await
        .map_err(|e| format!("cannot list the {workload} pods: {e}"))
}
