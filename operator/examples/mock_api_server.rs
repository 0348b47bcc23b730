//! The tests' mock Kubernetes API server (`spikewatch_operator::fixtures`) as a process of its
//! own, to run `spikewatch-operator run` against by hand, for instance to measure the
//! operator's footprint (`docs/benchmarks.md`, "Operator footprint"). Writes a kubeconfig that
//! points at it to the path given as the only argument, then serves until interrupted.
//!
//! ```text
//! cargo run -p spikewatch-operator --features test-support --example mock_api_server -- target/kubeconfig
//! KUBECONFIG=target/kubeconfig POD_NAMESPACE=testns POD_NAME=operator-0 spikewatch-operator run
//! ```

use spikewatch_operator::fixtures::{ApiServer, NAMESPACE};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: mock_api_server <path of the kubeconfig to write>");
        std::process::exit(2);
    };
    let (_client, server) = ApiServer::start();
    let addr = server.serve_http().await;
    std::fs::write(&path, ApiServer::kubeconfig(addr)).expect("write the kubeconfig");
    eprintln!("mock API server on http://{addr} (namespace {NAMESPACE}); kubeconfig in {path}");
    tokio::signal::ctrl_c().await.expect("wait for Ctrl-C");
}
