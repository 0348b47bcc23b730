//! Golden files of every child object for each fixture pipeline (`operator/tests/snapshots/`).
//! A change to a builder shows up as a reviewed diff: `INSTA_UPDATE=always cargo test -p
//! spikewatch-operator --test desired_snapshots`, then read the `.snap` changes.

#[path = "common/pipelines.rs"]
mod pipelines;

use spikewatch_operator::desired::desired_objects;

#[test]
fn every_child_matches_its_golden_file() {
    for (fixture, vp) in pipelines::all() {
        let objects = desired_objects(&vp, &pipelines::options()).expect("fixtures build");
        for desired in objects {
            let kind = desired.resource.kind.to_lowercase();
            let name = desired.object.metadata.name.clone().expect("children are named");
            insta::assert_yaml_snapshot!(format!("{fixture}__{kind}__{name}"), desired.object);
        }
    }
}

#[test]
fn the_workloads_config_file_matches_its_golden_file() {
    for (fixture, vp) in pipelines::all() {
        let yaml = spikewatch_operator::desired::desired_config_yaml(&vp).unwrap();
        insta::assert_snapshot!(format!("{fixture}__config.yaml"), yaml);
    }
}

#[test]
fn the_dashboard_model_matches_its_golden_file() {
    // The ConfigMap's snapshot holds the dashboard as one escaped string; this one is reviewable.
    for (fixture, vp) in pipelines::all() {
        insta::assert_yaml_snapshot!(
            format!("{fixture}__dashboard.json"),
            spikewatch_operator::desired::dashboard_json(&vp)
        );
    }
}
