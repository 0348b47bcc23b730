//! Model rollback: when to switch the ML model to the baseline, and when to bring it back.
//!
//! ```text
//!             failureThreshold failed checks in a row
//!   Serving ─────────────────────────────────────────▶ RolledBack
//!      ▲                                                  │ retry annotation, new sourceUri,
//!      │ a passed check after windowSeconds               │ or (Automatic) the cool-down
//!      │                                                  ▼
//!      └─────────────────────────────────────────── Probation ──(one failed check)──▶ RolledBack
//! ```
//!
//! [`rollback_decision`] is pure: the policy, the rollback status the previous reconciles left
//! (failed checks in a row, state, since when), this reconcile's check (if one was due), the
//! spec's model and the retry annotation, and the time go in; the next status and a
//! [`Decision`] come out. A passed check resets the count of failures; an inconclusive one
//! leaves it as it is (missing data is neither health nor failure). Clock edges: elapsed time is
//! never negative, and a last check "in the future" makes the next one due at once.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::signals::{describe_failures, first_failure_reason};
use super::time::{elapsed_seconds, since};
use crate::crd::{
    CheckResult, CheckStatus, ModelVariant, RecoveryMode, RollbackSpec, RollbackState, RollbackStatus,
    VolatilityPipeline,
};

/// Annotation that asks for the ML model again after a rollback: any new value retries.
pub const RETRY_ANNOTATION: &str = "spikewatch.io/retry-model";

/// The longest automatic cool-down, however many rollbacks came before.
const MAX_COOLDOWN: Duration = Duration::from_secs(24 * 3600);

/// `spec.rollback` in the units the decision works with.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPolicy {
    pub enabled: bool,
    pub dry_run: bool,
    pub failure_threshold: i32,
    pub interval: Duration,
    /// The probation lasts at least one window, so that the window no longer holds data from
    /// before the ML model came back.
    pub probation: Duration,
    pub recovery: RecoveryMode,
    pub cooldown: Duration,
}

impl RollbackPolicy {
    pub fn from_spec(spec: &RollbackSpec) -> RollbackPolicy {
        let seconds = |s: i32| Duration::from_secs(u64::try_from(s.max(0)).unwrap_or(0));
        RollbackPolicy {
            enabled: spec.enabled,
            dry_run: spec.dry_run,
            failure_threshold: spec.failure_threshold.max(1),
            interval: seconds(spec.interval_seconds.max(1)),
            probation: seconds(spec.window_seconds),
            recovery: spec.recovery,
            cooldown: seconds(spec.recovery_seconds),
        }
    }

    /// Cool-down before the `n`-th automatic retry: doubled after every rollback that ended a
    /// probation, so a model that keeps failing is retried ever more rarely.
    pub fn cooldown_after(&self, rollbacks: i32) -> Duration {
        let doublings = u32::try_from(rollbacks.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
        self.cooldown.saturating_mul(2u32.saturating_pow(doublings)).min(MAX_COOLDOWN.max(self.cooldown))
    }
}

/// What this reconcile knows besides the status.
#[derive(Debug, Clone, Copy)]
pub struct RollbackInput<'a> {
    /// `spec.model.variant`.
    pub spec_variant: ModelVariant,
    /// `spec.model.sourceUri`.
    pub model_source: &'a str,
    /// Value of [`RETRY_ANNOTATION`], if set.
    pub retry_annotation: Option<&'a str>,
    /// The check made by this reconcile, when one was due.
    pub check: Option<&'a CheckStatus>,
}

/// Why the ML model comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryReason {
    /// The retry annotation got a new value.
    RetryRequested,
    /// `Automatic` recovery: the cool-down elapsed.
    CooldownElapsed,
    /// `model.sourceUri` changed: a new model deserves a chance.
    NewModelSource,
}

impl RecoveryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryReason::RetryRequested => "RetryRequested",
            RecoveryReason::CooldownElapsed => "CooldownElapsed",
            RecoveryReason::NewModelSource => "NewModelSource",
        }
    }
}

