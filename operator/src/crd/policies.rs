//! Policies the operator enforces over time: predictor autoscaling, model rollback, monitoring.
//!
//! Every field has the runbook's value as its default, so an empty `rollback: {}` behaves like
//! the person who used to follow the runbook, only faster. What these policies decide lives in
//! `status` (see [`crate::automation`]); the operator never edits the spec.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Consumer-lag based scaling of the predictor.
///
/// Who owns the predictor Deployment's `replicas` is explicit: the operator when `enabled` with
/// `engine: operator`, KEDA's HPA with `engine: keda`, and otherwise whoever scales it (an HPA,
/// `kubectl scale`): the operator then sets `workloads.predictor.replicas` only when it creates
/// the Deployment.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("autoscaling.minReplicas must not exceed autoscaling.maxReplicas"))]
pub struct AutoscalingSpec {
    /// Scale the predictor on consumer lag.
    #[serde(default)]
    pub enabled: bool,
    /// `operator`: the operator measures the lag and sets the replicas itself. `keda`: the
    /// operator creates a KEDA `ScaledObject` (Kafka trigger) and KEDA scales.
    #[serde(default)]
    pub engine: ScalingEngine,
    /// Fewest predictor replicas.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Most predictor replicas; at most `kafka.partitions` (the effective bound is also the
    /// partition count the broker reports).
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Unconsumed feature messages one predictor replica is expected to keep up with:
    /// replicas = ceil(total lag / lagPerReplica), clamped. KEDA's `lagThreshold`.
    #[serde(default = "default_lag_per_replica")]
    #[schemars(range(min = 1, max = 100000000))]
    pub lag_per_replica: i64,
    /// Most replicas added by one scale-up decision.
    #[serde(default = "default_max_scale_up_step")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_scale_up_step: i32,
    /// How long a lower replica count must have been enough before scaling down (the highest
    /// recommendation within this window wins, as for an HPA).
    #[serde(default = "default_stabilization_window_seconds")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: i32,
    /// How often the lag is measured.
    #[serde(default = "default_polling_interval_seconds")]
    #[schemars(range(min = 1, max = 600))]
    pub polling_interval_seconds: i32,
}

/// Who scales the predictor when autoscaling is enabled.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum ScalingEngine {
    /// The operator measures the consumer group's lag and sets the replicas.
    #[default]
    Operator,
    /// A KEDA `ScaledObject` with a Kafka trigger (needs KEDA's CRDs in the cluster).
    Keda,
}

fn default_min_replicas() -> i32 {
    1
}
fn default_max_replicas() -> i32 {
    3
}
fn default_lag_per_replica() -> i64 {
    1000
}
fn default_max_scale_up_step() -> i32 {
    4
}
fn default_stabilization_window_seconds() -> i32 {
    300
}
fn default_polling_interval_seconds() -> i32 {
    15
}

impl Default for AutoscalingSpec {
    fn default() -> Self {
        AutoscalingSpec {
            enabled: false,
            engine: ScalingEngine::default(),
            min_replicas: default_min_replicas(),
            max_replicas: default_max_replicas(),
            lag_per_replica: default_lag_per_replica(),
            max_scale_up_step: default_max_scale_up_step(),
            stabilization_window_seconds: default_stabilization_window_seconds(),
            polling_interval_seconds: default_polling_interval_seconds(),
        }
    }
}

