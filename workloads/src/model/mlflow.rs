//! The MLflow Model Registry, through MLflow's REST API (no Python at serving time).
//!
//! `models:/<name>@<alias>` → `GET /api/2.0/mlflow/registered-models/alias`;
//! `models:/<name>/<version>` → `GET /api/2.0/mlflow/model-versions/get`;
//! then `GET /api/2.0/mlflow/model-versions/get-download-uri` gives the artifact location,
//! whose files are listed and downloaded through the tracking server's artifact proxy
//! (`/api/2.0/mlflow-artifacts/artifacts`), or read directly when it is a local path.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use super::fetch::{download, http_client};

/// The part of a `models:/` URI after the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryRef {
    Version(String),
    Alias(String),
}

impl RegistryRef {
    /// Parses `<name>/<version>` or `<name>@<alias>` (the text after `models:/`).
    pub fn parse(rest: &str) -> Result<(String, RegistryRef), String> {
        if let Some((name, alias)) = rest.rsplit_once('@') {
            if name.is_empty() || alias.is_empty() || name.contains('/') {
                return Err("expected models:/<name>@<alias>".into());
            }
            return Ok((name.to_string(), RegistryRef::Alias(alias.to_string())));
        }
        match rest.split_once('/') {
            Some((name, version))
                if !name.is_empty() && !version.is_empty() && version.chars().all(|c| c.is_ascii_digit()) =>
            {
                Ok((name.to_string(), RegistryRef::Version(version.to_string())))
            }
            _ => Err("expected models:/<name>/<version> (a number) or models:/<name>@<alias>".into()),
        }
    }

