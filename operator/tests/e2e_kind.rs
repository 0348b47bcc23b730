//! End-to-end on a real cluster: runs `e2e/run.sh` (Helm install of the chart, a broker,
//! `examples/pipeline.yaml`, wait for Ready). Needs a cluster, so it is ignored by default:
//! `KUBECONFIG=... cargo test -p spikewatch-operator --test e2e_kind -- --ignored`.

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "needs a Kubernetes cluster (KUBECONFIG): run by e2e/run.sh / the GitHub workflow"]
fn the_example_pipeline_becomes_ready_on_a_cluster() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "set KUBECONFIG to the cluster to test (e.g. `kind get kubeconfig > /tmp/kind.yaml`)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/run.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .expect("bash runs e2e/run.sh");
    assert!(status.success(), "{} failed: {status}", script.display());
}
