//! One health check of the serving model: the measured signals against the policy's limits.
//!
//! | signal | fails when | needs |
//! |---|---|---|
//! | `errorRate` | 5xx share of API requests over the window > `maxErrorRate` | ≥ `minRequests` requests |
//! | `p95LatencySeconds` | API p95 latency over the window > `maxP95LatencySeconds` | ≥ `minRequests` requests |
//! | `predictionErrorRate` | predictor inference errors / vectors consumed > `maxPredictionErrorRate` | vectors consumed |
//! | `notReadySeconds` | an API or predictor pod not Ready for longer than `notReadyGraceSeconds` | the pods |
//! | `alertPrecision` | online precision of alerts < `minAlertPrecision` (only when set) | the predictor's quality metric |
//!
//! A signal without data (Prometheus down, a pod unreachable, too few scrapes) reads `NoData`,
//! and a check with a `NoData` signal and no failing one is `Inconclusive`: missing data is
//! never taken for health. Too little API traffic to judge reads `InsufficientTraffic`, which
//! neither fails nor blocks a pass: an idle API has nothing wrong to report.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::{CheckResult, CheckStatus, RollbackSpec, SignalStatus};

/// One measured quantity, as a [`crate::observe::MetricsSource`] returns it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurement {
    /// `None`: no data (the message says why).
    pub value: Option<f64>,
    /// PromQL, or how the value was computed from scrapes.
    pub query: String,
    pub message: String,
}

impl Measurement {
    pub fn value(value: f64, query: impl Into<String>) -> Measurement {
        Measurement { value: Some(value), query: query.into(), message: String::new() }
    }

    pub fn no_data(query: impl Into<String>, why: impl Into<String>) -> Measurement {
        Measurement { value: None, query: query.into(), message: why.into() }
    }
}

/// What a metrics source measured over the rollback window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurements {
    /// `prometheus <url>` or `scrape`.
    pub source: String,
    /// API requests answered in the window.
    pub requests: Measurement,
    /// Share of them answered with a 5xx status (no value when there were none).
    pub error_rate: Measurement,
    /// p95 of the API's request latency, in seconds.
    pub p95_latency: Measurement,
    /// Inference errors / feature vectors consumed by the predictor.
    pub prediction_error_rate: Measurement,
    /// Online precision of alerts (`volatility_online_alert_precision`); measured only when the
    /// policy sets `minAlertPrecision`.
    pub alert_precision: Option<Measurement>,
}

/// Readiness of the API and predictor pods, from the Kubernetes API.
#[derive(Debug, Clone, PartialEq)]
pub enum PodReadiness {
    /// Every pod is Ready.
    AllReady,
    /// The longest time any pod has not been Ready, with which pods.
    NotReady { seconds: f64, pods: String },
    /// No pod to judge (the message says why).
    Unknown(String),
}

/// Names of the signals, as they appear in `status.rollback.lastCheck.signals[].name`.
pub mod names {
    pub const ERROR_RATE: &str = "errorRate";
    pub const P95_LATENCY: &str = "p95LatencySeconds";
    pub const PREDICTION_ERROR_RATE: &str = "predictionErrorRate";
    pub const NOT_READY: &str = "notReadySeconds";
    pub const ALERT_PRECISION: &str = "alertPrecision";
}

/// Per-signal outcomes, as they appear in `signals[].result`.
pub mod outcome {
    pub const PASSED: &str = "Passed";
    pub const FAILED: &str = "Failed";
    pub const NO_DATA: &str = "NoData";
    pub const INSUFFICIENT_TRAFFIC: &str = "InsufficientTraffic";
}

/// The condition reason of a rollback caused by a failing signal.
pub fn failure_reason(signal: &str) -> &'static str {
    match signal {
        names::ERROR_RATE => "ErrorRateAboveThreshold",
        names::P95_LATENCY => "LatencyAboveThreshold",
        names::PREDICTION_ERROR_RATE => "PredictionErrorsAboveThreshold",
        names::NOT_READY => "PodsNotReady",
        names::ALERT_PRECISION => "AlertPrecisionBelowThreshold",
        _ => "CheckFailed",
    }
}

