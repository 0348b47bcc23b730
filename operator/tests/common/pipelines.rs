//! The pipelines the builder and CRD tests run on: a minimal one and the two examples.

#![allow(dead_code)]

use spikewatch_operator::crd::VolatilityPipeline;
use spikewatch_operator::desired::RenderOptions;

/// `uid` given to fixtures, as the API server would, so owner references can be built.
pub const UID: &str = "6f1c2b1e-0c6b-4d7e-9a57-1f0e2d3c4b5a";

/// Only the required fields; everything else defaulted.
pub const MINIMAL: &str = "\
apiVersion: spikewatch.io/v1alpha1
kind: VolatilityPipeline
metadata:
  name: minimal
  namespace: default
spec:
  products: [BTC-USD]
  kafka:
    bootstrapServers: kafka:9092
";

/// A pipeline fed by a recording from a ConfigMap, replayed ten times faster than recorded,
/// with its own image tag.
pub const REPLAY: &str = "\
apiVersion: spikewatch.io/v1alpha1
kind: VolatilityPipeline
metadata:
  name: replay
  namespace: default
spec:
  products: [BTC-USD]
  source:
    type: replay
    replay:
      speed: \"10\"
      recording:
        configMap:
          name: btc-recording
          key: btc-usd-2026-04-06.csv.gz
  image:
    tag: \"2026.04.1\"
  kafka:
    bootstrapServers: kafka:9092
";

/// The workload image tag the operator is configured with in these tests.
pub const DEFAULT_IMAGE_TAG: &str = "0.1.0";

/// What the builders get from the operator and the cluster in these tests.
pub fn options() -> RenderOptions {
    RenderOptions { default_image_tag: Some(DEFAULT_IMAGE_TAG.into()), ..RenderOptions::default() }
}

/// Path of a file of the repository.
pub fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// Text of an example manifest under `examples/`.
pub fn example(file: &str) -> String {
    let path = repo_path(&format!("examples/{file}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Parses a manifest and gives it the metadata the API server would (uid, generation).
pub fn parse(yaml: &str) -> VolatilityPipeline {
    let mut vp: VolatilityPipeline = serde_yaml::from_str(yaml).expect("fixture parses as a VolatilityPipeline");
    vp.metadata.uid = Some(UID.into());
    vp.metadata.generation = Some(1);
    vp
}

/// `(fixture name, pipeline)` for every fixture.
pub fn all() -> Vec<(&'static str, VolatilityPipeline)> {
    vec![
        ("minimal", parse(MINIMAL)),
        ("external-kafka", parse(&example("pipeline.yaml"))),
        ("strimzi", parse(&example("pipeline-strimzi.yaml"))),
        ("replay", parse(REPLAY)),
    ]
}
