//! Where model artifacts come from: a local path, an `https://` URL, or the MLflow registry.
//!
//! Remote artifacts are downloaded into a private temporary directory that lives as long as
//! the [`FetchedArtifacts`] (ONNX Runtime reads the model into memory when the session is built,
//! so the files are only needed while loading).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::mlflow::{MlflowClient, RegistryRef};
use super::{BASELINE_FILE, ModelError, ONNX_FILE, REFERENCE_FILE};
use crate::domain::ModelVariant;

/// A parsed `model.source`.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactSource {
    /// The model built into the binary (`builtin:spikewatch-gbdt`, the default).
    Builtin,
    /// An artifact directory, or a `model.onnx` / `baseline.json` file.
    Local(PathBuf),
    /// A file URL (`…/model.onnx`, `…/baseline.json`) or a directory URL ending in `/`;
    /// the other variant's file is looked up next to it.
    Https(Url),
    /// `models:/<name>/<version>` or `models:/<name>@<alias>`, resolved through MLflow's REST API.
    Registry { tracking_uri: String, name: String, reference: RegistryRef },
}

/// Local copies of a source's artifacts.
#[derive(Debug, Clone)]
pub struct FetchedArtifacts {
    pub source_uri: String,
    pub onnx: Option<PathBuf>,
    pub baseline: Option<PathBuf>,
    /// `reference.json`, when the source has one.
    pub reference: Option<PathBuf>,
    /// `(registered model name, version)` when the source was the registry.
    pub registry_naming: Option<(String, String)>,
    pub(super) _download_dir: Option<Arc<tempfile::TempDir>>,
}

impl FetchedArtifacts {
    fn has(&self, variant: ModelVariant) -> bool {
        match variant {
            ModelVariant::Ml => self.onnx.is_some(),
            ModelVariant::Baseline => self.baseline.is_some(),
        }
    }
}

impl ArtifactSource {
    pub fn parse(source: &str, mlflow_tracking_uri: Option<&str>) -> Result<Self, ModelError> {
        let source = source.trim();
        if source.is_empty() {
            return Err(ModelError::load("<empty>", "no model source configured"));
        }
        if let Some(name) = source.strip_prefix("builtin:") {
            if format!("builtin:{name}") != super::builtin::SOURCE {
                return Err(ModelError::load(
                    source,
                    format!("no such built-in model (this binary has {})", super::builtin::SOURCE),
                ));
            }
            return Ok(ArtifactSource::Builtin);
        }
        if let Some(rest) = source.strip_prefix("models:/") {
            let tracking_uri = mlflow_tracking_uri.filter(|u| !u.is_empty()).ok_or_else(|| {
                ModelError::load(
                    source,
                    "a models:/ source needs an MLflow tracking URI (SPIKEWATCH_MLFLOW_TRACKING_URI)",
                )
            })?;
            let (name, reference) = RegistryRef::parse(rest).map_err(|reason| ModelError::load(source, reason))?;
            return Ok(ArtifactSource::Registry {
                tracking_uri: tracking_uri.trim_end_matches('/').to_string(),
                name,
                reference,
            });
        }
        if source.starts_with("https://") || source.starts_with("http://") {
            let url = Url::parse(source).map_err(|e| ModelError::load(source, e))?;
            return Ok(ArtifactSource::Https(url));
        }
        if let Some(path) = source.strip_prefix("file://") {
            return Ok(ArtifactSource::Local(PathBuf::from(path)));
        }
        if source.contains("://") {
            return Err(ModelError::load(
                source,
                "unsupported scheme (expected a path, https://, models:/ or builtin:spikewatch-gbdt)",
            ));
        }
        Ok(ArtifactSource::Local(PathBuf::from(source)))
    }

    pub fn uri(&self) -> String {
        match self {
            ArtifactSource::Builtin => super::builtin::SOURCE.into(),
            ArtifactSource::Local(path) => path.display().to_string(),
            ArtifactSource::Https(url) => url.to_string(),
            ArtifactSource::Registry { name, reference, .. } => format!("models:/{name}{}", reference.suffix()),
        }
    }

