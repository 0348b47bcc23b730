//! The top-level spec: products, feed, image and model; Kafka, workloads and policies live in
//! their own modules.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kafka::KafkaSpec;
use super::policies::{AutoscalingSpec, MonitoringSpec, RollbackSpec};
use super::source::SourceSpec;
use super::status::VolatilityPipelineStatus;
use super::workloads::WorkloadsSpec;

/// Desired state of a spikewatch pipeline: market feed → features → model → API, on Kafka.
// Each `printcolumn(...)` repeats `type_ = "string"`, which the lint mistakes for one attribute set twice.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "spikewatch.io",
    version = "v1alpha1",
    kind = "VolatilityPipeline",
    plural = "volatilitypipelines",
    shortname = "vp",
    category = "spikewatch",
    namespaced,
    status = "VolatilityPipelineStatus",
    derive = "PartialEq",
    doc = "A real-time volatility spike detection pipeline: ingestor, featurizer, predictor and prediction API on Kafka, with its topics and monitoring.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Lifecycle phase of the pipeline"
    ),
    printcolumn(
        name = "Model",
        type_ = "string",
        json_path = ".status.activeModel.variant",
        description = "Model variant currently serving predictions"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether every part of the pipeline is ready"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Why the pipeline is or is not ready (the Ready condition's reason)",
        priority = "1"
    ),
    printcolumn(
        name = "Predictors",
        type_ = "integer",
        json_path = ".status.workloads.predictor.readyReplicas",
        description = "Ready replicas of the predictor",
        priority = "1"
    ),
    printcolumn(
        name = "Lag",
        type_ = "integer",
        json_path = ".status.consumer.lag",
        description = "Messages of the features topic the predictors have not committed yet, as the operator's autoscaler last measured them",
        priority = "1"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.autoscaling.enabled || self.autoscaling.maxReplicas <= self.kafka.partitions").message("autoscaling.maxReplicas must not exceed kafka.partitions: predictors beyond the partition count receive no work"))]
#[x_kube(validation = Rule::new("self.workloads.predictor.replicas <= self.kafka.partitions").message("workloads.predictor.replicas must not exceed kafka.partitions: predictors beyond the partition count receive no work"))]
#[x_kube(validation = Rule::new("self.workloads.featurizer.replicas <= self.kafka.partitions").message("workloads.featurizer.replicas must not exceed kafka.partitions: featurizers beyond the partition count receive no work"))]
pub struct VolatilityPipelineSpec {
    /// Coinbase product ids to watch, such as `BTC-USD`. Each product's events stay ordered on
    /// one partition (the product id is the message key).
    #[schemars(length(min = 1, max = 50), inner(regex(pattern = r"^[A-Z0-9]+-[A-Z0-9]+$"), length(max = 32)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub products: Vec<String>,

    /// Coinbase WebSocket feed the ingestor subscribes to: `advancedTrade` (default) or `exchange`.
    #[serde(default)]
    pub feed: FeedKind,

    /// Where the ingestor's ticks come from: the live feed (default) or a recording replayed in
    /// a loop, for clusters without internet access.
    #[serde(default)]
    pub source: SourceSpec,

    /// Kafka cluster, credentials and topics.
    pub kafka: KafkaSpec,

    /// Container image of the workloads (the `spikewatch` binary).
    #[serde(default)]
    pub image: ImageSpec,

    /// Model that scores the feature vectors.
    #[serde(default)]
    pub model: ModelSpec,

    /// Replicas, resources and scheduling of each workload.
    #[serde(default)]
    pub workloads: WorkloadsSpec,

    /// Consumer-lag based scaling of the predictor.
    #[serde(default)]
    pub autoscaling: AutoscalingSpec,

    /// Automatic fallback to the baseline model when the ML model breaks its SLOs.
    #[serde(default)]
    pub rollback: RollbackSpec,

    /// Prometheus Operator objects and the Grafana dashboard created for the pipeline.
    #[serde(default)]
    pub monitoring: MonitoringSpec,

    /// What the pipeline's NetworkPolicy admits besides the API and metrics ports.
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
}

/// What the pipeline's NetworkPolicy admits.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Serve the admin endpoints of the API and the predictor (the rollback's model switch) on
    /// a port of their own, `admin` (8002), and admit that port only from the operator's
    /// namespace. Needs a workload image that reads `ADMIN_BIND` (0.2.0 and later); older
    /// images keep the admin endpoints on the API and metrics ports, where the operator cannot
    /// reach them then.
    #[serde(default)]
    pub admin_from_operator_only: bool,
}

