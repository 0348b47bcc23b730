//! `spikewatch serve` as a process: serves the committed model with no model flag, reloads on
//! SIGHUP, stops cleanly on SIGTERM, and exits with the reason when the model cannot load.

mod api_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use api_support::*;
use serde_json::Value;

/// Upper bound on waiting for the process; reached only when something is broken.
const GIVE_UP: Duration = Duration::from_secs(120);

struct Server {
    child: Child,
    base: String,
    logs: std::sync::mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = serve_command();
    command.args(args);
    command
}

/// Starts `spikewatch serve` on 127.0.0.1:0 and reads the bound address from its log.
fn start(args: &[&str], env: &[(&str, &std::path::Path)]) -> Server {
    artifacts();
    let mut command = command(&[&["--bind", "127.0.0.1:0"], args].concat());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn spikewatch");
    let stderr = child.stderr.take().unwrap();
    let (tx, logs) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // From here on, dropping the server (also on a failed assertion) kills the process.
    let mut server = Server { child, base: String::new(), logs };
    let deadline = Instant::now() + GIVE_UP;
    while server.base.is_empty() {
        let line = server
            .logs
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("serve logged its address");
        if let Ok(event) = serde_json::from_str::<Value>(&line)
            && event["message"] == "prediction API listening"
        {
            server.base = format!("http://{}", event["addr"].as_str().expect("addr field"));
        }
    }
    server
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + GIVE_UP;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -{name}");
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn serves_the_committed_model_reloads_on_sighup_and_stops_on_sigterm() {
    let mut server = start(&[], &[]);
    let client = reqwest::Client::new();
    let base = server.base.clone();
    wait_for("the model to load", async || {
        client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;

    let version: Value = client.get(format!("{base}/version")).send().await.unwrap().json().await.unwrap();
    assert_eq!(version["model_variant"], "baseline", "baseline is the default variant");
    assert_eq!(version["model_name"], "spikewatch-har");
    let reply = client.post(format!("{base}/predict")).json(&row()).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let admin = client.post(format!("{base}/admin/reload")).send().await.unwrap();
    assert_eq!(admin.status(), 403, "no token file: admin endpoints disabled");

    signal(&server.child, "HUP");
    wait_for("the SIGHUP reload", async || {
        sample(&metrics(&base).await, "model_reloads_total", &[("result", "success")]) == Some(1.0)
    })
    .await;

    signal(&server.child, "TERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    let logs: Vec<String> = server.logs.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("finishing in-flight requests")), "{logs:#?}");
}

#[tokio::test]
async fn variant_flag_and_admin_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let server = start(&["--variant", "baseline"], &[("ADMIN_TOKEN_FILE", &token_file)]);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    wait_for("the model to load", async || {
        client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let version: Value = client.get(format!("{base}/version")).send().await.unwrap().json().await.unwrap();
    assert_eq!(version["model_variant"], "baseline");

    let switched = client
        .post(format!("{base}/admin/variant"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"variant": "ml"}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    let version: Value = client.get(format!("{base}/version")).send().await.unwrap().json().await.unwrap();
    assert_eq!(version["model_variant"], "ml");
    assert_eq!(sample(&metrics(&base).await, "model_variant_active", &[("variant", "ml")]), Some(1.0));
}

#[test]
fn a_model_that_cannot_load_stops_the_process_with_the_reason() {
    let output = command(&["--bind", "127.0.0.1:0", "--model", "/nonexistent/spikewatch-model"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("model load failed") && stderr.contains("/nonexistent/spikewatch-model"), "{stderr}");
}
