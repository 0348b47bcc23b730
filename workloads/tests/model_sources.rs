//! Model sources other than a local directory: an http(s) URL (served here by a local
//! static file server on 127.0.0.1; TLS itself is reqwest's concern).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::get;
use spikewatch::config::ModelConfig;
use spikewatch::domain::ModelVariant;
use spikewatch::model::{self, ModelHandle};
mod common;
use common::artifact::artifact_dir;

async fn serve_artifacts() -> SocketAddr {
    async fn file(UrlPath(name): UrlPath<String>) -> Result<Vec<u8>, StatusCode> {
        if name.contains('/') || name.contains("..") {
            return Err(StatusCode::NOT_FOUND);
        }
        std::fs::read(artifact_dir().join(name)).map_err(|_| StatusCode::NOT_FOUND)
    }
    let app = Router::new().route("/models/{name}", get(file));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn loads_both_variants_from_a_url() {
    if std::env::var("ORT_DYLIB_PATH").map_or(true, |v| v.is_empty()) {
        panic!("ORT_DYLIB_PATH is not set: run `source scripts/env` before the tests");
    }
    let addr = serve_artifacts().await;
    let config = ModelConfig {
        variant: ModelVariant::Ml,
        source: format!("http://{addr}/models/model.onnx"),
        ..ModelConfig::default()
    };
    let handle = ModelHandle::load(&config).await.unwrap();
    assert_eq!(handle.available(), [ModelVariant::Ml, ModelVariant::Baseline]);
    handle.set_variant(ModelVariant::Baseline).unwrap();

    let dir_url = ModelConfig { variant: ModelVariant::Baseline, source: format!("http://{addr}/models/"), ..config };
    let baseline = model::load(&dir_url).await.unwrap();
    assert_eq!(baseline.info().variant, ModelVariant::Baseline);
}

#[tokio::test]
async fn a_url_without_artifacts_is_a_clear_error() {
    let addr = serve_artifacts().await;
    let config = ModelConfig { source: format!("http://{addr}/nothing/here/"), ..ModelConfig::default() };
    let err = model::load(&config).await.err().expect("must fail");
    assert!(err.to_string().contains("nothing/here"), "{err}");
}
