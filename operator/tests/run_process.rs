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
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
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
        .args(["run", "--http-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("POD_NAMESPACE", fixtures::NAMESPACE)
        .env("POD_NAME", "operator-0")
        .env("LOG_FORMAT", "json")
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
            let addr = serde_json::from_str::<Value>(&line).ok().and_then(|log| {
                log.pointer("/fields/addr")
                    .and_then(Value::as_str)
                    .and_then(|a| a.parse().ok())
            });
            if let Some(addr) = addr {
                let _ = addr_tx.send(addr);
            }
        }
    });
    let addr = tokio::task::spawn_blocking(move || {
        addr_rx
            .recv()
            .expect("the operator exited without logging its HTTP address")
    })
    .await
    .unwrap();

    let lease_path = fixtures::path("coordination.k8s.io/v1", "leases", "spikewatch-operator");
    let holder = |server: &ApiServer| {
        server
            .get(&lease_path)
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
    };
    let (health, _) = tokio::task::spawn_blocking(move || http_get(addr, "/healthz"))
        .await
        .unwrap();
    assert_eq!(health, 200);
    eventually("acquiring the Lease", || {
        holder(&server).as_deref() == Some("operator-0")
    });
    let (ready, _) = tokio::task::spawn_blocking(move || http_get(addr, "/readyz"))
        .await
        .unwrap();
    assert_eq!(ready, 200);
    let (code, metrics) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("spikewatch_operator_leader 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("spikewatch_operator_reconciliations_total"),
        "{metrics}"
    );

    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
    assert_eq!(
        holder(&server),
        None,
        "the Lease is released for a standby replica"
    );
}
