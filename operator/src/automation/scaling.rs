//! Predictor scaling on consumer lag, as KEDA's Kafka scaler and the HPA do it:
//!
//! `target = clamp(ceil(total lag / lagPerReplica), minReplicas, min(maxReplicas, partitions))`
//!
//! Up: at once, by at most `maxScaleUpStep` replicas per decision. Down: only to the highest
//! target recommended during the last `stabilizationWindowSeconds`, and only once recommendations
//! cover that whole window (after an operator restart the window starts again: scaling down
//! waits, never scaling up). Never above the partition count: a consumer beyond it receives no
//! partition. Without a lag measurement the replicas stay as they are.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::time::elapsed_seconds;
use crate::crd::AutoscalingSpec;

/// `spec.autoscaling` in the units the decision works with.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicy {
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub lag_per_replica: i64,
    pub max_scale_up_step: i32,
    pub stabilization: Duration,
}

impl ScalingPolicy {
    pub fn from_spec(spec: &AutoscalingSpec) -> ScalingPolicy {
        ScalingPolicy {
            min_replicas: spec.min_replicas.max(1),
            max_replicas: spec.max_replicas.max(1),
            lag_per_replica: spec.lag_per_replica.max(1),
            max_scale_up_step: spec.max_scale_up_step.max(1),
            stabilization: Duration::from_secs(u64::try_from(spec.stabilization_window_seconds).unwrap_or(0)),
        }
    }
}

/// The consumer group's lag on the features topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagObservation {
    /// Messages not yet committed, summed over partitions.
    pub total: i64,
    /// Partitions of the topic.
    pub partitions: i32,
}

/// A target recommended by an earlier decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    pub time: Timestamp,
    pub replicas: i32,
}

/// Why the replicas are what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalingReason {
    ScaledUp,
    ScaledDown,
    /// The target equals the current replicas.
    Stable,
    /// A lower target, not yet stable for the whole window.
    WaitingForStabilization,
    /// More replicas would help, but `maxReplicas` or the partition count forbid them.
    LimitedByMaxReplicas,
    LimitedByPartitions,
    /// No lag measurement: nothing changes.
    LagUnavailable,
}

impl ScalingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ScalingReason::ScaledUp => "ScaledUp",
            ScalingReason::ScaledDown => "ScaledDown",
            ScalingReason::Stable => "Stable",
            ScalingReason::WaitingForStabilization => "WaitingForStabilization",
            ScalingReason::LimitedByMaxReplicas => "LimitedByMaxReplicas",
            ScalingReason::LimitedByPartitions => "LimitedByPartitions",
            ScalingReason::LagUnavailable => "LagUnavailable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingDecision {
    /// Replicas the predictor should run.
    pub desired: i32,
    /// The target of this measurement, to remember for later scale-down decisions (`None`
    /// without a measurement).
    pub recommendation: Option<i32>,
    pub reason: ScalingReason,
}

/// Replicas the lag alone asks for, before bounds.
pub fn raw_target(lag: i64, lag_per_replica: i64) -> i64 {
    let per = lag_per_replica.max(1);
    let lag = lag.max(0);
    lag / per + i64::from(lag % per != 0)
}