/// Judges every signal against `policy` and combines them into one check at `now`.
pub fn evaluate_check(
    policy: &RollbackSpec,
    measured: &Measurements,
    readiness: &PodReadiness,
    now: Time,
) -> CheckStatus {
    let enough_traffic = measured.requests.value.map(|n| n >= f64::from(policy.min_requests));
    let traffic_note = match measured.requests.value {
        Some(n) => format!("{n:.0} requests in the window"),
        None => measured.requests.message.clone(),
    };
    let mut signals = vec![
        traffic_signal(
            names::ERROR_RATE,
            &measured.error_rate,
            policy.max_error_rate,
            enough_traffic,
            &traffic_note,
            policy.min_requests,
        ),
        traffic_signal(
            names::P95_LATENCY,
            &measured.p95_latency,
            policy.max_p95_latency_seconds,
            enough_traffic,
            &traffic_note,
            policy.min_requests,
        ),
        limit_signal(
            names::PREDICTION_ERROR_RATE,
            &measured.prediction_error_rate,
            policy.max_prediction_error_rate,
            Limit::AtMost,
        ),
        readiness_signal(readiness, f64::from(policy.not_ready_grace_seconds)),
    ];
    if let Some(min_precision) = policy.min_alert_precision {
        let missing = Measurement::no_data("", "not measured by this source");
        let measurement = measured.alert_precision.as_ref().unwrap_or(&missing);
        signals.push(limit_signal(names::ALERT_PRECISION, measurement, min_precision, Limit::AtLeast));
    }
    let any = |result: &str| signals.iter().any(|s| s.result == result);
    let result = if any(outcome::FAILED) {
        CheckResult::Failed
    } else if any(outcome::NO_DATA) {
        CheckResult::Inconclusive
    } else {
        CheckResult::Passed
    };
    CheckStatus { time: now, result, source: measured.source.clone(), signals }
}

#[derive(Clone, Copy)]
enum Limit {
    AtMost,
    AtLeast,
}

fn limit_signal(name: &str, m: &Measurement, threshold: f64, limit: Limit) -> SignalStatus {
    let result = match (m.value, limit) {
        (None, _) => outcome::NO_DATA,
        (Some(v), _) if v.is_nan() => outcome::NO_DATA,
        (Some(v), Limit::AtMost) if v > threshold => outcome::FAILED,
        (Some(v), Limit::AtLeast) if v < threshold => outcome::FAILED,
        (Some(_), _) => outcome::PASSED,
    };
    SignalStatus {
        name: name.into(),
        result: result.into(),
        value: m.value.filter(|v| v.is_finite()),
        threshold,
        query: m.query.clone(),
        message: m.message.clone(),
    }
}

fn traffic_signal(
    name: &str,
    m: &Measurement,
    threshold: f64,
    enough_traffic: Option<bool>,
    traffic_note: &str,
    min_requests: i32,
) -> SignalStatus {
    let mut signal = limit_signal(name, m, threshold, Limit::AtMost);
    match enough_traffic {
        None => {
            signal.result = outcome::NO_DATA.into();
            signal.message = format!("request count unknown: {traffic_note}");
        }
        Some(false) => {
            signal.result = outcome::INSUFFICIENT_TRAFFIC.into();
            signal.message = format!("{traffic_note}, fewer than minRequests={min_requests}");
        }
        Some(true) => {
            if signal.message.is_empty() {
                signal.message = traffic_note.to_string();
            }
        }
    }
    signal
}

fn readiness_signal(readiness: &PodReadiness, grace: f64) -> SignalStatus {
    let (result, value, message) = match readiness {
        PodReadiness::AllReady => (outcome::PASSED, Some(0.0), "every API and predictor pod is Ready".to_string()),
        PodReadiness::NotReady { seconds, pods } => (
            if *seconds > grace { outcome::FAILED } else { outcome::PASSED },
            Some(*seconds),
            format!("not Ready: {pods}"),
        ),
        PodReadiness::Unknown(why) => (outcome::NO_DATA, None, why.clone()),
    };
    SignalStatus {
        name: names::NOT_READY.into(),
        result: result.into(),
        value,
        threshold: grace,
        query: String::new(),
        message,
    }
}

