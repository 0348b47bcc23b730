//! `spikewatch-operator render`: every object the operator would apply for a pipeline, printed
//! as YAML, without a cluster. The same pure builders as the controller (`crate::desired`), fed
//! with the pipeline and, optionally, a status: what the automation decided (a rollback, the
//! autoscaler's replicas) is rendered exactly as the controller would render it.
//!
//! For reviews and GitOps diffs: `render --input pipeline.yaml` shows what a change to the spec
//! does to the Deployments before it is merged. The manifest is first checked as the API server
//! checks it ([`crate::validate`]: the CRD's schema and validation rules), so a pipeline the
//! cluster would refuse fails here with the same message. The output starts with a comment
//! naming the operator's version and the input, each object's keys come in the order people read
//! them (`apiVersion`, `kind`, `metadata`, `spec` or `data`, then the rest), and the objects carry
//! no owner references unless asked: in a GitOps repository, the GitOps tool owns the objects,
//! and an owner reference needs the uid the API server gave the pipeline.

use std::io::Read;
use std::path::{Path, PathBuf};

use kube::api::DynamicObject;
use serde_json::Value;

use crate::crd::{VolatilityPipeline, VolatilityPipelineStatus};
use crate::desired::{KafkaTopicVersion, RenderOptions, desired_objects};

/// `metadata.uid` while rendering a manifest that has none (the API server assigns it); it never
/// reaches the output: without `--owner-references` the owner references are left out, and with
/// it the manifest must carry its uid.
const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// The VolatilityPipeline manifest (YAML or JSON); `-` reads standard input.
    #[arg(short = 'f', long = "input", alias = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// A status to render from (YAML or JSON): a whole VolatilityPipeline, as
    /// `kubectl get vp NAME -o yaml` prints it, or only its `status`.
    #[arg(long, value_name = "FILE")]
    pub status: Option<PathBuf>,
    /// Namespace of a manifest that names none.
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Workload image tag of a pipeline without `spec.image.tag`, as the operator's own flag.
    #[arg(long, value_name = "TAG", env = "SPIKEWATCH_WORKLOAD_IMAGE_TAG")]
    pub workload_image_tag: Option<String>,
    /// Namespace the operator runs in (the peer a `networkPolicy.adminFromOperatorOnly` policy admits).
    #[arg(long, value_name = "NAMESPACE", default_value = "spikewatch-system")]
    pub operator_namespace: String,
    /// Version of Strimzi's KafkaTopic API to write: `v1` (Strimzi 0.49 and later) or `v1beta2`.
    #[arg(long, value_name = "VERSION", default_value = "v1beta2", value_parser = |s: &str| s.parse::<KafkaTopicVersion>())]
    pub kafka_topic_version: KafkaTopicVersion,
    /// Give each object an owner reference to the pipeline, as the operator does (so that
    /// deleting the pipeline deletes them). Needs the pipeline's `metadata.uid`: render the
    /// object as the cluster stores it (`kubectl get vp NAME -o yaml`).
    #[arg(long)]
    pub owner_references: bool,
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
    /// What the API server would answer to `kubectl apply`.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// The rendered objects as one multi-document YAML text, in apply order.
pub fn render(args: &RenderArgs) -> Result<String, RenderError> {
    let manifest_path = display(&args.file);
    let mut vp = parse_pipeline(&read(&args.file)?, &manifest_path)?;
    if vp.metadata.namespace.is_none() {
        vp.metadata.namespace = Some(args.namespace.clone());
    }
    if vp.metadata.uid.is_none() {
        if args.owner_references {
            return Err(RenderError::Invalid {
                path: manifest_path,
                message: "--owner-references needs the pipeline's metadata.uid, which the API server assigns: \
                          render the object as stored (`kubectl get vp NAME -o yaml`)"
                    .into(),
            });
        }
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
    let mut out = header(&vp, &manifest_path, args);
    for desired in objects {
        let mut object = with_type(desired.object, &desired.resource);
        if !args.owner_references
            && let Some(Value::Object(metadata)) = object.get_mut("metadata")
        {
            metadata.remove("ownerReferences");
        }
        let yaml = serde_yaml::to_string(&ordered(&object))
            .map_err(|e| RenderError::Build { path: manifest_path.clone(), message: e.to_string() })?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

/// The comment the output starts with: what made it, from what.
fn header(vp: &VolatilityPipeline, input: &str, args: &RenderArgs) -> String {
    let mut line = format!("spikewatch-operator render --input {input}");
    if let Some(status) = &args.status {
        line.push_str(&format!(" --status {}", display(status)));
    }
    if args.owner_references {
        line.push_str(" --owner-references");
    }
    format!(
        "# Rendered by spikewatch-operator {} from {input} (VolatilityPipeline {}/{}).\n\
         # Generated: regenerate with `{line}`.\n",
        env!("CARGO_PKG_VERSION"),
        vp.metadata.namespace.as_deref().unwrap_or_default(),
        vp.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Keys in reading order: `apiVersion`, `kind`, `metadata` (`name`, `namespace`, `labels`,
/// `annotations` first), `spec` or `data`, then the others (alphabetically, as below the top).
fn ordered(object: &Value) -> serde_yaml::Value {
    const TOP: [&str; 6] = ["apiVersion", "kind", "metadata", "spec", "data", "stringData"];
    const METADATA: [&str; 4] = ["name", "namespace", "labels", "annotations"];
    fn mapping(fields: &serde_json::Map<String, Value>, first: &[&str], nested: bool) -> serde_yaml::Value {
        let mut out = serde_yaml::Mapping::new();
        let rest = fields.keys().filter(|k| !first.contains(&k.as_str())).map(String::as_str);
        for key in first.iter().copied().filter(|k| fields.contains_key(*k)).chain(rest) {
            let value = &fields[key];
            let value = match value {
                Value::Object(inner) if nested && key == "metadata" => mapping(inner, &METADATA, false),
                other => serde_yaml::to_value(other).unwrap_or(serde_yaml::Value::Null),
            };
            out.insert(serde_yaml::Value::String(key.to_string()), value);
        }
        serde_yaml::Value::Mapping(out)
    }
    match object {
        Value::Object(fields) => mapping(fields, &TOP, true),
        other => serde_yaml::to_value(other).unwrap_or(serde_yaml::Value::Null),
    }
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

/// A VolatilityPipeline manifest: checked kind and apiVersion, then as the API server checks it
/// (the CRD's defaults, schema and validation rules), then every field of the spec.
pub fn parse_pipeline(text: &str, path: &str) -> Result<VolatilityPipeline, RenderError> {
    let mut value = parse_yaml(text, path)?;
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
    crate::validate::validate(&mut value).map_err(|message| RenderError::Invalid { path: path.into(), message })?;
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
