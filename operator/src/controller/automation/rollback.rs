//! The rollback half of the plan: runs a check when one is due, asks
//! [`crate::automation::rollback_decision`] what to do, and turns the decision into the
//! status to record (`rollback`, `lastRollback`, `activeModel`, the `RolledBack` condition) and
//! the actions to take.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::{Act, Plan, key, list_pods};
use crate::automation::rollback::retry_annotation;
use crate::automation::signals::{describe_failures, outcome};
use crate::automation::{
    Decision, PodReadiness, RollbackInput, RollbackPolicy, check_due, effective_variant, evaluate_check,
    rollback_decision,
};
use crate::controller::status::Check;
use crate::controller::{Context, model_switch};
use crate::crd::{
    ActiveModel, CheckResult, CheckStatus, ConditionType, ModelVariant, RecoveryMode, RollbackRecord, RollbackState,
    RollbackStatus, VolatilityPipeline, Workload, WorkloadsStatus, find_condition,
};
use crate::desired::promql::series_selector;
use crate::observe::{self, MeasureRequest, MetricsSource, PrometheusSource, ServingPod};

/// Plans the rollback: the check (when due), the decision, the status and the actions.
pub(super) async fn plan(
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
        active = Some(ActiveModel {
            variant: served.variant,
            version: served.version,
            observed_time: Some(Time(now)),
            fallback: served.fallback,
        });
    }
    plan.status.active_model =
        Some(active.unwrap_or(ActiveModel { variant: effective, version: None, observed_time: None, fallback: None }));
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