/// The decision at `now` for a predictor running `current` replicas.
///
/// `history` holds earlier recommendations (any order, older ones ignored); `tracking_since`
/// is when this operator started recording them for the pipeline.
pub fn scaling_decision(
    policy: &ScalingPolicy,
    current: i32,
    lag: Option<LagObservation>,
    history: &[Recommendation],
    tracking_since: Timestamp,
    now: Timestamp,
) -> ScalingDecision {
    let Some(lag) = lag else {
        let held = current.clamp(policy.min_replicas.min(policy.max_replicas), policy.max_replicas);
        return ScalingDecision {
            desired: held,
            recommendation: None,
            reason: if held == current {
                ScalingReason::LagUnavailable
            } else if held > current {
                ScalingReason::ScaledUp
            } else {
                ScalingReason::ScaledDown
            },
        };
    };
    let upper = policy.max_replicas.min(lag.partitions.max(1));
    let lower = policy.min_replicas.min(upper);
    let raw = raw_target(lag.total, policy.lag_per_replica);
    let target = i32::try_from(raw.clamp(i64::from(lower), i64::from(upper))).unwrap_or(upper);
    let limit = (raw > i64::from(upper)).then_some({
        if lag.partitions < policy.max_replicas {
            ScalingReason::LimitedByPartitions
        } else {
            ScalingReason::LimitedByMaxReplicas
        }
    });

    let decision =
        |desired: i32, reason: ScalingReason| ScalingDecision { desired, recommendation: Some(target), reason };
    if current > upper || current < lower {
        // Out of bounds (the bounds or the partitions changed): back inside at once.
        let desired = current.clamp(lower, upper);
        let reason = if desired > current { ScalingReason::ScaledUp } else { ScalingReason::ScaledDown };
        return decision(desired, reason);
    }
    if target > current {
        let desired = target.min(current.saturating_add(policy.max_scale_up_step));
        return decision(desired, ScalingReason::ScaledUp);
    }
    if target < current {
        let window = policy.stabilization.as_secs_f64();
        let covered = elapsed_seconds(tracking_since, now) >= window;
        let stabilized = history
            .iter()
            .filter(|r| elapsed_seconds(r.time, now) <= window)
            .map(|r| r.replicas)
            .fold(target, i32::max);
        if covered && stabilized < current {
            return decision(stabilized, ScalingReason::ScaledDown);
        }
        return decision(current, ScalingReason::WaitingForStabilization);
    }
    decision(current, limit.unwrap_or(ScalingReason::Stable))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn policy() -> ScalingPolicy {
        ScalingPolicy {
            min_replicas: 1,
            max_replicas: 6,
            lag_per_replica: 1000,
            max_scale_up_step: 2,
            stabilization: Duration::from_secs(300),
        }
    }

    fn lag(total: i64, partitions: i32) -> Option<LagObservation> {
        Some(LagObservation { total, partitions })
    }

    #[test]
    fn replicas_follow_the_formula() {
        // (lag, partitions, current) → (desired, reason); history covers the window.
        let cases = [
            (0, 6, 1, 1, ScalingReason::Stable),
            (1, 6, 1, 1, ScalingReason::Stable),
            (1000, 6, 1, 1, ScalingReason::Stable),
            (1001, 6, 1, 2, ScalingReason::ScaledUp),
            (2500, 6, 2, 3, ScalingReason::ScaledUp),
            (5500, 6, 1, 3, ScalingReason::ScaledUp), // target 6, step 2
            (5500, 6, 5, 6, ScalingReason::ScaledUp),
            (9000, 6, 6, 6, ScalingReason::LimitedByMaxReplicas),
            (9000, 4, 4, 4, ScalingReason::LimitedByPartitions),
            (9000, 3, 5, 3, ScalingReason::ScaledDown), // fewer partitions than replicas: at once
            (-5, 6, 1, 1, ScalingReason::Stable),       // a negative lag (broker quirk) is no lag
        ];
        for (total, partitions, current, desired, reason) in cases {
            let d = scaling_decision(&policy(), current, lag(total, partitions), &[], at(-1000), at(0));
            assert_eq!(
                (d.desired, d.reason),
                (desired, reason),
                "lag {total}, {partitions} partitions, {current} running"
            );
        }
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window() {
        let p = policy();
        // Recommendations: 4 at t=0, then 1 from t=100 on.
        let history = [
            Recommendation { time: at(0), replicas: 4 },
            Recommendation { time: at(100), replicas: 1 },
            Recommendation { time: at(200), replicas: 1 },
        ];
        let d = scaling_decision(&p, 4, lag(0, 6), &history, at(-1000), at(250));
        assert_eq!((d.desired, d.reason), (4, ScalingReason::WaitingForStabilization));
        let d = scaling_decision(&p, 4, lag(0, 6), &history, at(-1000), at(301));
        assert_eq!((d.desired, d.reason), (1, ScalingReason::ScaledDown), "the 4 left the window");
        assert_eq!(d.recommendation, Some(1));
    }

    #[test]
    fn scale_down_to_the_highest_recent_recommendation() {
        let history = [Recommendation { time: at(100), replicas: 3 }, Recommendation { time: at(200), replicas: 2 }];
        let d = scaling_decision(&policy(), 5, lag(0, 6), &history, at(-1000), at(250));
        assert_eq!((d.desired, d.reason), (3, ScalingReason::ScaledDown));
    }

    #[test]
    fn after_a_restart_scaling_down_waits_a_whole_window_but_up_does_not() {
        let d = scaling_decision(&policy(), 4, lag(0, 6), &[], at(0), at(299));
        assert_eq!((d.desired, d.reason), (4, ScalingReason::WaitingForStabilization));
        let d = scaling_decision(&policy(), 4, lag(0, 6), &[], at(0), at(300));
        assert_eq!((d.desired, d.reason), (1, ScalingReason::ScaledDown));
        let d = scaling_decision(&policy(), 1, lag(3000, 6), &[], at(0), at(1));
        assert_eq!((d.desired, d.reason), (3, ScalingReason::ScaledUp));
    }

    #[test]
    fn no_measurement_changes_nothing_but_keeps_the_bounds() {
        let d = scaling_decision(&policy(), 3, None, &[], at(0), at(1000));
        assert_eq!((d.desired, d.reason, d.recommendation), (3, ScalingReason::LagUnavailable, None));
        let d = scaling_decision(&policy(), 9, None, &[], at(0), at(1000));
        assert_eq!((d.desired, d.reason), (6, ScalingReason::ScaledDown));
    }

    #[test]
    fn clock_edges() {
        // A recommendation "from the future" (clock went back) still counts as recent.
        let history = [Recommendation { time: at(500), replicas: 4 }];
        let d = scaling_decision(&policy(), 4, lag(0, 6), &history, at(-1000), at(100));
        assert_eq!(d.desired, 4);
        // Tracking that started "in the future" does not cover the window.
        let d = scaling_decision(&policy(), 4, lag(0, 6), &[], at(500), at(100));
        assert_eq!(d.reason, ScalingReason::WaitingForStabilization);
    }

    #[test]
    fn ceil_division() {
        assert_eq!(raw_target(0, 1000), 0);
        assert_eq!(raw_target(999, 1000), 1);
        assert_eq!(raw_target(1000, 1000), 1);
        assert_eq!(raw_target(1001, 1000), 2);
        assert_eq!(raw_target(i64::MAX, 1), i64::MAX);
    }
}
