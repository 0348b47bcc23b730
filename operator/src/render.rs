//! `spikewatch-operator render`: every object the operator would apply for a pipeline, printed
//! as YAML, without a cluster. The same pure builders as the controller (`crate::desired`), fed
//! with the pipeline and, optionally, a status: what the automation decided (a rollback, the
//! autoscaler's replicas) is rendered exactly as the controller would render it.
//!
//! For reviews and GitOps diffs: `render -f pipeline.yaml` shows what a change to the spec does
//! to the Deployments before it is merged.

use std::io::Read;
use std::path::{Path, PathBuf};

use kube::api::DynamicObject;
use serde_json::Value;

use crate::crd::{VolatilityPipeline, VolatilityPipelineStatus};
use crate::desired::{KafkaTopicVersion, RenderOptions, desired_objects};

/// `metadata.uid` of a manifest that has none (it is assigned by the API server): the owner
/// references of the rendered children carry it.
pub const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// The VolatilityPipeline manifest (YAML or JSON); `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// A status to render from (YAML or JSON): a whole VolatilityPipeline, as
    /// `kubectl get vp NAME -o yaml` prints it, or only its `status`.
    #[arg(long, value_name = "FILE")]
    pub status: Option<PathBuf>,
    /// Namespace of a manifest that names none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Workload image tag of a pipeline without `spec.image.tag`, as the operator's own flag.
    #[arg(long, env = "WORKLOAD_IMAGE_TAG")]
    pub workload_image_tag: Option<String>,
    /// Namespace the operator runs in (the peer a `networkPolicy.adminFromOperatorOnly` policy admits).
    #[arg(long, default_value = "spikewatch-system")]
    pub operator_namespace: String,
    /// Version of Strimzi's KafkaTopic API to write: `v1` (Strimzi 0.49 and later) or `v1beta2`.
    #[arg(long, default_value = "v1beta2", value_parser = |s: &str| s.parse::<KafkaTopicVersion>())]
    pub kafka_topic_version: KafkaTopicVersion,
}

/// Why a pipeline could not be rendered; the message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: cannot render the pipeline: {message}")]
    Build { path: String, message: String },
}

/// The rendered objects as one multi-document YAML text, in apply order.
pub fn render(args: &RenderArgs) -> Result<String, RenderError> {
    let manifest_path = display(&args.file);
    let mut vp = parse_pipeline(&read(&args.file)?, &manifest_path)?;
    if vp.metadata.namespace.is_none() {
        vp.metadata.namespace = Some(args.namespace.clone());
    }
    if vp.metadata.uid.is_none() {
        vp.metadata.uid = Some(PLACEHOLDER_UID.into());
    }
    if let Some(path) = &args.status {
        vp.status = Some(parse_status(&read(path)?, &display(path))?);
    }
    let options = RenderOptions {
        kafka_topic_version: args.kafka_topic_version,
        default_image_tag: args.workload_image_tag.clone(),
        operator_namespace: Some(args.operator_namespace.clone()),
    };
    let objects = desired_objects(&vp, &options)
        .map_err(|e| RenderError::Build { path: manifest_path.clone(), message: e.to_string() })?;
    let mut out = String::new();
    for desired in objects {
        let yaml = serde_yaml::to_string(&with_type(desired.object, &desired.resource))
            .map_err(|e| RenderError::Build { path: manifest_path.clone(), message: e.to_string() })?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

fn display(path: &Path) -> String {
    if path == Path::new("-") { "<stdin>".into() } else { path.display().to_string() }
}

fn read(path: &Path) -> Result<String, RenderError> {
    let failed = |source| RenderError::Read { path: display(path), source };
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(failed)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(failed)
    }
}

fn parse_yaml(text: &str, path: &str) -> Result<Value, RenderError> {
    let value: Value = serde_yaml::from_str(text)
        .map_err(|e| RenderError::Parse { path: path.into(), message: format!("not YAML: {e}") })?;
    if value.is_null() {
        return Err(RenderError::Parse { path: path.into(), message: "the file is empty".into() });
    }
    Ok(value)
}

/// A VolatilityPipeline manifest: checked kind and apiVersion, then every field of the spec.
pub fn parse_pipeline(text: &str, path: &str) -> Result<VolatilityPipeline, RenderError> {
    let value = parse_yaml(text, path)?;
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("<none>");
    let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or("<none>");
    if kind != "VolatilityPipeline" || api_version != "spikewatch.io/v1alpha1" {
        return Err(RenderError::Parse {
            path: path.into(),
            message: format!(
                "expected a spikewatch.io/v1alpha1 VolatilityPipeline, found {api_version} {kind} \
                 (one object per file)"
            ),
        });
    }
    if value.pointer("/metadata/name").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(RenderError::Parse { path: path.into(), message: "metadata.name is missing".into() });
    }
    serde_path_to_error::deserialize(value).map_err(|e| RenderError::Parse {
        path: path.into(),
        message: format!("not a valid VolatilityPipeline: {}: {}", e.path(), e.inner()),
    })
}

/// A status: the `status` of a whole object, or the status itself.
pub fn parse_status(text: &str, path: &str) -> Result<VolatilityPipelineStatus, RenderError> {
    let value = parse_yaml(text, path)?;
    let status = match value.get("kind") {
        Some(_) => value
            .get("status")
            .cloned()
            .ok_or_else(|| RenderError::Parse { path: path.into(), message: "the object has no status".into() })?,
        None => value,
    };
    serde_path_to_error::deserialize(status).map_err(|e| RenderError::Parse {
        path: path.into(),
        message: format!("not a valid VolatilityPipeline status: {}: {}", e.path(), e.inner()),
    })
}

/// The object with its `apiVersion` and `kind` (the typed builders leave them to the client).
fn with_type(object: DynamicObject, resource: &kube::api::ApiResource) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), Value::String(resource.api_version.clone()));
    out.insert("kind".into(), Value::String(resource.kind.clone()));
    if let Ok(Value::Object(fields)) = serde_json::to_value(&object) {
        for (key, value) in fields {
            if key != "apiVersion" && key != "kind" {
                out.insert(key, value);
            }
        }
    }
    Value::Object(out)
}
