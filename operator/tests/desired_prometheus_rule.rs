//! The PrometheusRule's alerts checked and unit-tested by Prometheus's own `promtool`
//! (Debian package `prometheus`, installed by `scripts/setup`).

#[path = "common/pipelines.rs"]
mod pipelines;

use std::process::Command;

use spikewatch_operator::desired::{desired_prometheus_rule, prometheus_rule_file, prometheus_rule_groups};

fn promtool() -> &'static str {
    let found = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "promtool not found: run `scripts/setup` (it installs Debian's `prometheus` package)");
    "promtool"
}

fn run(args: &[&str], dir: &std::path::Path) -> String {
    let output = Command::new(promtool()).args(args).current_dir(dir).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    text
}

/// The rule file of examples/pipeline.yaml next to the checked-in unit tests.
fn rules_dir() -> tempfile::TempDir {
    let vp = pipelines::parse(&pipelines::example("pipeline.yaml"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spikewatch-rules.yaml"), prometheus_rule_file(&vp).unwrap()).unwrap();
    let tests = pipelines::repo_path("monitoring/spikewatch-rules.test.yaml");
    std::fs::copy(&tests, dir.path().join("spikewatch-rules.test.yaml")).expect("copy the promtool unit tests");
    dir
}

#[test]
fn promtool_accepts_the_rules() {
    for (_, vp) in pipelines::all() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yaml"), prometheus_rule_file(&vp).unwrap()).unwrap();
        let out = run(&["check", "rules", "rules.yaml"], dir.path());
        assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
    }
}

#[test]
fn promtool_unit_tests_fire_each_alert_and_only_then() {
    let dir = rules_dir();
    let out = run(&["test", "rules", "spikewatch-rules.test.yaml"], dir.path());
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_rule_object_carries_the_same_groups_and_the_no_predictions_window() {
    let mut vp = pipelines::parse(&pipelines::example("pipeline-strimzi.yaml"));
    let rule = desired_prometheus_rule(&vp).unwrap().unwrap();
    assert_eq!(rule.data["spec"]["groups"], prometheus_rule_groups(&vp));
    let no_predictions = &rule.data["spec"]["groups"][0]["rules"][3];
    assert_eq!(no_predictions["alert"], "SpikewatchNoPredictions");
    assert!(no_predictions["expr"].as_str().unwrap().contains("[10m]"), "noPredictionsMinutes: 10");
    vp.spec.monitoring.prometheus_rule = false;
    assert!(desired_prometheus_rule(&vp).unwrap().is_none());
}
