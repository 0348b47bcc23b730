//! The rollback automation against real components: a real `spikewatch serve` answering a
//! steady load, whose ML model is replaced by a broken one through a real hot reload (an
//! export that loads but fails every inference), a real `prometheus` scraping it (or no
//! Prometheus: the operator scrapes the pod itself), and the operator's reconciler against the
//! mock API server, which holds the API pod pointing at the process.
//!
//! Each scenario asserts that the API really answers with the baseline afterwards (`/version`
//! and 200s again), that status, condition and event were written, and prints the time from
//! the breach to baseline serving. Then it asks for the ML model again (the retry annotation):
//! the model comes back on probation, fails its first check and is rolled back at once.
//!
//! Needs `source scripts/env` (ONNX Runtime, the Python that breaks the model) and Debian's
//! `prometheus` (installed by `scripts/setup`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spikewatch_operator::controller::admin_token::admin_token_secret;
use spikewatch_operator::crd::{ConditionType, RollbackState, Workload, find_condition};
use spikewatch_operator::fixtures::{FakeBroker, NAMESPACE, path, pipeline_from};
use spikewatch_types::metric_names;

use common::cluster::{Cluster, finalized};
use common::processes::{Process, Prometheus, broken_model, free_port, model_copy, spikewatch, wait_for};

const TOKEN: &str = "rollback-test-admin-token";
/// Bound on anything that should happen within seconds; reached only when something is broken.
const PATIENCE: Duration = Duration::from_secs(120);

/// A feature row the committed model scores.
fn row() -> Value {
    json!({
        "price": 91234.5, "midprice": 91234.25, "return_1s": 0.00001, "return_5s": -0.00002,
        "return_30s": 0.0001, "return_60s": 0.0003, "volatility": 0.00004, "volatility_10s": 0.00003,
        "trade_intensity": 4.2, "spread_abs": 0.01, "spread_rel": 0.0000001,
        "order_book_imbalance": 0.12, "tick_count": 252, "time_since_prev_tick": 0.2
    })
}

/// `spikewatch serve` on a free port, serving a copy of the committed model, with an admin token.
struct Serve {
    base: String,
    port: u16,
    model_dir: tempfile::TempDir,
    _process: Process,
    _config: tempfile::TempDir,
}

impl Serve {
    async fn start() -> Serve {
        Serve::start_with(&[]).await
    }

    /// [`Serve::start`] with extra environment variables.
    async fn start_with(env: &[(&str, &str)]) -> Serve {
        let model_dir = model_copy();
        let config_dir = tempfile::tempdir().unwrap();
        let token_file = config_dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let port = free_port();
        let config = config_dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "api:\n  bind: 127.0.0.1:{port}\n  admin_token_file: {}\nmodel:\n  source: {}\n  variant: ml\n",
                token_file.display(),
                model_dir.path().display()
            ),
        )
        .unwrap();
        let mut command = spikewatch(&["serve", "--config", config.to_str().unwrap()]);
        command.envs(env.iter().copied());
        let process = Process::spawn(command);
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let health = format!("{base}/health");
        wait_for("spikewatch serve to load its model", PATIENCE, async || {
            client.get(&health).send().await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        Serve { base, port, model_dir, _process: process, _config: config_dir }
    }

    async fn variant(&self) -> String {
        let version: Value = reqwest::get(format!("{}/version", self.base)).await.unwrap().json().await.unwrap();
        version["model_variant"].as_str().unwrap_or_default().to_string()
    }

    async fn predict_status(&self) -> u16 {
        let client = reqwest::Client::new();
        client.post(format!("{}/predict", self.base)).json(&row()).send().await.unwrap().status().as_u16()
    }

    /// Ships a broken ML model: the model file is replaced and hot-reloaded, as a bad model
    /// version would be.
    async fn break_the_model(&self) {
        broken_model(&self.model_dir.path().join("model.onnx"));
        let reply =
            reqwest::Client::new().post(format!("{}/admin/reload", self.base)).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(reply.status(), 200, "the broken model loads: {}", reply.text().await.unwrap());
        assert_eq!(self.predict_status().await, 500, "and fails every inference");
    }
}

