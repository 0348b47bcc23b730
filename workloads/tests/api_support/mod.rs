//! Shared by the `api_*` tests: the committed model, an in-process router, a real listener.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::Value;
use spikewatch::api::{self, AdminAuth, ApiMetrics, AppState, Limits};
use spikewatch::config::ModelConfig;
use spikewatch::domain::{Features, ModelVariant};
use spikewatch::model::{Model, ModelError, ModelHandle, ModelInfo};
use tower::ServiceExt;

pub const TOKEN: &str = "test-admin-token";

/// The repository root, from `source scripts/env`.
pub fn root() -> PathBuf {
    let root = std::env::var_os("SPIKEWATCH_ROOT")
        .expect("SPIKEWATCH_ROOT is not set: run `source scripts/env` before the tests");
    PathBuf::from(root)
}

/// The committed model artifacts: the ONNX model and the HAR-RV baseline's parameters.
pub fn artifacts() -> PathBuf {
    let dir = root().join("models/artifacts/spikewatch-gbdt");
    assert!(
        dir.join("model.onnx").is_file() && dir.join("baseline.json").is_file(),
        "model artifacts missing in {}: the trained model is committed there",
        dir.display()
    );
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "ORT_DYLIB_PATH is not set: run `source scripts/env` before the tests"
    );
    dir
}

pub fn model_config(variant: ModelVariant) -> ModelConfig {
    ModelConfig { variant, source: artifacts().display().to_string(), ..ModelConfig::default() }
}

/// Both real variants loaded from the committed artifacts, `variant` answering.
pub async fn handle(variant: ModelVariant) -> ModelHandle {
    ModelHandle::load(&model_config(variant)).await.expect("the committed model loads")
}

pub fn limits() -> Limits {
    Limits::default()
}

/// A state serving the real models, admin endpoints enabled with [`TOKEN`].
pub async fn state(variant: ModelVariant) -> AppState {
    state_with(variant, limits()).await
}

pub async fn state_with(variant: ModelVariant, limits: Limits) -> AppState {
    AppState::with_models(limits, AdminAuth::token(TOKEN), handle(variant).await).unwrap()
}

/// A state whose model is not loaded (yet).
pub fn state_without_model(reason: &str) -> AppState {
    let state = AppState::new(limits(), AdminAuth::token(TOKEN), ApiMetrics::new().unwrap());
    state.set_not_ready(reason);
    state
}

/// A real row of the training table (a fixture of the committed model): the calmest one
/// with trades.
pub fn row() -> Value {
    let rows = fixture_rows_with_trades();
    rows.iter().min_by(|a, b| rv_60s(a).total_cmp(&rv_60s(b))).unwrap().clone()
}

/// Another real row in a different shape of market: the most volatile one.
pub fn stressed_row() -> Value {
    let rows = fixture_rows_with_trades();
    rows.iter().max_by(|a, b| rv_60s(a).total_cmp(&rv_60s(b))).unwrap().clone()
}

fn rv_60s(row: &Value) -> f64 {
    row["rv_60s"].as_f64().unwrap()
}

/// Read once per test binary: tests build rows in loops.
fn fixture_rows_with_trades() -> &'static [Value] {
    static ROWS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| fixtures().into_iter().map(|f| f.features).filter(|f| !f["trade_rate_10s"].is_null()).collect())
}

/// The fields added since the original API (all optional in a request).
pub fn newer_fields() -> Vec<&'static str> {
    spikewatch::domain::FEATURES.iter().filter(|f| !f.seed).map(|f| f.name).collect()
}

/// The original API's eleven field names, in model order.
pub fn original_fields() -> Vec<&'static str> {
    spikewatch::domain::FEATURES.iter().filter(|f| f.seed).map(|f| f.name).collect()
}

/// The original API's eleven fields only.
pub fn original_row() -> Value {
    let mut row = row();
    let object = row.as_object_mut().unwrap();
    for newer in newer_fields() {
        object.remove(newer);
    }
    row
}

