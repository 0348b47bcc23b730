//! End-to-end on a real cluster: `e2e/run.sh` (chart, a Kafka, the example pipeline replaying a
//! recording, Ready, predictions, lag-driven scale-up, a rollback after a real fault). Needs a
//! cluster, so that test is ignored here and run by the e2e workflow:
//! `KUBECONFIG=... cargo test -p spikewatch-operator --test e2e_kind -- --ignored`.
//!
//! What can be checked without a cluster is checked here: the runner refuses to start without
//! one, and the pipeline it applies passes the CRD's schema and CEL rules in both Kafka modes.

#[path = "common/pipelines.rs"]
mod pipelines;
#[path = "common/validate.rs"]
mod validate;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use spikewatch_operator::crd::{SourceType, TopicManagement, VolatilityPipeline};

fn run_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/run.sh")
}

#[test]
#[ignore = "needs a Kubernetes cluster (KUBECONFIG): run by e2e/run.sh / the GitHub workflow"]
fn the_example_pipeline_runs_end_to_end_on_a_cluster() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "set KUBECONFIG to the cluster to test (e.g. `kind get kubeconfig > kind.yaml`)"
    );
    let status = Command::new("bash").arg(run_script()).status().expect("bash runs e2e/run.sh");
    assert!(status.success(), "e2e/run.sh failed: {status}");
}

#[test]
fn the_runner_refuses_to_start_without_a_cluster_or_with_an_unknown_kafka_mode() {
    for (topics, expected) in [("admin", "KUBECONFIG is not set"), ("zookeeper", "E2E_TOPICS must be admin or strimzi")]
    {
        let output = Command::new("bash")
            .arg(run_script())
            .env_remove("KUBECONFIG")
            .env("E2E_TOPICS", topics)
            .output()
            .expect("bash runs e2e/run.sh");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{topics}: {stderr}");
        assert!(stderr.contains(expected), "{topics}: {stderr}");
    }
}

/// `e2e/adapt_pipeline.py` applied to `examples/pipeline.yaml`, as the runner does it.
fn adapted(topics: &str) -> Value {
    let example: Value = serde_yaml::from_str(&pipelines::example("pipeline.yaml")).unwrap();
    let mut child = Command::new(validate::python())
        .arg(pipelines::repo_path("e2e/adapt_pipeline.py"))
        .env("E2E_NAMESPACE", "spikewatch-e2e")
        .env("E2E_TOPICS", topics)
        .env("E2E_BOOTSTRAP", "kafka:9092")
        .env("E2E_STRIMZI_CLUSTER", "spikewatch")
        .env("E2E_RECORDING_CONFIGMAP", "recording")
        .env("E2E_RECORDING_KEY", "btc-usd.csv.gz")
        .env("WORKLOAD_IMAGE", "ghcr.io/spikewatch/spikewatch:e2e")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs adapt_pipeline.py");
    child.stdin.take().unwrap().write_all(example.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("JSON pipeline")
}

#[test]
fn the_runners_pipeline_is_a_valid_replay_pipeline_in_both_kafka_modes() {
    let schema = validate::crd_schema();
    for (topics, management) in [("admin", TopicManagement::Admin), ("strimzi", TopicManagement::Strimzi)] {
        let object = adapted(topics);
        assert_eq!(
            validate::openapi_schema_errors(&schema, std::slice::from_ref(&object)),
            [Vec::<String>::new()],
            "{topics}"
        );
        let cel = kube::core::cel::Validator::new().validate(&schema, &object, None);
        assert!(cel.is_ok(), "{topics}: {cel:?}");
        let vp: VolatilityPipeline = serde_json::from_value(object).unwrap();
        assert_eq!(vp.spec.kafka.topic_management, management);
        assert_eq!(vp.spec.source.type_, SourceType::Replay);
        let recording = vp.spec.source.replay().unwrap().recording.unwrap().config_map.unwrap();
        assert_eq!((recording.name.as_str(), recording.key.as_str()), ("recording", "btc-usd.csv.gz"));
        assert_eq!(vp.spec.image.tag.as_deref(), Some("e2e"));
        assert!(!vp.spec.autoscaling.enabled, "the runner turns autoscaling on itself, once it made a backlog");
        assert!(vp.spec.rollback.enabled && vp.spec.monitoring.prometheus_url.is_none());
    }
}