    pub fn suffix(&self) -> String {
        match self {
            RegistryRef::Version(v) => format!("/{v}"),
            RegistryRef::Alias(a) => format!("@{a}"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ModelVersionResponse {
    model_version: ModelVersion,
}

#[derive(Debug, Deserialize)]
struct ModelVersion {
    version: String,
}

#[derive(Debug, Deserialize)]
struct DownloadUriResponse {
    artifact_uri: String,
}

#[derive(Debug, Deserialize)]
struct ListResponse {
    #[serde(default)]
    files: Vec<FileInfo>,
}

#[derive(Debug, Deserialize)]
struct FileInfo {
    path: String,
    #[serde(default)]
    is_dir: bool,
}

/// Where a model version's files are.
#[derive(Debug, Clone, PartialEq)]
enum ArtifactLocation {
    /// A path below the tracking server's proxied artifact root.
    Proxied(String),
    /// A directory on this machine (a server with a local, non-proxied artifact root).
    LocalDir(PathBuf),
}

fn parse_artifact_uri(uri: &str) -> Result<ArtifactLocation, String> {
    const ANCHOR: &str = "/api/2.0/mlflow-artifacts/artifacts/";
    if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
        // `mlflow-artifacts:/path` or `mlflow-artifacts://netloc/path`.
        let path = match rest.strip_prefix("//") {
            Some(with_netloc) => with_netloc.split_once('/').map(|(_, p)| p).unwrap_or(""),
            None => rest.trim_start_matches('/'),
        };
        return Ok(ArtifactLocation::Proxied(path.to_string()));
    }
    if uri.starts_with("http://") || uri.starts_with("https://") {
        if let Some((_, path)) = uri.split_once(ANCHOR) {
            return Ok(ArtifactLocation::Proxied(path.to_string()));
        }
        return Err(format!("artifact URI {uri} is not served by an MLflow artifact proxy"));
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return Ok(ArtifactLocation::LocalDir(PathBuf::from(path)));
    }
    if uri.starts_with('/') {
        return Ok(ArtifactLocation::LocalDir(PathBuf::from(uri)));
    }
    Err(format!("unsupported artifact URI {uri} (expected mlflow-artifacts:, http(s) proxy, or a local path)"))
}

/// Directories are searched this deep for the wanted files (MLflow nests model files one level).
const MAX_DEPTH: usize = 3;
/// Listing stops after this many entries: a model version is a handful of files.
const MAX_ENTRIES: usize = 1_000;

pub struct MlflowClient {
    base: Url,
    http: reqwest::Client,
}

impl MlflowClient {
    pub fn new(tracking_uri: &str) -> Result<Self, String> {
        let mut base =
            Url::parse(tracking_uri).map_err(|e| format!("invalid MLflow tracking URI {tracking_uri}: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("MLflow tracking URI must be http(s), got {tracking_uri}"));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(MlflowClient { base, http: http_client()? })
    }

    fn endpoint(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, String> {
        let mut url = self.base.join(path).map_err(|e| e.to_string())?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(url)
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: Url) -> Result<T, String> {
        let response = self.http.get(url.clone()).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            // MLflow errors are `{"error_code": ..., "message": ...}`: pass them on verbatim.
            return Err(format!("GET {url}: HTTP {status}: {}", body.chars().take(500).collect::<String>()));
        }
        serde_json::from_str(&body).map_err(|e| format!("GET {url}: unexpected response: {e}"))
    }

    /// The version number a reference points at.
    pub async fn resolve_version(&self, name: &str, reference: &RegistryRef) -> Result<String, String> {
        let response: ModelVersionResponse = match reference {
            RegistryRef::Alias(alias) => {
                self.get_json(
                    self.endpoint("api/2.0/mlflow/registered-models/alias", &[("name", name), ("alias", alias)])?,
                )
                .await?
            }
            RegistryRef::Version(version) => {
                self.get_json(
                    self.endpoint("api/2.0/mlflow/model-versions/get", &[("name", name), ("version", version)])?,
                )
                .await?
            }
        };
        Ok(response.model_version.version)
    }

    /// Downloads the files named in `wanted` (searched in the version's artifact tree) into `dest`.
    pub async fn download_model_files(
        &self,
        name: &str,
        version: &str,
        dest: &Path,
        wanted: &[&str],
    ) -> Result<Vec<PathBuf>, String> {
        let uri: DownloadUriResponse = self
            .get_json(
                self.endpoint(
                    "api/2.0/mlflow/model-versions/get-download-uri",
                    &[("name", name), ("version", version)],
                )?,
            )
            .await?;
        match parse_artifact_uri(&uri.artifact_uri)? {
            ArtifactLocation::LocalDir(dir) => Ok(find_local(&dir, wanted, 0)),
            ArtifactLocation::Proxied(root) => {
                let mut found = Vec::new();
                let mut pending = vec![(root.trim_end_matches('/').to_string(), 0usize)];
                let mut seen = 0usize;
                while let Some((dir, depth)) = pending.pop() {
                    let listing: ListResponse =
                        self.get_json(self.endpoint("api/2.0/mlflow-artifacts/artifacts", &[("path", &dir)])?).await?;
                    for file in listing.files {
                        seen += 1;
                        if seen > MAX_ENTRIES {
                            return Err(format!("more than {MAX_ENTRIES} artifacts under {root}"));
                        }
                        // The proxy lists base names; older servers list full paths.
                        let base = file.path.rsplit('/').next().unwrap_or(&file.path).to_string();
                        let full = if dir.is_empty() { base.clone() } else { format!("{dir}/{base}") };
                        if file.is_dir {
                            if depth + 1 < MAX_DEPTH {
                                pending.push((full, depth + 1));
                            }
                        } else if wanted.contains(&base.as_str()) && !found.iter().any(|(b, _)| b == &base) {
                            found.push((base, full));
                        }
                    }
                }
                let mut paths = Vec::new();
                for (base, full) in found {
                    let url = self
                        .base
                        .join(&format!("api/2.0/mlflow-artifacts/artifacts/{full}"))
                        .map_err(|e| e.to_string())?;
                    let path = dest.join(&base);
                    if download(&self.http, &url, &path).await? {
                        paths.push(path);
                    }
                }
                Ok(paths)
            }
        }
    }
}

fn find_local(dir: &Path, wanted: &[&str], depth: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in &entries {
        if path.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| wanted.contains(&n)) {
            found.push(path.clone());
        }
    }
    if depth + 1 < MAX_DEPTH {
        for path in entries.iter().filter(|p| p.is_dir()) {
            for nested in find_local(path, wanted, depth + 1) {
                if !found.iter().any(|f| f.file_name() == nested.file_name()) {
                    found.push(nested);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_references() {
        assert_eq!(RegistryRef::parse("m@champion").unwrap(), ("m".into(), RegistryRef::Alias("champion".into())));
        assert_eq!(RegistryRef::parse("m/3").unwrap(), ("m".into(), RegistryRef::Version("3".into())));
        assert!(RegistryRef::parse("m").is_err());
        assert!(RegistryRef::parse("m/latest").is_err());
        assert!(RegistryRef::parse("@a").is_err());
    }

    #[test]
    fn artifact_uris() {
        assert_eq!(
            parse_artifact_uri("mlflow-artifacts:/1/models/m-abc/artifacts").unwrap(),
            ArtifactLocation::Proxied("1/models/m-abc/artifacts".into())
        );
        assert_eq!(
            parse_artifact_uri("mlflow-artifacts://host:5000/1/r/artifacts/model").unwrap(),
            ArtifactLocation::Proxied("1/r/artifacts/model".into())
        );
        assert_eq!(
            parse_artifact_uri("http://h:5000/api/2.0/mlflow-artifacts/artifacts/1/x").unwrap(),
            ArtifactLocation::Proxied("1/x".into())
        );
        assert_eq!(parse_artifact_uri("file:///tmp/a").unwrap(), ArtifactLocation::LocalDir("/tmp/a".into()));
        assert!(parse_artifact_uri("s3://bucket/x").is_err());
    }
}
