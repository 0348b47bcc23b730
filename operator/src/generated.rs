//! The repository's files generated from the operator's code, in one list: the CRD (at the top
//! level and in the chart), and the Docker Compose stack's Prometheus rule file and Grafana
//! dashboard (the operator's own output for `examples/pipeline.yaml`).
//!
//! `scripts/generate` writes them (through the `generate` example of this crate) together with
//! the other generated files of the repository; `operator/tests/generated_files.rs` fails when a
//! checked-in copy differs from what these functions produce.

use std::path::{Path, PathBuf};

use crate::crd::VolatilityPipeline;
use crate::crdgen::crd_yaml;
use crate::desired::{DesiredError, dashboard_file, prometheus_rule_file};

/// The command that regenerates every generated file of the repository.
pub const REGENERATE: &str = "scripts/generate";

/// The pipeline the Compose stack alerts and charts like (`spikewatch/btc-eth`, the one the
/// promtool unit tests in `monitoring/` exercise).
pub const COMPOSE_PIPELINE: &str = "examples/pipeline.yaml";

/// One generated file: where it lives in the repository and what it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Relative to the repository's root.
    pub path: &'static str,
    pub content: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a VolatilityPipeline: {source}")]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("cannot build the generated files of {path}: {source}")]
    Desired { path: PathBuf, source: DesiredError },
}

/// Every generated file, from the sources under `root` (the repository's root).
pub fn generated_files(root: &Path) -> Result<Vec<GeneratedFile>, GenerateError> {
    let crd = crd_yaml();
    let path = root.join(COMPOSE_PIPELINE);
    let text = std::fs::read_to_string(&path).map_err(|source| GenerateError::Read { path: path.clone(), source })?;
    let pipeline: VolatilityPipeline =
        serde_yaml::from_str(&text).map_err(|source| GenerateError::Parse { path: path.clone(), source })?;
    let desired = |source| GenerateError::Desired { path: path.clone(), source };
    Ok(vec![
        GeneratedFile { path: "crds/volatilitypipelines.spikewatch.io.yaml", content: crd.clone() },
        GeneratedFile { path: "charts/spikewatch-operator/crds/volatilitypipelines.spikewatch.io.yaml", content: crd },
        GeneratedFile {
            path: "docker/prometheus/spikewatch-rules.yaml",
            content: compose_rules(&pipeline).map_err(desired)?,
        },
        GeneratedFile {
            path: "docker/grafana/dashboards/spikewatch.json",
            content: compose_dashboard(&pipeline).map_err(desired)?,
        },
    ])
}

/// The Compose stack's rule file: the pipeline's rule groups under a header saying where they
/// come from.
pub fn compose_rules(vp: &VolatilityPipeline) -> Result<String, DesiredError> {
    let groups = prometheus_rule_file(vp)?;
    Ok(format!(
        "# Generated from {COMPOSE_PIPELINE} by the operator's PrometheusRule builder; do not edit.\n\
         # Regenerate: {REGENERATE}\n{groups}"
    ))
}

/// The Compose stack's dashboard, exactly as the operator puts it into the pipeline's dashboard
/// ConfigMap.
pub fn compose_dashboard(vp: &VolatilityPipeline) -> Result<String, DesiredError> {
    dashboard_file(vp)
}
