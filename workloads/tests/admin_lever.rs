//! The rollback lever answers the same on both servers that have it: the API's port and the
//! predictor's metrics port (`spikewatch::admin`, one implementation). Each test sends exactly
//! the request the operator's automatic rollback sends (`switch_variant` in
//! `operator/src/controller/model_switch.rs`: `POST {base}/admin/variant`, `Authorization:
//! Bearer <token>`, JSON body `{"variant": "<ml|baseline>"}`, success read from the status and
//! `model_variant` from the body) to a real listener of each, and compares the answers.

mod api_support;

use std::time::Duration;

use prometheus::Registry;
use reqwest::StatusCode;
use serde_json::Value;
use spikewatch::admin::{AdminAuth, ModelLever, ModelMetrics};
use spikewatch::api::{self, AppState};
use spikewatch::domain::ModelVariant;
use spikewatch::model::ModelHandle;
use spikewatch::telemetry::server::{self, Health};

use api_support::{TOKEN, handle, limits};

/// Which server answers.
#[derive(Debug, Clone, Copy)]
enum Server {
    Api,
    Predictor,
}

/// A running server with the real models (`ml` answering) and its base URL.
struct Running {
    base: String,
    models: ModelHandle,
}

async fn start(server: Server, auth: AdminAuth) -> Running {
    let models = handle(ModelVariant::Ml).await;
    let base = match server {
        Server::Api => {
            let state = AppState::with_models(limits(), auth, models.clone()).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(api::serve(listener, state, std::future::pending()));
            format!("http://{addr}")
        }
        Server::Predictor => {
            // As `spikewatch predict` builds its metrics port (cli/predict.rs).
            let registry = Registry::new();
            let lever =
                ModelLever::serving(auth, ModelMetrics::register(&registry).unwrap(), models.clone(), Duration::ZERO);
            let addr = server::spawn("127.0.0.1:0", registry, Health::default(), Some(lever)).await.unwrap();
            format!("http://{addr}")
        }
    };
    Running { base, models }
}

/// The operator's request, and what it reads of the answer: the status and `model_variant`.
async fn switch(base: &str, token: &str, variant: &str) -> (StatusCode, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{base}/admin/variant"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "variant": variant }))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["model_variant"].as_str().map(str::to_owned))
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap()
}

/// What one server answers to the operator's rollback, a bad token, an unknown variant, and
/// the rollback with admin disabled; with what it reports afterwards.
async fn answers(server: Server) -> Vec<String> {
    let mut seen = Vec::new();
    let running = start(server, AdminAuth::token(TOKEN)).await;
    let (status, _) = switch(&running.base, "not-the-token", "baseline").await;
    seen.push(format!("wrong token: {status}, serving {}", running.models.variant().as_str()));
    let (status, _) = switch(&running.base, TOKEN, "fastest").await;
    seen.push(format!("unknown variant: {status}"));
    let (status, variant) = switch(&running.base, TOKEN, "baseline").await;
    seen.push(format!("rollback: {status}, answers {variant:?}, serving {}", running.models.variant().as_str()));
    let text = metrics(&running.base).await;
    for series in [
        r#"model_variant_active{variant="baseline"} 1"#,
        r#"model_variant_active{variant="ml"} 0"#,
        r#"model_reloads_total{result="success"} 1"#,
        r#"model_reloads_total{result="failure"} 0"#,
    ] {
        seen.push(format!("{series}: {}", text.lines().any(|line| line == series)));
    }
    let disabled = start(server, AdminAuth::Disabled).await;
    let (status, _) = switch(&disabled.base, TOKEN, "baseline").await;
    seen.push(format!("admin disabled: {status}, serving {}", disabled.models.variant().as_str()));
    seen
}

#[tokio::test]
async fn the_operators_rollback_gets_the_same_answers_from_the_api_and_the_predictor() {
    let api = answers(Server::Api).await;
    let predictor = answers(Server::Predictor).await;
    let expected = [
        "wrong token: 401 Unauthorized, serving ml",
        "unknown variant: 422 Unprocessable Entity",
        r#"rollback: 200 OK, answers Some("baseline"), serving baseline"#,
        r#"model_variant_active{variant="baseline"} 1: true"#,
        r#"model_variant_active{variant="ml"} 0: true"#,
        r#"model_reloads_total{result="success"} 1: true"#,
        r#"model_reloads_total{result="failure"} 0: true"#,
        "admin disabled: 403 Forbidden, serving ml",
    ];
    assert_eq!(api, expected, "API");
    assert_eq!(predictor, expected, "predictor");
}

#[tokio::test]
async fn switches_on_both_servers_run_one_at_a_time_and_all_are_counted() {
    for server in [Server::Api, Server::Predictor] {
        let running = start(server, AdminAuth::token(TOKEN)).await;
        let calls = (0..8).map(|i| {
            let base = running.base.clone();
            async move { switch(&base, TOKEN, if i % 2 == 0 { "baseline" } else { "ml" }).await.0 }
        });
        let statuses = futures::future::join_all(calls).await;
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{server:?}: {statuses:?}");
        let text = metrics(&running.base).await;
        assert!(text.lines().any(|l| l == r#"model_reloads_total{result="success"} 8"#), "{server:?}: {text}");
        let active: Vec<&str> =
            text.lines().filter(|l| l.starts_with("model_variant_active{") && l.ends_with(" 1")).collect();
        assert_eq!(active.len(), 1, "{server:?}: exactly one variant answers: {active:?}");
    }
}
