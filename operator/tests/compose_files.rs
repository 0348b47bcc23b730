//! The Docker Compose stack (`docker/compose.yaml`) alerts and charts exactly like a cluster:
//! its Prometheus rule file and its Grafana dashboard are the operator's own output for
//! `examples/pipeline.yaml` (pipeline `spikewatch/btc-eth`, the one the promtool unit tests in
//! `monitoring/` exercise), checked in under `docker/` and compared here byte for byte.
//!
//! Regenerate after a change to the builders or the example:
//!   UPDATE_COMPOSE_FILES=1 cargo nextest run -p spikewatch-operator --test compose_files

#[path = "common/pipelines.rs"]
mod pipelines;

use spikewatch_operator::desired::{desired_dashboard, prometheus_rule_file};

const REGENERATE: &str = "UPDATE_COMPOSE_FILES=1 cargo nextest run -p spikewatch-operator --test compose_files";
const RULES: &str = "docker/prometheus/spikewatch-rules.yaml";
const DASHBOARD: &str = "docker/grafana/dashboards/spikewatch.json";

fn pipeline() -> spikewatch_operator::crd::VolatilityPipeline {
    pipelines::parse(&pipelines::example("pipeline.yaml"))
}

/// The rule file: the operator's rule groups, under a header saying where they come from.
fn rules() -> String {
    let groups = prometheus_rule_file(&pipeline()).expect("the example's rules render");
    format!(
        "# Generated from examples/pipeline.yaml by the operator's PrometheusRule builder; do not edit.\n\
         # Regenerate: {REGENERATE}\n{groups}"
    )
}

/// The dashboard, exactly as the operator puts it into the pipeline's dashboard ConfigMap.
fn dashboard() -> String {
    let vp = pipeline();
    let config_map = desired_dashboard(&vp).expect("the dashboard renders").expect("the example enables it");
    let data = config_map.data.expect("the ConfigMap has data");
    assert_eq!(data.len(), 1, "one dashboard per pipeline");
    data.into_values().next().unwrap()
}

/// Writes `content` to `relative` when regenerating, else fails when the file differs.
fn check(relative: &str, content: &str) {
    let path = pipelines::repo_path(relative);
    if std::env::var_os("UPDATE_COMPOSE_FILES").is_some() {
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let checked_in =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {relative}: {e}; run `{REGENERATE}`"));
    assert!(checked_in == content, "{relative} is stale: run `{REGENERATE}`");
}

#[test]
fn the_compose_stacks_rule_file_is_the_operators() {
    check(RULES, &rules());
}

#[test]
fn the_compose_stacks_dashboard_is_the_operators_byte_for_byte() {
    check(DASHBOARD, &dashboard());
}
