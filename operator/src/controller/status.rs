//! The status the operator reports, computed from what one reconcile observed. Pure: the same
//! observations give the same status, so an unchanged pipeline produces an unchanged status and
//! the patch is skipped.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::automation::effective_variant;
use crate::crd::{
    ActiveModel, ConditionType, ConsumerStatus, RollbackRecord, RollbackStatus, VolatilityPipeline,
    VolatilityPipelineStatus, WorkloadStatus, WorkloadsStatus, condition, phase_from_conditions,
    set_condition,
};

/// The outcome of one step, as a condition will show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    /// CamelCase reason, e.g. `TopicsReady`, `BrokerUnreachable`.
    pub reason: String,
    pub message: String,
}

impl Check {
    pub fn ok(reason: &str, message: impl Into<String>) -> Check {
        Check {
            ok: true,
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn failed(reason: &str, message: impl Into<String>) -> Check {
        Check {
            ok: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// What a reconcile saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    pub topics: Check,
    /// `None` when the workloads were not applied (topics missing, invalid spec).
    pub workloads: Option<WorkloadsStatus>,
    /// `None` when monitoring was not looked at this time (the previous condition stays).
    pub monitoring: Option<Check>,
    /// A spec the API server accepted but that cannot be realized.
    pub invalid_spec: Option<String>,
}

/// What the automation (rollback, scaling) decided this reconcile; `None` fields keep what
/// the status holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutomationStatus {
    pub active_model: Option<ActiveModel>,
    /// `Some(None)` clears `status.rollback`.
    pub rollback: Option<Option<RollbackStatus>>,
    pub last_rollback: Option<RollbackRecord>,
    /// `Some(None)` clears `status.consumer`.
    pub consumer: Option<Option<ConsumerStatus>>,
    /// The `RolledBack` condition.
    pub rolled_back: Option<Check>,
    /// The `Scaling` condition.
    pub scaling: Option<Check>,
}

/// Whether every workload has all its desired replicas ready.
pub fn workloads_ready(workloads: &WorkloadsStatus) -> bool {
    all(workloads)
        .iter()
        .all(|(_, w)| w.ready_replicas >= w.replicas)
}

fn all(w: &WorkloadsStatus) -> [(&'static str, &WorkloadStatus); 4] {
    [
        ("ingestor", &w.ingestor),
        ("featurizer", &w.featurizer),
        ("predictor", &w.predictor),
        ("api", &w.api),
    ]
}

fn workloads_check(workloads: Option<&WorkloadsStatus>, topics_ok: bool) -> Check {
    let Some(workloads) = workloads else {
        return if topics_ok {
            Check::failed("NotApplied", "workloads were not applied")
        } else {
            Check::failed("WaitingForTopics", "workloads start once the topics exist")
        };
    };
    let lagging: Vec<String> = all(workloads)
        .iter()
        .filter(|(_, w)| w.ready_replicas < w.replicas)
        .map(|(name, w)| format!("{name} {}/{} ready", w.ready_replicas, w.replicas))
        .collect();
    if lagging.is_empty() {
        Check::ok("DeploymentsReady", "every workload has its replicas ready")
    } else {
        Check::failed("DeploymentsNotReady", lagging.join(", "))
    }
}

/// The status to report, keeping the fields other steps own (rollback, consumer) and the
/// transition times of conditions whose status did not change.
pub fn desired_status(
    vp: &VolatilityPipeline,
    observations: &Observations,
    automation: &AutomationStatus,
    now: Time,
) -> VolatilityPipelineStatus {
    let old = vp.status.clone().unwrap_or_default();
    let generation = vp.metadata.generation;
    let mut status = old.clone();
    status.observed_generation = generation;

    let topics = &observations.topics;
    let workloads = workloads_check(observations.workloads.as_ref(), topics.ok);
    let monitoring = observations.monitoring.clone().or_else(|| {
        // Keep what an earlier reconcile found; say "not checked yet" the first time.
        let known =
            crate::crd::find_condition(&old.conditions, ConditionType::MonitoringReady).is_some();
        (!known).then(|| Check::failed("NotChecked", "monitoring is set up once the topics exist"))
    });
    let ready = match (&observations.invalid_spec, topics.ok, workloads.ok) {
        (Some(problem), _, _) => Check::failed("InvalidSpec", problem.clone()),
        (None, false, _) => Check::failed("TopicsNotReady", topics.message.clone()),
        (None, true, false) => Check::failed("WorkloadsNotReady", workloads.message.clone()),
        (None, true, true) => {
            Check::ok("PipelineReady", "topics exist and every workload is ready")
        }
    };

    for (type_, check) in [
        (ConditionType::TopicsReady, Some(topics)),
        (ConditionType::WorkloadsReady, Some(&workloads)),
        (ConditionType::MonitoringReady, monitoring.as_ref()),
        (ConditionType::Ready, Some(&ready)),
        (ConditionType::RolledBack, automation.rolled_back.as_ref()),
        (ConditionType::Scaling, automation.scaling.as_ref()),
    ] {
        let Some(check) = check else { continue };
        set_condition(
            &mut status.conditions,
            condition(
                type_,
                check.ok,
                &check.reason,
                check.message.clone(),
                generation,
                now.clone(),
            ),
        );
    }
    status.phase = Some(phase_from_conditions(
        &status.conditions,
        observations.invalid_spec.is_some(),
    ));
    if let Some(workloads) = &observations.workloads {
        status.workloads = Some(workloads.clone());
    }
    if let Some(rollback) = &automation.rollback {
        status.rollback = rollback.clone();
    }
    if let Some(record) = &automation.last_rollback {
        status.last_rollback = Some(record.clone());
    }
    if let Some(consumer) = &automation.consumer {
        status.consumer = consumer.clone();
    }
    // What the API reports once the automation read it; until then, what is rendered.
    status.active_model = automation
        .active_model
        .clone()
        .or(old.active_model)
        .or_else(|| {
            Some(ActiveModel {
                variant: effective_variant(vp),
                version: None,
                observed_time: None,
            })
        });
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Phase, find_condition};
    use crate::fixtures;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn ready_workloads() -> WorkloadsStatus {
        let one = WorkloadStatus {
            replicas: 1,
            ready_replicas: 1,
        };
        WorkloadsStatus {
            ingestor: one.clone(),
            featurizer: one.clone(),
            predictor: one.clone(),
            api: one,
        }
    }

    fn observed(workloads: Option<WorkloadsStatus>) -> Observations {
        Observations {
            topics: Check::ok("TopicsReady", "3 topics"),
            workloads,
            monitoring: Some(Check::failed(
                "MonitoringCRDsMissing",
                "no monitoring.coreos.com",
            )),
            invalid_spec: None,
        }
    }

    #[test]
    fn ready_topics_and_workloads_make_the_pipeline_ready_even_without_monitoring() {
        let vp = fixtures::pipeline();
        let status = desired_status(&vp, &observed(Some(ready_workloads())), &AutomationStatus::default(), at(1));
        let ready = find_condition(&status.conditions, ConditionType::Ready).unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(
            status.phase,
            Some(Phase::Degraded),
            "monitoring missing degrades, it does not block"
        );
        assert_eq!(status.observed_generation, vp.metadata.generation);
    }

    #[test]
    fn the_same_observations_give_the_same_status() {
        let mut vp = fixtures::pipeline();
        let first = desired_status(&vp, &observed(Some(ready_workloads())), &AutomationStatus::default(), at(1));
        vp.status = Some(first.clone());
        let second = desired_status(&vp, &observed(Some(ready_workloads())), &AutomationStatus::default(), at(99));
        assert_eq!(
            first, second,
            "a later reconcile with nothing new must not change the status"
        );
    }

    #[test]
    fn missing_topics_hold_the_workloads_back() {
        let vp = fixtures::pipeline();
        let mut observations = observed(None);
        observations.topics = Check::failed("BrokerUnreachable", "kafka:9092 unreachable");
        let status = desired_status(&vp, &observations, &AutomationStatus::default(), at(1));
        let topics = find_condition(&status.conditions, ConditionType::TopicsReady).unwrap();
        assert_eq!(
            (topics.status.as_str(), topics.reason.as_str()),
            ("False", "BrokerUnreachable")
        );
        let workloads = find_condition(&status.conditions, ConditionType::WorkloadsReady).unwrap();
        assert_eq!(workloads.reason, "WaitingForTopics");
        assert_eq!(status.phase, Some(Phase::Progressing));
    }

    #[test]
    fn an_invalid_spec_fails_the_pipeline_with_the_reason() {
        let vp = fixtures::pipeline();
        let mut observations = observed(None);
        observations.invalid_spec = Some("Secret kafka-user has no password".into());
        let status = desired_status(&vp, &observations, &AutomationStatus::default(), at(1));
        let ready = find_condition(&status.conditions, ConditionType::Ready).unwrap();
        assert_eq!(ready.reason, "InvalidSpec");
        assert!(ready.message.contains("no password"));
        assert_eq!(status.phase, Some(Phase::Failed));
    }
}