/// Automatic fallback to the baseline model when the ML model misbehaves (the runbook's
/// Procedure 2), and the way back.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.recoverySeconds >= self.windowSeconds").message("rollback.recoverySeconds must be at least rollback.windowSeconds"))]
#[x_kube(validation = Rule::new("self.windowSeconds >= 2 * self.intervalSeconds").message("rollback.windowSeconds must span at least two checks (2 × intervalSeconds)"))]
pub struct RollbackSpec {
    /// Check the ML model every `intervalSeconds` and roll back to `baseline` after
    /// `failureThreshold` failed checks in a row.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Only report what would be done (condition, event, metrics); never switch the model.
    #[serde(default)]
    pub dry_run: bool,
    /// Largest tolerated share of API requests answered with a 5xx status over the window.
    /// The runbook rolls back above 5 %.
    #[serde(default = "default_max_error_rate")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_error_rate: f64,
    /// Largest tolerated API p95 latency over the window, in seconds. The runbook's SLO is 800 ms.
    #[serde(default = "default_max_p95_latency_seconds")]
    #[schemars(range(min = 0.001, max = 60.0))]
    pub max_p95_latency_seconds: f64,
    /// Largest tolerated share of feature vectors the predictor failed to score (inference
    /// errors) over the window.
    #[serde(default = "default_max_prediction_error_rate")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_prediction_error_rate: f64,
    /// Fewest API requests in the window for the error rate and latency to be judged; with
    /// fewer, those two signals read `InsufficientTraffic` (neither healthy nor failing).
    #[serde(default = "default_min_requests")]
    #[schemars(range(min = 1, max = 1000000))]
    pub min_requests: i32,
    /// How long the API or predictor may have pods that are not Ready (for instance because the
    /// ML model does not load) before that counts as a failed check.
    #[serde(default = "default_not_ready_grace_seconds")]
    #[schemars(range(min = 0, max = 3600))]
    pub not_ready_grace_seconds: i32,
    /// Lowest tolerated precision of the predictor's alerts over the last hour, once their 60 s
    /// outcome is known. Unset (default): not checked. Read from the predictor's
    /// `volatility_online_alert_precision` (the ML model's alerts; a product without an alert in
    /// the hour does not count, and none alerting reads no data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_alert_precision: Option<f64>,
    /// Window over which rates and the latency quantile are measured.
    #[serde(default = "default_window_seconds")]
    #[schemars(range(min = 10, max = 86400))]
    pub window_seconds: i32,
    /// Time between two checks.
    #[serde(default = "default_interval_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: i32,
    /// Failed checks in a row that trigger the rollback (Flagger's `threshold`).
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: i32,
    /// How the ML model comes back after a rollback. `Manual` (default): when the annotation
    /// `spikewatch.io/retry-model` gets a new value, or `model.sourceUri` changes.
    /// `Automatic`: also after `recoverySeconds` (doubled after each rollback that follows a
    /// failed probation). Either way the model returns on probation: one failed check rolls it
    /// back again.
    #[serde(default)]
    pub recovery: RecoveryMode,
    /// Cool-down before `Automatic` recovery tries the ML model again; also the length of the
    /// probation after any recovery is at least `windowSeconds`.
    #[serde(default = "default_recovery_seconds")]
    #[schemars(range(min = 10, max = 604800))]
    pub recovery_seconds: i32,
}

/// How the ML model comes back after a rollback.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Only on request (annotation `spikewatch.io/retry-model`) or a new `model.sourceUri`.
    #[default]
    Manual,
    /// Also after the cool-down (`recoverySeconds`).
    Automatic,
}

fn default_true() -> bool {
    true
}
fn default_max_error_rate() -> f64 {
    0.05
}
fn default_max_p95_latency_seconds() -> f64 {
    0.8
}
fn default_max_prediction_error_rate() -> f64 {
    0.05
}
fn default_min_requests() -> i32 {
    20
}
fn default_not_ready_grace_seconds() -> i32 {
    120
}
fn default_window_seconds() -> i32 {
    60
}
fn default_interval_seconds() -> i32 {
    15
}
fn default_failure_threshold() -> i32 {
    2
}
fn default_recovery_seconds() -> i32 {
    1800
}

impl Default for RollbackSpec {
    fn default() -> Self {
        RollbackSpec {
            enabled: true,
            dry_run: false,
            max_error_rate: default_max_error_rate(),
            max_p95_latency_seconds: default_max_p95_latency_seconds(),
            max_prediction_error_rate: default_max_prediction_error_rate(),
            min_requests: default_min_requests(),
            not_ready_grace_seconds: default_not_ready_grace_seconds(),
            min_alert_precision: None,
            window_seconds: default_window_seconds(),
            interval_seconds: default_interval_seconds(),
            failure_threshold: default_failure_threshold(),
            recovery: RecoveryMode::default(),
            recovery_seconds: default_recovery_seconds(),
        }
    }
}

/// Prometheus Operator objects and the Grafana dashboard. Created only when the cluster has the
/// `monitoring.coreos.com` CRDs; otherwise the MonitoringReady condition says why not.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// One ServiceMonitor per workload, scraping its `/metrics`.
    #[serde(default = "default_true")]
    pub service_monitor: bool,
    /// A PrometheusRule with the SLO alerts (API p95 latency, error rate, consumer lag, no predictions).
    #[serde(default = "default_true")]
    pub prometheus_rule: bool,
    /// A ConfigMap with the Grafana dashboard, labelled `grafana_dashboard: "1"` for Grafana's sidecar.
    #[serde(default = "default_true")]
    pub dashboard: bool,
    /// Alert when no prediction was made for this many minutes.
    #[serde(default = "default_no_predictions_minutes")]
    #[schemars(range(min = 1, max = 1440))]
    pub no_predictions_minutes: i32,
    /// Extra labels on the monitoring objects, such as the `release` label a Prometheus selects on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Prometheus HTTP API the rollback checks query (PromQL over the series the ServiceMonitors
    /// collect), such as `http://prometheus-operated.monitoring:9090`. Unset: the operator
    /// scrapes the API and predictor pods' `/metrics` itself and computes the same windows
    /// from successive scrapes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://[^\s]+$"))]
    pub prometheus_url: Option<String>,
}

fn default_no_predictions_minutes() -> i32 {
    5
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        MonitoringSpec {
            service_monitor: true,
            prometheus_rule: true,
            dashboard: true,
            no_predictions_minutes: default_no_predictions_minutes(),
            labels: BTreeMap::new(),
            prometheus_url: None,
        }
    }
}
