//! The status the operator reports, computed from what one reconcile observed. Pure: the same
//! observations give the same status, so an unchanged pipeline produces an unchanged status and
//! the patch is skipped.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::automation::effective_variant;
use crate::crd::{
    ActiveModel, ConditionType, ConsumerStatus, Phase, RollbackRecord, RollbackStatus, VolatilityPipeline,
    VolatilityPipelineStatus, WorkloadStatus, WorkloadsStatus, condition, phase_from_conditions, set_condition,
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
        Check { ok: true, reason: reason.into(), message: message.into() }
    }
    pub fn failed(reason: &str, message: impl Into<String>) -> Check {
        Check { ok: false, reason: reason.into(), message: message.into() }
    }
}

/// What a reconcile saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    pub topics: Check,
    /// `None` when the workloads were not applied (topics missing, invalid spec).
    pub workloads: Option<WorkloadsStatus>,
    /// Workloads whose Deployment has not finished rolling out, each with what is missing
    /// (`predictor: 1 of 2 replicas updated`). Empty when every rollout is complete.
    pub rollouts_pending: Vec<String>,
    /// `None` when monitoring was not looked at this time (the previous condition stays).
    pub monitoring: Option<Check>,
    /// A failure no retry fixes: the spec, or what it references, must change (an invalid
    /// reference, a topic the broker refuses). Its reason and message.
    pub stalled: Option<Check>,
}

