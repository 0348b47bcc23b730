//! The four workloads of a pipeline and their per-workload settings.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Deserializer, Serialize};

/// One of the pipeline's workloads; each runs as one Deployment of `spikewatch <subcommand>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    Ingestor,
    Featurizer,
    Predictor,
    Api,
}

impl Workload {
    /// Every workload, in data-flow order.
    pub const ALL: [Workload; 4] = [Workload::Ingestor, Workload::Featurizer, Workload::Predictor, Workload::Api];

    /// Name of the component (`app.kubernetes.io/component`) and suffix of its objects' names.
    pub fn component(self) -> &'static str {
        match self {
            Workload::Ingestor => "ingestor",
            Workload::Featurizer => "featurizer",
            Workload::Predictor => "predictor",
            Workload::Api => "api",
        }
    }

    /// `spikewatch` subcommand the workload runs.
    pub fn subcommand(self) -> &'static str {
        match self {
            Workload::Ingestor => "ingest",
            Workload::Featurizer => "featurize",
            Workload::Predictor => "predict",
            Workload::Api => "serve",
        }
    }

    /// Port serving `/health` and `/metrics`: the API serves everything on 8000, the stream
    /// workloads on 8001.
    pub fn port(self) -> i32 {
        match self {
            Workload::Api => 8000,
            _ => 8001,
        }
    }

    /// Name of that port in the pod and the Service.
    pub fn port_name(self) -> &'static str {
        match self {
            Workload::Api => "http",
            _ => "metrics",
        }
    }

    /// Port of the admin endpoints when they are served apart (`networkPolicy.adminFromOperatorOnly`).
    pub const ADMIN_PORT: i32 = 8002;
    /// Name of that port in the pod.
    pub const ADMIN_PORT_NAME: &'static str = "admin";

    /// Whether the workload consumes a topic in a consumer group (its replicas share partitions).
    pub fn is_consumer(self) -> bool {
        matches!(self, Workload::Featurizer | Workload::Predictor)
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.component())
    }
}

/// Replicas, resources and scheduling of each workload.
///
/// The defaults are per field: a workload listed with only some fields (say a `nodeSelector`)
/// keeps the default replicas and resources of its kind. The schema carries them on each
/// workload's `replicas` and `resources`, so the API server fills them in; deserializing here
/// fills them the same way, for pipelines that never went through an API server (`render`).
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.ingestor.replicas <= 1").message("ingestor.replicas must be 0 or 1: two ingestors would publish every tick twice"))]
pub struct WorkloadsSpec {
    /// The Coinbase WebSocket ingestor (`spikewatch ingest`). At most one replica.
    #[serde(default = "WorkloadSpec::ingestor_default", deserialize_with = "ingestor")]
    #[schemars(transform = ingestor_schema)]
    pub ingestor: WorkloadSpec,
    /// The feature engine (`spikewatch featurize`).
    #[serde(default = "WorkloadSpec::featurizer_default", deserialize_with = "featurizer")]
    #[schemars(transform = featurizer_schema)]
    pub featurizer: WorkloadSpec,
    /// The model consumer (`spikewatch predict`). Managed by `autoscaling` when it is enabled.
    #[serde(default = "WorkloadSpec::predictor_default", deserialize_with = "predictor")]
    #[schemars(transform = predictor_schema)]
    pub predictor: WorkloadSpec,
    /// The prediction API (`spikewatch serve`).
    #[serde(default = "WorkloadSpec::api_default", deserialize_with = "api")]
    #[schemars(transform = api_schema)]
    pub api: WorkloadSpec,
}

/// A workload as written in a manifest: what is absent takes the workload's own default.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WrittenWorkloadSpec {
    replicas: Option<i32>,
    resources: Option<ResourceRequirements>,
    node_selector: Option<BTreeMap<String, String>>,
    tolerations: Option<Vec<Toleration>>,
}

fn with_defaults<'de, D: Deserializer<'de>>(d: D, defaults: WorkloadSpec) -> Result<WorkloadSpec, D::Error> {
    let written = WrittenWorkloadSpec::deserialize(d)?;
    Ok(WorkloadSpec {
        replicas: written.replicas.unwrap_or(defaults.replicas),
        resources: written.resources.or(defaults.resources),
        node_selector: written.node_selector,
        tolerations: written.tolerations,
    })
}

