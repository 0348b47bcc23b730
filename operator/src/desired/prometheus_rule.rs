//! A Prometheus Operator `PrometheusRule` with the runbook's SLO alerts: API p95 latency above
//! 800 ms, API error rate above 1 %, consumer lag above 30 s, no predictions for N minutes; and
//! three on the model: its judged alerts no better than chance over the last hour, a feature
//! further from the training rows than any training day was, and the baseline answering in
//! place of an ML model that could not be loaded.
//!
//! The expressions select the pipeline's series by the `namespace` and `service` labels that
//! the ServiceMonitors attach. `promtool check rules` and `promtool test rules` run over them in
//! `operator/tests/desired_prometheus_rule.rs`.

use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use spikewatch_types::metric_names::{model, predictor as predictions, quality};

use super::DesiredError;
use super::meta::{MONITORING_COMPONENT, child_meta};
use super::promql::{api_error_ratio, api_latency_quantile, consumer_lag_by_service, series_selector};
use crate::crd::{VolatilityPipeline, Workload};

/// API p95 latency SLO, seconds.
pub const P95_LATENCY_SLO_SECONDS: f64 = 0.8;
/// API error-rate SLO, fraction of requests.
pub const ERROR_RATE_SLO: f64 = 0.01;
/// Consumer lag SLO, seconds.
pub const CONSUMER_LAG_SLO_SECONDS: f64 = 30.0;
/// Judged predictions of a product in the last hour before its alert precision is trusted.
pub const MIN_JUDGED_PER_HOUR: u32 = 600;
/// How far above the training days' largest PSI a feature's PSI must be to alert (the
/// workloads' `quality::report::BEYOND_MARGIN`).
pub const PSI_MARGIN: f64 = 0.25;

/// `monitoring.coreos.com/v1` `PrometheusRule`.
pub fn prometheus_rule_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    )
}

