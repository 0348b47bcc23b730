//! Prediction API (`spikewatch serve`): axum router, handlers, OpenAPI, Open Inference Protocol v2,
//! live predictions (Server-Sent Events), their online quality and the live page.
//!
//! [`router`] builds the whole service from one [`AppState`]; every handler is a small function
//! in the module of its concern, and every failure is an [`ApiError`] (JSON body, counted).
//! Endpoint reference: docs/api.md.

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::http::BodyLimit;

pub mod deadline;
pub mod docs_page;
pub mod metrics;
pub mod oip;
pub mod online_quality;
pub mod openapi;
pub mod page;
pub mod predict;
pub mod predictions;
pub mod rows;
pub mod state;
pub mod status;

pub use crate::admin::AdminAuth;
pub use crate::http::ApiError;
pub use metrics::ApiMetrics;
pub use state::{AppState, Limits};

/// The complete HTTP service.
pub fn router(state: AppState) -> Router {
    service(admin_routes(&state), state)
}

/// The service without its admin endpoints, for an API whose admin endpoints listen on an
/// address of their own (`api.admin_bind`, [`admin_router`]).
pub fn router_without_admin(state: AppState) -> Router {
    service(Router::new(), state)
}

/// Only the admin endpoints (`POST /admin/reload`, `POST /admin/variant`), with the same
/// middleware as the whole service.
pub fn admin_router(state: AppState) -> Router {
    let limits = state.limits().clone();
    admin_routes(&state)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), deadline::deadline))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// `POST /admin/reload` and `POST /admin/variant` over the API's model (`crate::admin`, as on
/// the predictor).
fn admin_routes(state: &AppState) -> Router<AppState> {
    crate::admin::router(state.lever().clone(), BodyLimit(state.limits().max_body_bytes))
}

fn service(routes: Router<AppState>, state: AppState) -> Router {
    let limits = state.limits().clone();
    routes
        .route("/predict", post(predict::predict))
        .route("/health", get(status::health))
        .route("/version", get(status::version))
        .route("/metrics", get(metrics::metrics))
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::live))
        .route("/v2/health/ready", get(oip::ready))
        .route("/v2/models/{name}", get(oip::model_metadata))
        .route("/v2/models/{name}/ready", get(oip::model_ready))
        .route("/v2/models/{name}/infer", post(oip::infer))
        .route("/v2/models/{name}/versions/{version}", get(oip::model_version_metadata))
        .route("/v2/models/{name}/versions/{version}/ready", get(oip::model_version_ready))
        .route("/v2/models/{name}/versions/{version}/infer", post(oip::infer_version))
        .route("/predictions/stream", get(predictions::stream))
        .route("/predictions/latest", get(predictions::latest))
        .route("/predictions/quality", get(online_quality::quality))
        .route("/", get(page::index))
        .route("/assets/{name}", get(page::asset))
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(docs_page::page))
        .route("/docs/", get(docs_page::page))
        .route("/docs/rapidoc-min.js", get(docs_page::script))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        // `api.request_timeout_ms`: 503 when the server could not answer in time, 408 when the
        // client had not even sent its body by then.
        .layer(axum::middleware::from_fn_with_state(state.clone(), deadline::deadline))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound { field: "path", reason: format!("no endpoint at {}", uri.path()) }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then lets in-flight
/// requests finish. Prediction streams never finish on their own, so they are ended first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(state.clone()), state, shutdown).await
}

/// [`serve`] with the given service (such as [`router_without_admin`]).
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    service: Router,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let feed = state.feed().clone();
    let limits = state.limits().connections;
    let shutdown = async move {
        shutdown.await;
        feed.close();
    };
    crate::http::connections::serve(listener, service, limits, shutdown).await
}

/// Reloads the model on every SIGHUP, for as long as the process runs.
#[cfg(unix)]
pub fn reload_on_sighup(state: AppState) -> std::io::Result<tokio::task::JoinHandle<()>> {
    crate::admin::lever::reload_on_sighup(state.lever().clone())
}
