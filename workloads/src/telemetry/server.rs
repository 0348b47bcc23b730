//! The `/metrics` + `/health` endpoint that `ingest`, `featurize` and `predict` serve; the
//! predictor adds the admin endpoints (`POST /admin/variant`, `POST /admin/reload`: the lever
//! the operator's automatic rollback pulls), the same ones as on the API ([`crate::admin`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

use crate::admin::ModelLever;
use crate::http::BodyLimit;
use crate::http::connections::{self, ConnectionLimits};

/// The largest body the admin endpoints of the metrics port read (a variant switch is ~20 bytes).
pub const ADMIN_BODY_LIMIT: BodyLimit = BodyLimit(64 * 1024);

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

#[derive(Clone)]
struct AppState {
    registry: Registry,
    health: Health,
}

/// Text exposition of every metric in `registry`.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for well-formed metric families.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// `/metrics` and `/health`, plus the admin endpoints over `lever` when given.
pub fn router(registry: Registry, health: Health, lever: Option<ModelLever>) -> Router {
    let mut router = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health_handler))
        .with_state(AppState { registry, health });
    if let Some(lever) = lever {
        router = router.merge(admin_router(lever));
    }
    router
}

/// The admin endpoints alone, for an address of their own (`api.admin_bind`).
pub fn admin_router(lever: ModelLever) -> Router {
    crate::admin::router(lever, ADMIN_BODY_LIMIT).layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT.0))
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

/// Binds `bind` and serves `router` in the background; returns the bound address. `what`
/// names the endpoint in errors.
pub async fn spawn_router(bind: &str, router: Router, what: &'static str) -> anyhow::Result<SocketAddr> {
    let listener =
        tokio::net::TcpListener::bind(bind).await.map_err(|e| anyhow::anyhow!("cannot bind {what} {bind}: {e}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) =
            connections::serve(listener, router, ConnectionLimits::default(), std::future::pending()).await
        {
            tracing::error!(%err, "{what} stopped");
        }
    });
    Ok(addr)
}

/// Binds `bind` and serves metrics and health (and the admin endpoints over `lever`) in the
/// background; returns the bound address.
pub async fn spawn(
    bind: &str,
    registry: Registry,
    health: Health,
    lever: Option<ModelLever>,
) -> anyhow::Result<SocketAddr> {
    super::config_keys::register(&registry)?;
    spawn_router(bind, router(registry, health, lever), "metrics endpoint").await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::admin::{AdminAuth, ModelMetrics};
    use crate::config::ModelConfig;
    use crate::domain::ModelVariant;
    use crate::model::baseline::persistence_for_tests;
    use crate::model::{Model, ModelHandle};

    fn model(version: &str) -> Arc<dyn Model> {
        Arc::new(persistence_for_tests(version))
    }

    /// A predictor's metrics port with both variants loaded (`ml` answers, version "ml-1").
    fn predictor(auth: AdminAuth) -> (Router, ModelHandle, Registry) {
        let handle = ModelHandle::from_models(
            ModelConfig::default(),
            Some(model("ml-1")),
            Some(model("base-1")),
            ModelVariant::Ml,
        )
        .unwrap();
        let registry = Registry::new();
        let lever =
            ModelLever::serving(auth, ModelMetrics::register(&registry).unwrap(), handle.clone(), Duration::ZERO);
        (router(registry.clone(), Health::default(), Some(lever)), handle, registry)
    }

    fn switch(token: Option<&str>, body: &str) -> Request<Body> {
        let mut request = Request::post("/admin/variant").header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(Body::from(body.to_string())).unwrap()
    }

    #[tokio::test]
    async fn the_predictors_variant_switch_is_counted_in_its_metrics() {
        let (router, handle, registry) = predictor(AdminAuth::token("t0ken"));
        let denied = router.clone().oneshot(switch(None, r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
        let ok = router.oneshot(switch(Some("t0ken"), r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(handle.variant(), ModelVariant::Baseline);
        let text = render(&registry);
        assert!(text.contains(r#"model_variant_active{variant="baseline"} 1"#), "{text}");
        assert!(text.contains(r#"model_reloads_total{result="success"} 1"#), "{text}");
    }

    #[tokio::test]
    async fn without_a_token_file_the_admin_endpoints_answer_403_as_on_the_api() {
        let (router, handle, _) = predictor(AdminAuth::Disabled);
        let response = router.oneshot(switch(Some("t0ken"), r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(handle.variant(), ModelVariant::Ml);
    }

    #[tokio::test]
    async fn a_workload_without_a_model_has_no_admin_endpoints() {
        let router = router(Registry::new(), Health::default(), None);
        let response = router.oneshot(switch(Some("t0ken"), r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_admin_endpoint_alone_switches_the_variant_and_serves_nothing_else() {
        let (_, handle, registry) = predictor(AdminAuth::Disabled);
        let lever = ModelLever::serving(
            AdminAuth::token("t0ken"),
            ModelMetrics::register(&Registry::new()).unwrap(),
            handle.clone(),
            Duration::ZERO,
        );
        drop(registry);
        let router = admin_router(lever);
        let response = router.clone().oneshot(switch(Some("t0ken"), r#"{"variant":"baseline"}"#)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(handle.current().info().variant, ModelVariant::Baseline);
        let metrics = router.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(metrics.status(), StatusCode::NOT_FOUND, "the metrics stay on the metrics port");
    }
}
