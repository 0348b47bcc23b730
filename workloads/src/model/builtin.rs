//! The default model, built into the binary like the bundled recording: the files of
//! `models/artifacts/spikewatch-gbdt/` that serving reads, whatever they hold. `spikewatch run`
//! (and any subcommand whose `model.source` is left at its default) works from any directory,
//! with no model files beside the binary.
//!
//! A path, an `https://` URL or a `models:/` registry URI in `model.source` still replaces it.

use std::sync::Arc;

use super::fetch::FetchedArtifacts;
use super::{BASELINE_FILE, ModelError, ONNX_FILE, REFERENCE_FILE};

/// `model.source` of the built-in model (the default).
pub const SOURCE: &str = "builtin:spikewatch-gbdt";

/// The artifact files, by name, as `models/artifacts/spikewatch-gbdt/` held them at build time.
const FILES: [(&str, &[u8]); 3] = [
    (ONNX_FILE, include_bytes!("../../../models/artifacts/spikewatch-gbdt/model.onnx")),
    (BASELINE_FILE, include_bytes!("../../../models/artifacts/spikewatch-gbdt/baseline.json")),
    (REFERENCE_FILE, include_bytes!("../../../models/artifacts/spikewatch-gbdt/reference.json")),
];

/// The bytes of one built-in artifact file (`model.onnx`, `baseline.json`, `reference.json`).
pub fn file(name: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(file, _)| *file == name).map(|(_, bytes)| *bytes)
}

/// Writes the built-in files into a private temporary directory (the loaders read files; ONNX
/// Runtime reads the model into memory when its session is built), kept as long as the result.
pub(super) fn fetch() -> Result<FetchedArtifacts, ModelError> {
    let failed = |e: std::io::Error| ModelError::load(SOURCE, format!("cannot write the built-in model: {e}"));
    let dir = tempfile::tempdir().map_err(failed)?;
    for (name, bytes) in FILES {
        std::fs::write(dir.path().join(name), bytes).map_err(failed)?;
    }
    let path = |name: &str| Some(dir.path().join(name));
    Ok(FetchedArtifacts {
        source_uri: SOURCE.into(),
        onnx: path(ONNX_FILE),
        baseline: path(BASELINE_FILE),
        reference: path(REFERENCE_FILE),
        registry_naming: None,
        _download_dir: Some(Arc::new(dir)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ModelVariant;
    use crate::model::ArtifactSource;

    #[tokio::test]
    async fn the_default_source_is_the_built_in_model_with_every_file_serving_reads() {
        let default = crate::config::ModelConfig::default().source;
        assert_eq!(default, SOURCE);
        let source = ArtifactSource::parse(&default, None).unwrap();
        assert_eq!(source, ArtifactSource::Builtin);
        let fetched = source.fetch(&[ModelVariant::Ml, ModelVariant::Baseline]).await.unwrap();
        assert_eq!(fetched.source_uri, SOURCE);
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/spikewatch-gbdt");
        for (name, path) in [
            (ONNX_FILE, fetched.onnx.as_ref()),
            (BASELINE_FILE, fetched.baseline.as_ref()),
            (REFERENCE_FILE, fetched.reference.as_ref()),
        ] {
            let written = std::fs::read(path.unwrap()).unwrap();
            assert_eq!(written, std::fs::read(repo.join(name)).unwrap(), "{name}: the committed artifact");
            assert_eq!(file(name), Some(written.as_slice()));
        }
        assert_eq!(file("model_card.md"), None, "only what serving reads");
    }

    #[test]
    fn an_unknown_built_in_name_is_refused_with_the_one_there_is() {
        let err = ArtifactSource::parse("builtin:other", None).unwrap_err().to_string();
        assert!(err.contains("no such built-in model") && err.contains(SOURCE), "{err}");
    }
}
