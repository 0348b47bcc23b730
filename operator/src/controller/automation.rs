//! Automation on top of the converged pipeline: model rollback when the serving model
//! misbehaves, and predictor scaling on consumer lag. Runs last in every reconcile, after the
//! children are applied, in two halves:
//!
//! 1. [`plan`] observes (pods, metrics, consumer lag, `/version`), decides with the pure
//!    functions of [`crate::automation`], and returns the status to record and the actions to
//!    take. Checks run at most once per `rollback.intervalSeconds`, lag measurements once per
//!    `autoscaling.pollingIntervalSeconds`, whatever triggers the reconcile.
//! 2. The reconciler patches the status (the decision is recorded before anything acts on it,
//!    so the Deployments render the same variant the pods are switched to), then [`act`]
//!    switches the running pods through their admin endpoints, scales the predictor through
//!    the Deployment's scale subresource, and publishes the events.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::status::{AutomationStatus, Check};
use super::{Context, admin_token, events, model_switch, topics};
use crate::automation::rollback::retry_annotation;
use crate::automation::signals::{describe_failures, outcome};
use crate::automation::{
    Decision, LagObservation, PodReadiness, Recommendation, RollbackInput, RollbackPolicy, ScalingDecision,
    ScalingPolicy, check_due, effective_variant, evaluate_check, rollback_decision, scaling_decision,
};
use crate::crd::{
    ActiveModel, CheckResult, CheckStatus, ConditionType, ConsumerStatus, ModelVariant, RecoveryMode, RollbackRecord,
    RollbackState, RollbackStatus, ScalingEngine, VolatilityPipeline, Workload, WorkloadsStatus, find_condition,
};
use crate::desired::{desired_config, series_selector, workload_name};
use crate::observe::{self, MeasureRequest, MetricsSource, PrometheusSource, ServingPod};

/// Field manager of the autoscaler's writes to the predictor's scale subresource: its own, so
/// ownership of `replicas` is visible in `managedFields`.
pub const AUTOSCALER_FIELD_MANAGER: &str = "spikewatch-operator-autoscaler";

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

/// Scale-down recommendations the autoscaler remembers per pipeline (lost on restart: scaling
/// down then waits one stabilization window again).
#[derive(Debug, Default)]
pub struct ScalingMemory {
    pipelines: Mutex<HashMap<String, (Timestamp, Vec<Recommendation>)>>,
}

impl ScalingMemory {
    /// The recommendations of `key` and since when they are recorded.
    fn recall(&self, key: &str, now: Timestamp) -> (Timestamp, Vec<Recommendation>) {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        pipelines.entry(key.to_string()).or_insert_with(|| (now, vec![])).clone()
    }

    fn remember(&self, key: &str, recommendation: Recommendation, keep: Duration) {
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pipelines.entry(key.to_string()).or_insert_with(|| (recommendation.time, vec![]));
        entry.1.push(recommendation);
        let horizon = keep.as_secs_f64();
        entry.1.retain(|r| crate::automation::time::elapsed_seconds(r.time, recommendation.time) <= horizon);
    }

