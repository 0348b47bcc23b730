//! Table tests of [`rollback_decision`]: each scenario is a sequence of reconciles (time, check
//! result, spec and annotation) and the decision expected after each.

use super::*;
use crate::crd::{CheckResult, CheckStatus, SignalStatus};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).unwrap()
}

fn check(result: CheckResult, t: i64) -> CheckStatus {
    let failed = result == CheckResult::Failed;
    CheckStatus {
        time: Time(at(t)),
        result,
        source: "scrape".into(),
        signals: vec![SignalStatus {
            name: "errorRate".into(),
            result: if failed { "Failed" } else { "Passed" }.into(),
            value: Some(if failed { 0.3 } else { 0.0 }),
            threshold: 0.05,
            query: String::new(),
            message: String::new(),
        }],
    }
}

/// One reconcile of a scenario.
#[derive(Clone)]
struct Step {
    t: i64,
    check: Option<CheckResult>,
    annotation: Option<&'static str>,
    source: &'static str,
    variant: ModelVariant,
}

use CheckResult::{Failed as F, Inconclusive as I, Passed as P};

fn step(t: i64, check: Option<CheckResult>) -> Step {
    Step { t, check, annotation: None, source: "models/a", variant: ModelVariant::Ml }
}

/// Short names for the expected decisions.
#[derive(Debug, PartialEq)]
enum D {
    Hold,
    RollBack(&'static str),
    Would,
    Recover(RecoveryReason),
    Passed,
    Released(&'static str),
}

fn kind(decision: &Decision) -> D {
    match decision {
        Decision::Hold => D::Hold,
        Decision::RollBack { reason, .. } => D::RollBack(reason),
        Decision::WouldRollBack { .. } => D::Would,
        Decision::Recover(reason) => D::Recover(*reason),
        Decision::ProbationPassed => D::Passed,
        Decision::Released { reason } => D::Released(reason),
    }
}

/// Runs `steps` from a fresh status, feeding each step's status into the next.
fn run(policy: &RollbackPolicy, steps: &[Step]) -> (Vec<D>, RollbackStatus) {
    let mut status = RollbackStatus::default();
    let mut out = vec![];
    for s in steps {
        let check = s.check.map(|r| check(r, s.t));
        let input = RollbackInput {
            spec_variant: s.variant,
            model_source: s.source,
            retry_annotation: s.annotation,
            check: check.as_ref(),
        };
        let (next, decision) = rollback_decision(policy, &status, &input, at(s.t));
        out.push(kind(&decision));
        status = next;
    }
    (out, status)
}

fn policy() -> RollbackPolicy {
    RollbackPolicy::from_spec(&RollbackSpec::default())
}

fn automatic() -> RollbackPolicy {
    RollbackPolicy::from_spec(&RollbackSpec {
        recovery: RecoveryMode::Automatic,
        recovery_seconds: 600,
        ..RollbackSpec::default()
    })
}

const ROLLBACK: D = D::RollBack("ErrorRateAboveThreshold");

#[test]
fn defaults_act_on_a_sustained_breach_within_a_minute() {
    let p = policy();
    assert_eq!(p.failure_threshold, 2);
    assert_eq!(p.interval, Duration::from_secs(15));
    // Breach starts right after the check at t=0; checks at 15 and 30 fail.
    let (decisions, status) = run(&p, &[step(0, Some(P)), step(15, Some(F)), step(30, Some(F))]);
    assert_eq!(decisions, vec![D::Hold, D::Hold, ROLLBACK]);
    assert_eq!(status.state, RollbackState::RolledBack);
    assert_eq!(status.rollbacks, 1);
    assert_eq!(status.model_source.as_deref(), Some("models/a"));
}

#[test]
fn scenarios() {
    let p = policy();
    let cases: Vec<(&str, RollbackPolicy, Vec<Step>, Vec<D>)> = vec![
        (
            "healthy checks never act",
            p.clone(),
            vec![step(0, Some(P)), step(15, Some(P)), step(30, Some(P))],
            vec![D::Hold, D::Hold, D::Hold],
        ),
        (
            "flapping: a pass between failures resets the count",
            p.clone(),
            vec![step(0, Some(F)), step(15, Some(P)), step(30, Some(F)), step(45, Some(P))],
            vec![D::Hold, D::Hold, D::Hold, D::Hold],
        ),
        (
            "missing data is not health: the count survives it",
            p.clone(),
            vec![step(0, Some(F)), step(15, Some(I)), step(30, Some(F))],
            vec![D::Hold, D::Hold, ROLLBACK],
        ),
        (
            "missing data alone never rolls back",
            p.clone(),
            vec![step(0, Some(I)), step(15, Some(I)), step(30, Some(I)), step(45, Some(I))],
            vec![D::Hold, D::Hold, D::Hold, D::Hold],
        ),
        (
            "reconciles without a due check change nothing",
            p.clone(),
            vec![step(0, Some(F)), step(3, None), step(5, None), step(15, Some(F))],
            vec![D::Hold, D::Hold, D::Hold, ROLLBACK],
        ),
        (
            "manual recovery waits for the annotation, however long",
            p.clone(),
            vec![
                step(0, Some(F)),
                step(15, Some(F)),
                step(100_000, Some(P)),
                Step { annotation: Some("1"), ..step(100_010, None) },
            ],
            vec![D::Hold, ROLLBACK, D::Hold, D::Recover(RecoveryReason::RetryRequested)],
        ),
        (
            "an annotation set before the rollback is not a retry",
            p.clone(),
            vec![
                Step { annotation: Some("old"), ..step(0, Some(F)) },
                Step { annotation: Some("old"), ..step(15, Some(F)) },
                Step { annotation: Some("old"), ..step(30, None) },
                Step { annotation: Some("new"), ..step(45, None) },
            ],
            vec![D::Hold, ROLLBACK, D::Hold, D::Recover(RecoveryReason::RetryRequested)],
        ),
        (
            "a new model source ends the rollback",
            p.clone(),
            vec![step(0, Some(F)), step(15, Some(F)), Step { source: "models/b", ..step(20, None) }],
            vec![D::Hold, ROLLBACK, D::Recover(RecoveryReason::NewModelSource)],
        ),
        (
            "probation: one failure rolls back at once",
            p.clone(),
            vec![
                step(0, Some(F)),
                step(15, Some(F)),
                Step { annotation: Some("1"), ..step(20, None) },
                Step { annotation: Some("1"), ..step(35, Some(F)) },
            ],
            vec![D::Hold, ROLLBACK, D::Recover(RecoveryReason::RetryRequested), ROLLBACK],
        ),
        (
            "probation passes with a passed check after one window",
            p.clone(),
            vec![
                step(0, Some(F)),
                step(15, Some(F)),
                Step { annotation: Some("1"), ..step(20, None) },
                Step { annotation: Some("1"), ..step(35, Some(P)) },
                Step { annotation: Some("1"), ..step(80, Some(P)) },
                Step { annotation: Some("1"), ..step(95, Some(F)) },
            ],
            vec![D::Hold, ROLLBACK, D::Recover(RecoveryReason::RetryRequested), D::Hold, D::Passed, D::Hold],
        ),
        (
            "automatic recovery after the cool-down",
            automatic(),
            vec![step(0, Some(F)), step(15, Some(F)), step(600, Some(P)), step(615, Some(P))],
            vec![D::Hold, ROLLBACK, D::Hold, D::Recover(RecoveryReason::CooldownElapsed)],
        ),
        (
            "automatic: a model that fails its probation waits twice as long",
            automatic(),
            vec![
                step(0, Some(F)),
                step(15, Some(F)),
                step(615, None),
                step(630, Some(F)),
                step(1829, None),
                step(1830, None),
            ],
            vec![
                D::Hold,
                ROLLBACK,
                D::Recover(RecoveryReason::CooldownElapsed),
                ROLLBACK,
                D::Hold,
                D::Recover(RecoveryReason::CooldownElapsed),
            ],
        ),
        (
            "clock went backwards: the cool-down does not elapse early",
            automatic(),
            vec![step(1000, Some(F)), step(1015, Some(F)), step(10, None), step(1614, None), step(1615, None)],
            vec![D::Hold, ROLLBACK, D::Hold, D::Hold, D::Recover(RecoveryReason::CooldownElapsed)],
        ),
        (
            "dry run reports and keeps serving the ML model",
            RollbackPolicy { dry_run: true, ..p.clone() },
            vec![step(0, Some(F)), step(15, Some(F)), step(30, Some(F)), step(45, Some(F))],
            vec![D::Hold, D::Would, D::Hold, D::Would],
        ),
        (
            "asking for the baseline in the spec ends the automation",
            p.clone(),
            vec![
                step(0, Some(F)),
                step(15, Some(F)),
                Step { variant: ModelVariant::Baseline, ..step(20, None) },
                Step { variant: ModelVariant::Baseline, ..step(35, Some(F)) },
            ],
            vec![D::Hold, ROLLBACK, D::Released("BaselineRequested"), D::Hold],
        ),
    ];
    for (name, policy, steps, expected) in cases {
        let (decisions, _) = run(&policy, &steps);
        assert_eq!(decisions, expected, "{name}");
    }
}

#[test]
fn disabling_releases_a_rolled_back_model() {
    let p = policy();
    let (_, status) = run(&p, &[step(0, Some(F)), step(15, Some(F))]);
    assert_eq!(status.state, RollbackState::RolledBack);
    let off = RollbackPolicy { enabled: false, ..p };
    let input =
        RollbackInput { spec_variant: ModelVariant::Ml, model_source: "models/a", retry_annotation: None, check: None };
    let (next, decision) = rollback_decision(&off, &status, &input, at(20));
    assert_eq!(kind(&decision), D::Released("RollbackDisabled"));
    assert_eq!(next, RollbackStatus::default());
}

#[test]
fn detection_time_runs_from_the_first_failed_check() {
    let p = RollbackPolicy { failure_threshold: 3, ..policy() };
    let mut status = RollbackStatus::default();
    let mut last = Decision::Hold;
    for t in [10, 25, 40] {
        let c = check(F, t);
        let input = RollbackInput {
            spec_variant: ModelVariant::Ml,
            model_source: "models/a",
            retry_annotation: None,
            check: Some(&c),
        };
        (status, last) = rollback_decision(&p, &status, &input, at(t));
    }
    match last {
        Decision::RollBack { detection_seconds, message, .. } => {
            assert_eq!(detection_seconds, 30.0);
            assert_eq!(message, "errorRate 0.3 (limit 0.05)");
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
}

#[test]
fn checks_are_due_after_the_interval_or_when_the_clock_went_back() {
    let interval = Duration::from_secs(15);
    assert!(check_due(None, interval, at(0)));
    assert!(!check_due(Some(&Time(at(0))), interval, at(14)));
    assert!(check_due(Some(&Time(at(0))), interval, at(15)));
    assert!(check_due(Some(&Time(at(100))), interval, at(50)), "last check in the future");
}

#[test]
fn cooldown_doubles_and_is_capped() {
    let p = automatic();
    assert_eq!(p.cooldown_after(1), Duration::from_secs(600));
    assert_eq!(p.cooldown_after(2), Duration::from_secs(1200));
    assert_eq!(p.cooldown_after(3), Duration::from_secs(2400));
    assert_eq!(p.cooldown_after(40), MAX_COOLDOWN);
}

#[test]
fn the_rendered_variant_follows_the_decision_not_the_spec_alone() {
    let mut vp = crate::fixtures::pipeline();
    vp.spec.model.variant = ModelVariant::Ml;
    assert_eq!(effective_variant(&vp), ModelVariant::Ml);
    vp.status = Some(crate::crd::VolatilityPipelineStatus {
        rollback: Some(RollbackStatus { state: RollbackState::RolledBack, ..RollbackStatus::default() }),
        ..Default::default()
    });
    assert_eq!(effective_variant(&vp), ModelVariant::Baseline);
    vp.spec.rollback.dry_run = true;
    assert_eq!(effective_variant(&vp), ModelVariant::Ml, "a dry run never switches");
    vp.spec.rollback.dry_run = false;
    vp.spec.rollback.enabled = false;
    assert_eq!(effective_variant(&vp), ModelVariant::Ml, "disabled automation: the spec rules");
}
