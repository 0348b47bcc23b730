//! Policies the operator enforces over time: predictor autoscaling, model rollback, monitoring.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Consumer-lag based scaling of the predictor.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("autoscaling.minReplicas must not exceed autoscaling.maxReplicas"))]
pub struct AutoscalingSpec {
    /// Scale the predictor on consumer lag. When false, `workloads.predictor.replicas` applies.
    #[serde(default)]
    pub enabled: bool,
    /// Fewest predictor replicas.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Most predictor replicas; at most `kafka.partitions`.
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Consumer lag (seconds behind the newest event) the scaler aims for. The runbook's SLO is 30 s.
    #[serde(default = "default_target_lag_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub target_lag_seconds: i32,
    /// How long a lower replica count must be enough before scaling down.
    #[serde(default = "default_stabilization_window_seconds")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: i32,
}

fn default_min_replicas() -> i32 {
    1
}
fn default_max_replicas() -> i32 {
    3
}
fn default_target_lag_seconds() -> i32 {
    10
}
fn default_stabilization_window_seconds() -> i32 {
    300
}

impl Default for AutoscalingSpec {
    fn default() -> Self {
        AutoscalingSpec {
            enabled: false,
            min_replicas: default_min_replicas(),
            max_replicas: default_max_replicas(),
            target_lag_seconds: default_target_lag_seconds(),
            stabilization_window_seconds: default_stabilization_window_seconds(),
        }
    }
}

/// Automatic fallback to the baseline model when the ML model breaks its SLOs.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.recoverySeconds >= self.windowSeconds").message("rollback.recoverySeconds must be at least rollback.windowSeconds"))]
pub struct RollbackSpec {
    /// Roll back to `baseline` when the thresholds below are exceeded over `windowSeconds`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Largest tolerated API error rate (errors / requests), as a fraction. The runbook's SLO is 1 %.
    #[serde(default = "default_max_error_rate")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_error_rate: f64,
    /// Largest tolerated API p95 latency, in seconds. The runbook's SLO is 800 ms.
    #[serde(default = "default_max_p95_latency_seconds")]
    #[schemars(range(min = 0.001, max = 60.0))]
    pub max_p95_latency_seconds: f64,
    /// Window over which error rate and latency are measured.
    #[serde(default = "default_window_seconds")]
    #[schemars(range(min = 30, max = 86400))]
    pub window_seconds: i32,
    /// How long the ML model's replacement stays healthy before the operator tries the ML model again.
    #[serde(default = "default_recovery_seconds")]
    #[schemars(range(min = 30, max = 604800))]
    pub recovery_seconds: i32,
}

fn default_true() -> bool {
    true
}
fn default_max_error_rate() -> f64 {
    0.01
}
fn default_max_p95_latency_seconds() -> f64 {
    0.8
}
fn default_window_seconds() -> i32 {
    300
}
fn default_recovery_seconds() -> i32 {
    1800
}

impl Default for RollbackSpec {
    fn default() -> Self {
        RollbackSpec {
            enabled: true,
            max_error_rate: default_max_error_rate(),
            max_p95_latency_seconds: default_max_p95_latency_seconds(),
            window_seconds: default_window_seconds(),
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
        }
    }
}
