//! Recordings given as `https://` (or `http://`) URLs: downloaded once, before the replay
//! starts, into a private temporary directory that lives as long as the [`Downloaded`] value.
//! A replay that loops reads the local copy on every pass instead of the network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use url::Url;

/// Largest recording accepted, so a wrong URL cannot fill the pod's scratch volume.
pub const MAX_RECORDING_BYTES: u64 = 200 * 1024 * 1024;

/// Whether an `--input` names a URL rather than a file.
pub fn is_url(input: &str) -> bool {
    input.starts_with("https://") || input.starts_with("http://")
}

/// Local copies of the inputs: files as given, URLs downloaded.
pub struct Downloaded {
    pub paths: Vec<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

/// Resolves every input to a local file, downloading the URLs (in order, one at a time).
pub async fn resolve_inputs(inputs: &[String]) -> anyhow::Result<Downloaded> {
    let mut dir = None;
    let mut paths = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        if !is_url(input) {
            paths.push(PathBuf::from(input));
            continue;
        }
        let url = Url::parse(input).with_context(|| format!("invalid recording URL {input:?}"))?;
        if dir.is_none() {
            dir = Some(tempfile::tempdir().context("cannot create a directory for downloaded recordings")?);
        }
        let dest = dir.as_ref().map(|d| d.path().join(format!("recording-{index}"))).unwrap_or_default();
        download(&url, &dest).await?;
        tracing::info!(%url, path = %dest.display(), "recording downloaded");
        paths.push(dest);
    }
    Ok(Downloaded { paths, _dir: dir })
}

async fn download(url: &Url, dest: &Path) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .build()
        .context("cannot build an HTTP client")?;
    let response = client.get(url.clone()).send().await.with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        anyhow::bail!("GET {url}: HTTP {}", response.status());
    }
    if response.content_length().is_some_and(|n| n > MAX_RECORDING_BYTES) {
        anyhow::bail!("GET {url}: the recording is larger than {MAX_RECORDING_BYTES} bytes");
    }
    let mut file = tokio::fs::File::create(dest).await.with_context(|| format!("cannot create {}", dest.display()))?;
    let mut written: u64 = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("GET {url}: the download broke off"))?;
        written += chunk.len() as u64;
        if written > MAX_RECORDING_BYTES {
            anyhow::bail!("GET {url}: the recording is larger than {MAX_RECORDING_BYTES} bytes");
        }
        file.write_all(&chunk).await.with_context(|| format!("cannot write {}", dest.display()))?;
    }
    file.flush().await.with_context(|| format!("cannot write {}", dest.display()))?;
    if written == 0 {
        anyhow::bail!("GET {url}: the recording is empty");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_files() {
        assert!(is_url("https://example.com/ticks.csv.gz"));
        assert!(is_url("http://recordings.svc/ticks.ndjson"));
        assert!(!is_url("data/coinbase/ticks/btc-usd-2025-11-30.csv.gz"));
        assert!(!is_url("/var/lib/spikewatch/recording/ticks.csv.gz"));
    }

    #[tokio::test]
    async fn files_are_kept_as_given_without_a_download_directory() {
        let resolved = resolve_inputs(&["a.ndjson".to_string(), "b.csv.gz".to_string()]).await.unwrap();
        assert_eq!(resolved.paths, vec![PathBuf::from("a.ndjson"), PathBuf::from("b.csv.gz")]);
        assert!(resolved._dir.is_none());
    }
}
