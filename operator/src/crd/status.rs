//! What the operator observed: phase, conditions, the model serving, replica counts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::spec::ModelVariant;
use super::workloads::Workload;

/// Observed state of a pipeline, written by the operator only.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolatilityPipelineStatus {
    /// `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Summary of the conditions: Pending, Progressing, Ready, Degraded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Ready, Reconciling, Stalled (kstatus), TopicsReady, WorkloadsReady, MonitoringReady,
    /// RolledBack and Scaling, following the Kubernetes API conventions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The model currently serving predictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_model: Option<ActiveModel>,
    /// Replica counts per workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads: Option<WorkloadsStatus>,
    /// Predictor consumer replicas and lag, as seen by the autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerStatus>,
    /// Where the rollback automation stands, with its last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackStatus>,
    /// The most recent automatic model rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rollback: Option<RollbackRecord>,
}

/// Summary of the conditions, for `kubectl get vp`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, nothing created yet.
    Pending,
    /// Children are being created or rolled out.
    Progressing,
    /// Topics exist and every workload is available.
    Ready,
    /// Running, but something is wrong (a workload unavailable, monitoring missing, a rollback).
    Degraded,
    /// The spec cannot be realized; the conditions say why.
    Failed,
}

/// The model currently serving predictions, as the API pods report it (`GET /version`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActiveModel {
    /// `ml` or `baseline`. Until an API pod answered: the variant the operator renders.
    pub variant: ModelVariant,
    /// Model version reported by the API's `/version`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When an API pod last reported it; unset while only rendered, never observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_time: Option<Time>,
    /// Set while the API serves the baseline because it could not load the ML model
    /// (`runtime_unavailable`: no ONNX Runtime library; `model_unloadable`: a missing or broken
    /// export), as its `/version` reports; the alert `SpikewatchModelFallback` fires then too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Replica counts per workload.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadsStatus {
    /// The ingestor Deployment.
    #[serde(default)]
    pub ingestor: WorkloadStatus,
    /// The featurizer Deployment.
    #[serde(default)]
    pub featurizer: WorkloadStatus,
    /// The predictor Deployment.
    #[serde(default)]
    pub predictor: WorkloadStatus,
    /// The API Deployment.
    #[serde(default)]
    pub api: WorkloadStatus,
}

impl WorkloadsStatus {
    pub fn get(&self, workload: Workload) -> &WorkloadStatus {
        match workload {
            Workload::Ingestor => &self.ingestor,
            Workload::Featurizer => &self.featurizer,
            Workload::Predictor => &self.predictor,
            Workload::Api => &self.api,
        }
    }

    pub fn get_mut(&mut self, workload: Workload) -> &mut WorkloadStatus {
        match workload {
            Workload::Ingestor => &mut self.ingestor,
            Workload::Featurizer => &mut self.featurizer,
            Workload::Predictor => &mut self.predictor,
            Workload::Api => &mut self.api,
        }
    }
}

/// Replica counts of one workload's Deployment.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Desired replicas.
    #[serde(default)]
    pub replicas: i32,
    /// Replicas passing their readiness probe.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Replicas running the current pod template.
    #[serde(default)]
    pub updated_replicas: i32,
    /// Replicas ready for at least the Deployment's `minReadySeconds`.
    #[serde(default)]
    pub available_replicas: i32,
}

/// Predictor consumer replicas and lag, as the operator's autoscaler sees them
/// (`autoscaling.engine: operator`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStatus {
    /// Predictor replicas the autoscaler decided on (the Deployment is scaled to this).
    #[serde(default)]
    pub desired_replicas: i32,
    /// Replicas of the predictor Deployment when the lag was measured.
    #[serde(default)]
    pub current_replicas: i32,
    /// Messages of the features topic not yet committed by the predictor's consumer group,
    /// summed over partitions. Unset when the last measurement failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
    /// Partitions of the features topic (the replica count never exceeds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// When the lag was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_time: Option<Time>,
    /// When the autoscaler last changed the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
}

/// Where the rollback automation stands.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStatus {
    /// `Serving` (the ML model, watched), `RolledBack` (the baseline answers) or `Probation`
    /// (the ML model is back; one failed check rolls it back again).
    #[serde(default)]
    pub state: RollbackState,
    /// When `state` was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// Failed checks in a row (reset by a passed check; an inconclusive one leaves it).
    #[serde(default)]
    pub consecutive_failures: i32,
    /// When the current run of failed checks started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_time: Option<Time>,
    /// Rollbacks since the ML model last passed a probation; each doubles the automatic cool-down.
    #[serde(default)]
    pub rollbacks: i32,
    /// `model.sourceUri` that was rolled back; a different one in the spec ends the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_source: Option<String>,
    /// Value of the `spikewatch.io/retry-model` annotation already acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_token: Option<String>,
    /// The last check, with every signal's measured value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<CheckStatus>,
}

/// State of the rollback automation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RollbackState {
    /// The ML model serves and is checked.
    #[default]
    Serving,
    /// The operator switched to the baseline.
    RolledBack,
    /// The ML model is back after a rollback and is on probation.
    Probation,
}

/// One health check of the serving model.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    /// When the check ran.
    pub time: Time,
    /// `Passed`, `Failed` or `Inconclusive` (some signal had no data and none failed).
    pub result: CheckResult,
    /// Where the numbers came from: `prometheus <url>` or `scrape` (the pods' `/metrics`).
    pub source: String,
    /// Every signal of the check.
    #[serde(default)]
    pub signals: Vec<SignalStatus>,
}

/// Outcome of a check.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckResult {
    Passed,
    Failed,
    /// Missing data: never counted as healthy.
    Inconclusive,
}

/// One signal of a check.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SignalStatus {
    /// `errorRate`, `p95LatencySeconds`, `predictionErrorRate`, `notReadySeconds` or
    /// `alertPrecision`.
    pub name: String,
    /// `Passed`, `Failed`, `NoData` or `InsufficientTraffic`.
    pub result: String,
    /// The measured value, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The policy's limit.
    pub threshold: f64,
    /// The PromQL query (Prometheus source) or how the value was computed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// Why there is no value, or what was measured besides it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// An automatic model rollback.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRecord {
    /// When the rollback happened.
    pub time: Time,
    /// Variant rolled back from.
    pub from: ModelVariant,
    /// Variant rolled back to.
    pub to: ModelVariant,
    /// Why, such as `ErrorRateAboveThreshold`.
    pub reason: String,
    /// Measured values that triggered it.
    #[serde(default)]
    pub message: String,
    /// Seconds from the first failed check to the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_seconds: Option<f64>,
}
