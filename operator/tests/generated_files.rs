//! Every file generated from the code is up to date: the CRD and the chart's copy of it, the
//! Compose stack's rule file and dashboard (`spikewatch_operator::generated`), and the golden
//! files of every child object for each fixture pipeline (`operator/tests/snapshots/`, insta).
//! When one is stale, `scripts/generate` rewrites them all; review the diff before committing.
//!
//! (`models/feature_set.json` and the feature table of `docs/features.md`, which
//! `scripts/generate` also writes, are checked by the workloads' `features_cli` test.)

#[path = "common/pipelines.rs"]
mod pipelines;

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use spikewatch_operator::desired::{dashboard_json, desired_config_yaml, desired_objects};
use spikewatch_operator::generated::{REGENERATE, generated_files};

const SNAPSHOTS: &str = "operator/tests/snapshots";

#[test]
fn every_generated_file_is_what_the_code_generates() {
    let files = generated_files(&pipelines::repo_path("")).unwrap_or_else(|e| panic!("{e}"));
    assert!(files.iter().any(|f| f.path.starts_with("crds/")), "the CRD is among them");
    let stale: Vec<&str> = files
        .iter()
        .filter(|f| std::fs::read_to_string(pipelines::repo_path(f.path)).ok().as_deref() != Some(f.content.as_str()))
        .map(|f| f.path)
        .collect();
    assert!(stale.is_empty(), "stale generated files {stale:?}: run {REGENERATE}");
}

/// Runs one insta assertion; a mismatch is recorded under `name` instead of failing at once.
fn snapshot(stale: &mut Vec<String>, name: String, assertion: impl FnOnce(&str)) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots");
    let outcome = settings.bind(|| catch_unwind(AssertUnwindSafe(|| assertion(&name))));
    if outcome.is_err() {
        stale.push(name);
    }
}

#[test]
fn every_golden_file_is_what_the_builders_build() {
    let mut stale = vec![];
    let mut expected = BTreeSet::new();
    for (fixture, vp) in pipelines::all() {
        let objects = desired_objects(&vp, &pipelines::options()).expect("fixtures build");
        for desired in objects {
            let kind = desired.resource.kind.to_lowercase();
            let name = desired.object.metadata.name.clone().expect("children are named");
            let object = desired.object;
            let snapshot_name = format!("{fixture}__{kind}__{name}");
            expected.insert(snapshot_name.clone());
            snapshot(&mut stale, snapshot_name, |n| insta::assert_yaml_snapshot!(n, object));
        }
        let config = desired_config_yaml(&vp).unwrap();
        expected.insert(format!("{fixture}__config.yaml"));
        snapshot(&mut stale, format!("{fixture}__config.yaml"), |n| insta::assert_snapshot!(n, config));
        // The ConfigMap's golden file holds the dashboard as one escaped string; this one is reviewable.
        let dashboard = dashboard_json(&vp);
        expected.insert(format!("{fixture}__dashboard.json"));
        snapshot(&mut stale, format!("{fixture}__dashboard.json"), |n| insta::assert_yaml_snapshot!(n, dashboard));
    }

    // Golden files of objects the builders no longer build: removed when regenerating.
    let regenerating = matches!(std::env::var("INSTA_UPDATE").as_deref(), Ok("always" | "force"));
    let mut unreferenced = vec![];
    for entry in std::fs::read_dir(pipelines::repo_path(SNAPSHOTS)).expect("read the snapshots") {
        let path = entry.expect("snapshot entry").path();
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let Some(name) = file.strip_suffix(".snap") else { continue };
        if !expected.contains(name) {
            if regenerating {
                std::fs::remove_file(&path).unwrap_or_else(|e| panic!("cannot remove {file}: {e}"));
            } else {
                unreferenced.push(file);
            }
        }
    }
    assert!(stale.is_empty(), "stale golden files in {SNAPSHOTS} {stale:?}: run {REGENERATE}");
    assert!(unreferenced.is_empty(), "golden files in {SNAPSHOTS} nothing builds {unreferenced:?}: run {REGENERATE}");
}