    /// Fetches the artifacts of both variants; only `required`'s must exist.
    pub async fn fetch(&self, required: &[ModelVariant]) -> Result<FetchedArtifacts, ModelError> {
        let fetched = match self {
            ArtifactSource::Builtin => super::builtin::fetch()?,
            ArtifactSource::Local(path) => local(path)?,
            ArtifactSource::Https(url) => https(url).await?,
            ArtifactSource::Registry { tracking_uri, name, reference } => {
                registry(&self.uri(), tracking_uri, name, reference).await?
            }
        };
        for &variant in required {
            if !fetched.has(variant) {
                let file = match variant {
                    ModelVariant::Ml => ONNX_FILE,
                    ModelVariant::Baseline => BASELINE_FILE,
                };
                return Err(ModelError::load(
                    &fetched.source_uri,
                    format!("variant {} needs {file}, which the source does not provide", variant.as_str()),
                ));
            }
        }
        Ok(fetched)
    }
}

/// A relative path is taken from the working directory (only: the model built into the binary
/// is the default that works from anywhere).
fn local(path: &Path) -> Result<FetchedArtifacts, ModelError> {
    let uri = path.display().to_string();
    if !path.exists() {
        return Err(ModelError::load(&uri, "no such file or directory"));
    }
    let resolved = path.to_path_buf();
    let existing = |p: PathBuf| p.is_file().then_some(p);
    let (onnx, baseline) = if resolved.is_dir() {
        (existing(resolved.join(ONNX_FILE)), existing(resolved.join(BASELINE_FILE)))
    } else if resolved.extension().is_some_and(|e| e == "json") {
        (None, Some(resolved.clone()))
    } else {
        let sibling = resolved.parent().map(|dir| dir.join(BASELINE_FILE)).and_then(existing);
        (Some(resolved.clone()), sibling)
    };
    if onnx.is_none() && baseline.is_none() {
        return Err(ModelError::load(&uri, format!("neither {ONNX_FILE} nor {BASELINE_FILE} found")));
    }
    let dir = if resolved.is_dir() { Some(resolved.as_path()) } else { resolved.parent() };
    let reference = dir.map(|d| d.join(REFERENCE_FILE)).and_then(existing);
    Ok(FetchedArtifacts { source_uri: uri, onnx, baseline, reference, registry_naming: None, _download_dir: None })
}

pub(crate) fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())
}

/// Largest artifact file accepted (the GBDT is well under 1 MiB).
const MAX_ARTIFACT_BYTES: usize = 256 * 1024 * 1024;

/// GET `url` into `dest`; `Ok(false)` on 404.
pub(crate) async fn download(client: &reqwest::Client, url: &Url, dest: &Path) -> Result<bool, String> {
    let response = client.get(url.clone()).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    if response.content_length().is_some_and(|n| n as usize > MAX_ARTIFACT_BYTES) {
        return Err(format!("GET {url}: artifact larger than {MAX_ARTIFACT_BYTES} bytes"));
    }
    let bytes = response.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
    if bytes.len() > MAX_ARTIFACT_BYTES {
        return Err(format!("GET {url}: artifact larger than {MAX_ARTIFACT_BYTES} bytes"));
    }
    tokio::fs::write(dest, &bytes).await.map_err(|e| format!("write {}: {e}", dest.display()))?;
    Ok(true)
}

