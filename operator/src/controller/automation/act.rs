//! The actions of a plan, taken after the status recorded the decisions behind them: switch
//! the running pods' model through their admin endpoints, scale the predictor through the
//! Deployment's scale subresource, publish events.

use std::time::Instant;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Act, list_pods};
use crate::controller::{Context, admin_token, events, model_switch};
use crate::crd::{ActiveModel, ModelVariant, VolatilityPipeline, Workload};
use crate::desired::workload_name;

/// Field manager of the autoscaler's writes to the predictor's scale subresource: its own, so
/// ownership of `replicas` is visible in `managedFields`.
pub const AUTOSCALER_FIELD_MANAGER: &str = "spikewatch-operator-autoscaler";

/// Takes the actions of a plan whose status was recorded. Failures are reported (events,
/// logs), never returned: the decision stands in the status and the Deployments render it.
pub async fn act(vp: &VolatilityPipeline, ctx: &Context, namespace: &str, actions: Vec<Act>) {
    for action in actions {
        match action {
            Act::SwitchModel { variant, reason, note, rollback } => {
                switch_model(vp, ctx, namespace, variant, reason, note, rollback).await
            }
            Act::Scale { from, to, note } => scale(vp, ctx, namespace, from, to, note).await,
            Act::Event { warning, reason, note } => {
                if warning {
                    events::warning(&ctx.recorder, vp, reason, "Automation", note).await;
                } else {
                    events::normal(&ctx.recorder, vp, reason, "Automation", note).await;
                }
            }
        }
    }
}

async fn switch_model(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    variant: ModelVariant,
    reason: &'static str,
    note: String,
    rollback: Option<(&'static str, f64)>,
) {
    let started = Instant::now();
    let mut pods = vec![];
    let mut problems = vec![];
    for workload in [Workload::Api, Workload::Predictor] {
        match list_pods(ctx, vp, namespace, workload).await {
            Ok(found) => pods.extend(found),
            Err(e) => problems.push(e),
        }
    }
    let mut report = match admin_token::read(vp, ctx, namespace).await {
        Ok(token) => model_switch::switch_variant(&ctx.http, &token, &pods, variant).await,
        Err(e) => model_switch::SwitchReport { failed: vec![format!("no admin token: {e}")], ..Default::default() },
    };
    report.failed.extend(problems);
    if let Some((why, detection_seconds)) = rollback {
        ctx.metrics.rollbacks.with_label_values(&[why, "false"]).inc();
        ctx.metrics.rollback_seconds.observe(detection_seconds + started.elapsed().as_secs_f64());
    }
    tracing::info!(
        variant = variant.as_str(),
        reason,
        switched = report.switched.len(),
        failed = report.failed.len(),
        "model switched"
    );
    let text =
        format!("{note}; {}; new pods start on {} (SPIKEWATCH_MODEL_VARIANT)", report.summary(), variant.as_str());
    if report.switched.is_empty() && !report.failed.is_empty() {
        events::warning(&ctx.recorder, vp, reason, "SwitchModel", text).await;
    } else {
        events::normal(&ctx.recorder, vp, reason, "SwitchModel", text).await;
    }
    // Reality as the API now reports it, without waiting for the next check.
    if let Some(served) = report.api_model {
        let api: Api<VolatilityPipeline> = Api::namespaced(ctx.client.clone(), namespace);
        let active = ActiveModel {
            variant: served.variant,
            version: served.version,
            observed_time: Some(Time(Timestamp::now())),
            fallback: served.fallback,
        };
        let patch = json!({ "status": { "activeModel": active } });
        if let Err(e) = api.patch_status(&vp.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::warn!(error = %e, "could not record the active model");
        }
    }
}

async fn scale(vp: &VolatilityPipeline, ctx: &Context, namespace: &str, from: i32, to: i32, note: String) {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
    let name = workload_name(vp, Workload::Predictor);
    let params = PatchParams { field_manager: Some(AUTOSCALER_FIELD_MANAGER.into()), ..PatchParams::default() };
    let patch = json!({ "spec": { "replicas": to } });
    match api.patch_scale(&name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => {
            let (reason, direction) = if to > from { ("ScaledUp", "up") } else { ("ScaledDown", "down") };
            ctx.metrics.scale_events.with_label_values(&[direction]).inc();
            tracing::info!(from, to, "predictor scaled");
            events::normal(&ctx.recorder, vp, reason, "Scale", format!("predictor {from} → {to} replicas: {note}"))
                .await;
        }
        Err(e) => {
            events::warning(&ctx.recorder, vp, "ScaleFailed", "Scale", format!("predictor {from} → {to}: {e}")).await;
        }
    }
}
