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
        let rules = prometheus_rule_groups(&vp)[0]["rules"].as_array().unwrap().len();
        assert!(out.contains(&format!("SUCCESS: {rules} rules found")), "{out}");
    }
}

#[test]
fn every_alert_has_a_promtool_unit_test() {
    let vp = pipelines::parse(&pipelines::example("pipeline.yaml"));
    let tests = std::fs::read_to_string(pipelines::repo_path("monitoring/spikewatch-rules.test.yaml")).unwrap();
    for rule in prometheus_rule_groups(&vp)[0]["rules"].as_array().unwrap() {
        let alert = rule["alert"].as_str().unwrap();
        assert!(
            tests.contains(&format!("alertname: {alert}\n        exp_alerts:\n          - exp_labels")),
            "monitoring/spikewatch-rules.test.yaml has no test in which {alert} fires"
        );
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

/// The metric names `spikewatch_types::metric_names` declares (read from its source: the
/// constants are the only string literals of the file).
fn declared_metric_names() -> std::collections::BTreeSet<String> {
    let source = std::fs::read_to_string(pipelines::repo_path("crates/spikewatch-types/src/metric_names.rs"))
        .expect("read metric_names.rs");
    let constant = regex::Regex::new(r#"&str = "([a-z0-9_:]+)";"#).unwrap();
    constant.captures_iter(&source).map(|c| c[1].to_string()).collect()
}

/// The workload metric names of the series selectors in `text` (`name{...}`), histogram series
/// folded into their metric.
fn metric_names_in(text: &str) -> std::collections::BTreeSet<String> {
    let selector = regex::Regex::new(r"\b((?:volatility|spikewatch|model)_[a-z0-9_]+)\{").unwrap();
    selector
        .captures_iter(text)
        .map(|c| c.get(1).unwrap().as_str())
        .filter(|n| !n.starts_with("spikewatch_operator_"))
        .map(|n| {
            ["_bucket", "_sum", "_count"].iter().find_map(|suffix| n.strip_suffix(suffix)).unwrap_or(n).to_string()
        })
        .collect()
}

#[test]
fn every_metric_the_rules_the_dashboard_and_the_monitoring_files_read_is_one_the_workloads_export() {
    let declared = declared_metric_names();
    assert!(declared.contains("volatility_api_requests_total"), "{declared:?}");
    let mut sources = vec![];
    for (fixture, vp) in pipelines::all() {
        sources.push((format!("{fixture}: rules"), prometheus_rule_file(&vp).unwrap()));
        sources.push((format!("{fixture}: dashboard"), spikewatch_operator::desired::dashboard_json(&vp).to_string()));
    }
    // The promtool unit tests, and the Compose stack's copies of the rules and the dashboard.
    for file in [
        "monitoring/spikewatch-rules.test.yaml",
        "docker/prometheus/spikewatch-rules.yaml",
        "docker/grafana/dashboards/spikewatch.json",
    ] {
        let text = std::fs::read_to_string(pipelines::repo_path(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        sources.push((file.to_string(), text));
    }
    for (source, text) in sources {
        let used = metric_names_in(&text);
        assert!(!used.is_empty(), "{source} names no metric");
        let unknown: Vec<&String> = used.iter().filter(|n| !declared.contains(*n)).collect();
        assert!(
            unknown.is_empty(),
            "{source} reads metrics spikewatch_types::metric_names does not declare: {unknown:?}"
        );
    }
}
