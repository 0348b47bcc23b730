//! Operator endpoints: hot reload and the runtime variant switch (the rollback lever).
//!
//! Guarded by a bearer token read from `api.admin_token_file`. Without a token file they are
//! disabled (403): an unauthenticated switch to a worse model is not a safe default.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::domain::ModelVariant;
use crate::model::ModelInfo;

use super::error::ApiError;
use super::extract::JsonBody;
use super::state::AppState;

/// How admin requests are authenticated.
#[derive(Clone)]
pub enum AdminAuth {
    /// Admin endpoints answer 403.
    Disabled,
    /// SHA-256 of the expected token: comparing fixed-length digests in constant time leaks
    /// neither the token's bytes nor its length.
    Token([u8; 32]),
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAuth::Disabled => f.write_str("AdminAuth::Disabled"),
            AdminAuth::Token(_) => f.write_str("AdminAuth::Token(<redacted>)"),
        }
    }
}

impl AdminAuth {
    pub fn token(token: &str) -> Self {
        AdminAuth::Token(Sha256::digest(token.as_bytes()).into())
    }

    /// Reads the token from `path` (surrounding whitespace ignored; Kubernetes secrets often
    /// end with a newline). An empty file is an error, not an open door.
    pub fn from_file(path: Option<&str>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(AdminAuth::Disabled);
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read admin token file {path}: {e}"))?;
        let token = text.trim();
        anyhow::ensure!(!token.is_empty(), "admin token file {path} is empty");
        Ok(AdminAuth::token(token))
    }

    /// Accepts `Authorization: Bearer <token>` with the expected token, and nothing else.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), ApiError> {
        let AdminAuth::Token(expected) = self else {
            return Err(ApiError::Forbidden {
                reason: "admin endpoints are disabled: set api.admin_token_file (or ADMIN_TOKEN_FILE)",
            });
        };
        let Some(value) = authorization else {
            return Err(ApiError::Unauthorized { reason: "missing Authorization: Bearer <token> header" });
        };
        let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
            return Err(ApiError::Unauthorized { reason: "Authorization must use the Bearer scheme" });
        };
        let given: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        if bool::from(given.ct_eq(expected)) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized { reason: "invalid bearer token" })
        }
    }
}

/// Extractor that only succeeds for an authenticated admin request.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let authorization = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        state.admin().check(authorization).map(|()| Admin)
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
    /// `ml` (the trained model) or `baseline` (the z-score rule).
    #[schema(value_type = String, example = "baseline")]
    pub variant: String,
}

/// Reload the model from its configured source and swap it in atomically. In-flight requests
/// finish on the model they started with; on failure the current model keeps serving.
#[utoipa::path(post, path = "/admin/reload", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = ModelStatus, description = "The model now answering"),
        (status = 401, body = super::error::ErrorBody, description = "Missing or invalid bearer token"),
        (status = 403, body = super::error::ErrorBody, description = "Admin endpoints disabled (no token file)"),
        (status = 500, body = super::error::ErrorBody, description = "Reload failed; the previous model still serves"),
        (status = 503, body = super::error::ErrorBody, description = "No model loaded yet"),
    ))]
pub async fn reload(_: Admin, State(state): State<AppState>) -> Result<Json<ModelStatus>, ApiError> {
    Ok(Json(state.reload().await?.into()))
}

/// Switch between the trained model (`ml`) and the z-score baseline at runtime. The operator's
/// automatic rollback uses this; `/version` and the `model_variant_active` metric report it.
#[utoipa::path(post, path = "/admin/variant", tag = "admin", security(("bearer" = [])), request_body = VariantRequest,
    responses(
        (status = 200, body = ModelStatus, description = "The model now answering"),
        (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody, description = "Unknown variant"),
    ))]
pub async fn set_variant(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<VariantRequest>,
) -> Result<Json<ModelStatus>, ApiError> {
    let variant: ModelVariant =
        request.variant.parse().map_err(|reason| ApiError::Invalid { field: "variant".into(), reason })?;
    Ok(Json(state.set_variant(variant).await?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_check() {
        let auth = AdminAuth::token("s3cret");
        assert!(auth.check(Some("Bearer s3cret")).is_ok());
        assert!(matches!(auth.check(Some("Bearer s3cre")), Err(ApiError::Unauthorized { .. })));
        assert!(matches!(auth.check(Some("Basic s3cret")), Err(ApiError::Unauthorized { .. })));
        assert!(matches!(auth.check(None), Err(ApiError::Unauthorized { .. })));
        assert!(matches!(AdminAuth::Disabled.check(Some("Bearer s3cret")), Err(ApiError::Forbidden { .. })));
    }

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        let auth = AdminAuth::from_file(path.to_str()).unwrap();
        assert!(auth.check(Some("Bearer abc")).is_ok());
        std::fs::write(&path, " \n").unwrap();
        assert!(AdminAuth::from_file(path.to_str()).is_err());
        assert!(matches!(AdminAuth::from_file(None).unwrap(), AdminAuth::Disabled));
    }
}
