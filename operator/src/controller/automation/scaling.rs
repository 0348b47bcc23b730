//! The scaling half of the plan: measures the consumer lag when due, asks
//! [`crate::automation::scaling_decision`] for the predictor's replicas, and records the
//! `consumer` status, the `Scaling` condition and the scale action.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::{Act, Plan, key};
use crate::automation::{LagObservation, Recommendation, ScalingDecision, ScalingPolicy, check_due, scaling_decision};
use crate::controller::status::Check;
use crate::controller::{Context, topics};
use crate::crd::{
    ConditionType, ConsumerStatus, ScalingEngine, VolatilityPipeline, Workload, WorkloadsStatus, find_condition,
};
use crate::desired::{desired_config, workload_name};

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

/// Plans the predictor's replicas: the lag (when due), the decision, the status and the action.
pub(super) async fn plan(
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
