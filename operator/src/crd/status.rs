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
    /// Ready, TopicsReady, WorkloadsReady, MonitoringReady, RolledBack and Scaling, following
    /// the Kubernetes API conventions.
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

/// The model currently serving predictions.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActiveModel {
    /// `ml` or `baseline`.
    pub variant: ModelVariant,
    /// Model version reported by the API's `/version`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
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
}

/// Predictor consumer replicas and lag.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStatus {
    /// Predictor replicas the autoscaler asked for.
    #[serde(default)]
    pub replicas: i32,
    /// Last observed consumer lag in seconds (`volatility_consumer_lag_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    /// When the lag was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_time: Option<Time>,
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
}
