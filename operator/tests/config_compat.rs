//! Config compatibility between operator and workload versions. An operator upgrade re-renders
//! every pipeline's ConfigMap while the pods keep running the image the pipeline pins; the
//! other way round, a pipeline may pin a newer image than the operator knows of.
//!
//! - Today's operator output is read by the workloads of the previous release: its config
//!   types, frozen in `compat/config_0_1_0.rs`, refuse unknown keys, so the file may only hold
//!   keys they know (it holds what the spec sets, not every default of today's version).
//! - The previous operator's output (every default written out, frozen in `compat/0.1.0/`) is
//!   read by today's workloads without an unknown key.
//! - A key today's workloads do not know (written by a newer operator) is ignored and reported.

#[path = "common/pipelines.rs"]
mod pipelines;
#[path = "compat/config_0_1_0.rs"]
mod previous;

use spikewatch_operator::desired::{desired_config, desired_config_yaml};
use spikewatch_types::config::Config;

#[test]
fn the_previous_releases_workloads_read_what_todays_operator_renders() {
    for (fixture, vp) in pipelines::all() {
        let text = desired_config_yaml(&vp).unwrap();
        let old: previous::Config = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{fixture}: a 0.1.0 workload refuses today's config: {e}\n{text}"));
        let today = desired_config(&vp);
        // What the pipeline runs with is the same for both versions.
        assert_eq!(old.kafka.bootstrap_servers, today.kafka.bootstrap_servers, "{fixture}");
        assert_eq!(
            [&old.kafka.topics.raw, &old.kafka.topics.features, &old.kafka.topics.predictions],
            [&today.kafka.topics.raw, &today.kafka.topics.features, &today.kafka.topics.predictions],
            "{fixture}"
        );
        assert_eq!(
            (&old.kafka.featurizer_group_id, &old.kafka.predictor_group_id),
            (&today.kafka.featurizer_group_id, &today.kafka.predictor_group_id),
            "{fixture}"
        );
        assert!(!old.kafka.create_topics, "{fixture}: the operator owns the topics");
        assert_eq!(old.kafka.security.protocol, today.kafka.security.protocol, "{fixture}");
        assert_eq!(old.kafka.security.ssl_ca_location, today.kafka.security.ssl_ca_location, "{fixture}");
        assert_eq!(old.feed.products, today.feed.products, "{fixture}");
        assert_eq!(old.model.source, today.model.source, "{fixture}");
        assert_eq!(old.model.threshold, today.model.threshold, "{fixture}");
        assert_eq!(
            serde_json::to_value(old.model.variant).unwrap(),
            serde_json::to_value(today.model.variant).unwrap()
        );
        assert_eq!(old.api.admin_token_file, today.api.admin_token_file, "{fixture}");
        assert_eq!((&old.api.bind, &old.metrics.bind), (&today.api.bind, &today.metrics.bind), "{fixture}");
    }
}

#[test]
fn the_frozen_types_do_refuse_a_key_they_do_not_know() {
    // Guards the test above: were the frozen types lenient, it could not fail.
    let err = serde_yaml::from_str::<previous::Config>("kafka:\n  linger_ms: 5\n").unwrap_err();
    assert!(err.to_string().contains("linger_ms"), "{err}");
}

#[test]
fn todays_workloads_read_what_the_previous_operator_rendered_without_an_unknown_key() {
    let dir = pipelines::repo_path("operator/tests/compat/0.1.0");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), pipelines::all().len(), "one frozen config per fixture");
    for (fixture, vp) in pipelines::all() {
        let path = dir.join(format!("{fixture}.config.yaml"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (config, unknown) = Config::from_yaml_reporting_unknown(&text).expect("today's workloads parse it");
        assert_eq!(unknown, Vec::<String>::new(), "{fixture}");
        let today = desired_config(&vp);
        assert_eq!(config.kafka.topics, today.kafka.topics, "{fixture}");
        assert_eq!(config.kafka.predictor_group_id, today.kafka.predictor_group_id, "{fixture}");
        assert_eq!(config.model.source, today.model.source, "{fixture}");
        assert_eq!(config.api.admin_token_file, today.api.admin_token_file, "{fixture}");
    }
}

#[test]
fn todays_workloads_ignore_and_report_a_key_a_newer_operator_adds() {
    let vp = &pipelines::all()[0].1;
    let mut text = desired_config_yaml(vp).unwrap();
    text.push_str("tracing:\n  otlp_endpoint: http://collector:4317\n");
    let (config, unknown) = Config::from_yaml_reporting_unknown(&text).expect("a newer key does not stop a workload");
    assert_eq!(unknown, ["tracing"]);
    assert_eq!(config, desired_config(vp));
}
