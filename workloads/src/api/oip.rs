//! Open Inference Protocol v2 (the KServe / Triton / Seldon REST protocol), so that existing
//! KServe clients can call spikewatch. Layout: kserve/open-inference-protocol,
//! `specification/protocol/inference_rest.md`.
//!
//! The model is addressed as `spikewatch` (stable across variant switches and reloads) or by the
//! name of the model answering now. Input: one tensor `[N, F]` (F = the number of features) (FP32 or FP64, row-major, flat or
//! nested, features in `FEATURE_NAMES` order), or one tensor `[N]` per feature, named after the
//! features. Output: `probability` (FP32, `[N]`) and `prediction` (INT64 0/1, `[N]`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::{FEATURE_NAMES, Features, ModelVariant};
use crate::model::Model;

use super::metrics::Scored;
use super::predict::score;
use super::rows::check_feature;
use super::state::AppState;
use crate::http::error::{ApiError, OipError, OipErrorBody};
use crate::http::json_body::JsonBody;

/// The model name that always addresses whatever model answers now.
pub const MODEL_ALIAS: &str = "spikewatch";
/// Name of the single `[N, F]` input tensor in the metadata.
pub const INPUT_NAME: &str = "input";
const N_FEATURES: usize = FEATURE_NAMES.len();

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServerMetadata {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveResponse {
    pub live: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadyResponse {
    pub ready: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelReadyResponse {
    pub name: String,
    pub ready: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetadataTensor {
    pub name: String,
    pub datatype: String,
    /// -1 marks the variable batch dimension.
    pub shape: Vec<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<MetadataTensor>,
    pub outputs: Vec<MetadataTensor>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InferenceRequest {
    /// Echoed in the response.
    pub id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<serde_json::Map<String, Value>>,
    pub inputs: Vec<RequestInput>,
    /// Outputs to return (all when absent).
    pub outputs: Option<Vec<RequestOutput>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestInput {
    pub name: String,
    pub shape: Vec<i64>,
    /// `FP32` or `FP64`.
    pub datatype: String,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// Row-major values, flat or nested.
    #[schema(value_type = Vec<f64>)]
    pub data: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestOutput {
    pub name: String,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InferenceResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `model_variant`, `threshold` and the name of the model that answered.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Map<String, Value>,
    pub outputs: Vec<ResponseOutput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseOutput {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub datatype: &'static str,
    pub data: TensorData,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TensorData {
    Fp32(Vec<f32>),
    Int64(Vec<i64>),
}

/// Server metadata.
#[utoipa::path(get, path = "/v2", tag = "open-inference-protocol", responses((status = 200, body = ServerMetadata)))]
pub async fn server_metadata() -> Json<ServerMetadata> {
    Json(ServerMetadata { name: "spikewatch".into(), version: crate::VERSION.into(), extensions: vec![] })
}

/// Server live: the process answers HTTP.
#[utoipa::path(get, path = "/v2/health/live", tag = "open-inference-protocol", responses((status = 200, body = LiveResponse)))]
pub async fn live() -> Json<LiveResponse> {
    Json(LiveResponse { live: true })
}

/// Server ready: a model is loaded (503 otherwise).
#[utoipa::path(get, path = "/v2/health/ready", tag = "open-inference-protocol",
    responses((status = 200, body = ReadyResponse), (status = 503, body = ReadyResponse)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<ReadyResponse>) {
    let ready = state.model_if_loaded().is_some();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(ReadyResponse { ready }))
}

/// Model metadata: input and output tensors.
#[utoipa::path(get, path = "/v2/models/{name}", tag = "open-inference-protocol",
    params(("name" = String, Path, description = "`spikewatch` or the name of the model answering now")),
    responses((status = 200, body = ModelMetadata), (status = 404, body = OipErrorBody), (status = 503, body = OipErrorBody)))]
pub async fn model_metadata(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ModelMetadata>, OipError> {
    let model = resolve(&state, &name, None)?;
    Ok(Json(metadata(&name, model.as_ref())))
}

/// Model metadata of one version (only the version answering now exists).
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}", tag = "open-inference-protocol",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = ModelMetadata), (status = 404, body = OipErrorBody)))]
pub async fn model_version_metadata(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelMetadata>, OipError> {
    let model = resolve(&state, &name, Some(&version))?;
    Ok(Json(metadata(&name, model.as_ref())))
}

/// Model ready.
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "open-inference-protocol",
    params(("name" = String, Path)),
    responses((status = 200, body = ModelReadyResponse), (status = 404, body = OipErrorBody), (status = 503, body = OipErrorBody)))]
pub async fn model_ready(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ModelReadyResponse>, OipError> {
    resolve(&state, &name, None)?;
    Ok(Json(ModelReadyResponse { name, ready: true }))
}

/// Model ready, one version.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}/ready", tag = "open-inference-protocol",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = ModelReadyResponse), (status = 404, body = OipErrorBody)))]
pub async fn model_version_ready(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelReadyResponse>, OipError> {
    resolve(&state, &name, Some(&version))?;
    Ok(Json(ModelReadyResponse { name, ready: true }))
}

/// Inference.
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "open-inference-protocol",
    params(("name" = String, Path)), request_body = InferenceRequest,
    responses(
        (status = 200, body = InferenceResponse),
        (status = 400, body = OipErrorBody, description = "Malformed request, wrong datatype or shape, non-finite value"),
        (status = 404, body = OipErrorBody, description = "Unknown model"),
        (status = 413, body = OipErrorBody, description = "Body or batch over the limit"),
        (status = 415, body = OipErrorBody),
        (status = 422, body = OipErrorBody, description = "Value out of range"),
        (status = 500, body = OipErrorBody, description = "Inference failed"),
    ))]
pub async fn infer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<JsonBody<InferenceRequest>, ApiError>,
) -> Result<Response, OipError> {
    let model = resolve(&state, &name, None)?;
    run_inference(state, name, model, body?.0).await
}

/// Inference on one version.
#[utoipa::path(post, path = "/v2/models/{name}/versions/{version}/infer", tag = "open-inference-protocol",
    params(("name" = String, Path), ("version" = String, Path)), request_body = InferenceRequest,
    responses((status = 200, body = InferenceResponse), (status = 400, body = OipErrorBody), (status = 404, body = OipErrorBody)))]
pub async fn infer_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    body: Result<JsonBody<InferenceRequest>, ApiError>,
) -> Result<Response, OipError> {
    let model = resolve(&state, &name, Some(&version))?;
    run_inference(state, name, model, body?.0).await
}

async fn run_inference(
    state: AppState,
    name: String,
    model: Arc<dyn Model>,
    request: InferenceRequest,
) -> Result<Response, OipError> {
    let wanted = requested_outputs(request.outputs.as_deref())?;
    let rows = rows_from_inputs(&request.inputs, state.limits().max_rows)?;
    let scored = Scored { variant: model.info().variant, rows: rows.len() };
    let n = rows.len();
    let probabilities = score(model.clone(), rows).await?;

    let info = model.info();
    let mut outputs = Vec::with_capacity(2);
    if wanted.probability {
        let data = probabilities.iter().map(|&p| p as f32).collect();
        outputs.push(ResponseOutput {
            name: "probability",
            shape: vec![n],
            datatype: "FP32",
            data: TensorData::Fp32(data),
        });
    }
    if wanted.prediction {
        let data = probabilities.iter().map(|&p| i64::from(p >= info.threshold)).collect();
        outputs.push(ResponseOutput {
            name: "prediction",
            shape: vec![n],
            datatype: "INT64",
            data: TensorData::Int64(data),
        });
    }
    let mut parameters = serde_json::Map::new();
    parameters.insert("model_variant".into(), info.variant.as_str().into());
    parameters.insert("threshold".into(), info.threshold.into());
    parameters.insert("served_model".into(), info.name.clone().into());
    let body = InferenceResponse {
        model_name: name,
        model_version: info.version.clone(),
        id: request.id,
        parameters,
        outputs,
    };
    let mut response = Json(body).into_response();
    response.extensions_mut().insert(scored);
    Ok(response)
}

/// The model answering now, if `name` (and `version`, when given) address it.
fn resolve(state: &AppState, name: &str, version: Option<&str>) -> Result<Arc<dyn Model>, ApiError> {
    let model = state.model()?;
    let info = model.info();
    if name != MODEL_ALIAS && name != info.name {
        return Err(ApiError::NotFound {
            field: "model_name",
            reason: format!("unknown model {name:?}: this server serves {MODEL_ALIAS:?} (now {:?})", info.name),
        });
    }
    if let Some(version) = version
        && version != info.version
    {
        return Err(ApiError::NotFound {
            field: "model_version",
            reason: format!("unknown version {version:?} of {name:?}: the version answering now is {:?}", info.version),
        });
    }
    Ok(model)
}

fn metadata(name: &str, model: &dyn Model) -> ModelMetadata {
    let info = model.info();
    let platform = match info.variant {
        ModelVariant::Ml => "onnxruntime_onnx",
        ModelVariant::Baseline => "spikewatch_har_rv",
    };
    let n = |name: &str, datatype: &str, shape: Vec<i64>| MetadataTensor {
        name: name.into(),
        datatype: datatype.into(),
        shape,
    };
    ModelMetadata {
        name: name.into(),
        versions: vec![info.version.clone()],
        platform: platform.into(),
        inputs: vec![n(INPUT_NAME, "FP32", vec![-1, N_FEATURES as i64])],
        outputs: vec![n("probability", "FP32", vec![-1]), n("prediction", "INT64", vec![-1])],
    }
}

struct Wanted {
    probability: bool,
    prediction: bool,
}

fn requested_outputs(outputs: Option<&[RequestOutput]>) -> Result<Wanted, ApiError> {
    let Some(outputs) = outputs else {
        return Ok(Wanted { probability: true, prediction: true });
    };
    let mut wanted = Wanted { probability: false, prediction: false };
    for (i, output) in outputs.iter().enumerate() {
        match output.name.as_str() {
            "probability" => wanted.probability = true,
            "prediction" => wanted.prediction = true,
            other => {
                return Err(ApiError::Invalid {
                    field: format!("outputs[{i}].name"),
                    reason: format!("unknown output {other:?} (expected \"probability\" or \"prediction\")"),
                });
            }
        }
    }
    Ok(wanted)
}

/// The feature rows carried by `inputs`: one `[N, F]` tensor, or one `[N]` tensor per feature, named
/// after the features.
pub fn rows_from_inputs(inputs: &[RequestInput], max_rows: usize) -> Result<Vec<Features>, ApiError> {
    match inputs {
        [] => Err(ApiError::Invalid { field: "inputs".into(), reason: "must contain at least one tensor".into() }),
        [matrix] => rows_from_matrix(matrix, max_rows),
        columns => rows_from_columns(columns, max_rows),
    }
}

fn rows_from_matrix(input: &RequestInput, max_rows: usize) -> Result<Vec<Features>, ApiError> {
    let at = "inputs[0]";
    check_datatype(input, at)?;
    let n = match input.shape.as_slice() {
        &[n, width] if width == N_FEATURES as i64 => batch_size(n, at, max_rows)?,
        shape => {
            return Err(ApiError::Invalid {
                field: format!("{at}.shape"),
                reason: format!("expected [N, {N_FEATURES}] (features in FEATURE_NAMES order), got {shape:?}"),
            });
        }
    };
    let values = flatten(&input.data, at, n * N_FEATURES)?;
    values
        .chunks_exact(N_FEATURES)
        .enumerate()
        .map(|(r, chunk)| {
            let mut row = [0.0; N_FEATURES];
            for (c, &value) in chunk.iter().enumerate() {
                check_feature(c, value).map_err(|violation| {
                    violation.into_error(format!("{at}.data[{}] (row {r}, {})", r * N_FEATURES + c, FEATURE_NAMES[c]))
                })?;
                row[c] = value;
            }
            Ok(Features(row))
        })
        .collect()
}

fn rows_from_columns(inputs: &[RequestInput], max_rows: usize) -> Result<Vec<Features>, ApiError> {
    let mut columns: [Option<Vec<f64>>; N_FEATURES] = std::array::from_fn(|_| None);
    let mut n_rows = None;
    for (i, input) in inputs.iter().enumerate() {
        let at = format!("inputs[{i}]");
        let Some(c) = FEATURE_NAMES.iter().position(|name| *name == input.name) else {
            return Err(ApiError::Invalid {
                field: format!("{at}.name"),
                reason: format!(
                    "unknown input {:?}: send one [N, {N_FEATURES}] tensor, or one [N] tensor per feature name",
                    input.name
                ),
            });
        };
        if columns[c].is_some() {
            return Err(ApiError::Invalid {
                field: format!("{at}.name"),
                reason: format!("input {:?} given twice", input.name),
            });
        }
        check_datatype(input, &at)?;
        let n = match input.shape.as_slice() {
            &[n] | &[n, 1] => batch_size(n, &at, max_rows)?,
            shape => {
                return Err(ApiError::Invalid {
                    field: format!("{at}.shape"),
                    reason: format!("expected [N] or [N, 1], got {shape:?}"),
                });
            }
        };
        if *n_rows.get_or_insert(n) != n {
            return Err(ApiError::Invalid {
                field: format!("{at}.shape"),
                reason: format!("all inputs must have the same batch size ({} here, {n} before)", n_rows.unwrap_or(0)),
            });
        }
        let values = flatten(&input.data, &at, n)?;
        for (r, &value) in values.iter().enumerate() {
            check_feature(c, value)
                .map_err(|violation| violation.into_error(format!("{at}.data[{r}] ({})", input.name)))?;
        }
        columns[c] = Some(values);
    }
    if let Some(missing) = columns.iter().position(Option::is_none) {
        return Err(ApiError::MissingField { field: format!("inputs (tensor {:?})", FEATURE_NAMES[missing]) });
    }
    let n = n_rows.unwrap_or(0);
    Ok((0..n).map(|r| Features(std::array::from_fn(|c| columns[c].as_ref().map_or(0.0, |column| column[r])))).collect())
}

fn check_datatype(input: &RequestInput, at: &str) -> Result<(), ApiError> {
    match input.datatype.as_str() {
        "FP32" | "FP64" => Ok(()),
        other => Err(ApiError::Invalid {
            field: format!("{at}.datatype"),
            reason: format!("unsupported datatype {other:?} (expected \"FP32\" or \"FP64\")"),
        }),
    }
}

fn batch_size(n: i64, at: &str, max_rows: usize) -> Result<usize, ApiError> {
    let field = || format!("{at}.shape");
    if n < 1 {
        return Err(ApiError::Invalid {
            field: field(),
            reason: format!("batch dimension must be at least 1, got {n}"),
        });
    }
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > max_rows {
        return Err(ApiError::TooManyRows { field: field(), rows: n, max: max_rows });
    }
    Ok(n)
}

/// The numbers of `data` in row-major order (nested arrays flattened), exactly `expected` of them.
fn flatten(data: &Value, at: &str, expected: usize) -> Result<Vec<f64>, ApiError> {
    fn walk(value: &Value, at: &str, out: &mut Vec<f64>, limit: usize) -> Result<(), ApiError> {
        match value {
            Value::Array(items) => items.iter().try_for_each(|item| walk(item, at, out, limit)),
            // Stop early on a body far larger than its shape says.
            _ if out.len() > limit => Ok(()),
            Value::Number(number) => {
                out.push(number.as_f64().unwrap_or(f64::NAN));
                Ok(())
            }
            other => Err(ApiError::InvalidType {
                field: format!("{at}.data[{}]", out.len()),
                reason: format!("expected a number, got {}", json_type(other)),
            }),
        }
    }
    let mut out = Vec::with_capacity(expected);
    if !data.is_array() {
        return Err(ApiError::InvalidType {
            field: format!("{at}.data"),
            reason: "expected an array of numbers".into(),
        });
    }
    walk(data, at, &mut out, expected)?;
    if out.len() != expected {
        return Err(ApiError::Invalid {
            field: format!("{at}.data"),
            reason: format!(
                "shape says {expected} values, data has {}",
                if out.len() > expected { "more".to_string() } else { out.len().to_string() }
            ),
        });
    }
    Ok(out)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
