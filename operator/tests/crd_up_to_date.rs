//! The checked-in CRD must be exactly what `spikewatch-operator crdgen` prints, so the chart and
//! `kubectl apply -f crds/` never ship a stale schema.

use spikewatch_operator::crdgen::{REGENERATE, crd_yaml};

#[test]
fn checked_in_crd_matches_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/volatilitypipelines.spikewatch.io.yaml");
    let checked_in =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}; run `{REGENERATE}`"));
    assert!(checked_in == crd_yaml(), "crds/volatilitypipelines.spikewatch.io.yaml is stale: run `{REGENERATE}`");
}