/// Steady `/predict` traffic (~50 requests/s) until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl Load {
    fn start(base: &str) -> Load {
        let (stop, ok, errors) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let url = format!("{base}/predict");
        let (s, o, e) = (stop.clone(), ok.clone(), errors.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !s.load(Ordering::Relaxed) {
                match client.post(&url).json(&row()).send().await {
                    Ok(r) if r.status().is_success() => o.fetch_add(1, Ordering::Relaxed),
                    _ => e.fetch_add(1, Ordering::Relaxed),
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Load { stop, ok, errors }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The mock cluster: the pipeline, its admin token Secret and one API pod at `port`.
fn cluster_with(rollback: Value, prometheus_url: Option<&str>, port: u16) -> Cluster {
    let mut spec = json!({
        "products": ["BTC-USD"],
        "kafka": {"bootstrapServers": "kafka-0.kafka:9092"},
        "rollback": rollback,
        // The variant a rollback takes back (the default is the baseline).
        "model": {"variant": "ml"},
    });
    if let Some(url) = prometheus_url {
        spec["monitoring"] = json!({"prometheusUrl": url});
    }
    let vp = finalized(pipeline_from(spec));
    let cluster = Cluster::with(&vp, FakeBroker::reachable());
    let secret = admin_token_secret(&vp, TOKEN).unwrap();
    cluster.server.insert(&path("v1", "secrets", "test-admin-token"), serde_json::to_value(secret).unwrap());
    cluster.server.insert_pod(Workload::Api, 0, "127.0.0.1", port, true, "2026-01-01T00:00:00Z");
    cluster
}

/// Reconciles every 250 ms (as requeues and watch events would) until `done`.
async fn reconcile_until(cluster: &Cluster, what: &str, mut done: impl AsyncFnMut(&Cluster) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        cluster.reconcile().await;
        if done(cluster).await {
            return;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}; status: {:#?}", cluster.pipeline().status);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The short policy the scenarios use: a check every 2 s over a 10 s window.
fn fast_policy() -> Value {
    json!({"intervalSeconds": 2, "windowSeconds": 10, "recoverySeconds": 10, "minRequests": 5})
}

/// Breach → rollback → retry → probation → rollback again; returns the breach-to-baseline time.
async fn scenario(serve: &Serve, cluster: &Cluster) -> Duration {
    let load = Load::start(&serve.base);
    cluster.converge().await;

    // Healthy traffic: checks pass (once the window holds two scrapes), nothing happens.
    reconcile_until(cluster, "a check that judged the error rate", async |c| {
        c.pipeline()
            .status
            .and_then(|s| s.rollback)
            .and_then(|r| r.last_check)
            .is_some_and(|check| check.signals.iter().any(|s| s.name == "errorRate" && s.result == "Passed"))
    })
    .await;
    assert_eq!(cluster.rollback_state(), RollbackState::Serving, "{:#?}", cluster.pipeline().status);
    assert_eq!(serve.variant().await, "ml");
    let status = cluster.pipeline().status.unwrap();
    assert_eq!(status.rollback.unwrap().consecutive_failures, 0);
    assert_eq!(status.active_model.unwrap().variant.as_str(), "ml");

    // The breach: a broken model version goes live.
    serve.break_the_model().await;
    let breach = Instant::now();
    let failed_before = load.errors.load(Ordering::Relaxed);
    reconcile_until(cluster, "the API to answer with the baseline", async |_| serve.variant().await == "baseline")
        .await;
    let elapsed = breach.elapsed();
    let failed = load.errors.load(Ordering::Relaxed) - failed_before;
    assert!(failed > 0, "the clients saw the breach");
    println!("clients: {failed} failed requests until the rollback, {} answered", load.ok.load(Ordering::Relaxed));

    assert_eq!(serve.predict_status().await, 200, "the baseline answers");
    let vp = cluster.pipeline();
    let status = vp.status.clone().unwrap();
    assert_eq!(status.rollback.as_ref().unwrap().state, RollbackState::RolledBack);
    let condition = find_condition(&status.conditions, ConditionType::RolledBack).unwrap();
    assert_eq!((condition.status.as_str(), condition.reason.as_str()), ("True", "ErrorRateAboveThreshold"));
    assert!(condition.message.contains("errorRate"), "{}", condition.message);
    let record = status.last_rollback.expect("last rollback recorded");
    assert_eq!(record.reason, "ErrorRateAboveThreshold");
    assert!(record.message.contains("limit 0.05"), "{}", record.message);
    assert_eq!(status.active_model.unwrap().variant.as_str(), "baseline", "status follows the API");
    assert!(cluster.server.event_reasons().contains(&"RolledBack".to_string()));
    assert_eq!(vp.spec.model.variant.as_str(), "ml", "the spec is never edited");
    cluster.reconcile().await;
    assert_eq!(cluster.rendered_variant(Workload::Api), "baseline", "new pods start on the baseline");
    assert_eq!(cluster.rendered_variant(Workload::Predictor), "baseline");

    // Asking for the ML model again: it comes back on probation, still broken, and one failed
    // check rolls it back.
    cluster.annotate_retry("1");
    cluster.reconcile().await;
    assert_eq!(cluster.rollback_state(), RollbackState::Probation);
    assert_eq!(serve.variant().await, "ml", "retried");
    reconcile_until(cluster, "the probation to fail", async |c| c.rollback_state() == RollbackState::RolledBack).await;
    assert_eq!(serve.variant().await, "baseline");
    let rollbacks = cluster.pipeline().status.unwrap().rollback.unwrap().rollbacks;
    assert_eq!(rollbacks, 2);
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_model_is_rolled_back_through_prometheus() {
    let serve = Serve::start().await;
    let target = format!("127.0.0.1:{}", serve.port);
    let prometheus =
        Prometheus::start("1s", &[(target, vec![("namespace", NAMESPACE), ("service", "test-api")])]).await;
    let cluster = cluster_with(fast_policy(), Some(&prometheus.url), serve.port);
    let elapsed = scenario(&serve, &cluster).await;
    let check = cluster.pipeline().status.unwrap().rollback.unwrap().last_check.unwrap();
    assert!(check.source.starts_with("prometheus http://"), "{}", check.source);
    let error_rate = check.signals.iter().find(|s| s.name == "errorRate").unwrap();
    assert!(error_rate.query.contains(metric_names::api::REQUESTS), "PromQL in the status");
    println!("breach → baseline serving (Prometheus, 1 s scrapes, 2 s checks): {:.1} s", elapsed.as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_model_is_rolled_back_by_scraping_the_pods() {
    let serve = Serve::start().await;
    let cluster = cluster_with(fast_policy(), None, serve.port);
    let elapsed = scenario(&serve, &cluster).await;
    let check = cluster.pipeline().status.unwrap().rollback.unwrap().last_check.unwrap();
    assert_eq!(check.source, "scrape");
    println!("breach → baseline serving (direct scrape, 2 s checks): {:.1} s", elapsed.as_secs_f64());
}

/// The benchmark of `docs/benchmarks.md`: breach → baseline serving with the default policy
/// (a check every 15 s over 60 s, rollback after 2 failed checks) and Prometheus scraping every
/// 15 s like the ServiceMonitors, five times. The worst case is one scrape interval (the
/// errors reach Prometheus), one check interval (the next check sees them) and one more check
/// (the second failure): 45 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark, about 9 minutes: cargo nextest run -p spikewatch-operator --test rollback_real_components --run-ignored only --no-capture"]
async fn bench_breach_to_baseline_with_the_default_policy() {
    let mut times = vec![];
    for run in 1..=5 {
        let serve = Serve::start().await;
        let target = format!("127.0.0.1:{}", serve.port);
        let prometheus =
            Prometheus::start("15s", &[(target, vec![("namespace", NAMESPACE), ("service", "test-api")])]).await;
        let cluster = cluster_with(json!({}), Some(&prometheus.url), serve.port);
        let _load = Load::start(&serve.base);
        cluster.converge().await;
        // Healthy for one window first, so the window holds healthy traffic; then a random
        // moment, so the breach does not fall at the same point of the scrape and check
        // cycles in every run.
        let phase = Duration::from_millis(rand::random_range(0..15_000));
        let until = Instant::now() + Duration::from_secs(60) + phase;
        while Instant::now() < until {
            cluster.reconcile().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        serve.break_the_model().await;
        let breach = Instant::now();
        let deadline = breach + PATIENCE;
        // Reconciles happen when requeued: the check interval, as the controller schedules them.
        let mut seen = None;
        while serve.variant().await != "baseline" {
            assert!(Instant::now() < deadline, "no rollback within {PATIENCE:?}");
            cluster.reconcile().await;
            let check = cluster.pipeline().status.and_then(|s| s.rollback).and_then(|r| r.last_check);
            if let Some(check) = check.filter(|c| Some(&c.time) != seen.as_ref()) {
                let rate = check.signals.iter().find(|s| s.name == "errorRate").and_then(|s| s.value);
                println!("  {:5.1} s: check {:?}, errorRate {rate:?}", breach.elapsed().as_secs_f64(), check.result);
                seen = Some(check.time);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let elapsed = breach.elapsed().as_secs_f64();
        println!("run {run}: breach → baseline serving {elapsed:.1} s");
        times.push(elapsed);
        drop(prometheus);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "breach → baseline serving over {} runs: p50 {:.1} s, max {:.1} s",
        times.len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

/// `networkPolicy.adminFromOperatorOnly`: the pod declares an `admin` port and the workload,
/// started with the ADMIN_BIND the operator renders, answers its admin endpoints there alone.
/// The operator's switch goes to that port, not to the API's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_switch_reaches_an_api_whose_admin_endpoints_listen_apart() {
    let admin_port = free_port();
    let serve = Serve::start_with(&[("SPIKEWATCH_ADMIN_BIND", &format!("127.0.0.1:{admin_port}"))]).await;
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "test-api-0"},
        "spec": {"containers": [{"name": "api", "ports": [
            {"name": "http", "containerPort": serve.port}, {"name": "admin", "containerPort": admin_port}]}]},
        "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap();
    let serving = spikewatch_operator::observe::ServingPod::from_pod(&pod, Workload::Api).unwrap();
    let on_api_port = reqwest::Client::new()
        .post(format!("{}/admin/variant", serve.base))
        .bearer_auth(TOKEN)
        .json(&json!({"variant": "baseline"}))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api_port.status(), 404, "no admin endpoint on the API's port");

    let report = spikewatch_operator::controller::model_switch::switch_variant(
        &reqwest::Client::new(),
        TOKEN,
        &[serving],
        spikewatch_operator::crd::ModelVariant::Baseline,
    )
    .await;
    assert_eq!(report.switched, ["test-api-0"], "{report:?}");
    assert_eq!(serve.variant().await, "baseline");
}

/// An API that cannot load the ML model (no ONNX Runtime library) serves the baseline and says
/// so on `/version`; the operator reads it into `status.activeModel` with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_serving_the_baseline_in_place_of_the_ml_model_is_reported_with_the_reason() {
    let serve = Serve::start_with(&[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")]).await;
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "test-api-0"},
        "spec": {"containers": [{"name": "api", "ports": [{"name": "http", "containerPort": serve.port}]}]},
        "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap();
    let serving = spikewatch_operator::observe::ServingPod::from_pod(&pod, Workload::Api).unwrap();
    let served = spikewatch_operator::controller::model_switch::served_model(&reqwest::Client::new(), &[serving])
        .await
        .expect("the API reports its model");
    assert_eq!(served.variant.as_str(), "baseline");
    assert_eq!(served.fallback.as_deref(), Some("runtime_unavailable"));
    assert_eq!(serve.predict_status().await, 200, "the baseline answers");
}