    pub fn forget(&self, key: &str) {
        self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

fn key(vp: &VolatilityPipeline) -> String {
    format!("{}/{}", vp.namespace().unwrap_or_default(), vp.name_any())
}

/// Observes and decides. Never fails: what cannot be observed is reported as such (an
/// inconclusive check, an unavailable lag) and nothing is done on its account.
pub async fn plan(vp: &VolatilityPipeline, ctx: &Context, namespace: &str, workloads: &WorkloadsStatus) -> Plan {
    let now = Timestamp::now();
    let mut plan = Plan::default();
    plan_rollback(vp, ctx, namespace, workloads, now, &mut plan).await;
    plan_scaling(vp, ctx, namespace, workloads, now, &mut plan).await;
    plan
}

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

async fn plan_rollback(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    workloads: &WorkloadsStatus,
    now: Timestamp,
    plan: &mut Plan,
) {
    let spec = &vp.spec;
    let status = vp.status.clone().unwrap_or_default();
    let policy = RollbackPolicy::from_spec(&spec.rollback);
    let prior = status.rollback.clone().unwrap_or_default();
    let watching = policy.enabled && spec.model.variant == ModelVariant::Ml;
    let last_check = prior.last_check.as_ref().map(|c| &c.time);
    let checking = watching && check_due(last_check, policy.interval, now);
    let observed_model = status.active_model.as_ref().and_then(|m| m.observed_time.as_ref());
    let reading_model = check_due(observed_model, policy.interval, now);

    let api_pods =
        if checking || reading_model { list_pods(ctx, vp, namespace, Workload::Api).await } else { Ok(vec![]) };
    let check = if checking {
        let predictor_pods = list_pods(ctx, vp, namespace, Workload::Predictor).await;
        let check = run_check(vp, ctx, &api_pods, &predictor_pods, workloads, now).await;
        ctx.metrics.rollback_checks.with_label_values(&[result_label(check.result)]).inc();
        Some(check)
    } else {
        None
    };

    let input = RollbackInput {
        spec_variant: spec.model.variant,
        model_source: &spec.model.source_uri,
        retry_annotation: retry_annotation(vp),
        check: check.as_ref(),
    };
    let (next, decision) = rollback_decision(&policy, &prior, &input, now);
    let mut rolled_back_vp = vp.clone();
    rolled_back_vp.status.get_or_insert_with(Default::default).rollback = Some(next.clone());
    let effective = effective_variant(&rolled_back_vp);

    match &decision {
        Decision::Hold => {}
        Decision::RollBack { reason, message, detection_seconds } => {
            plan.status.last_rollback = Some(RollbackRecord {
                time: Time(now),
                from: ModelVariant::Ml,
                to: ModelVariant::Baseline,
                reason: (*reason).to_string(),
                message: message.clone(),
                detection_seconds: Some(*detection_seconds),
            });
            plan.actions.push(Act::SwitchModel {
                variant: ModelVariant::Baseline,
                reason: "RolledBack",
                note: format!("{reason}: {message}; ml → baseline"),
                rollback: Some((reason, *detection_seconds)),
            });
        }
        Decision::WouldRollBack { reason, message } => {
            ctx.metrics.rollbacks.with_label_values(&[reason, "true"]).inc();
            plan.actions.push(Act::Event {
                warning: true,
                reason: "WouldRollBack",
                note: format!("dry run: would roll back to baseline ({reason}: {message})"),
            });
        }
        Decision::Recover(reason) => {
            ctx.metrics.recoveries.with_label_values(&[reason.as_str()]).inc();
            plan.actions.push(Act::SwitchModel {
                variant: ModelVariant::Ml,
                reason: "ProbationStarted",
                note: format!("{}: the ML model is back on probation; one failed check rolls it back", reason.as_str()),
                rollback: None,
            });
        }
        Decision::ProbationPassed => plan.actions.push(Act::Event {
            warning: false,
            reason: "ProbationPassed",
            note: "the ML model passed its probation".into(),
        }),
        Decision::Released { reason } => plan.actions.push(Act::SwitchModel {
            variant: spec.model.variant,
            reason: "RollbackReleased",
            note: format!("{reason}: the spec's variant {} applies", spec.model.variant.as_str()),
            rollback: None,
        }),
    }

    let last_rollback = plan.status.last_rollback.as_ref().or(status.last_rollback.as_ref());
    let previous = find_condition(&status.conditions, ConditionType::RolledBack);
    plan.status.rolled_back = Some(rolled_back_condition(vp, &next, last_rollback, &decision, previous));
    plan.status.rollback = Some(watching.then_some(next).filter(|n| *n != RollbackStatus::default()));

    // The active model as the API reports it; until it does, the variant rendered.
    let mut active = status.active_model.clone();
    if reading_model
        && let Ok(pods) = &api_pods
        && let Some(served) = model_switch::served_model(&ctx.http, pods).await
    {
        active = Some(ActiveModel { variant: served.variant, version: served.version, observed_time: Some(Time(now)) });
    }
    plan.status.active_model =
        Some(active.unwrap_or(ActiveModel { variant: effective, version: None, observed_time: None }));
    if watching || reading_model {
        plan.requeue = Some(policy.interval);
    }
}

async fn run_check(
    vp: &VolatilityPipeline,
    ctx: &Context,
    api_pods: &Result<Vec<ServingPod>, String>,
    predictor_pods: &Result<Vec<ServingPod>, String>,
    workloads: &WorkloadsStatus,
    now: Timestamp,
) -> CheckStatus {
    let spec = &vp.spec.rollback;
    let readiness = match (api_pods, predictor_pods) {
        (Ok(api), Ok(predictor)) => {
            let pods: Vec<ServingPod> = api.iter().chain(predictor).cloned().collect();
            let expected = workloads.api.replicas + workloads.predictor.replicas;
            observe::pods::readiness(&pods, expected, now)
        }
        (Err(e), _) | (_, Err(e)) => PodReadiness::Unknown(e.clone()),
    };
    let request = MeasureRequest {
        pipeline: key(vp),
        api: api_pods.clone().unwrap_or_default(),
        predictor: predictor_pods.clone().unwrap_or_default(),
        api_selector: series_selector(vp, &[Workload::Api]),
        predictor_selector: series_selector(vp, &[Workload::Predictor]),
        window_seconds: spec.window_seconds,
        alert_precision: spec.min_alert_precision.is_some(),
        now,
    };
    let measured = match &vp.spec.monitoring.prometheus_url {
        Some(url) => PrometheusSource::new(ctx.http.clone(), url).measure(&request).await,
        None => ctx.scrape.measure(&request).await,
    };
    evaluate_check(spec, &measured, &readiness, Time(now))
}

fn result_label(result: CheckResult) -> &'static str {
    match result {
        CheckResult::Passed => "Passed",
        CheckResult::Failed => "Failed",
        CheckResult::Inconclusive => "Inconclusive",
    }
}

/// The `RolledBack` condition: `True` while the baseline serves because of a rollback.
fn rolled_back_condition(
    vp: &VolatilityPipeline,
    next: &RollbackStatus,
    last_rollback: Option<&RollbackRecord>,
    decision: &Decision,
    previous: Option<&Condition>,
) -> Check {
    let spec = &vp.spec;
    if !spec.rollback.enabled {
        return Check::failed("RollbackDisabled", "rollback.enabled is false: the operator never switches the model");
    }
    if spec.model.variant == ModelVariant::Baseline {
        return Check::failed("BaselineRequested", "model.variant is baseline: nothing to roll back");
    }
    let name = vp.name_any();
    match next.state {
        RollbackState::RolledBack => {
            let (reason, message) =
                last_rollback.map_or(("RolledBack", String::new()), |r| (r.reason.as_str(), r.message.clone()));
            let retry = match spec.rollback.recovery {
                RecoveryMode::Manual => format!(
                    "to retry the ML model: kubectl annotate vp {name} {}=\"$(date +%s)\" --overwrite",
                    crate::automation::RETRY_ANNOTATION
                ),
                RecoveryMode::Automatic => "the ML model is retried automatically after the cool-down".into(),
            };
            Check::ok(reason, format!("baseline serves since the rollback ({message}); {retry}"))
        }
        RollbackState::Probation => {
            Check::failed("Probation", "the ML model is back on probation: one failed check rolls it back")
        }
        RollbackState::Serving => {
            if let Decision::WouldRollBack { reason, message } = decision {
                return Check::failed("DryRunWouldRollBack", format!("dry run: would roll back ({reason}: {message})"));
            }
            let passed = next.last_check.as_ref().is_some_and(|c| c.result == CheckResult::Passed);
            if let Some(previous) = previous.filter(|p| p.reason == "DryRunWouldRollBack" && !passed) {
                return Check::failed("DryRunWouldRollBack", previous.message.clone());
            }
            serving_check(next, spec.rollback.failure_threshold)
        }
    }
}

fn serving_check(next: &RollbackStatus, threshold: i32) -> Check {
    let Some(check) = &next.last_check else {
        return Check::failed("NotCheckedYet", "the ML model serves; no check has run yet");
    };
    match check.result {
        CheckResult::Passed => Check::failed("ChecksPassing", "the ML model serves and its last check passed"),
        CheckResult::Failed => Check::failed(
            "CheckFailed",
            format!(
                "{} of {threshold} failed checks before a rollback: {}",
                next.consecutive_failures,
                describe_failures(check)
            ),
        ),
        CheckResult::Inconclusive => {
            let missing: Vec<String> = check
                .signals
                .iter()
                .filter(|s| s.result == outcome::NO_DATA)
                .map(|s| format!("{} ({})", s.name, s.message))
                .collect();
            Check::failed("ChecksInconclusive", format!("no data for {}", missing.join(", ")))
        }
    }
}

async fn plan_scaling(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
    workloads: &WorkloadsStatus,
    now: Timestamp,
    plan: &mut Plan,
) {
    let spec = &vp.spec.autoscaling;
    if !spec.enabled {
        plan.status.consumer = Some(None);
        plan.status.scaling = Some(Check::failed(
            "AutoscalingDisabled",
            "the predictor's replicas belong to whoever scales its Deployment (kubectl scale, an HPA); \
             the operator set workloads.predictor.replicas when it created it",
        ));
        return;
    }
    if spec.engine == ScalingEngine::Keda {
        plan.status.consumer = Some(None);
        let served = ctx.capabilities.read().await.keda;
        plan.status.scaling = Some(if served {
            Check::failed(
                "KedaScaledObject",
                format!("KEDA scales the predictor through ScaledObject {}", workload_name(vp, Workload::Predictor)),
            )
        } else {
            Check::failed(
                "KedaNotInstalled",
                "autoscaling.engine is keda but the cluster does not serve keda.sh ScaledObject: \
                 the predictor keeps its replicas",
            )
        });
        return;
    }

    let status = vp.status.clone().unwrap_or_default();
    let prior = status.consumer.clone();
    let observed = workloads.predictor.replicas;
    let interval = Duration::from_secs(u64::try_from(spec.polling_interval_seconds.max(1)).unwrap_or(15));
    plan.requeue = Some(plan.requeue.map_or(interval, |r| r.min(interval)));
    let due = check_due(prior.as_ref().and_then(|c| c.observed_time.as_ref()), interval, now);
    if !due {
        if let Some(prior) = &prior {
            if prior.desired_replicas != observed {
                plan.actions.push(Act::Scale {
                    from: observed,
                    to: prior.desired_replicas,
                    note: "the predictor's replicas were changed by someone else; the autoscaler owns them".into(),
                });
            }
            let previous = find_condition(&status.conditions, ConditionType::Scaling);
            let settled =
                workloads.predictor.ready_replicas >= prior.desired_replicas && observed == prior.desired_replicas;
            if let Some(previous) = previous.filter(|c| c.status == "True" && settled) {
                plan.status.scaling =
                    Some(Check::failed(&previous.reason, format!("{} replicas ready", prior.desired_replicas)));
            }
        }
        return;
    }

    let (lag, why_not) = measure_lag(vp, ctx, namespace).await;
    let memory_key = key(vp);
    let (since, history) = ctx.scaling_memory.recall(&memory_key, now);
    let current = prior.as_ref().map_or(observed, |c| c.desired_replicas);
    let policy = ScalingPolicy::from_spec(spec);
    let decision = scaling_decision(&policy, current, lag, &history, since, now);
    if let Some(replicas) = decision.recommendation {
        ctx.scaling_memory.remember(&memory_key, Recommendation { time: now, replicas }, policy.stabilization);
    }
    let labels = [vp.namespace().unwrap_or_default(), vp.name_any()];
    ctx.metrics.desired_replicas.with_label_values(&labels).set(i64::from(decision.desired));
    if let Some(lag) = lag {
        ctx.metrics.consumer_lag.with_label_values(&labels).set(lag.total);
    }
    let message = scaling_message(&policy, lag, &decision, why_not.as_deref());
    let changed = prior.as_ref().is_none_or(|p| p.desired_replicas != decision.desired);
    plan.status.consumer = Some(Some(ConsumerStatus {
        desired_replicas: decision.desired,
        current_replicas: observed,
        lag: lag.map(|l| l.total),
        partitions: lag.map(|l| l.partitions),
        observed_time: Some(Time(now)),
        last_scale_time: if changed && prior.is_some() {
            Some(Time(now))
        } else {
            prior.and_then(|p| p.last_scale_time)
        },
    }));
    plan.status.scaling = Some(if decision.desired != observed {
        Check::ok(decision.reason.as_str(), message.clone())
    } else {
        Check::failed(decision.reason.as_str(), message.clone())
    });
    if decision.desired != observed {
        plan.actions.push(Act::Scale { from: observed, to: decision.desired, note: message });
    }
}

async fn measure_lag(
    vp: &VolatilityPipeline,
    ctx: &Context,
    namespace: &str,
) -> (Option<LagObservation>, Option<String>) {
    let connection = match topics::connection(vp, ctx, namespace).await {
        Ok(c) => c,
        Err(e) => return (None, Some(e.to_string())),
    };
    let group = desired_config(vp).kafka.predictor_group_id;
    match ctx.consumer_lag.lag(&connection, &group, &vp.spec.kafka.topics.features).await {
        Ok(lag) => (Some(lag.observation()), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

fn scaling_message(
    policy: &ScalingPolicy,
    lag: Option<LagObservation>,
    decision: &ScalingDecision,
    why_not: Option<&str>,
) -> String {
    match lag {
        Some(lag) => format!(
            "lag {} messages on {} partitions, {} per replica → {} replicas (bounds {}..{}): {}",
            lag.total,
            lag.partitions,
            policy.lag_per_replica,
            decision.desired,
            policy.min_replicas,
            policy.max_replicas.min(lag.partitions),
            decision.reason.as_str()
        ),
        None => format!("lag not measured ({}): replicas stay at {}", why_not.unwrap_or("unknown"), decision.desired),
    }
}

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
