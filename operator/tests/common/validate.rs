//! Validation of manifests against real schemas, offline:
//! - `kubernetes-validate` (PyPI) checks built-in kinds against the upstream Kubernetes OpenAPI
//!   schemas of [`KUBERNETES_VERSION`];
//! - the `jsonschema` Python package checks custom resources against the CRD's structural schema;
//! - kube's client-side CEL evaluator checks the CRD's `x-kubernetes-validations`.
//!
//! The Python tools come from the project's `.venv` (`scripts/setup`); without `source scripts/env`
//! the tests fail and say so.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Kubernetes version whose schemas the manifests are validated against.
pub const KUBERNETES_VERSION: &str = "1.34.0";

fn env_path(var: &str) -> PathBuf {
    let value = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `source scripts/env` (after `scripts/setup`) before the tests")
    });
    PathBuf::from(value)
}

/// The project's Python interpreter.
pub fn python() -> PathBuf {
    let python = env_path("SPIKEWATCH_PYTHON");
    assert!(python.exists(), "{} does not exist: run `scripts/setup`, then `source scripts/env`", python.display());
    python
}

/// An executable of the project's `.venv`.
pub fn venv_bin(name: &str) -> PathBuf {
    let bin = env_path("SPIKEWATCH_ROOT").join(".venv/bin").join(name);
    assert!(bin.exists(), "{} does not exist: run `scripts/setup`, then `source scripts/env`", bin.display());
    bin
}

/// What `kubernetes-validate` said about one file.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Passed,
    /// No schema for this kind in the schema set (custom resources).
    UnknownKind,
    Failed(String),
}

/// Writes each `(file name, YAML document)` to a temporary directory and runs
/// `kubernetes-validate --strict` once over all of them. Returns the verdict per file and the
/// tool's whole output.
pub fn kubernetes_validate(documents: &[(String, String)]) -> (BTreeMap<String, Verdict>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut paths = vec![];
    for (name, yaml) in documents {
        assert!(!name.contains('/'), "file names only: {name}");
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).expect("write manifest");
        paths.push(path);
    }
    let output = Command::new(venv_bin("kubernetes-validate"))
        .args(["-k", KUBERNETES_VERSION, "--strict"])
        .args(&paths)
        .output()
        .expect("run kubernetes-validate");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let mut verdicts = BTreeMap::new();
    for line in text.lines() {
        let Some((level, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some((file, message)) = rest.split_once(' ') else {
            continue;
        };
        let Some(name) = documents.iter().map(|(n, _)| n).find(|n| file.ends_with(&format!("/{n}"))) else {
            continue;
        };
        let verdict = match level {
            "INFO" if message.starts_with("passed") => Verdict::Passed,
            "WARN" if message.starts_with("Couldn't find schema") => Verdict::UnknownKind,
            _ => Verdict::Failed(message.to_string()),
        };
        // A failure wins over anything else reported for the same file.
        let entry = verdicts.entry(name.clone()).or_insert(verdict.clone());
        if matches!(verdict, Verdict::Failed(_)) {
            *entry = verdict;
        }
    }
    (verdicts, text)
}

/// Asserts every document validates, except the kinds listed in `custom_kinds`, which must be
/// reported as unknown to the schema set (never silently passed).
pub fn assert_kubernetes_valid(documents: &[(String, String)], custom_kinds: &[&str]) {
    let (verdicts, output) = kubernetes_validate(documents);
    for (name, yaml) in documents {
        let kind = yaml
            .lines()
            .find_map(|l| l.strip_prefix("kind: "))
            .unwrap_or_else(|| panic!("{name} has no top-level kind"))
            .trim();
        let verdict =
            verdicts.get(name).unwrap_or_else(|| panic!("kubernetes-validate said nothing about {name}:\n{output}"));
        let expected = if custom_kinds.contains(&kind) { Verdict::UnknownKind } else { Verdict::Passed };
        assert_eq!(verdict, &expected, "{name} ({kind}) against Kubernetes {KUBERNETES_VERSION}:\n{output}");
    }
}

const JSONSCHEMA_SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft4Validator
request = json.load(sys.stdin)
validator = Draft4Validator(request["schema"])
out = []
for instance in request["instances"]:
    out.append(sorted("/".join(str(p) for p in e.absolute_path) + ": " + e.message for e in validator.iter_errors(instance)))
json.dump(out, sys.stdout)
"#;

/// Validates each instance against an OpenAPI v3 (structural) schema with Python's `jsonschema`
/// (Draft 4 semantics, which is what OpenAPI 3.0's `exclusiveMinimum: true` means). Returns the
/// errors of each instance; empty = valid.
pub fn openapi_schema_errors(schema: &serde_json::Value, instances: &[serde_json::Value]) -> Vec<Vec<String>> {
    let mut child = Command::new(python())
        .args(["-c", JSONSCHEMA_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    let request = serde_json::json!({ "schema": schema, "instances": instances });
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).expect("write request");
    let output = child.wait_with_output().expect("python finished");
    assert!(output.status.success(), "jsonschema failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("jsonschema answer is JSON")
}

/// The `openAPIV3Schema` of the checked-in CRD.
pub fn crd_schema() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/volatilitypipelines.spikewatch.io.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let crd: serde_json::Value = serde_yaml::from_str(&text).expect("CRD is YAML");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}