/// What to do after this reconcile's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing changes.
    Hold,
    /// Switch the API and predictor to the baseline now.
    RollBack {
        /// CamelCase, e.g. `ErrorRateAboveThreshold`.
        reason: &'static str,
        /// The failing signals with their values and limits.
        message: String,
        /// Seconds from the first failed check of the run to this decision.
        detection_seconds: f64,
    },
    /// `dryRun`: what would have been done.
    WouldRollBack { reason: &'static str, message: String },
    /// The ML model returns, on probation.
    Recover(RecoveryReason),
    /// The ML model passed its probation.
    ProbationPassed,
    /// The automation was switched off (or the spec asks for the baseline) while the ML model
    /// was rolled back or on probation: the spec's variant applies again.
    Released { reason: &'static str },
}

/// Whether a check is due at `now`, the last one having run at `last`.
pub fn check_due(last: Option<&Time>, interval: Duration, now: Timestamp) -> bool {
    match last {
        None => true,
        // A last check in the future: the clock went backwards. Check now rather than wait.
        Some(last) if last.0 > now => true,
        Some(last) => elapsed_seconds(last.0, now) >= interval.as_secs_f64(),
    }
}

/// The next rollback status and the decision. See the module documentation for the states.
pub fn rollback_decision(
    policy: &RollbackPolicy,
    prior: &RollbackStatus,
    input: &RollbackInput<'_>,
    now: Timestamp,
) -> (RollbackStatus, Decision) {
    let mut next = prior.clone();
    if let Some(check) = input.check {
        next.last_check = Some(check.clone());
    }
    if !policy.enabled || input.spec_variant == ModelVariant::Baseline {
        // Nothing to watch: the spec's variant applies, and an old check would mislead.
        let decision = if prior.state == RollbackState::Serving {
            Decision::Hold
        } else {
            Decision::Released { reason: if policy.enabled { "BaselineRequested" } else { "RollbackDisabled" } }
        };
        return (RollbackStatus::default(), decision);
    }

    match prior.state {
        RollbackState::RolledBack => match recovery(policy, prior, input, now) {
            Some(reason) => {
                next.state = RollbackState::Probation;
                next.since = Some(Time(now));
                next.consecutive_failures = 0;
                next.first_failure_time = None;
                if reason == RecoveryReason::RetryRequested {
                    next.retry_token = input.retry_annotation.map(String::from);
                }
                (next, Decision::Recover(reason))
            }
            // While the baseline serves, checks measure the baseline: they are recorded, not
            // counted against the ML model.
            None => (next, Decision::Hold),
        },
        RollbackState::Probation => match input.check.map(|c| c.result) {
            Some(CheckResult::Failed) => roll_back(policy, next, input, now),
            Some(CheckResult::Passed)
                if prior.since.as_ref().is_none_or(|s| since(s, now) >= policy.probation.as_secs_f64()) =>
            {
                next.state = RollbackState::Serving;
                next.since = Some(Time(now));
                next.rollbacks = 0;
                next.consecutive_failures = 0;
                next.first_failure_time = None;
                (next, Decision::ProbationPassed)
            }
            _ => (next, Decision::Hold),
        },
        RollbackState::Serving => match input.check.map(|c| c.result) {
            Some(CheckResult::Failed) => {
                next.consecutive_failures = prior.consecutive_failures.saturating_add(1);
                if next.first_failure_time.is_none() {
                    next.first_failure_time = Some(Time(now));
                }
                if next.consecutive_failures >= policy.failure_threshold {
                    roll_back(policy, next, input, now)
                } else {
                    (next, Decision::Hold)
                }
            }
            Some(CheckResult::Passed) => {
                next.consecutive_failures = 0;
                next.first_failure_time = None;
                (next, Decision::Hold)
            }
            Some(CheckResult::Inconclusive) | None => (next, Decision::Hold),
        },
    }
}

fn recovery(
    policy: &RollbackPolicy,
    prior: &RollbackStatus,
    input: &RollbackInput<'_>,
    now: Timestamp,
) -> Option<RecoveryReason> {
    if prior.model_source.as_deref().is_some_and(|rolled_back| rolled_back != input.model_source) {
        return Some(RecoveryReason::NewModelSource);
    }
    if let Some(token) = input.retry_annotation
        && prior.retry_token.as_deref() != Some(token)
    {
        return Some(RecoveryReason::RetryRequested);
    }
    let cooled_down =
        prior.since.as_ref().is_some_and(|s| since(s, now) >= policy.cooldown_after(prior.rollbacks).as_secs_f64());
    (policy.recovery == RecoveryMode::Automatic && cooled_down).then_some(RecoveryReason::CooldownElapsed)
}

fn roll_back(
    policy: &RollbackPolicy,
    mut next: RollbackStatus,
    input: &RollbackInput<'_>,
    now: Timestamp,
) -> (RollbackStatus, Decision) {
    let check = input.check.expect("a rollback follows a failed check");
    let reason = first_failure_reason(check);
    let message = describe_failures(check);
    let detection_seconds = next.first_failure_time.as_ref().map_or(0.0, |first| since(first, now));
    next.consecutive_failures = 0;
    next.first_failure_time = None;
    if policy.dry_run {
        return (next, Decision::WouldRollBack { reason, message });
    }
    next.state = RollbackState::RolledBack;
    next.since = Some(Time(now));
    next.rollbacks = next.rollbacks.saturating_add(1);
    next.model_source = Some(input.model_source.to_string());
    // An annotation set before the rollback does not count as a request to retry.
    next.retry_token = input.retry_annotation.map(String::from);
    (next, Decision::RollBack { reason, message, detection_seconds })
}

/// The variant the workloads run: the spec's, unless the operator rolled the ML model back.
/// The Deployment builders render `MODEL_VARIANT` from this, so new pods start on it too.
pub fn effective_variant(vp: &VolatilityPipeline) -> ModelVariant {
    let rolled_back = vp.spec.rollback.enabled
        && !vp.spec.rollback.dry_run
        && vp.status.as_ref().and_then(|s| s.rollback.as_ref()).is_some_and(|r| r.state == RollbackState::RolledBack);
    if rolled_back { ModelVariant::Baseline } else { vp.spec.model.variant }
}

/// The retry annotation of `vp`, if set.
pub fn retry_annotation(vp: &VolatilityPipeline) -> Option<&str> {
    vp.annotations().get(RETRY_ANNOTATION).map(String::as_str)
}

#[cfg(test)]
mod tests;