/// The `spikewatch serve` command, run from the repository root with JSON logs (`info`) on a
/// piped stderr; the caller adds the arguments (`--config` is global, so it may follow `serve`).
pub fn serve_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spikewatch"));
    command
        .arg("serve")
        .current_dir(root())
        .env("SPIKEWATCH_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        // The test decides everything; nothing leaks in from the caller's environment.
        .env_remove("PORT")
        .env_remove("SPIKEWATCH_PORT")
        .env_remove("MODEL_SOURCE")
        .env_remove("SPIKEWATCH_MODEL_SOURCE")
        .env_remove("MODEL_VARIANT")
        .env_remove("SPIKEWATCH_MODEL_VARIANT")
        .env_remove("CONFIG_PATH")
        .env_remove("SPIKEWATCH_CONFIG")
        .env_remove("ADMIN_TOKEN_FILE")
        .env_remove("SPIKEWATCH_ADMIN_TOKEN_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command
}

/// `fixtures.json`: rows of the test split with the trainer's probabilities for both variants.
pub struct Fixture {
    pub features: Value,
    pub ml: f64,
    pub baseline: f64,
}

pub fn fixtures() -> Vec<Fixture> {
    let path = artifacts().join("fixtures.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fixtures: Value = serde_json::from_str(&text).unwrap();
    fixtures["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| Fixture {
            features: row["features"].clone(),
            ml: row["probability"].as_f64().unwrap(),
            baseline: row["baseline_probability"].as_f64().unwrap(),
        })
        .collect()
}

pub fn features(row: &Value) -> Features {
    serde_json::from_value(row.clone()).expect("a full row")
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// `error.field` of a native error body.
    pub fn error_field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }
}

/// Sends one request through the router in-process.
pub async fn call(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body, text }
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

pub fn post_json(uri: &str, body: &Value) -> Request<Body> {
    post_raw(uri, "application/json", body.to_string())
}

pub fn post_raw(uri: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri).header(header::CONTENT_TYPE, content_type).body(body.into()).unwrap()
}

pub fn admin_post(uri: &str, body: Option<&Value>, token: Option<&str>) -> Request<Body> {
    let mut request = Request::post(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    match body {
        Some(body) => {
            request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
        }
        None => request.body(Body::empty()).unwrap(),
    }
}

/// The value of the Prometheus sample `name` whose labels are exactly `labels` (any order).
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, label_text) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        if series_name != name {
            return None;
        }
        let mut found: Vec<(String, String)> = label_text
            .split("\",")
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                Some((k.to_string(), v.trim_matches('"').to_string()))
            })
            .collect();
        found.sort();
        let mut wanted: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        wanted.sort();
        (found == wanted).then(|| value.parse().ok()).flatten()
    })
}

pub async fn metrics_text(app: &Router) -> String {
    call(app, get("/metrics")).await.text
}

/// Serves `state` on 127.0.0.1:0; returns the base URL and a shutdown trigger.
pub async fn listen(state: AppState) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        api::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (format!("http://{addr}"), stop, server)
}

/// Test double for the two failure classes no real model produces on valid input: an
/// inference error and a hang. Only the tests of those error paths use it.
pub struct BrokenModel {
    pub info: ModelInfo,
    pub sleep: Option<std::time::Duration>,
}

impl Model for BrokenModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn predict_proba(&self, rows: &[Features]) -> Result<Vec<f64>, ModelError> {
        match self.sleep {
            Some(duration) => {
                std::thread::sleep(duration);
                Ok(vec![0.5; rows.len()])
            }
            None => Err(ModelError::Inference("session run failed".into())),
        }
    }
}

pub fn broken_state(sleep: Option<std::time::Duration>, limits: Limits) -> AppState {
    let info = ModelInfo { name: "broken".into(), version: "0".into(), variant: ModelVariant::Ml, threshold: 0.5 };
    let model: Arc<dyn Model> = Arc::new(BrokenModel { info, sleep });
    let handle = ModelHandle::from_models(ModelConfig::default(), Some(model), None, ModelVariant::Ml).unwrap();
    AppState::with_models(limits, AdminAuth::Disabled, handle).unwrap()
}

/// Test double that holds a prediction until released, to observe what happens to a request
/// in flight (graceful shutdown). Signals on `started` when a prediction begins.
pub struct GatedModel {
    pub info: ModelInfo,
    pub started: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    pub release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Model for GatedModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn predict_proba(&self, rows: &[Features]) -> Result<Vec<f64>, ModelError> {
        let _ = self.started.lock().unwrap().send(());
        self.release.lock().unwrap().recv().map_err(|e| ModelError::Inference(e.to_string()))?;
        Ok(vec![0.25; rows.len()])
    }
}

/// A state whose model blocks each prediction until `release` gets a message.
pub fn gated_state() -> (AppState, std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let info = ModelInfo { name: "gated".into(), version: "0".into(), variant: ModelVariant::Ml, threshold: 0.5 };
    let model: Arc<dyn Model> = Arc::new(GatedModel {
        info,
        started: std::sync::Mutex::new(started_tx),
        release: std::sync::Mutex::new(release_rx),
    });
    let handle = ModelHandle::from_models(ModelConfig::default(), Some(model), None, ModelVariant::Ml).unwrap();
    (AppState::with_models(Limits::default(), AdminAuth::Disabled, handle).unwrap(), started, release)
}
