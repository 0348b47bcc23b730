//! `spikewatch-operator render` as a process: the objects the operator would apply for a
//! pipeline, as YAML, from the same builders as the controller, with the state a status
//! records (a rollback, the autoscaler's replicas) rendered as the controller renders it.

#[path = "common/pipelines.rs"]
mod pipelines;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde::Deserialize;
use serde_json::Value;
use spikewatch_operator::desired::desired_objects;

fn render(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spikewatch-operator"))
        .arg("render")
        .args(args)
        .env_remove("WORKLOAD_IMAGE_TAG")
        .env_remove("SPIKEWATCH_WORKLOAD_IMAGE_TAG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spikewatch-operator starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn documents(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "render failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("each document is YAML"))
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn env_of(deployment: &Value, var: &str) -> Option<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == var)
        .and_then(|e| e["value"].as_str().map(String::from))
}

fn example() -> String {
    pipelines::repo_path("examples/pipeline.yaml").display().to_string()
}

#[test]
fn render_prints_every_object_the_controller_builds() {
    let output = render(&["-f", &example(), "--workload-image-tag", "0.1.0"], None);
    let objects = documents(&output);

    let vp = pipelines::parse(&pipelines::example("pipeline.yaml"));
    let built = desired_objects(&vp, &pipelines::options()).unwrap();
    let kinds: Vec<String> = objects.iter().map(|o| o["kind"].as_str().unwrap().to_string()).collect();
    let expected: Vec<String> = built.iter().map(|o| o.resource.kind.clone()).collect();
    assert_eq!(kinds, expected, "the same objects, in apply order");
    for (printed, built) in objects.iter().zip(&built) {
        assert_eq!(printed["apiVersion"], built.resource.api_version.as_str());
        assert_eq!(
            printed["spec"], built.object.data["spec"],
            "{} {:?}",
            built.resource.kind, built.object.metadata.name
        );
    }
    let predictor = find(&objects, "Deployment", "btc-eth-predictor");
    assert_eq!(predictor["spec"]["template"]["spec"]["containers"][0]["image"], "ghcr.io/spikewatch/spikewatch:0.1.0");
    assert_eq!(env_of(predictor, "SPIKEWATCH_MODEL_VARIANT").as_deref(), Some("ml"));
    assert_eq!(predictor["spec"]["replicas"], 2, "autoscaling's minReplicas before any decision");
}

#[test]
fn a_status_renders_the_rollback_and_the_autoscalers_replicas() {
    let dir = tempfile::tempdir().unwrap();
    // As `kubectl get vp btc-eth -o yaml` prints it.
    let mut object: Value = serde_yaml::from_str(&pipelines::example("pipeline.yaml")).unwrap();
    object["status"] = serde_json::json!({
        "observedGeneration": 3,
        "rollback": {"state": "RolledBack", "consecutiveFailures": 2, "rollbacks": 1,
                     "modelSource": "models:/spikewatch-gbdt@champion"},
        "consumer": {"desiredReplicas": 5, "currentReplicas": 2},
    });
    let whole = dir.path().join("btc-eth.yaml");
    std::fs::write(&whole, serde_yaml::to_string(&object).unwrap()).unwrap();
    // Only the status.
    let status_only = dir.path().join("status.yaml");
    std::fs::write(&status_only, serde_yaml::to_string(&object["status"]).unwrap()).unwrap();

    for status in [&whole, &status_only] {
        let output =
            render(&["-f", &example(), "--status", status.to_str().unwrap(), "--workload-image-tag", "0.1.0"], None);
        let objects = documents(&output);
        for workload in ["predictor", "api"] {
            let deployment = find(&objects, "Deployment", &format!("btc-eth-{workload}"));
            assert_eq!(env_of(deployment, "SPIKEWATCH_MODEL_VARIANT").as_deref(), Some("baseline"), "{workload}");
        }
        assert_eq!(find(&objects, "Deployment", "btc-eth-predictor")["spec"]["replicas"], 5);
    }
}