impl Observations {
    /// A reconcile that got no further than the topics.
    pub fn topics_only(topics: Check) -> Observations {
        Observations { topics, workloads: None, rollouts_pending: vec![], monitoring: None, stalled: None }
    }
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

fn all(w: &WorkloadsStatus) -> [(&'static str, &WorkloadStatus); 4] {
    [("ingestor", &w.ingestor), ("featurizer", &w.featurizer), ("predictor", &w.predictor), ("api", &w.api)]
}

/// Ready only when every Deployment finished rolling out its current template and has all its
/// replicas ready: ready pods of an old template do not make a workload ready.
fn workloads_check(observations: &Observations) -> Check {
    let Some(workloads) = &observations.workloads else {
        return if observations.topics.ok {
            Check::failed("NotApplied", "workloads were not applied")
        } else {
            Check::failed("WaitingForTopics", "workloads start once the topics exist")
        };
    };
    if !observations.rollouts_pending.is_empty() {
        return Check::failed("RolloutInProgress", observations.rollouts_pending.join(", "));
    }
    let lagging: Vec<String> = all(workloads)
        .iter()
        .filter(|(_, w)| w.ready_replicas < w.replicas)
        .map(|(name, w)| format!("{name} {}/{} ready", w.ready_replicas, w.replicas))
        .collect();
    if lagging.is_empty() {
        Check::ok("DeploymentsReady", "every workload is rolled out with its replicas ready")
    } else {
        Check::failed("DeploymentsNotReady", lagging.join(", "))
    }
}

/// kstatus's pair: `Stalled` when the spec cannot be realized as it is, else `Reconciling` while
/// anything (topics, rollouts) is still on its way.
fn progress_checks(stalled: Option<&Check>, topics: &Check, workloads: &Check) -> (Check, Check) {
    if let Some(stalled) = stalled {
        return (
            Check::failed("Stalled", "no further progress until the spec or what it references changes"),
            Check { ok: true, ..stalled.clone() },
        );
    }
    let not_stalled = Check::failed("Progressing", "the spec can be realized");
    let reconciling = if !topics.ok {
        Check::ok(&topics.reason, topics.message.clone())
    } else if !workloads.ok {
        Check::ok(&workloads.reason, workloads.message.clone())
    } else {
        Check::failed("Reconciled", "the children match the spec and every rollout is complete")
    };
    (reconciling, not_stalled)
}

/// The status of a pipeline seen for the first time, written together with the finalizer so
/// that kstatus readers (Flux, `kubectl wait`, cli-utils) see work in progress from the start
/// instead of an object without status, which they take for done.
pub fn initial_status(vp: &VolatilityPipeline, now: Time) -> VolatilityPipelineStatus {
    let generation = vp.metadata.generation;
    let mut status = vp.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    for (type_, ok, reason, message) in [
        (ConditionType::Ready, false, "Initializing", "the operator has accepted the pipeline"),
        (ConditionType::Reconciling, true, "Initializing", "creating topics and workloads"),
        (ConditionType::Stalled, false, "Progressing", "the spec can be realized"),
    ] {
        set_condition(&mut status.conditions, condition(type_, ok, reason, message, generation, now.clone()));
    }
    status.phase = Some(Phase::Pending);
    status
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
    let workloads = workloads_check(observations);
    let monitoring = observations.monitoring.clone().or_else(|| {
        // Keep what an earlier reconcile found; say "not checked yet" the first time.
        let known = crate::crd::find_condition(&old.conditions, ConditionType::MonitoringReady).is_some();
        (!known).then(|| Check::failed("NotChecked", "monitoring is set up once the topics exist"))
    });
    let ready = match (&observations.stalled, topics.ok, workloads.ok) {
        (Some(problem), _, _) => Check::failed(&problem.reason, problem.message.clone()),
        (None, false, _) => Check::failed("TopicsNotReady", topics.message.clone()),
        (None, true, false) => Check::failed("WorkloadsNotReady", workloads.message.clone()),
        (None, true, true) => Check::ok("PipelineReady", "topics exist and every workload is ready"),
    };

    let (reconciling, stalled) = progress_checks(observations.stalled.as_ref(), topics, &workloads);

    for (type_, check) in [
        (ConditionType::Reconciling, Some(&reconciling)),
        (ConditionType::Stalled, Some(&stalled)),
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
            condition(type_, check.ok, &check.reason, check.message.clone(), generation, now.clone()),
        );
    }
    status.phase = Some(phase_from_conditions(&status.conditions, observations.stalled.is_some()));
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
    status.active_model = automation.active_model.clone().or(old.active_model).or_else(|| {
        Some(ActiveModel { variant: effective_variant(vp), version: None, observed_time: None, fallback: None })
    });
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::find_condition;
    use crate::fixtures;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn ready_workloads() -> WorkloadsStatus {
        let one = WorkloadStatus { replicas: 1, ready_replicas: 1, updated_replicas: 1, available_replicas: 1 };
        WorkloadsStatus { ingestor: one.clone(), featurizer: one.clone(), predictor: one.clone(), api: one }
    }

    fn observed(workloads: Option<WorkloadsStatus>) -> Observations {
        Observations {
            topics: Check::ok("TopicsReady", "3 topics"),
            workloads,
            rollouts_pending: vec![],
            monitoring: Some(Check::failed("MonitoringCRDsMissing", "no monitoring.coreos.com")),
            stalled: None,
        }
    }

    #[test]
    fn ready_topics_and_workloads_make_the_pipeline_ready_even_without_monitoring() {
        let vp = fixtures::pipeline();
        let status = desired_status(&vp, &observed(Some(ready_workloads())), &AutomationStatus::default(), at(1));
        let ready = find_condition(&status.conditions, ConditionType::Ready).unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(status.phase, Some(Phase::Degraded), "monitoring missing degrades, it does not block");
        assert_eq!(status.observed_generation, vp.metadata.generation);
    }

    #[test]
    fn the_same_observations_give_the_same_status() {
        let mut vp = fixtures::pipeline();
        let first = desired_status(&vp, &observed(Some(ready_workloads())), &AutomationStatus::default(), at(1));
        vp.status = Some(first.clone());
        let second = desired_status(&vp, &observed(Some(ready_workloads())), &AutomationStatus::default(), at(99));
        assert_eq!(first, second, "a later reconcile with nothing new must not change the status");
    }

    #[test]
    fn missing_topics_hold_the_workloads_back() {
        let vp = fixtures::pipeline();
        let mut observations = observed(None);
        observations.topics = Check::failed("BrokerUnreachable", "kafka:9092 unreachable");
        let status = desired_status(&vp, &observations, &AutomationStatus::default(), at(1));
        let topics = find_condition(&status.conditions, ConditionType::TopicsReady).unwrap();
        assert_eq!((topics.status.as_str(), topics.reason.as_str()), ("False", "BrokerUnreachable"));
        let workloads = find_condition(&status.conditions, ConditionType::WorkloadsReady).unwrap();
        assert_eq!(workloads.reason, "WaitingForTopics");
        assert_eq!(status.phase, Some(Phase::Progressing));
    }

    #[test]
    fn an_invalid_spec_fails_the_pipeline_with_the_reason() {
        let vp = fixtures::pipeline();
        let mut observations = observed(None);
        observations.stalled = Some(Check::failed("InvalidSpec", "Secret kafka-user has no password"));
        let status = desired_status(&vp, &observations, &AutomationStatus::default(), at(1));
        let ready = find_condition(&status.conditions, ConditionType::Ready).unwrap();
        assert_eq!(ready.reason, "InvalidSpec");
        assert!(ready.message.contains("no password"));
        assert_eq!(status.phase, Some(Phase::Failed));
    }

    fn condition_of(status: &VolatilityPipelineStatus, type_: ConditionType) -> (String, String) {
        let c = find_condition(&status.conditions, type_).unwrap_or_else(|| panic!("{type_:?}"));
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn a_converged_pipeline_is_neither_reconciling_nor_stalled() {
        let vp = fixtures::pipeline();
        let status = desired_status(&vp, &observed(Some(ready_workloads())), &AutomationStatus::default(), at(1));
        assert_eq!(condition_of(&status, ConditionType::Reconciling), ("False".into(), "Reconciled".into()));
        assert_eq!(condition_of(&status, ConditionType::Stalled), ("False".into(), "Progressing".into()));
        assert!(
            status.conditions.iter().all(|c| c.observed_generation == vp.metadata.generation),
            "every condition says which generation it describes"
        );
    }

    #[test]
    fn a_rollout_in_progress_is_reconciling_and_not_ready_even_with_ready_pods() {
        let vp = fixtures::pipeline();
        let mut observations = observed(Some(ready_workloads()));
        observations.rollouts_pending = vec!["api: 1 of 2 replicas updated".into()];
        let status = desired_status(&vp, &observations, &AutomationStatus::default(), at(1));
        assert_eq!(condition_of(&status, ConditionType::WorkloadsReady), ("False".into(), "RolloutInProgress".into()));
        assert_eq!(condition_of(&status, ConditionType::Reconciling), ("True".into(), "RolloutInProgress".into()));
        assert_eq!(condition_of(&status, ConditionType::Ready).0, "False");
        assert_eq!(status.phase, Some(Phase::Progressing));
    }

    #[test]
    fn an_unreachable_broker_is_reconciling_an_invalid_spec_is_stalled() {
        let vp = fixtures::pipeline();
        let mut unreachable = observed(None);
        unreachable.topics = Check::failed("BrokerUnreachable", "kafka:9092 unreachable");
        let status = desired_status(&vp, &unreachable, &AutomationStatus::default(), at(1));
        assert_eq!(condition_of(&status, ConditionType::Reconciling), ("True".into(), "BrokerUnreachable".into()));
        assert_eq!(condition_of(&status, ConditionType::Stalled).0, "False");

        let mut rejected = observed(None);
        rejected.topics = Check::failed("BrokerRejected", "replication factor 3 > 1 broker");
        rejected.stalled = Some(rejected.topics.clone());
        let status = desired_status(&vp, &rejected, &AutomationStatus::default(), at(1));
        assert_eq!(condition_of(&status, ConditionType::Stalled), ("True".into(), "BrokerRejected".into()));
        assert_eq!(condition_of(&status, ConditionType::Reconciling).0, "False");
        assert_eq!(condition_of(&status, ConditionType::Ready), ("False".into(), "BrokerRejected".into()));
        assert_eq!(status.phase, Some(Phase::Failed));
    }

    #[test]
    fn a_new_pipeline_starts_as_reconciling() {
        let vp = fixtures::pipeline();
        let status = initial_status(&vp, at(1));
        assert_eq!(status.observed_generation, vp.metadata.generation);
        assert_eq!(condition_of(&status, ConditionType::Reconciling).0, "True");
        assert_eq!(condition_of(&status, ConditionType::Ready).0, "False");
        assert_eq!(status.phase, Some(Phase::Pending));
    }
}