/// Coinbase WebSocket feed.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum FeedKind {
    /// Coinbase Advanced Trade (`ticker` channel).
    #[default]
    AdvancedTrade,
    /// Coinbase Exchange `ws-feed` (`ticker` messages).
    Exchange,
}

impl From<FeedKind> for spikewatch_types::domain::Feed {
    fn from(feed: FeedKind) -> Self {
        match feed {
            FeedKind::AdvancedTrade => spikewatch_types::domain::Feed::AdvancedTrade,
            FeedKind::Exchange => spikewatch_types::domain::Feed::Exchange,
        }
    }
}

/// Container image of the workloads.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository.
    #[serde(default = "default_image_repository")]
    #[schemars(length(min = 1))]
    pub repository: String,
    /// Image tag. Unset: the workload tag the operator is configured with (the chart's
    /// `workloadImage.tag`), never the operator's own version, so upgrading the operator does
    /// not restart any pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"))]
    pub tag: Option<String>,
    /// Kubernetes image pull policy.
    #[serde(default)]
    pub pull_policy: ImagePullPolicy,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec { repository: default_image_repository(), tag: None, pull_policy: ImagePullPolicy::default() }
    }
}

fn default_image_repository() -> String {
    "ghcr.io/spikewatch/spikewatch".into()
}

/// Kubernetes image pull policy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ImagePullPolicy {
    /// Pull only when the image is not on the node.
    #[default]
    IfNotPresent,
    /// Pull on every pod start.
    Always,
    /// Never pull; the image must be on the node.
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// Model that scores the feature vectors.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// `baseline` (the HAR-RV volatility forecaster, the default: it ranked the final-test dates
    /// better, see the model card) or `ml` (HAR-RV with a gradient-boosted correction). A rollback
    /// switches `ml` to `baseline`.
    #[serde(default)]
    pub variant: ModelVariant,
    /// Where the ML model is loaded from: a path inside the image, an `https://` URL, or an MLflow
    /// registry URI `models:/<name>/<version>` or `models:/<name>@<alias>`.
    #[serde(default = "default_model_source")]
    #[schemars(length(min = 1, max = 2048))]
    pub source_uri: String,
    /// Decision threshold on the spike probability, strictly between 0 and 1. Unset = the
    /// threshold stored with the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "exclusiveMinimum" = true, "maximum" = 1, "exclusiveMaximum" = true))]
    #[x_kube(validation = Rule::new("self > 0.0 && self < 1.0").message("threshold must be strictly between 0 and 1"))]
    pub threshold: Option<f64>,
    /// MLflow tracking server, required when `sourceUri` is a `models:/` URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub mlflow_tracking_uri: Option<String>,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            variant: ModelVariant::default(),
            source_uri: default_model_source(),
            threshold: None,
            mlflow_tracking_uri: None,
        }
    }
}

/// The model artifacts every workload image carries at this path (its working directory is
/// `/opt/spikewatch`): images older than the built-in model (`builtin:spikewatch-gbdt`) know no
/// other default, and a pipeline may pin one.
fn default_model_source() -> String {
    "models/artifacts/spikewatch-gbdt".into()
}

/// Which model answers (`MODEL_VARIANT`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum ModelVariant {
    /// HAR-RV with a gradient-boosted correction (ONNX).
    Ml,
    /// The HAR-RV forecaster (computed in Rust, no ONNX Runtime): the default and the fallback of
    /// a rollback.
    #[default]
    Baseline,
}

impl From<ModelVariant> for spikewatch_types::domain::ModelVariant {
    fn from(variant: ModelVariant) -> Self {
        match variant {
            ModelVariant::Ml => spikewatch_types::domain::ModelVariant::Ml,
            ModelVariant::Baseline => spikewatch_types::domain::ModelVariant::Baseline,
        }
    }
}

impl ModelVariant {
    pub fn as_str(self) -> &'static str {
        spikewatch_types::domain::ModelVariant::from(self).as_str()
    }
}
