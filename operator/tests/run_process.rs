//! `spikewatch-operator run` as a process, against the mock API server served over HTTP:
//! it serves health and metrics, becomes leader through the Lease, and on SIGTERM shuts down
//! cleanly and releases the Lease.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use spikewatch_operator::fixtures::{self, ApiServer};

/// A plain HTTP/1.0 GET; returns status code and body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the operator");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// Waits for a condition the process reaches on its own; the bound only keeps a broken build
/// from hanging the suite.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not happen within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_health_and_metrics_leads_and_shuts_down_on_sigterm() {
    let (_client, server) = ApiServer::start();
    let api = server.serve_http().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, ApiServer::kubeconfig(api)).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_spikewatch-operator"))
        .args(["run", "--bind", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("SPIKEWATCH_LEASE_NAMESPACE", fixtures::NAMESPACE)
        .env("SPIKEWATCH_IDENTITY", "operator-0")
        .env("SPIKEWATCH_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("operator starts");

    // The operator logs where it listens (it bound port 0). Its log is forwarded to the test's
    // output, which shows it when the test fails.
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("operator: {line}");
            let addr = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|log| log.pointer("/fields/addr").and_then(Value::as_str).and_then(|a| a.parse().ok()));
            if let Some(addr) = addr {
                let _ = addr_tx.send(addr);
            }
        }
    });
    let addr = tokio::task::spawn_blocking(move || {
        addr_rx.recv().expect("the operator exited without logging its HTTP address")
    })
    .await
    .unwrap();

    let lease_path = fixtures::path("coordination.k8s.io/v1", "leases", "spikewatch-operator");
    let holder = |server: &ApiServer| {
        server.get(&lease_path).and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
    };
    let (health, _) = tokio::task::spawn_blocking(move || http_get(addr, "/healthz")).await.unwrap();
    assert_eq!(health, 200);
    eventually("acquiring the Lease", || holder(&server).as_deref() == Some("operator-0"));
    let (ready, _) = tokio::task::spawn_blocking(move || http_get(addr, "/readyz")).await.unwrap();
    assert_eq!(ready, 200);
    let (code, metrics) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics")).await.unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("spikewatch_operator_leader 1"), "{metrics}");
    assert!(metrics.contains("spikewatch_operator_reconciliations_total"), "{metrics}");

    let terminated = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();

    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
    assert_eq!(holder(&server), None, "the Lease is released for a standby replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watch_namespaces_the_operator_lists_and_watches_only_those() {
    let (_client, server) = ApiServer::start();
    let api = server.serve_http().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, ApiServer::kubeconfig(api)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spikewatch-operator"))
        .args(["run", "--bind", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("SPIKEWATCH_LEASE_NAMESPACE", fixtures::NAMESPACE)
        .env("SPIKEWATCH_IDENTITY", "operator-0")
        .env("SPIKEWATCH_WATCH_NAMESPACES", format!("{},markets", fixtures::NAMESPACE))
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("operator starts");

    let pipelines = |server: &ApiServer| -> Vec<String> {
        server
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/volatilitypipelines"))
            .map(|r| r.path)
            .collect()
    };
    eventually("watching the pipelines of both namespaces", || {
        let paths = pipelines(&server);
        ["testns", "markets"].iter().all(|ns| paths.iter().any(|p| p.contains(&format!("/namespaces/{ns}/"))))
    });
    let cluster_wide: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && !r.path.contains("/namespaces/"))
        .filter(|r| {
            // A resource request: /api/v1/<resource> or /apis/<group>/<version>/<resource>
            // (discovery stops one level above).
            let segments = r.path.trim_start_matches('/').split('/').count();
            (r.path.starts_with("/api/") && segments >= 3) || (r.path.starts_with("/apis/") && segments >= 4)
        })
        .map(|r| r.path)
        .collect();
    assert!(cluster_wide.is_empty(), "cluster-wide requests: {cluster_wide:?}");
    let _ = child.kill();
    let _ = child.wait();
}
