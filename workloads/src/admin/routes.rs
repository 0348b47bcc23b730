//! `POST /admin/reload` and `POST /admin/variant`: the same routes, checks, answers and status
//! codes on every server that has them (the API's port, the predictor's metrics port, or
//! `api.admin_bind`).

use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::lever::ModelLever;
use crate::domain::ModelVariant;
use crate::http::connections::client_address;
use crate::http::{ApiError, BodyLimit, JsonBody};
use crate::model::ModelInfo;

/// What the admin routes need: the lever and the largest body they read.
#[derive(Clone)]
pub struct AdminState {
    pub lever: ModelLever,
    pub body_limit: BodyLimit,
}

impl FromRef<AdminState> for BodyLimit {
    fn from_ref(state: &AdminState) -> Self {
        state.body_limit
    }
}

/// The admin routes over `lever`, ready to be merged into any server's router.
pub fn router<S>(lever: ModelLever, body_limit: BodyLimit) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/admin/reload", post(reload))
        .route("/admin/variant", post(set_variant))
        .with_state(AdminState { lever, body_limit })
}

/// Extractor that only succeeds for an authenticated admin request.
pub struct Admin;

impl FromRequestParts<AdminState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Self::Rejection> {
        let authorization = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let client = client_address(&parts.extensions).map(|addr| addr.ip());
        state.lever.auth().check(client, authorization).map(|()| Admin)
    }
}

/// The model answering after an admin action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelStatus {
    pub model_name: String,
    pub model_version: String,
    /// `ml` or `baseline`.
    pub model_variant: String,
    pub threshold: f64,
}

impl From<ModelInfo> for ModelStatus {
    fn from(info: ModelInfo) -> Self {
        ModelStatus {
            model_name: info.name,
            model_version: info.version,
            model_variant: info.variant.as_str().into(),
            threshold: info.threshold,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VariantRequest {
    /// `ml` (HAR-RV with the boosted correction) or `baseline` (HAR-RV).
    #[schema(value_type = String, example = "baseline")]
    pub variant: String,
}

/// Reload the model from its configured source and swap it in atomically. In-flight requests
/// finish on the model they started with; on failure the current model keeps serving.
#[utoipa::path(post, path = "/admin/reload", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = ModelStatus, description = "The model now answering"),
        (status = 401, body = crate::http::error::ErrorBody, description = "Missing or invalid bearer token"),
        (status = 403, body = crate::http::error::ErrorBody, description = "Admin endpoints disabled (no token file)"),
        (status = 429, body = crate::http::error::ErrorBody, description = "Too many failed authentications from this address"),
        (status = 500, body = crate::http::error::ErrorBody, description = "Reload failed; the previous model still serves"),
        (status = 503, body = crate::http::error::ErrorBody, description = "No model loaded yet"),
    ))]
pub async fn reload(_: Admin, State(lever): State<ModelLever>) -> Result<Json<ModelStatus>, ApiError> {
    Ok(Json(lever.reload().await?.into()))
}

/// Switch between `ml` and `baseline` at runtime. The operator's automatic rollback uses this;
/// `/version` and the `model_variant_active` metric report it.
#[utoipa::path(post, path = "/admin/variant", tag = "admin", security(("bearer" = [])), request_body = VariantRequest,
    responses(
        (status = 200, body = ModelStatus, description = "The model now answering"),
        (status = 401, body = crate::http::error::ErrorBody),
        (status = 403, body = crate::http::error::ErrorBody),
        (status = 422, body = crate::http::error::ErrorBody, description = "Unknown variant"),
        (status = 429, body = crate::http::error::ErrorBody),
        (status = 500, body = crate::http::error::ErrorBody, description = "The variant is not available from this source"),
        (status = 503, body = crate::http::error::ErrorBody, description = "No model loaded yet"),
    ))]
pub async fn set_variant(
    _: Admin,
    State(lever): State<ModelLever>,
    JsonBody(request): JsonBody<VariantRequest>,
) -> Result<Json<ModelStatus>, ApiError> {
    let variant: ModelVariant =
        request.variant.parse().map_err(|reason| ApiError::Invalid { field: "variant".into(), reason })?;
    Ok(Json(lever.set_variant(variant).await?.into()))
}

impl FromRef<AdminState> for ModelLever {
    fn from_ref(state: &AdminState) -> Self {
        state.lever.clone()
    }
}
