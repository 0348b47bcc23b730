//! Real processes for the automation tests: `spikewatch serve` and `predict` (the workspace's
//! own binary), a Debian `prometheus` server scraping them, and the Python that breaks a model.
//! Every process is killed when its handle drops.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A variable `scripts/env` exports; a clear failure (never a skip) when it is missing.
pub fn require_env(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{var} is not set: run `source scripts/env` (after `scripts/setup`) before the tests"),
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("operator/ has a parent").to_path_buf()
}

/// The workspace's `spikewatch` binary, built next to this test (`cargo nextest run
/// --workspace` builds every binary of the workspace). A binary older than the workloads'
/// sources (its own crate and the shared `spikewatch-types`) is refused rather than tested.
pub fn spikewatch_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("spikewatch");
    let hint = "build it with `cargo build -p spikewatch` (the workspace test run builds it)";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {hint}", bin.display()));
    for sources in ["workloads/src", "crates/spikewatch-types/src"] {
        let newest_source = newest_mtime(&repo_root().join(sources));
        assert!(newest_source <= built, "{} is older than {sources}: {hint}", bin.display());
    }
    bin
}

fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).unwrap_or(newest)
        };
        newest = newest.max(time);
    }
    newest
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// A child process killed on drop, with its output in a log file for failure messages.
pub struct Process {
    pub child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    pub fn spawn(mut command: Command) -> Process {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("output.log");
        let file = std::fs::File::create(&log).expect("log file");
        command.stdout(file.try_clone().expect("log file")).stderr(file).stdin(Stdio::null());
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Process { child, log, _dir: dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it holds; panics after `patience` (a bound on something
/// broken, not a timing assertion).
pub async fn wait_for(what: &str, patience: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `spikewatch <args>` with the test's environment only (ONNX Runtime from `scripts/env`), the
/// `ml` variant answering (what the automation rolls back).
pub fn spikewatch(args: &[&str]) -> Command {
    let mut command = Command::new(spikewatch_bin());
    command
        .args(args)
        .current_dir(repo_root())
        .env("ORT_DYLIB_PATH", require_env("ORT_DYLIB_PATH"))
        .env("SPIKEWATCH_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("MODEL_SOURCE")
        .env_remove("SPIKEWATCH_MODEL_SOURCE")
        .env_remove("MODEL_VARIANT")
        .env("SPIKEWATCH_MODEL_VARIANT", "ml")
        .env_remove("CONFIG_PATH")
        .env_remove("SPIKEWATCH_CONFIG")
        .env_remove("ADMIN_TOKEN_FILE");
    command
}

/// A copy of the committed model artifact in a temporary directory (so a test can break it).
pub fn model_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let artifact = repo_root().join("models/artifacts/spikewatch-gbdt");
    for entry in std::fs::read_dir(&artifact).expect("committed artifact") {
        let entry = entry.expect("artifact entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy artifact");
    }
    dir
}

/// Writes a model that loads but fails every inference (`models.fixture_model --break-output`).
pub fn broken_model(out: &Path) {
    let python = require_env("SPIKEWATCH_PYTHON");
    let source = repo_root().join("models/artifacts/spikewatch-gbdt/model.onnx");
    let status = Command::new(python)
        .args(["-m", "models.fixture_model"])
        .arg(&source)
        .arg(out)
        .arg("--break-output")
        .current_dir(repo_root())
        .status()
        .expect("run python");
    assert!(status.success(), "models.fixture_model --break-output failed");
}

/// A Debian `prometheus` server scraping `targets` (`host:port` → extra labels) every
/// `interval` (`1s`, `15s`).
pub struct Prometheus {
    pub url: String,
    pub process: Process,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub async fn start(interval: &str, targets: &[(String, Vec<(&str, &str)>)]) -> Prometheus {
        Prometheus::start_with_rules(interval, targets, None).await
    }

    /// [`Prometheus::start`], also evaluating the rule file `rules` (YAML `groups:`) every
    /// `interval`.
    pub async fn start_with_rules(
        interval: &str,
        targets: &[(String, Vec<(&str, &str)>)],
        rules: Option<&str>,
    ) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = format!("global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n");
        if let Some(rules) = rules {
            let path = dir.path().join("rules.yaml");
            std::fs::write(&path, rules).expect("rule file");
            config.push_str(&format!("rule_files:\n  - '{}'\n", path.display()));
        }
        config.push_str("scrape_configs:\n");
        for (i, (target, labels)) in targets.iter().enumerate() {
            config.push_str(&format!(
                "  - job_name: target{i}\n    static_configs:\n      - targets: ['{target}']\n        labels:\n"
            ));
            for (k, v) in labels {
                config.push_str(&format!("          {k}: '{v}'\n"));
            }
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("prometheus config");
        let port = free_port();
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let process = Process::spawn(command);
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        // Ready, and every target scraped once (discovery hands targets to the scrapers only
        // after a few seconds).
        let up = format!("{url}/api/v1/query?query=count(up%20%3D%3D%201)");
        let expected = targets.len().to_string();
        wait_for("prometheus to scrape its targets", Duration::from_secs(60), async || {
            let Ok(response) = client.get(&up).send().await else { return false };
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            body.pointer("/data/result/0/value/1").and_then(|v| v.as_str()) == Some(expected.as_str())
        })
        .await;
        Prometheus { url, process, _dir: dir }
    }
}