async fn https(url: &Url) -> Result<FetchedArtifacts, ModelError> {
    let uri = url.to_string();
    let err = |reason: String| ModelError::load(&uri, reason);
    let file_name = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("").to_string();
    let (onnx_url, baseline_url) = if file_name.is_empty() {
        (url.join(ONNX_FILE), url.join(BASELINE_FILE))
    } else if file_name.ends_with(".json") {
        (url.join(ONNX_FILE), Ok(url.clone()))
    } else {
        (Ok(url.clone()), url.join(BASELINE_FILE))
    };
    let onnx_url = onnx_url.map_err(|e| err(e.to_string()))?;
    let baseline_url = baseline_url.map_err(|e| err(e.to_string()))?;
    let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
    let client = http_client().map_err(&err)?;
    let onnx_path = dir.path().join(ONNX_FILE);
    let baseline_path = dir.path().join(BASELINE_FILE);
    let onnx = download(&client, &onnx_url, &onnx_path).await.map_err(&err)?.then_some(onnx_path);
    let baseline = download(&client, &baseline_url, &baseline_path).await.map_err(&err)?.then_some(baseline_path);
    if onnx.is_none() && baseline.is_none() {
        return Err(err(format!("neither {onnx_url} nor {baseline_url} exists")));
    }
    let reference_url = url.join(REFERENCE_FILE).map_err(|e| err(e.to_string()))?;
    let reference_path = dir.path().join(REFERENCE_FILE);
    let reference = download(&client, &reference_url, &reference_path).await.map_err(&err)?.then_some(reference_path);
    Ok(FetchedArtifacts {
        source_uri: uri,
        onnx,
        baseline,
        reference,
        registry_naming: None,
        _download_dir: Some(Arc::new(dir)),
    })
}

async fn registry(
    uri: &str,
    tracking_uri: &str,
    name: &str,
    reference: &RegistryRef,
) -> Result<FetchedArtifacts, ModelError> {
    let err = |reason: String| ModelError::load(uri, reason);
    let client = MlflowClient::new(tracking_uri).map_err(&err)?;
    let version = client.resolve_version(name, reference).await.map_err(&err)?;
    let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
    let files = client
        .download_model_files(name, &version, dir.path(), &[ONNX_FILE, BASELINE_FILE, REFERENCE_FILE])
        .await
        .map_err(&err)?;
    let pick = |wanted: &str| files.iter().find(|p| p.file_name().is_some_and(|n| n == wanted)).cloned();
    let (onnx, baseline, reference) = (pick(ONNX_FILE), pick(BASELINE_FILE), pick(REFERENCE_FILE));
    if onnx.is_none() && baseline.is_none() {
        return Err(err(format!("model version {version} has neither {ONNX_FILE} nor {BASELINE_FILE}")));
    }
    tracing::info!(model = name, version, "resolved model from the MLflow registry");
    Ok(FetchedArtifacts {
        source_uri: format!("{uri} (version {version})"),
        onnx,
        baseline,
        reference,
        registry_naming: Some((name.to_string(), version)),
        _download_dir: Some(Arc::new(dir)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_source() {
        assert_eq!(
            ArtifactSource::parse("models/artifacts/x", None).unwrap(),
            ArtifactSource::Local("models/artifacts/x".into())
        );
        assert!(matches!(ArtifactSource::parse("https://h/m/model.onnx", None).unwrap(), ArtifactSource::Https(_)));
        let reg = ArtifactSource::parse("models:/spikewatch-gbdt@champion", Some("http://127.0.0.1:5000/")).unwrap();
        assert_eq!(
            reg,
            ArtifactSource::Registry {
                tracking_uri: "http://127.0.0.1:5000".into(),
                name: "spikewatch-gbdt".into(),
                reference: RegistryRef::Alias("champion".into())
            }
        );
        assert_eq!(reg.uri(), "models:/spikewatch-gbdt@champion");
        let err = ArtifactSource::parse("models:/m/3", None).unwrap_err();
        assert!(err.to_string().contains("MLFLOW_TRACKING_URI"), "{err}");
        assert!(ArtifactSource::parse("s3://bucket/m", None).is_err());
        assert!(ArtifactSource::parse("  ", None).is_err());
    }

    #[test]
    fn local_directory_lists_both_variants() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(BASELINE_FILE), "{}").unwrap();
        let fetched = local(dir.path()).unwrap();
        assert!(fetched.baseline.is_some());
        assert!(fetched.onnx.is_none());
        assert!(local(&dir.path().join("missing")).is_err());
    }
}
