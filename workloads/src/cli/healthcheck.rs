//! `spikewatch healthcheck [URL]`: exits 0 when `URL` answers 2xx in time, 1 otherwise with the
//! reason. For container health checks: the workload image (Debian slim) has no curl or wget,
//! so the binary checks itself.

use std::time::Duration;

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// URL to GET: a workload's `/health` (metrics port 8001), or the API's (port 8000).
    #[arg(value_name = "URL", default_value = "http://127.0.0.1:8001/health")]
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub timeout: f64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        anyhow::bail!("--timeout must be a positive number of seconds, got {}", args.timeout);
    }
    let url = reqwest::Url::parse(&args.url).with_context(|| format!("invalid URL {:?}", args.url))?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs_f64(args.timeout)).build()?;
    let response = client.get(url.clone()).send().await.with_context(|| format!("GET {url} failed"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("GET {url} answered {status}: {}", body.trim());
    }
    Ok(())
}
