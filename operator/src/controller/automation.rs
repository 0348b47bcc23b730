//! Automation on top of the converged pipeline: model rollback when the serving model
//! misbehaves, and predictor scaling on consumer lag. Runs last in every reconcile, after the
//! children and the status are in place.
//!
//! Empty for now: the decisions (pure functions of observed metrics) and their actions arrive
//! with the automation work. The seam is here so they plug in without reshaping `reconcile`.

use kube::runtime::controller::Action;

use super::Context;
use super::error::Result;
use crate::crd::VolatilityPipeline;

/// Returns an earlier requeue when the automation needs one (e.g. to re-check lag), `None`
/// otherwise.
pub async fn step(_vp: &VolatilityPipeline, _ctx: &Context) -> Result<Option<Action>> {
    Ok(None)
}
