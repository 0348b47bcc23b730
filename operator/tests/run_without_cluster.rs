//! `spikewatch-operator run` with no cluster to talk to exits non-zero with one clear line.

use std::process::Command;

#[test]
fn run_without_a_reachable_cluster_exits_non_zero_with_a_one_line_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_spikewatch-operator"))
        .arg("run")
        .arg("--bind")
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
    assert!(lines[0].starts_with("spikewatch-operator: no Kubernetes cluster reachable"), "{stderr:?}");
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_flags_are_refused_before_anything_starts() {
    for (flag, value, expected) in [
        ("--watch-namespaces", "markets,Bad_Namespace", "\"Bad_Namespace\" is not a namespace name"),
        ("--workload-image-tag", "v1/evil", "\"v1/evil\" is not an image tag"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_spikewatch-operator"))
            .args(["run", flag, value])
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains(expected), "{flag}: {stderr}");
    }
}
