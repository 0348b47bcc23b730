//! The `/metrics` + `/health` endpoint that `ingest`, `featurize` and `predict` serve; the
//! predictor adds `POST /admin/variant` (bearer token), the lever the operator's automatic
//! rollback pulls, as on the API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::api::admin::{ModelStatus, VariantRequest};
use crate::api::{AdminAuth, ApiError};
use crate::api::extract::parse;
use crate::domain::ModelVariant;
use crate::model::ModelHandle;

/// Liveness flag a workload flips once it is connected and working.
#[derive(Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The model a workload serves and who may switch its variant.
#[derive(Clone)]
pub struct ModelAdmin {
    pub auth: AdminAuth,
    pub model: ModelHandle,
}

#[derive(Clone)]
struct AppState {
    registry: Registry,
    health: Health,
    admin: Option<ModelAdmin>,
}

/// Text exposition of every metric in `registry`.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for well-formed metric families.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

pub fn router(registry: Registry, health: Health) -> Router {
    router_with_admin(registry, health, None)
}

/// [`router`], plus `POST /admin/variant` when `admin` is given.
pub fn router_with_admin(registry: Registry, health: Health, admin: Option<ModelAdmin>) -> Router {
    let mut router = Router::new().route("/metrics", get(metrics)).route("/health", get(health_handler));
    if admin.is_some() {
        router = router.route("/admin/variant", post(set_variant));
    }
    router.with_state(AppState { registry, health, admin })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, TextEncoder::new().format_type().to_string())], render(&state.registry))
}

async fn health_handler(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_ready() {
        (StatusCode::OK, axum::Json(serde_json::json!({"status": "healthy"})))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "starting"})))
    }
}

/// Switches the variant the predictor scores with; batches in flight finish on the old one.
async fn set_variant(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<ModelStatus>, ApiError> {
    let Some(admin) = &state.admin else {
        return Err(ApiError::NotFound { field: "path", reason: "no admin endpoint".into() });
    };
    admin.auth.check(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
    let request: VariantRequest = parse(&body)?;
    let variant: ModelVariant =
        request.variant.parse().map_err(|reason| ApiError::Invalid { field: "variant".into(), reason })?;
    let info = admin
        .model
        .set_variant(variant)
        .map_err(|e| ApiError::ModelUpdate { reason: format!("variant switch failed: {e}") })?;
    tracing::info!(variant = info.variant.as_str(), version = %info.version, "model variant switched");
    Ok(Json(info.into()))
}

/// Binds `bind` and serves metrics and health in the background; returns the bound address.
pub async fn spawn(bind: &str, registry: Registry, health: Health) -> anyhow::Result<SocketAddr> {
    spawn_with_admin(bind, registry, health, None).await
}

/// [`spawn`] with the predictor's admin endpoint.
pub async fn spawn_with_admin(
    bind: &str,
    registry: Registry,
    health: Health,
    admin: Option<ModelAdmin>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind metrics endpoint {bind}: {e}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router_with_admin(registry, health, admin)).await {
            tracing::error!(%err, "metrics endpoint stopped");
        }
    });
    Ok(addr)
}