/// One line naming each failing signal with its value and limit, for conditions and events.
pub fn describe_failures(check: &CheckStatus) -> String {
    check
        .signals
        .iter()
        .filter(|s| s.result == outcome::FAILED)
        .map(|s| match s.value {
            Some(v) => format!("{} {} (limit {})", s.name, round(v), round(s.threshold)),
            None => format!("{} failed", s.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reason of the first failing signal, in the table's order.
pub fn first_failure_reason(check: &CheckStatus) -> &'static str {
    check.signals.iter().find(|s| s.result == outcome::FAILED).map_or("CheckFailed", |s| failure_reason(&s.name))
}

fn round(v: f64) -> String {
    format!("{:.4}", v).trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap())
    }

    fn healthy() -> Measurements {
        Measurements {
            source: "scrape".into(),
            requests: Measurement::value(500.0, "q"),
            error_rate: Measurement::value(0.001, "q"),
            p95_latency: Measurement::value(0.002, "q"),
            prediction_error_rate: Measurement::value(0.0, "q"),
            alert_precision: None,
        }
    }

    fn result_of(check: &CheckStatus, name: &str) -> String {
        check.signals.iter().find(|s| s.name == name).unwrap().result.clone()
    }

    #[test]
    fn signals_against_limits() {
        let policy = RollbackSpec::default();
        // (case, change to the healthy measurements, readiness, expected check, failing signal)
        type Change = fn(&mut Measurements);
        let cases: Vec<(&str, Change, PodReadiness, CheckResult, Option<&str>)> = vec![
            ("healthy", |_| {}, PodReadiness::AllReady, CheckResult::Passed, None),
            (
                "5xx above 5 %",
                |m| m.error_rate.value = Some(0.2),
                PodReadiness::AllReady,
                CheckResult::Failed,
                Some(names::ERROR_RATE),
            ),
            (
                "exactly at the limit passes",
                |m| m.error_rate.value = Some(0.05),
                PodReadiness::AllReady,
                CheckResult::Passed,
                None,
            ),
            (
                "slow",
                |m| m.p95_latency.value = Some(1.5),
                PodReadiness::AllReady,
                CheckResult::Failed,
                Some(names::P95_LATENCY),
            ),
            (
                "inference errors",
                |m| m.prediction_error_rate.value = Some(0.5),
                PodReadiness::AllReady,
                CheckResult::Failed,
                Some(names::PREDICTION_ERROR_RATE),
            ),
            (
                "pods not ready past the grace",
                |_| {},
                PodReadiness::NotReady { seconds: 121.0, pods: "api-1".into() },
                CheckResult::Failed,
                Some(names::NOT_READY),
            ),
            (
                "pods not ready within the grace",
                |_| {},
                PodReadiness::NotReady { seconds: 30.0, pods: "api-1".into() },
                CheckResult::Passed,
                None,
            ),
            (
                "no data is never healthy",
                |m| m.prediction_error_rate = Measurement::no_data("q", "predictor unreachable"),
                PodReadiness::AllReady,
                CheckResult::Inconclusive,
                None,
            ),
            ("unknown readiness", |_| {}, PodReadiness::Unknown("no pods".into()), CheckResult::Inconclusive, None),
            (
                "NaN is no data",
                |m| m.p95_latency.value = Some(f64::NAN),
                PodReadiness::AllReady,
                CheckResult::Inconclusive,
                None,
            ),
            (
                "a failure wins over missing data",
                |m| {
                    m.error_rate.value = Some(0.9);
                    m.p95_latency = Measurement::no_data("q", "x");
                },
                PodReadiness::AllReady,
                CheckResult::Failed,
                Some(names::ERROR_RATE),
            ),
            (
                "idle API: not judged, not blocking",
                |m| {
                    m.requests.value = Some(3.0);
                    m.error_rate.value = Some(1.0);
                },
                PodReadiness::AllReady,
                CheckResult::Passed,
                None,
            ),
            (
                "unknown request count",
                |m| m.requests = Measurement::no_data("q", "prometheus down"),
                PodReadiness::AllReady,
                CheckResult::Inconclusive,
                None,
            ),
        ];
        for (case, change, readiness, expected, failing) in cases {
            let mut measured = healthy();
            change(&mut measured);
            let check = evaluate_check(&policy, &measured, &readiness, now());
            assert_eq!(check.result, expected, "{case}");
            if let Some(signal) = failing {
                assert_eq!(result_of(&check, signal), outcome::FAILED, "{case}");
                assert_eq!(first_failure_reason(&check), failure_reason(signal), "{case}");
            }
        }
    }

    #[test]
    fn low_traffic_is_reported_as_such() {
        let mut measured = healthy();
        measured.requests.value = Some(3.0);
        let check = evaluate_check(&RollbackSpec::default(), &measured, &PodReadiness::AllReady, now());
        assert_eq!(result_of(&check, names::ERROR_RATE), outcome::INSUFFICIENT_TRAFFIC);
        assert_eq!(result_of(&check, names::P95_LATENCY), outcome::INSUFFICIENT_TRAFFIC);
    }

    #[test]
    fn the_quality_hook_is_checked_only_when_asked_for() {
        let check = evaluate_check(&RollbackSpec::default(), &healthy(), &PodReadiness::AllReady, now());
        assert!(check.signals.iter().all(|s| s.name != names::ALERT_PRECISION));

        let policy = RollbackSpec { min_alert_precision: Some(0.3), ..RollbackSpec::default() };
        let check = evaluate_check(&policy, &healthy(), &PodReadiness::AllReady, now());
        assert_eq!(result_of(&check, names::ALERT_PRECISION), outcome::NO_DATA);
        assert_eq!(check.result, CheckResult::Inconclusive, "not exported yet: never healthy");

        let mut measured = healthy();
        measured.alert_precision = Some(Measurement::value(0.1, "q"));
        let check = evaluate_check(&policy, &measured, &PodReadiness::AllReady, now());
        assert_eq!(check.result, CheckResult::Failed);
        assert_eq!(first_failure_reason(&check), "AlertPrecisionBelowThreshold");
    }

    #[test]
    fn failures_are_described_with_values_and_limits() {
        let mut measured = healthy();
        measured.error_rate.value = Some(0.25);
        measured.p95_latency.value = Some(1.2);
        let check = evaluate_check(&RollbackSpec::default(), &measured, &PodReadiness::AllReady, now());
        assert_eq!(describe_failures(&check), "errorRate 0.25 (limit 0.05), p95LatencySeconds 1.2 (limit 0.8)");
    }
}