#[test]
fn a_pipeline_on_stdin_gets_the_given_namespace_and_its_own_tag() {
    let manifest = pipelines::REPLAY.replace("  namespace: default\n", "");
    let output = render(&["-f", "-", "-n", "markets"], Some(&manifest));
    let objects = documents(&output);
    assert!(objects.iter().all(|o| o["metadata"]["namespace"] == "markets"));
    let ingestor = find(&objects, "Deployment", "replay-ingestor");
    let container = &ingestor["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "ghcr.io/spikewatch/spikewatch:2026.04.1", "spec.image.tag, no flag needed");
    assert_eq!(container["args"][0], "replay");
}

#[test]
fn owner_references_only_when_asked_and_only_with_the_pipelines_uid() {
    // For a GitOps repository: the GitOps tool owns the objects, and an owner reference with a
    // made-up uid would have the garbage collector delete them.
    let objects = documents(&render(&["--input", "-"], Some(pipelines::REPLAY)));
    assert!(!objects.is_empty());
    assert!(objects.iter().all(|o| o["metadata"].get("ownerReferences").is_none()), "none by default");

    let refused = render(&["--input", "-", "--owner-references"], Some(pipelines::REPLAY));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--owner-references needs the pipeline's metadata.uid"), "{stderr}");
    assert!(refused.stdout.is_empty());

    let uid = "8d1b7c3e-5f0a-4f7e-9a51-3c2f1d7e6b90";
    let stored = pipelines::REPLAY.replace("  namespace: default\n", &format!("  namespace: default\n  uid: {uid}\n"));
    assert_ne!(stored, pipelines::REPLAY);
    let objects = documents(&render(&["--input", "-", "--owner-references"], Some(&stored)));
    for object in &objects {
        let owner = &object["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], uid, "{}", object["kind"]);
        assert_eq!(owner["kind"], "VolatilityPipeline");
    }
}

#[test]
fn the_output_says_what_made_it_and_keys_come_in_reading_order() {
    let output = render(&["--input", &example(), "--workload-image-tag", "0.1.0"], None);
    let text = String::from_utf8(output.stdout).unwrap();
    let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
    assert!(
        header[0].starts_with(&format!(
            "# Rendered by spikewatch-operator {} from {}",
            env!("CARGO_PKG_VERSION"),
            example()
        )),
        "{header:?}"
    );
    assert!(header.iter().any(|l| l.contains("spikewatch-operator render --input")), "{header:?}");
    // Each document's top-level keys: apiVersion, kind, metadata, then spec or data.
    let documents: Vec<&str> = text.split("\n---\n").skip(1).collect();
    assert!(documents.len() > 10, "{}", documents.len());
    for document in documents {
        let top: Vec<&str> = document
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('-') && l.contains(':'))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(&top[..3], ["apiVersion", "kind", "metadata"], "{document}");
        if let Some(body) = top.iter().position(|k| *k == "spec" || *k == "data") {
            assert_eq!(body, 3, "spec or data right after metadata: {top:?}");
        }
        let metadata: Vec<&str> = document
            .lines()
            .skip_while(|l| *l != "metadata:")
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter(|l| !l.starts_with("   "))
            .map(|l| l.trim().split(':').next().unwrap())
            .collect();
        assert_eq!(metadata[0], "name", "{document}");
    }
}

#[test]
fn a_pipeline_the_api_server_would_refuse_fails_with_its_message() {
    let cases = [
        // The schema's bounds: what `kubectl apply` prints.
        (
            pipelines::REPLAY.replace("kafka:\n", "kafka:\n    partitions: 0\n"),
            "spec.kafka.partitions: Invalid value: 0: spec.kafka.partitions in body should be greater than or equal to 1",
        ),
        // A validation rule (CEL) across fields, with the schema's defaults applied first
        // (kafka.partitions defaults to 3).
        (
            pipelines::REPLAY.replace("spec:\n", "spec:\n  workloads:\n    featurizer: {replicas: 4}\n"),
            "spec: Invalid value: \"object\": workloads.featurizer.replicas must not exceed kafka.partitions",
        ),
        // An unknown field is refused while decoding, as with kubectl's default strict validation.
        (
            pipelines::REPLAY.replace("spec:\n", "spec:\n  partitions: 6\n"),
            "strict decoding error: unknown field \"spec.partitions\"",
        ),
    ];
    for (manifest, expected) in cases {
        assert_ne!(manifest, pipelines::REPLAY, "the case changes the manifest");
        let output = render(&["--input", "-"], Some(&manifest));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{manifest}\n{stderr}");
        assert!(stderr.contains(expected), "expected {expected:?} in {stderr}");
        assert!(
            stderr.contains("The VolatilityPipeline \"replay\" is invalid: ") || stderr.contains("strict decoding"),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn kafka_topics_are_printed_in_the_requested_version() {
    let strimzi = pipelines::repo_path("examples/pipeline-strimzi.yaml").display().to_string();
    for version in ["v1", "v1beta2"] {
        let output = render(&["-f", &strimzi, "--workload-image-tag", "0.1.0", "--kafka-topic-version", version], None);
        let topics: Vec<Value> = documents(&output).into_iter().filter(|o| o["kind"] == "KafkaTopic").collect();
        assert_eq!(topics.len(), 3);
        assert!(topics.iter().all(|t| t["apiVersion"] == format!("kafka.strimzi.io/{version}")));
    }
}

#[test]
fn bad_input_is_one_clear_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let deployment = write("deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n");
    let bad_field = write("bad.yaml", &pipelines::MINIMAL.replace("products: [BTC-USD]", "products: BTC-USD"));
    let no_tag = write("no-tag.yaml", pipelines::MINIMAL);
    let not_yaml = write("not-yaml.yaml", "spec: [unclosed");
    let bad_status = write("status.yaml", "rollback: {state: Sideways}\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-f", "/nonexistent/pipeline.yaml"], "cannot read /nonexistent/pipeline.yaml"),
        (vec!["-f", &deployment], "expected a spikewatch.io/v1alpha1 VolatilityPipeline, found apps/v1 Deployment"),
        (
            vec!["-f", &bad_field],
            "spec.products: Invalid value: \"BTC-USD\": spec.products in body must be of type array",
        ),
        (vec!["-f", &no_tag], "image.tag is unset"),
        (vec!["-f", &not_yaml], "not YAML"),
        (
            vec!["-f", &no_tag, "--workload-image-tag", "0.1.0", "--status", &bad_status],
            "rollback.state: unknown variant `Sideways`",
        ),
        (vec!["-f", &no_tag, "--workload-image-tag", "0.1.0", "--kafka-topic-version", "v2"], "v2"),
    ];
    for (args, expected) in cases {
        let output = render(&args, None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(if args.contains(&"v2") { 2 } else { 1 }), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing printed on failure");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
