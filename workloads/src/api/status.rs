//! `GET /health` and `GET /version`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{FEATURE_NAMES, FEATURE_SET_VERSION};
use crate::model::Fallback;

use super::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `healthy` or `unhealthy`.
    pub status: &'static str,
    pub model_loaded: bool,
    pub model_version: Option<String>,
    pub timestamp: DateTime<Utc>,
    /// Why the service is unhealthy (absent when healthy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Healthy when a model is loaded and answers; 503 with the reason otherwise.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, body = HealthResponse, description = "A model is loaded"),
        (status = 503, body = HealthResponse, description = "No model loaded; `reason` says why"),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let timestamp = Utc::now();
    match state.model_if_loaded() {
        Some(model) => (
            StatusCode::OK,
            Json(HealthResponse {
                status: "healthy",
                model_loaded: true,
                model_version: Some(model.info().version.clone()),
                timestamp,
                reason: None,
            }),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(HealthResponse {
                status: "unhealthy",
                model_loaded: false,
                model_version: None,
                timestamp,
                reason: state.not_ready_reason(),
            }),
        ),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionResponse {
    /// Version of spikewatch serving the API.
    pub api_version: &'static str,
    /// Null while no model is loaded (same for the other `model_*` fields).
    pub model_version: Option<String>,
    pub model_name: Option<String>,
    /// `ml` or `baseline`: the variant answering now.
    pub model_variant: Option<&'static str>,
    /// Set while the baseline answers only because the configured ML model could not be loaded:
    /// `reason` (`runtime_unavailable`, `model_unloadable`) and the load error. Null when the
    /// variant answering is the one asked for.
    pub model_fallback: Option<Fallback>,
    /// Decision threshold of the model: `prediction = probability >= threshold`.
    pub threshold: Option<f64>,
    /// Version of the feature definitions the model expects.
    pub feature_set: &'static str,
    /// Order of the features in the Open Inference Protocol input tensor.
    pub feature_names: &'static [&'static str],
}

/// Versions of the API and of the model answering now.
#[utoipa::path(get, path = "/version", tag = "operations", responses((status = 200, body = VersionResponse)))]
pub async fn version(State(state): State<AppState>) -> Json<VersionResponse> {
    let model = state.model_if_loaded();
    let info = model.as_ref().map(|m| m.info());
    Json(VersionResponse {
        api_version: crate::VERSION,
        model_version: info.map(|i| i.version.clone()),
        model_name: info.map(|i| i.name.clone()),
        model_variant: info.map(|i| i.variant.as_str()),
        model_fallback: state.lever().fallback().map(|fallback| Fallback::clone(&fallback)),
        threshold: info.map(|i| i.threshold),
        feature_set: FEATURE_SET_VERSION,
        feature_names: &FEATURE_NAMES,
    })
}
