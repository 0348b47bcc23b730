//! `spikewatch-operator run` with no cluster to talk to exits non-zero with one clear line.

use std::process::Command;

#[test]
fn run_without_a_reachable_cluster_exits_non_zero_with_a_one_line_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_spikewatch-operator"))
        .arg("run")
        .arg("--http-addr")
        .arg("127.0.0.1:0")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("HOME", "/nonexistent-home")
        .env("RUST_LOG", "off")
        .output()
        .expect("binary runs");

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {stderr:?}");
    assert!(
        lines[0].starts_with("spikewatch-operator: no Kubernetes cluster reachable"),
        "{stderr:?}"
    );
    assert!(output.stdout.is_empty());
}
