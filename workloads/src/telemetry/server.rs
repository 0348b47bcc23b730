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
use crate::api::extract::parse;
use crate::api::{AdminAuth, ApiError};
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

/// `POST /admin/variant` alone, for an admin endpoint on an address of its own (`api.admin_bind`).
pub fn admin_router(admin: ModelAdmin) -> Router {
    Router::new().route("/admin/variant", post(set_variant)).with_state(AppState {
        registry: Registry::new(),
        health: Health::default(),
        admin: Some(admin),
    })
}

/// Binds `bind` and serves [`admin_router`] in the background; returns the bound address.
pub async fn spawn_admin(bind: &str, admin: ModelAdmin) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind admin endpoint {bind}: {e}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, admin_router(admin)).await {
            tracing::error!(%err, "admin endpoint stopped");
        }
    });
    Ok(addr)
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
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<ModelStatus>, ApiError> {
    let Some(admin) = &state.admin else {
        return Err(ApiError::NotFound { field: "path", reason: "no admin endpoint".into() });
    };
    let client = crate::api::connections::client_address(&extensions).map(|addr| addr.ip());
    admin.auth.check(client, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
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
    super::config_keys::register(&registry);
    tokio::spawn(async move {
        let router = router_with_admin(registry, health, admin);
        let limits = crate::api::connections::ConnectionLimits::default();
        if let Err(err) = crate::api::connections::serve(listener, router, limits, std::future::pending()).await {
            tracing::error!(%err, "metrics endpoint stopped");
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::config::ModelConfig;
    use crate::model::Model;
    use crate::model::baseline::persistence_for_tests;

    fn model(version: &str) -> Arc<dyn Model> {
        Arc::new(persistence_for_tests(version))
    }

    /// A predictor's endpoint with both variants loaded (`ml` answers, version "ml-1").
    fn predictor(admin: bool) -> (Router, ModelHandle) {
        let handle = ModelHandle::from_models(
            ModelConfig::default(),
            Some(model("ml-1")),
            Some(model("base-1")),
            ModelVariant::Ml,
        )
        .unwrap();
        let admin = admin.then(|| ModelAdmin { auth: AdminAuth::token("t0ken"), model: handle.clone() });
        (router_with_admin(Registry::new(), Health::default(), admin), handle)
    }

    fn switch(token: Option<&str>, body: &str) -> Request<Body> {
        let mut request = Request::post("/admin/variant").header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(Body::from(body.to_string())).unwrap()
    }

    #[tokio::test]
    async fn the_operator_switches_the_predictors_variant_with_its_token() {
        let (router, handle) = predictor(true);
        let denied = router.clone().oneshot(switch(None, r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
        let wrong = router.clone().oneshot(switch(Some("nope"), r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(handle.variant(), ModelVariant::Ml, "nothing switched without the token");

        let unknown = router.clone().oneshot(switch(Some("t0ken"), r#"{"variant":"gpt"}"#)).await.unwrap();
        assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let malformed = router.clone().oneshot(switch(Some("t0ken"), "{")).await.unwrap();
        assert!(malformed.status().is_client_error());

        let ok = router.oneshot(switch(Some("t0ken"), r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let body = axum::body::to_bytes(ok.into_body(), 1 << 16).await.unwrap();
        let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status["model_variant"].as_str(), status["model_version"].as_str()),
            (Some("baseline"), Some("base-1"))
        );
        assert_eq!(handle.variant(), ModelVariant::Baseline);
    }

    #[tokio::test]
    async fn without_a_token_file_there_is_no_admin_endpoint() {
        let (router, handle) = predictor(false);
        let response = router.oneshot(switch(Some("t0ken"), r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(handle.variant(), ModelVariant::Ml);
    }

    #[tokio::test]
    async fn the_admin_endpoint_alone_switches_the_variant_and_serves_nothing_else() {
        let (_, handle) = predictor(false);
        let router = admin_router(ModelAdmin { auth: AdminAuth::token("t0ken"), model: handle.clone() });
        let response = router.clone().oneshot(switch(Some("t0ken"), r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(handle.current().info().variant, ModelVariant::Baseline);
        let metrics = router.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(metrics.status(), StatusCode::NOT_FOUND, "the metrics stay on the metrics port");
    }
}
