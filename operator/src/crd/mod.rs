//! The `VolatilityPipeline` custom resource (`spikewatch.io/v1alpha1`).
//!
//! One object describes one running pipeline: which products to watch, where the Kafka cluster
//! is, which model scores the features, how many replicas each workload runs, and what to
//! monitor. The operator turns it into Deployments, Services, topics and monitoring objects
//! (see [`crate::desired`]) and reports back through [`VolatilityPipelineStatus`].
//!
//! Validation happens in the API server: OpenAPI bounds on single fields, CEL rules
//! (`x-kubernetes-validations`) for rules that span fields. Both are generated from the
//! attributes on these types; `docs/operator.md` lists them.

mod conditions;
mod kafka;
mod policies;
mod source;
mod spec;
mod status;
mod workloads;

pub use conditions::{
    ConditionStatus, ConditionType, condition, find_condition, is_condition_true, phase_from_conditions, set_condition,
};
pub use kafka::{
    DeletionPolicy, KafkaSpec, SaslMechanism, SecretRef, SecurityProtocol, TopicManagement, TopicsSpec,
    qualify_bootstrap_servers,
};
pub use policies::{AutoscalingSpec, MonitoringSpec, RecoveryMode, RollbackSpec, ScalingEngine};
pub use source::{ConfigMapRecording, RecordingSource, ReplaySpec, SourceSpec, SourceType, VolumeRecording};
pub use spec::{
    FeedKind, ImagePullPolicy, ImageSpec, ModelSpec, ModelVariant, NetworkPolicySpec, VolatilityPipeline,
    VolatilityPipelineSpec,
};
pub use status::{
    ActiveModel, CheckResult, CheckStatus, ConsumerStatus, Phase, RollbackRecord, RollbackState, RollbackStatus,
    SignalStatus, VolatilityPipelineStatus, WorkloadStatus, WorkloadsStatus,
};
pub use workloads::{Workload, WorkloadSpec, WorkloadsSpec};

/// API group of the custom resource.
pub const GROUP: &str = "spikewatch.io";
/// API version of the custom resource.
pub const VERSION: &str = "v1alpha1";
/// Name of the CustomResourceDefinition (`<plural>.<group>`).
pub const CRD_NAME: &str = "volatilitypipelines.spikewatch.io";