/// The rule groups (the `spec.groups` of the PrometheusRule, and the content of a Prometheus
/// rule file).
pub fn prometheus_rule_groups(vp: &VolatilityPipeline) -> Value {
    let name = vp.name_any();
    let namespace = vp.namespace().unwrap_or_default();
    let api = series_selector(vp, &[Workload::Api]);
    let predictor = series_selector(vp, &[Workload::Predictor]);
    let serving = series_selector(vp, &[Workload::Api, Workload::Predictor]);
    let minutes = vp.spec.monitoring.no_predictions_minutes;
    let labels = json!({ "severity": "warning", "pipeline": name, "pipeline_namespace": namespace });
    let critical = json!({ "severity": "critical", "pipeline": name, "pipeline_namespace": namespace });
    json!([{
        "name": format!("spikewatch.{namespace}.{name}.slo"),
        "rules": [
            {
                "alert": "SpikewatchApiLatencyHigh",
                "expr": format!("{} > {P95_LATENCY_SLO_SECONDS}", api_latency_quantile("0.95", &api, "5m")),
                "for": "5m",
                "labels": labels,
                "annotations": {
                    "summary": "Prediction API p95 latency above 800 ms",
                    "description": format!("p95 latency of {namespace}/{name} is {{{{ $value | humanizeDuration }}}} over the last 5 minutes (SLO: 800 ms)."),
                },
            },
            {
                "alert": "SpikewatchApiErrorRateHigh",
                "expr": format!("{} > {ERROR_RATE_SLO}", api_error_ratio(vp)),
                "for": "5m",
                "labels": critical,
                "annotations": {
                    "summary": "Prediction API error rate above 1 %",
                    "description": format!("{{{{ $value | humanizePercentage }}}} of the requests to {namespace}/{name} failed over the last 5 minutes (SLO: 1 %)."),
                },
            },
            {
                "alert": "SpikewatchConsumerLagHigh",
                "expr": format!("{} > {CONSUMER_LAG_SLO_SECONDS}", consumer_lag_by_service(vp)),
                "for": "2m",
                "labels": labels,
                "annotations": {
                    "summary": "Consumer lag above 30 s",
                    "description": format!("{{{{ $labels.service }}}} of {namespace}/{name} is {{{{ $value | humanizeDuration }}}} behind the newest event (SLO: 30 s)."),
                },
            },
            {
                "alert": "SpikewatchNoPredictions",
                // `or vector(0)`: a predictor that is down exports no series at all, and that must alert too.
                "expr": format!("(sum(increase({}{{{predictor}}}[{minutes}m])) or vector(0)) == 0", predictions::PREDICTIONS_MADE),
                "labels": critical,
                "annotations": {
                    "summary": format!("No predictions for {minutes} minutes"),
                    "description": format!("The predictor of {namespace}/{name} made no prediction in the last {minutes} minutes."),
                },
            },
            {
                "alert": "SpikewatchAlertsNoBetterThanChance",
                // Precision at or below the share of positive minutes: alerting at random would do
                // as well. NaN (no alert in the hour) compares false: a silent model does not fire this.
                "expr": format!(
                    "({}{{{predictor},variant=\"ml\"}} <= {}{{{predictor},variant=\"ml\"}}) \
                     and increase({}{{{predictor},variant=\"ml\"}}[1h]) >= {MIN_JUDGED_PER_HOUR}",
                    quality::ALERT_PRECISION, quality::POSITIVE_RATE, quality::LABELLED
                ),
                "for": "30m",
                "labels": labels,
                "annotations": {
                    "summary": "Spike alerts no better than chance",
                    "description": format!("Over the last hour, {{{{ $value | humanizePercentage }}}} of the model's alerts on {{{{ $labels.product_id }}}} ({namespace}/{name}) preceded one of the product's most volatile minutes, no more than alerting at random would."),
                },
            },
            {
                "alert": "SpikewatchFeatureDrift",
                // The limit is NaN for a feature the model ignores, and NaN compares false.
                "expr": format!("{}{{{predictor}}} > {}{{{predictor}}} + {PSI_MARGIN}", quality::FEATURE_PSI, quality::FEATURE_PSI_LIMIT),
                "for": "30m",
                "labels": labels,
                "annotations": {
                    "summary": "A feature has drifted beyond the training days",
                    "description": format!("{{{{ $labels.feature }}}} of the rows {namespace}/{name} scores has a PSI of {{{{ $value | printf \"%.2f\" }}}} against the training rows, more than any training day had: the model is extrapolating."),
                },
            },
            {
                "alert": "SpikewatchModelFallback",
                // The workloads serve the baseline when the configured ML model cannot be loaded
                // (no ONNX Runtime, a broken export) rather than nothing; a rollback by the
                // operator is a choice, not a fallback, and keeps this at 0.
                "expr": format!("max by (service, reason) ({}{{{serving}}}) == 1", model::FALLBACK),
                "for": "5m",
                "labels": labels,
                "annotations": {
                    "summary": "The baseline answers in place of the ML model",
                    "description": format!("{{{{ $labels.service }}}} of {namespace}/{name} could not load the ML model ({{{{ $labels.reason }}}}) and serves the baseline instead; /version says why."),
                },
            },
        ],
    }])
}

/// A Prometheus rule file (`groups:`) with the pipeline's alerts, for `promtool`.
pub fn prometheus_rule_file(vp: &VolatilityPipeline) -> Result<String, DesiredError> {
    serde_yaml::to_string(&json!({ "groups": prometheus_rule_groups(vp) }))
        .map_err(|e| DesiredError::Serialize(e.to_string()))
}

/// The PrometheusRule, or none when `monitoring.prometheusRule` is off.
pub fn desired_prometheus_rule(vp: &VolatilityPipeline) -> Result<Option<DynamicObject>, DesiredError> {
    if !vp.spec.monitoring.prometheus_rule {
        return Ok(None);
    }
    let mut metadata = child_meta(vp, vp.name_any(), MONITORING_COMPONENT)?;
    metadata.labels.get_or_insert_default().extend(vp.spec.monitoring.labels.clone());
    let mut object = DynamicObject::new("", &prometheus_rule_resource())
        .data(json!({ "spec": { "groups": prometheus_rule_groups(vp) } }));
    object.metadata = metadata;
    Ok(Some(object))
}
