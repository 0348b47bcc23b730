//! The generated CRD rejects invalid pipelines: OpenAPI bounds checked with Python's `jsonschema`
//! against the structural schema, CEL rules evaluated with kube's client-side CEL validator
//! (which applies the schema's defaults first, as the API server does). Both run on the
//! checked-in `crds/volatilitypipelines.spikewatch.io.yaml`.

#[path = "common/pipelines.rs"]
mod pipelines;
#[path = "common/validate.rs"]
mod validate;

use kube::CustomResourceExt;
use serde_json::{Value, json};
use spikewatch_operator::crd::VolatilityPipeline;

fn yaml_to_json(yaml: &str) -> Value {
    serde_yaml::from_str(yaml).expect("YAML")
}

/// The minimal pipeline with `patch` merged into its spec.
fn minimal_with(patch: Value) -> Value {
    let mut object = yaml_to_json(pipelines::MINIMAL);
    merge(&mut object["spec"], patch);
    object
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

fn cel_errors(object: &Value) -> Vec<String> {
    match kube::core::cel::Validator::new().validate(&validate::crd_schema(), object, None) {
        Ok(()) => vec![],
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn examples_parse_as_pipelines_and_pass_the_schema_and_the_cel_rules() {
    let schema = validate::crd_schema();
    for file in ["pipeline.yaml", "pipeline-strimzi.yaml", "gitops/pipelines/btc-usd-replay.yaml"] {
        let text = pipelines::example(file);
        let vp: VolatilityPipeline = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!vp.spec.products.is_empty(), "{file}");
        // As written, and as the operator reads it back with every default filled in.
        let instances = [yaml_to_json(&text), serde_json::to_value(&vp).unwrap()];
        let errors = validate::openapi_schema_errors(&schema, &instances);
        assert_eq!(errors, [Vec::<String>::new(), vec![]], "{file}");
        for instance in &instances {
            assert_eq!(cel_errors(instance), Vec::<String>::new(), "{file}");
        }
        // No field the API server would prune: everything written is read back.
        let mut pruned = vec![];
        unknown_fields(&instances[0], &instances[1], "", &mut pruned);
        assert!(pruned.is_empty(), "{file}: fields the CRD does not know: {pruned:?}");
    }
    let minimal = yaml_to_json(pipelines::MINIMAL);
    assert_eq!(validate::openapi_schema_errors(&schema, std::slice::from_ref(&minimal)), [Vec::<String>::new()]);
    assert_eq!(cel_errors(&minimal), Vec::<String>::new(), "defaults satisfy every rule");
}

/// Paths present in `written` but absent from `read` (what serde, and the API server's pruning,
/// would drop).
fn unknown_fields(written: &Value, read: &Value, path: &str, out: &mut Vec<String>) {
    match (written, read) {
        (Value::Object(w), Value::Object(r)) => {
            for (key, value) in w {
                match r.get(key) {
                    Some(seen) => unknown_fields(value, seen, &format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key}")),
                }
            }
        }
        (Value::Array(w), Value::Array(r)) => {
            for (i, (a, b)) in w.iter().zip(r).enumerate() {
                unknown_fields(a, b, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_openapi_schema_rejects_out_of_bounds_fields() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("lower-case product", json!({"products": ["btc-usd"]}), "does not match"),
        ("product without quote currency", json!({"products": ["BTC"]}), "does not match"),
        ("no products", json!({"products": []}), "should be non-empty"),
        ("zero partitions", json!({"kafka": {"partitions": 0}}), "less than the minimum"),
        ("too many partitions", json!({"kafka": {"partitions": 1001}}), "greater than the maximum"),
        ("threshold 1.5", json!({"model": {"threshold": 1.5}}), "greater than"),
        ("threshold 1", json!({"model": {"threshold": 1.0}}), "greater than or equal to the maximum"),
        ("threshold 0", json!({"model": {"threshold": 0.0}}), "less than or equal to the minimum"),
        ("unknown feed", json!({"feed": "websocket"}), "is not one of"),
        ("unknown model variant", json!({"model": {"variant": "gpt"}}), "is not one of"),
        ("unknown security protocol", json!({"kafka": {"securityProtocol": "TLS"}}), "is not one of"),
        ("unknown deletion policy", json!({"kafka": {"deletionPolicy": "Purge"}}), "is not one of"),
        ("unknown topic management", json!({"kafka": {"topicManagement": "terraform"}}), "is not one of"),
        ("negative replicas", json!({"workloads": {"api": {"replicas": -1}}}), "less than the minimum"),
        ("topic name with a space", json!({"kafka": {"topics": {"raw": "ticks raw"}}}), "does not match"),
        ("empty bootstrap servers", json!({"kafka": {"bootstrapServers": ""}}), "should be non-empty"),
        ("bootstrap list with a blank", json!({"kafka": {"bootstrapServers": "a:9092, b:9092"}}), "does not match"),
        ("error rate above 1", json!({"rollback": {"maxErrorRate": 2.0}}), "greater than the maximum"),
        ("lag per replica 0", json!({"autoscaling": {"lagPerReplica": 0}}), "less than the minimum"),
        ("unknown scaling engine", json!({"autoscaling": {"engine": "hpa"}}), "is not one of"),
        ("check interval 0", json!({"rollback": {"intervalSeconds": 0}}), "less than the minimum"),
        ("failure threshold 0", json!({"rollback": {"failureThreshold": 0}}), "less than the minimum"),
        ("unknown recovery mode", json!({"rollback": {"recovery": "Sometimes"}}), "is not one of"),
        (
            "Prometheus URL without a scheme",
            json!({"monitoring": {"prometheusUrl": "prometheus:9090"}}),
            "does not match",
        ),
        ("no-predictions window 0", json!({"monitoring": {"noPredictionsMinutes": 0}}), "less than the minimum"),
        ("pull policy", json!({"image": {"pullPolicy": "Sometimes"}}), "is not one of"),
        ("image tag with a slash", json!({"image": {"tag": "v1/evil"}}), "does not match"),
        ("unknown source type", json!({"source": {"type": "mirror"}}), "is not one of"),
        ("replay speed in words", json!({"source": {"type": "replay", "replay": {"speed": "fast"}}}), "does not match"),
        (
            "recording URL with another scheme",
            json!({"source": {"type": "replay", "replay": {"recording": {"url": "ftp://example.com/r"}}}}),
            "does not match",
        ),
    ];
    let instances: Vec<Value> = cases.iter().map(|(_, patch, _)| minimal_with(patch.clone())).collect();
    let errors = validate::openapi_schema_errors(&validate::crd_schema(), &instances);
    for ((case, _, expected), errors) in cases.iter().zip(errors) {
        assert!(!errors.is_empty(), "{case}: accepted");
        assert!(errors.iter().any(|e| e.contains(expected)), "{case}: {errors:?}");
    }
    let mut no_kafka = yaml_to_json(pipelines::MINIMAL);
    no_kafka["spec"].as_object_mut().unwrap().remove("kafka");
    let errors = validate::openapi_schema_errors(&validate::crd_schema(), &[no_kafka]);
    assert!(errors[0].iter().any(|e| e.contains("'kafka' is a required property")), "{errors:?}");
}

#[test]
fn the_cel_rules_reject_inconsistent_pipelines() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "autoscaling min above max",
            json!({"autoscaling": {"enabled": true, "minReplicas": 3, "maxReplicas": 2}}),
            "minReplicas must not exceed",
        ),
        (
            "autoscaling max above partitions",
            json!({"kafka": {"partitions": 3}, "autoscaling": {"enabled": true, "maxReplicas": 4}}),
            "maxReplicas must not exceed kafka.partitions",
        ),
        ("predictors beyond partitions", json!({"workloads": {"predictor": {"replicas": 4}}}), "predictor.replicas"),
        ("featurizers beyond partitions", json!({"workloads": {"featurizer": {"replicas": 4}}}), "featurizer.replicas"),
        ("two ingestors", json!({"workloads": {"ingestor": {"replicas": 2}}}), "two ingestors"),
        (
            "same topic twice",
            json!({"kafka": {"topics": {"raw": "ticks", "features": "ticks"}}}),
            "topic names must be distinct",
        ),
        (
            "predictions on the default raw topic",
            json!({"kafka": {"topics": {"predictions": "ticks.raw"}}}),
            "topic names must be distinct",
        ),
        ("strimzi without a cluster", json!({"kafka": {"topicManagement": "strimzi"}}), "strimziCluster is required"),
        ("SASL without a secret", json!({"kafka": {"securityProtocol": "SASL_SSL", "saslMechanism": "PLAIN"}}), "SASL"),
        (
            "SASL without a mechanism",
            json!({"kafka": {"securityProtocol": "SASL_PLAINTEXT", "authSecretRef": {"name": "k"}}}),
            "SASL",
        ),
        (
            "CA from secret over plaintext",
            json!({"kafka": {"caFromSecret": true, "authSecretRef": {"name": "k"}}}),
            "caFromSecret",
        ),
        ("threshold 1.5", json!({"model": {"threshold": 1.5}}), "strictly between 0 and 1"),
        ("threshold 0", json!({"model": {"threshold": 0.0}}), "strictly between 0 and 1"),
        (
            "recovery shorter than the window",
            json!({"rollback": {"windowSeconds": 600, "recoverySeconds": 60}}),
            "recoverySeconds must be at least",
        ),
        (
            "a window shorter than two checks",
            json!({"rollback": {"windowSeconds": 20, "intervalSeconds": 15}}),
            "must span at least two checks",
        ),
        (
            "replay settings on a live source",
            json!({"source": {"type": "live", "replay": {"speed": "10"}}}),
            "only used with source.type replay",
        ),
        ("a replay at speed 0", json!({"source": {"type": "replay", "replay": {"speed": "0.0"}}}), "positive multiple"),
        (
            "a recording from two places",
            json!({"source": {"type": "replay", "replay": {"recording": {
                "url": "https://example.com/r.ndjson", "configMap": {"name": "r", "key": "r.ndjson"}}}}}),
            "exactly one of",
        ),
        (
            "a recording from nowhere",
            json!({"source": {"type": "replay", "replay": {"recording": {}}}}),
            "exactly one of",
        ),
        (
            "a recording path leaving its volume",
            json!({"source": {"type": "replay", "replay": {"recording": {
                "persistentVolumeClaim": {"claimName": "r", "path": "a/../../etc/passwd"}}}}}),
            "no '..'",
        ),
    ];
    for (case, patch, expected) in cases {
        let errors = cel_errors(&minimal_with(patch));
        assert!(!errors.is_empty(), "{case}: accepted");
        assert!(errors.iter().any(|e| e.contains(expected)), "{case}: {errors:?}");
    }
    // The boundaries themselves are fine.
    let edge = json!({
        "kafka": {"partitions": 4},
        "autoscaling": {"enabled": true, "minReplicas": 4, "maxReplicas": 4},
        "workloads": {"predictor": {"replicas": 4}, "featurizer": {"replicas": 4}, "ingestor": {"replicas": 0}},
        "model": {"threshold": 0.999},
        "rollback": {"windowSeconds": 30, "intervalSeconds": 15, "recoverySeconds": 30},
    });
    assert_eq!(cel_errors(&minimal_with(edge)), Vec::<String>::new());
    // Autoscaling off: its maximum does not matter.
    let off = json!({"autoscaling": {"enabled": false, "maxReplicas": 50}});
    assert_eq!(cel_errors(&minimal_with(off)), Vec::<String>::new());
    // Each recording source alone, and the bundled one, are fine.
    for recording in [
        json!({"url": "https://example.com/r.ndjson"}),
        json!({"configMap": {"name": "r", "key": "r.csv.gz"}}),
        json!({"persistentVolumeClaim": {"claimName": "r", "path": "btc/r.csv.gz"}}),
    ] {
        let replay = json!({"source": {"type": "replay", "replay": {"speed": "0.5", "recording": recording}}});
        assert_eq!(cel_errors(&minimal_with(replay)), Vec::<String>::new());
    }
    let bundled = json!({"source": {"type": "replay", "replay": {"speed": "max"}}});
    assert_eq!(cel_errors(&minimal_with(bundled)), Vec::<String>::new());
}

/// Every `x-kubernetes-validations` rule with its path in the schema.
fn cel_rules(schema: &Value, path: &str, out: &mut Vec<(String, String)>) {
    if let Some(rules) = schema.get("x-kubernetes-validations").and_then(Value::as_array) {
        for rule in rules {
            out.push((path.to_string(), rule["rule"].as_str().unwrap().to_string()));
            assert!(rule["message"].is_string(), "rule at {path} has a message");
        }
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            cel_rules(child, &format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = schema.get("items") {
        cel_rules(items, &format!("{path}[]"), out);
    }
}

#[test]
fn the_crd_lists_the_cel_rules() {
    let mut rules = vec![];
    cel_rules(&validate::crd_schema(), "", &mut rules);
    let expected = [
        (".spec", "!self.autoscaling.enabled || self.autoscaling.maxReplicas <= self.kafka.partitions"),
        (".spec", "self.workloads.predictor.replicas <= self.kafka.partitions"),
        (".spec", "self.workloads.featurizer.replicas <= self.kafka.partitions"),
        (".spec.autoscaling", "self.minReplicas <= self.maxReplicas"),
        (".spec.kafka", "self.topicManagement != 'strimzi' || (has(self.strimziCluster) && self.strimziCluster != '')"),
        (
            ".spec.kafka",
            "!self.securityProtocol.startsWith('SASL') || (has(self.authSecretRef) && has(self.saslMechanism))",
        ),
        (".spec.kafka", "!self.caFromSecret || (has(self.authSecretRef) && self.securityProtocol.endsWith('SSL'))"),
        (
            ".spec.kafka.topics",
            "self.raw != self.features && self.raw != self.predictions && self.features != self.predictions",
        ),
        (".spec.model.threshold", "self > 0.0 && self < 1.0"),
        (".spec.rollback", "self.recoverySeconds >= self.windowSeconds"),
        (".spec.source", "self.type == 'replay' || !has(self.replay)"),
        (".spec.source.replay.speed", "self == 'max' || double(self) > 0.0"),
        (
            ".spec.source.replay.recording",
            "[has(self.configMap), has(self.persistentVolumeClaim), has(self.url)].filter(x, x).size() == 1",
        ),
        (".spec.source.replay.recording.persistentVolumeClaim.path", "!self.contains('..')"),
        (".spec.rollback", "self.windowSeconds >= 2 * self.intervalSeconds"),
        (".spec.workloads", "self.ingestor.replicas <= 1"),
    ];
    let mut expected: Vec<(String, String)> = expected.iter().map(|(p, r)| (p.to_string(), r.to_string())).collect();
    expected.sort();
    rules.sort();
    assert_eq!(rules, expected);
    // Each is documented for users.
    let doc = std::fs::read_to_string(pipelines::repo_path("docs/operator.md")).expect("docs/operator.md");
    for (_, rule) in &rules {
        assert!(doc.contains(rule.as_str()), "docs/operator.md does not document `{rule}`");
    }
}

/// Paths of schema properties under `spec` without a description.
fn undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let child_path = format!("{path}.{name}");
            if child.get("description").and_then(Value::as_str).is_none_or(str::is_empty) {
                out.push(child_path.clone());
            }
            undocumented(child, &child_path, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(items, &format!("{path}[]"), out);
    }
}

#[test]
fn every_spec_and_status_field_is_described_for_kubectl_explain() {
    let schema = validate::crd_schema();
    let mut missing = vec![];
    undocumented(&schema["properties"]["spec"], "spec", &mut missing);
    undocumented(&schema["properties"]["status"], "status", &mut missing);
    assert!(missing.is_empty(), "fields without a description: {missing:?}");
}

#[test]
fn the_crd_is_a_namespaced_vp_with_status_and_printer_columns() {
    let crd = VolatilityPipeline::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("volatilitypipelines.spikewatch.io"));
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["vp".to_string()][..]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<_> =
        version.additional_printer_columns.as_ref().unwrap().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["Phase", "Model", "Ready", "Age", "Reason", "Predictors", "Lag"]);
}

/// The schema node a printer column's JSONPath reaches (`[?(...)]` filters a list's items).
fn schema_at<'a>(schema: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    // Split on the dots outside brackets.
    let (mut steps, mut current, mut depth) = (vec![], String::new(), 0);
    for c in path.trim_start_matches('.').chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '.' if depth == 0 => {
                steps.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    steps.push(current);
    let mut node = schema;
    for step in &steps {
        let (field, filtered) = match step.split_once("[?(") {
            Some((field, _)) => (field, true),
            None => (step.as_str(), false),
        };
        node = node.get("properties")?.get(field)?;
        if filtered {
            node = node.get("items")?;
        }
    }
    Some(node)
}

#[test]
fn the_wide_columns_show_the_ready_reason_the_predictors_and_the_lag() {
    // `kubectl get vp -o wide`: priority 1 columns; each path names a field of the status.
    let crd = serde_json::to_value(VolatilityPipeline::crd()).unwrap();
    let version = &crd["spec"]["versions"][0];
    let schema = &version["schema"]["openAPIV3Schema"];
    let wide: Vec<&serde_json::Value> =
        version["additionalPrinterColumns"].as_array().unwrap().iter().filter(|c| c["priority"] == 1).collect();
    let expected = [
        ("Reason", ".status.conditions[?(@.type==\"Ready\")].reason", "string"),
        ("Predictors", ".status.workloads.predictor.readyReplicas", "integer"),
        ("Lag", ".status.consumer.lag", "integer"),
    ];
    assert_eq!(wide.len(), expected.len(), "{wide:?}");
    for (column, (name, path, kind)) in wide.iter().zip(expected) {
        assert_eq!((column["name"].as_str(), column["jsonPath"].as_str()), (Some(name), Some(path)));
        assert_eq!(column["type"], kind, "{name}");
        let field = schema_at(schema, path).unwrap_or_else(|| panic!("{name}: {path} is not in the schema"));
        assert_eq!(field["type"], kind, "{name}: the status field's type");
    }
    for default in
        version["additionalPrinterColumns"].as_array().unwrap().iter().filter(|c| c.get("priority").is_none())
    {
        assert!(["Phase", "Model", "Ready", "Age"].contains(&default["name"].as_str().unwrap()), "{default}");
    }
}

#[test]
fn a_workload_listed_with_one_field_keeps_the_defaults_of_its_kind() {
    use spikewatch_operator::crd::{Workload, WorkloadSpec};
    let defaults = |w: Workload| match w {
        Workload::Ingestor => WorkloadSpec::ingestor_default(),
        Workload::Featurizer => WorkloadSpec::featurizer_default(),
        Workload::Predictor => WorkloadSpec::predictor_default(),
        Workload::Api => WorkloadSpec::api_default(),
    };
    // In the schema, per field, so the API server fills them in the stored object.
    let schema = validate::crd_schema();
    for workload in Workload::ALL {
        let properties =
            &schema["properties"]["spec"]["properties"]["workloads"]["properties"][workload.component()]["properties"];
        let expected = defaults(workload);
        assert_eq!(properties["replicas"]["default"], json!(expected.replicas), "{workload}");
        assert_eq!(properties["resources"]["default"], serde_json::to_value(expected.resources).unwrap(), "{workload}");
    }
    // And when the operator reads a manifest that never went through an API server (`render`).
    let object = minimal_with(json!({"workloads": {
        "api": {"nodeSelector": {"pool": "api"}},
        "predictor": {"replicas": 3, "resources": {"limits": {"cpu": "4"}}},
    }}));
    let vp: VolatilityPipeline = serde_json::from_value(object).unwrap();
    let api = &vp.spec.workloads.api;
    assert_eq!((api.replicas, &api.resources), (2, &WorkloadSpec::api_default().resources));
    assert_eq!(api.node_selector.as_ref().unwrap()["pool"], "api");
    let predictor = &vp.spec.workloads.predictor;
    assert_eq!(predictor.replicas, 3);
    assert_eq!(
        serde_json::to_value(&predictor.resources).unwrap(),
        json!({"limits": {"cpu": "4"}}),
        "resources written replace the defaults as a whole"
    );
    assert_eq!(vp.spec.workloads.ingestor, WorkloadSpec::ingestor_default(), "an absent workload");
}