fn ingestor<'de, D: Deserializer<'de>>(d: D) -> Result<WorkloadSpec, D::Error> {
    with_defaults(d, WorkloadSpec::ingestor_default())
}
fn featurizer<'de, D: Deserializer<'de>>(d: D) -> Result<WorkloadSpec, D::Error> {
    with_defaults(d, WorkloadSpec::featurizer_default())
}
fn predictor<'de, D: Deserializer<'de>>(d: D) -> Result<WorkloadSpec, D::Error> {
    with_defaults(d, WorkloadSpec::predictor_default())
}
fn api<'de, D: Deserializer<'de>>(d: D) -> Result<WorkloadSpec, D::Error> {
    with_defaults(d, WorkloadSpec::api_default())
}

/// Puts a workload's own defaults on its `replicas` and `resources` in the schema.
fn field_defaults(schema: &mut Schema, defaults: WorkloadSpec) {
    let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    if let Some(replicas) = properties.get_mut("replicas").and_then(|r| r.as_object_mut()) {
        replicas.insert("default".into(), defaults.replicas.into());
    }
    if let (Some(resources), Some(value)) = (
        properties.get_mut("resources").and_then(|r| r.as_object_mut()),
        defaults.resources.and_then(|r| serde_json::to_value(r).ok()),
    ) {
        resources.insert("default".into(), value);
    }
}

fn ingestor_schema(schema: &mut Schema) {
    field_defaults(schema, WorkloadSpec::ingestor_default());
}
fn featurizer_schema(schema: &mut Schema) {
    field_defaults(schema, WorkloadSpec::featurizer_default());
}
fn predictor_schema(schema: &mut Schema) {
    field_defaults(schema, WorkloadSpec::predictor_default());
}
fn api_schema(schema: &mut Schema) {
    field_defaults(schema, WorkloadSpec::api_default());
}

impl WorkloadsSpec {
    pub fn get(&self, workload: Workload) -> &WorkloadSpec {
        match workload {
            Workload::Ingestor => &self.ingestor,
            Workload::Featurizer => &self.featurizer,
            Workload::Predictor => &self.predictor,
            Workload::Api => &self.api,
        }
    }
}

impl Default for WorkloadsSpec {
    fn default() -> Self {
        WorkloadsSpec {
            ingestor: WorkloadSpec::ingestor_default(),
            featurizer: WorkloadSpec::featurizer_default(),
            predictor: WorkloadSpec::predictor_default(),
            api: WorkloadSpec::api_default(),
        }
    }
}

/// Replicas, resources and scheduling of one workload.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Number of pods. Default: 1, the API 2.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,
    /// CPU and memory requests and limits of the workload's container. Default: the workload's
    /// own (`docs/operator.md`); set, it replaces them as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
}

fn default_replicas() -> i32 {
    1
}

impl WorkloadSpec {
    fn with(replicas: i32, cpu_request: &str, memory: &str, cpu_limit: &str) -> WorkloadSpec {
        let q = |s: &str| Quantity(s.to_string());
        WorkloadSpec {
            replicas,
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([("cpu".into(), q(cpu_request)), ("memory".into(), q(memory))])),
                limits: Some(BTreeMap::from([("cpu".into(), q(cpu_limit)), ("memory".into(), q(memory))])),
                ..Default::default()
            }),
            node_selector: None,
            tolerations: None,
        }
    }
    pub fn ingestor_default() -> WorkloadSpec {
        WorkloadSpec::with(1, "50m", "64Mi", "500m")
    }
    pub fn featurizer_default() -> WorkloadSpec {
        WorkloadSpec::with(1, "100m", "128Mi", "1")
    }
    pub fn predictor_default() -> WorkloadSpec {
        WorkloadSpec::with(1, "200m", "256Mi", "2")
    }
    pub fn api_default() -> WorkloadSpec {
        WorkloadSpec::with(2, "100m", "256Mi", "1")
    }
}
