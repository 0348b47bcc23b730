//! The MLflow registry path, end to end: a real `mlflow server` (sqlite backend, artifacts on
//! local disk, proxied), the committed model registered by the training pipeline's register step,
//! resolved by alias and by version through the REST API, and served.
//! Needs `source scripts/env` (the project's .venv with mlflow, and ONNX Runtime).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spikewatch::config::ModelConfig;
use spikewatch::domain::{Features, ModelVariant};
use spikewatch::model::{self, ModelHandle};
mod common;
use common::artifact::{artifact_dir, fixtures, repo_root, require_env};

/// `mlflow server` in its own process group, killed (with its workers) on drop.
struct MlflowServer {
    child: Child,
    uri: String,
    _dir: tempfile::TempDir,
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_mlflow(python: &str) -> MlflowServer {
    use std::os::unix::process::CommandExt;
    let mlflow = Path::new(python).with_file_name("mlflow");
    assert!(mlflow.exists(), "{} not found: run scripts/setup", mlflow.display());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = Command::new(&mlflow)
        .arg("server")
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.path().join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(dir.path().join("artifacts"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    let server = MlflowServer { child, uri: format!("http://127.0.0.1:{port}"), _dir: dir };
    let client = reqwest::Client::new();
    // Readiness, not timing: poll until the server answers (its start-up takes seconds).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(r) = client.get(format!("{}/health", server.uri)).send().await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default();
            panic!("mlflow server did not come up:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server
}

fn register(python: &str, tracking_uri: &str) -> String {
    let out = Command::new(python)
        .current_dir(repo_root())
        .args(["-m", "models.register", "--artifact-dir"])
        .arg(artifact_dir())
        .args(["--tracking-uri", tracking_uri, "--alias", "champion"])
        .output()
        .unwrap();
    assert!(out.status.success(), "models.register failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().last().unwrap_or_default().trim().to_string()
}

/// Registers a new version with the same source as `version` and points `alias` at it.
async fn promote_copy(uri: &str, name: &str, version: &str, alias: &str) -> String {
    let client = reqwest::Client::new();
    let current: serde_json::Value = client
        .get(format!("{uri}/api/2.0/mlflow/model-versions/get"))
        .query(&[("name", name), ("version", version)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let source = current["model_version"]["source"].as_str().unwrap().to_string();
    let run_id = current["model_version"]["run_id"].as_str().unwrap_or_default().to_string();
    // MLflow 3 logs models as `models:/<model id>`; the new version must name that model.
    let model_id = current["model_version"]["model_id"]
        .as_str()
        .map(str::to_string)
        .or_else(|| source.strip_prefix("models:/").map(str::to_string))
        .unwrap_or_default();
    let created: serde_json::Value = client
        .post(format!("{uri}/api/2.0/mlflow/model-versions/create"))
        .json(&serde_json::json!({"name": name, "source": source, "run_id": run_id, "model_id": model_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_version = created["model_version"]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("create model version failed: {created}"))
        .to_string();
    let response = client
        .post(format!("{uri}/api/2.0/mlflow/registered-models/alias"))
        .json(&serde_json::json!({"name": name, "alias": alias, "version": new_version}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "set alias: {}", response.text().await.unwrap_or_default());
    new_version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_model_is_resolved_by_alias_and_served() {
    require_env("ORT_DYLIB_PATH");
    let python = require_env("SPIKEWATCH_PYTHON");
    let server = start_mlflow(&python).await;
    let version = register(&python, &server.uri);
    assert_eq!(version, "1");

    let config = ModelConfig {
        variant: ModelVariant::Ml,
        source: "models:/spikewatch-gbdt@champion".into(),
        mlflow_tracking_uri: Some(server.uri.clone()),
        ..ModelConfig::default()
    };
    let handle = ModelHandle::load(&config).await.unwrap();
    let model = handle.current();
    assert_eq!(model.info().name, "spikewatch-gbdt");
    assert_eq!(model.info().version, "1");
    let rows = fixtures();
    let features: Vec<Features> = rows.iter().map(|(f, _)| *f).collect();
    for (i, (p, (_, expected))) in model.predict_proba(&features).unwrap().iter().zip(&rows).enumerate() {
        assert!((p - expected).abs() <= 1e-5, "row {i}: {p} vs {expected}");
    }
    // The baseline's parameters travel with the registered version.
    assert_eq!(handle.available(), [ModelVariant::Ml, ModelVariant::Baseline]);
    handle.set_variant(ModelVariant::Baseline).unwrap();

    // A new version behind the alias (created over the REST API, as a CI promotion step
    // would) is picked up by reload.
    assert_eq!(promote_copy(&server.uri, "spikewatch-gbdt", "1", "champion").await, "2");
    handle.set_variant(ModelVariant::Ml).unwrap();
    assert_eq!(handle.reload().await.unwrap().version, "2");

    let by_version =
        model::load(&ModelConfig { source: "models:/spikewatch-gbdt/1".into(), ..config.clone() }).await.unwrap();
    assert_eq!(by_version.info().version, "1");

    let missing = model::load(&ModelConfig { source: "models:/spikewatch-gbdt@nope".into(), ..config.clone() }).await;
    let err = missing.err().expect("unknown alias must fail").to_string();
    assert!(err.contains("models:/spikewatch-gbdt@nope"), "{err}");
}
