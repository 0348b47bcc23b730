//! Pure helpers for status conditions, following the Kubernetes API conventions: one entry per
//! type, `lastTransitionTime` changes only when `status` changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::status::Phase;

/// Condition types of a `VolatilityPipeline`.
///
/// `Ready`, `Reconciling` and `Stalled` follow kstatus (the status library of kubectl, Flux and
/// cli-utils): `Reconciling=True` while the operator is still working towards the spec,
/// `Stalled=True` when it cannot get there without a change, and every condition carries the
/// `observedGeneration` it describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    /// Everything below is ready.
    Ready,
    /// Work towards the current generation is in progress (children rolling out, topics
    /// pending, the broker not reachable yet).
    Reconciling,
    /// The spec cannot be realized as it is (an invalid reference, a topic the broker refuses);
    /// only a change of the spec or of what it references helps.
    Stalled,
    /// The three topics exist with the requested partitions.
    TopicsReady,
    /// Every workload Deployment is available.
    WorkloadsReady,
    /// The monitoring objects exist (or monitoring is off).
    MonitoringReady,
    /// The operator replaced the ML model with the baseline (reserved for the rollback automation).
    RolledBack,
    /// The autoscaler is changing the predictor's replicas (reserved for the scaling automation).
    Scaling,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
            ConditionType::TopicsReady => "TopicsReady",
            ConditionType::WorkloadsReady => "WorkloadsReady",
            ConditionType::MonitoringReady => "MonitoringReady",
            ConditionType::RolledBack => "RolledBack",
            ConditionType::Scaling => "Scaling",
        }
    }
}

/// `True`, `False` or `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { ConditionStatus::True } else { ConditionStatus::False }
    }
}

/// Builds a condition; `now` becomes its `lastTransitionTime` unless [`set_condition`] keeps an
/// older one.
pub fn condition(
    type_: ConditionType,
    status: impl Into<ConditionStatus>,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.as_str().to_string(),
        status: status.into().as_str().to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation,
        last_transition_time: now,
    }
}

/// Inserts or replaces the condition of `new.type_`. When the status is unchanged the previous
/// `lastTransitionTime` is kept, so the time says when the status last flipped.
/// Returns whether anything but that time differs from before.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status == new.status {
                new.last_transition_time = existing.last_transition_time.clone();
            }
            let changed = *existing != new;
            *existing = new;
            changed
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// The condition of `type_`, if present.
pub fn find_condition(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// Whether the condition of `type_` is present with status `True`.
pub fn is_condition_true(conditions: &[Condition], type_: ConditionType) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Summarizes the conditions into a phase.
///
/// `spec_invalid` marks a spec the API server accepted but that cannot be realized (Failed).
/// Topics or workloads not ready yet → Progressing; everything ready → Ready, unless monitoring
/// is missing or the model was rolled back → Degraded. No conditions at all → Pending.
pub fn phase_from_conditions(conditions: &[Condition], spec_invalid: bool) -> Phase {
    if spec_invalid {
        return Phase::Failed;
    }
    let topics = find_condition(conditions, ConditionType::TopicsReady);
    let workloads = find_condition(conditions, ConditionType::WorkloadsReady);
    if topics.is_none() && workloads.is_none() {
        return Phase::Pending;
    }
    let ready = |c: Option<&Condition>| c.is_some_and(|c| c.status == "True");
    if !ready(topics) || !ready(workloads) {
        return Phase::Progressing;
    }
    let monitoring_false =
        find_condition(conditions, ConditionType::MonitoringReady).is_some_and(|c| c.status == "False");
    if monitoring_false || is_condition_true(conditions, ConditionType::RolledBack) {
        return Phase::Degraded;
    }
    Phase::Ready
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn unchanged_status_keeps_the_transition_time() {
        let mut conditions = vec![condition(ConditionType::TopicsReady, true, "TopicsCreated", "", Some(1), at(10))];
        let changed = set_condition(
            &mut conditions,
            condition(ConditionType::TopicsReady, true, "TopicsCreated", "", Some(1), at(20)),
        );
        assert!(!changed, "same status, reason and message is no change");
        assert_eq!(conditions[0].last_transition_time, at(10));

        let changed = set_condition(
            &mut conditions,
            condition(ConditionType::TopicsReady, true, "TopicsCreated", "3 topics", Some(2), at(30)),
        );
        assert!(changed);
        assert_eq!(conditions[0].last_transition_time, at(10), "status did not flip");
        assert_eq!(conditions[0].observed_generation, Some(2));
    }

    #[test]
    fn flipped_status_takes_the_new_transition_time() {
        let mut conditions = vec![condition(ConditionType::Ready, true, "AllReady", "", None, at(10))];
        assert!(set_condition(
            &mut conditions,
            condition(ConditionType::Ready, false, "TopicsNotReady", "x", None, at(20))
        ));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].status, "False");
        assert_eq!(conditions[0].last_transition_time, at(20));
    }

    #[test]
    fn new_types_are_appended() {
        let mut conditions = vec![];
        set_condition(&mut conditions, condition(ConditionType::TopicsReady, true, "A", "", None, at(1)));
        set_condition(&mut conditions, condition(ConditionType::WorkloadsReady, false, "B", "", None, at(1)));
        assert_eq!(conditions.len(), 2);
        assert!(is_condition_true(&conditions, ConditionType::TopicsReady));
        assert!(!is_condition_true(&conditions, ConditionType::WorkloadsReady));
        assert!(find_condition(&conditions, ConditionType::Ready).is_none());
    }

    #[test]
    fn phase_summarizes_conditions() {
        let c = |t, s: bool| condition(t, s, "R", "", None, at(1));
        assert_eq!(phase_from_conditions(&[], false), Phase::Pending);
        assert_eq!(phase_from_conditions(&[], true), Phase::Failed);
        let progressing = [c(ConditionType::TopicsReady, true), c(ConditionType::WorkloadsReady, false)];
        assert_eq!(phase_from_conditions(&progressing, false), Phase::Progressing);
        let ready = [c(ConditionType::TopicsReady, true), c(ConditionType::WorkloadsReady, true)];
        assert_eq!(phase_from_conditions(&ready, false), Phase::Ready);
        let degraded = [
            c(ConditionType::TopicsReady, true),
            c(ConditionType::WorkloadsReady, true),
            c(ConditionType::MonitoringReady, false),
        ];
        assert_eq!(phase_from_conditions(&degraded, false), Phase::Degraded);
        let rolled_back = [
            c(ConditionType::TopicsReady, true),
            c(ConditionType::WorkloadsReady, true),
            c(ConditionType::RolledBack, true),
        ];
        assert_eq!(phase_from_conditions(&rolled_back, false), Phase::Degraded);
    }
}
