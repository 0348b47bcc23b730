//! The live page in a real browser: `spikewatch run --serve --speed 8` on the bundled recording,
//! headless Chromium driven over WebDriver (chromedriver, Debian packages `chromium` and
//! `chromium-driver`, installed by `scripts/setup`). The page must chart the streamed
//! predictions, draw alert markers, show the model, say that judging has not started, then show
//! the online quality of the replay's predictions (those of an `OnlineEvaluator` fed the
//! recording directly), and log no console error; its screenshot is saved under the target
//! directory (`docs/live-page.png` is one).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use spikewatch::config::{Config, ModelConfig};
use spikewatch::domain::{Features, ModelVariant, PREDICTION_SCHEMA, Prediction};
use spikewatch::features::offline::{TrainingRow, build_rows};
use spikewatch::model::ModelHandle;
use spikewatch::quality::{OnlineEvaluator, Quality};
use spikewatch::sources::recording;

/// Upper bound on every wait; reached only when something is broken.
const PATIENCE: Duration = Duration::from_secs(180);
/// The replay pace: the recording's seven minutes of ticks take 52 s at this speed, plus 5 s for
/// each of its three holes, so the test sees the replay through in about a minute. Its last and
/// busiest stretch (four minutes of ticks) starts about 35 s in and its first predictions are
/// judged some 10 s later: a browser that starts slowly on a busy machine still connects first.
const SPEED: &str = "60";
/// Points the chart must hold (with an alert among them) before the checks and the screenshot:
/// more than the recording's first stretch before its first hole, so the picture shows a busy
/// market.
const MIN_POINTS: u64 = 150;
/// Colour of the alert markers in `live.js` (`COLORS.alert`, #dc2626).
const ALERT_RGB: [u8; 3] = [0xdc, 0x26, 0x26];

/// Chromium's flags for a machine without network or display: no sandbox (containers), no
/// background networking (it would hang on DNS), a profile of its own.
fn chromium_args(profile: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,800",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

/// An executable on PATH, or a failure saying how to install it (never a skip).
fn require_command(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} not found on PATH: run `scripts/setup` (it installs Debian's chromium and chromium-driver)")
    })
}

/// chromedriver on a free loopback port, killed on drop.
struct Chromedriver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Chromedriver {
    async fn start(dir: &Path) -> Chromedriver {
        let bin = require_command("chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let driver = Chromedriver { child, url: format!("http://127.0.0.1:{port}"), log };
        let status = format!("{}/status", driver.url);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(response) = http.get(&status).send().await
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready:\n{}", driver.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser's console log (chromedriver's log endpoint; needs `goog:loggingPrefs`).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

async fn browser(driver: &Chromedriver, profile: &Path) -> Client {
    let chromium = require_command("chromium");
    let mut capabilities = Capabilities::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium.display().to_string(), "args": chromium_args(profile) }),
    );
    capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}\nchromedriver log:\n{}", driver.log()))
}

/// The bundled recording as the pipeline scores it: its feature rows, from the same feature
/// engine the binary runs, and the committed model's probability for each.
async fn scored_recording() -> (Vec<TrainingRow>, Vec<f64>) {
    let rows = build_rows(recording::embedded().filter_map(Result::ok), &Config::default().features);
    let features: Vec<Features> = rows.iter().map(|row| row.features).collect();
    let config = ModelConfig {
        source: common::artifact::artifact_dir().display().to_string(),
        variant: ModelVariant::Ml,
        ..ModelConfig::default()
    };
    let model = ModelHandle::load(&config).await.expect("the committed model loads").current();
    let probabilities = model.predict_proba(&features).expect("the model scores the recording");
    assert!(probabilities.len() > 1000, "the bundled recording yields {} rows", probabilities.len());
    (rows, probabilities)
}

/// A threshold at which 10 % of BTC-USD's predictions in the bundled recording are alerts: the
/// 90th percentile of the committed model's probabilities on them (a fixed threshold, set in the
/// config, which the pipeline then uses instead of each product's trailing one). So BTC-USD's
/// chart surely carries alerts, and it (and the screenshot) look like a real run rather than
/// one where everything alerts.
fn threshold_with_alerts(rows: &[TrainingRow], probabilities: &[f64]) -> f64 {
    let btc: Vec<f64> =
        rows.iter().zip(probabilities).filter(|(r, _)| r.product_id == "BTC-USD").map(|(_, p)| *p).collect();
    let mut sorted = btc;
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() * 90 / 100]
}

/// The online quality of the replay's predictions at `threshold`, from an evaluator fed the
/// recording directly: each row's point, then its prediction.
fn judged_directly(rows: &[TrainingRow], probabilities: &[f64], threshold: f64) -> Quality {
    let mut evaluator = OnlineEvaluator::default();
    for (row, &probability) in rows.iter().zip(probabilities) {
        let prediction = Prediction {
            schema: PREDICTION_SCHEMA,
            product_id: row.product_id.clone(),
            event_time: row.event_time,
            probability,
            prediction: u8::from(probability >= threshold),
            threshold,
            model_name: String::new(),
            model_version: String::new(),
            model_variant: ModelVariant::Ml,
            processing_latency_seconds: 0.0,
            midprice: Some(row.features[spikewatch::domain::Feature::Midprice]),
        };
        evaluator.observe_point(
            &row.product_id,
            row.event_time.timestamp_nanos_opt().unwrap(),
            row.features[spikewatch::domain::Feature::Midprice],
        );
        evaluator.observe_prediction(&prediction);
    }
    let quality = evaluator.quality();
    assert_eq!(quality.len(), 3, "three products, one variant: {quality:?}");
    quality.into_iter().find(|(p, v, _)| p == "BTC-USD" && *v == ModelVariant::Ml).expect("BTC-USD judged").2
}

/// One product card as drawn now, read in one script (so consistent): points and alerts in the
/// chart's data, and pixels of the alert colour on its canvas (the markers are really drawn).
#[derive(Debug, Clone, serde::Deserialize)]
struct Card {
    points: u64,
    alerts: u64,
    alert_pixels: u64,
}

async fn card(client: &Client, product: &str) -> Option<Card> {
    let script = "const [product, [r, g, b]] = arguments;
        const card = document.querySelector(`.product[data-product=\"${product}\"]`);
        if (!card) return null;
        let pixels = 0;
        for (const canvas of card.querySelectorAll('canvas')) {
          const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
          for (let i = 0; i < data.length; i += 4) {
            if (data[i] === r && data[i + 1] === g && data[i + 2] === b && data[i + 3] === 255) pixels++;
          }
        }
        return { points: Number(card.dataset.points), alerts: Number(card.dataset.alerts), alert_pixels: pixels };";
    let value = client.execute(script, vec![json!(product), json!(ALERT_RGB)]).await.expect("script runs");
    serde_json::from_value(value).expect("a card or null")
}

async fn text(client: &Client, selector: &str) -> String {
    let value = client
        .execute("return document.querySelector(arguments[0])?.textContent ?? '';", vec![json!(selector)])
        .await
        .expect("script runs");
    value.as_str().unwrap_or_default().to_string()
}

/// The online quality line of BTC-USD's card, as `name → value` ("precision" → 0.31, "judged"
/// → 1234); empty while the page shows none.
async fn quality_shown(client: &Client) -> Vec<(String, f64)> {
    let line = text(client, ".product[data-product='BTC-USD'] .quality-line[data-variant='ml']").await;
    let line = line.trim_end_matches(" in the last hour");
    line.split(" · ")
        .filter_map(|part| {
            let (name, value) = part.rsplit_once(' ')?;
            Some((name.to_string(), value.replace(',', "").parse().ok()?))
        })
        .collect()
}

/// The numbers of `/predictions/quality` the page shows, from the evaluator's.
fn quality_expected(q: &Quality) -> Vec<(String, f64)> {
    let defined = |v: Option<f64>| v.unwrap_or_else(|| panic!("undefined on the replay's predictions: {q:?}"));
    vec![
        ("precision".into(), defined(q.precision())),
        ("recall".into(), defined(q.recall())),
        ("chance".into(), defined(q.positive_rate())),
        ("Brier".into(), defined(q.brier())),
        ("judged".into(), q.labelled as f64),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_charts_the_stream_marks_alerts_and_logs_no_error() {
    let dir = tempfile::tempdir().unwrap();
    common::artifact::require_env("ORT_DYLIB_PATH");
    let mut config = Config::default();
    config.model.source = common::artifact::artifact_dir().display().to_string();
    config.model.variant = ModelVariant::Ml;
    let (rows, probabilities) = scored_recording().await;
    let threshold = threshold_with_alerts(&rows, &probabilities);
    let judged = judged_directly(&rows, &probabilities, threshold);
    assert!(judged.labelled > 1000, "the replay's predictions are judged: {judged:?}");
    config.model.threshold = Some(threshold);
    let config_path = common::process::write_config(dir.path(), &config);
    let args = ["--config", config_path.to_str().unwrap(), "run", "--serve", "--bind", "127.0.0.1:0", "--speed", SPEED];
    let mut run = common::process::Spawned::start(dir.path(), "run", &args);
    let line = run.wait_for_stdout_line(|line| line.starts_with("live page: "));
    let page = line.trim_start_matches("live page: ").trim().to_string();

    let driver = Chromedriver::start(dir.path()).await;
    let client = browser(&driver, &dir.path().join("chromium-profile")).await;
    client.goto(&page).await.expect("the page loads");
    assert_eq!(variant_shown(&client).await, "ml");
    let banner = client.execute("return document.getElementById('model-fallback').hidden;", vec![]).await.unwrap();
    assert_eq!(banner, Value::Bool(true), "no fallback banner when the ML model answers");

    // More points than the one per product that /predictions/latest seeds: the stream itself
    // delivered them; and an alert among them, which must be drawn. Meanwhile, before any
    // prediction is a minute old, the card says when judging starts.
    let deadline = Instant::now() + PATIENCE;
    let mut judging_announced = false;
    let btc = loop {
        let btc = card(&client, "BTC-USD").await;
        if btc.is_some() && !judging_announced {
            let quality = text(&client, ".product[data-product='BTC-USD'] .quality").await;
            judging_announced = quality.contains("judging starts 60 s after the first prediction");
        }
        if let Some(btc) = btc.as_ref().filter(|c| c.points >= MIN_POINTS && c.alerts >= 1) {
            break btc.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no chart with {MIN_POINTS} points and an alert (threshold {threshold}): {btc:?}\nspikewatch stdout:\n{}",
            run.stdout()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(btc.alert_pixels > 0, "alerts in the chart's data but no marker drawn: {btc:?}");

    let version: Value = reqwest::get(format!("{page}version")).await.unwrap().json().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    while text(&client, "#model-version").await != version["model_version"].as_str().unwrap() {
        assert!(Instant::now() < deadline, "the page never showed the model version {version}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(text(&client, "#model-variant").await, version["model_variant"].as_str().unwrap());
    let rate = text(&client, ".product[data-product='BTC-USD'] .alert-rate").await;
    let percent: f64 = rate.trim_end_matches(" %").parse().unwrap_or_else(|_| panic!("alert rate {rate:?}"));
    assert!(percent > 0.0 && percent < 100.0, "alert rate {rate:?}");
    assert!(text(&client, "#status").await.starts_with("live"), "{}", text(&client, "#status").await);
    assert!(judging_announced, "the card never said when judging starts");

    // Once the replay is over, the server's numbers are the evaluator's on the recording, and
    // the page shows them (refreshed every 5 s).
    let deadline = Instant::now() + PATIENCE;
    while !run.stdout().contains("input finished") {
        assert!(Instant::now() < deadline, "the replay never finished:\n{}", run.stdout());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let served: Value = reqwest::get(format!("{page}predictions/quality")).await.unwrap().json().await.unwrap();
    let entry = &served["quality"][0];
    assert_eq!(
        (entry["product_id"].as_str(), entry["variant"].as_str(), served["quality"].as_array().map(Vec::len)),
        (Some("BTC-USD"), Some("ml"), Some(3)),
        "{served}"
    );
    let expected = quality_expected(&judged);
    for (name, field) in [
        ("precision", "precision"),
        ("recall", "recall"),
        ("chance", "positive_rate"),
        ("Brier", "brier"),
        ("judged", "judged"),
    ] {
        let want = expected.iter().find(|(n, _)| n == name).unwrap().1;
        // The Brier score is a running sum over the window: outcomes leaving it in another order
        // than the direct evaluator's leave a different last bit.
        let got = entry[field].as_f64().unwrap_or(f64::NAN);
        assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{field}: served {entry}, evaluator {judged:?}");
    }
    let deadline = Instant::now() + PATIENCE;
    let shown = loop {
        let shown = quality_shown(&client).await;
        if shown.iter().any(|(name, value)| name == "judged" && *value == judged.labelled as f64) {
            break shown;
        }
        assert!(Instant::now() < deadline, "the page never showed the final quality {expected:?}: {shown:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(shown.len(), expected.len(), "{shown:?}");
    for ((name, value), (want_name, want)) in shown.iter().zip(&expected) {
        // Two decimals (three for Brier) on the page.
        assert_eq!(name, want_name, "{shown:?}");
        assert!((value - want).abs() <= 0.005, "{name}: shown {value}, expected {want}");
    }

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-page").join("live-page.png");
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();
    std::fs::write(&screenshot, client.screenshot().await.expect("screenshot")).unwrap();
    println!("screenshot of the live page: {}", screenshot.display());

    let log = client.issue_cmd(BrowserLog).await.expect("chromedriver returns the browser log");
    let errors: Vec<&Value> =
        log.as_array().expect("a list of log entries").iter().filter(|entry| entry["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "console errors on the live page: {errors:#?}");

    client.close().await.expect("the browser closes");
    assert!(run.interrupt().success(), "spikewatch run --serve did not stop cleanly:\n{}", run.stderr());
}

/// `/docs` in a real browser: the vendored viewer renders this server's OpenAPI document with
/// nothing from another origin (the Content-Security-Policy would refuse it, and a refused load
/// is a console error), under the title spikewatch.
#[tokio::test]
async fn the_docs_page_renders_the_api_reference_offline_and_logs_no_error() {
    let dir = tempfile::tempdir().unwrap();
    common::artifact::require_env("ORT_DYLIB_PATH");
    let args = ["run", "--serve", "--bind", "127.0.0.1:0", "--speed", "max"];
    let mut run = common::process::Spawned::start(dir.path(), "run", &args);
    let line = run.wait_for_stdout_line(|line| line.starts_with("live page: "));
    let page = line.trim_start_matches("live page: ").trim().to_string();

    let driver = Chromedriver::start(dir.path()).await;
    let client = browser(&driver, &dir.path().join("chromium-profile")).await;
    for path in ["docs", "docs/"] {
        client.goto(&format!("{page}{path}")).await.expect("the page loads");
        let deadline = Instant::now() + PATIENCE;
        let rendered = loop {
            let text = client
                .execute("const d = document.querySelector('rapi-doc'); return d && d.shadowRoot ? d.shadowRoot.textContent : '';", vec![])
                .await
                .expect("script runs");
            let text = text.as_str().unwrap_or_default().to_string();
            if text.contains("/predict") && text.contains("/predictions/stream") {
                break text;
            }
            assert!(Instant::now() < deadline, "/{path}: the reference never rendered: {text:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(rendered.contains("spikewatch prediction API"), "the document's title: {rendered:?}");
        assert_eq!(client.title().await.unwrap(), "spikewatch API", "/{path}");
    }
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("live-page").join("docs.png");
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();
    std::fs::write(&screenshot, client.screenshot().await.expect("screenshot")).unwrap();
    println!("screenshot of /docs: {}", screenshot.display());

    let log = client.issue_cmd(BrowserLog).await.expect("chromedriver returns the browser log");
    let errors: Vec<&Value> =
        log.as_array().expect("a list of log entries").iter().filter(|entry| entry["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "console errors on /docs (a blocked load is one): {errors:#?}");

    client.close().await.expect("the browser closes");
    assert!(run.interrupt().success(), "spikewatch run --serve did not stop cleanly:\n{}", run.stderr());
}

/// Reads `expression` in the page until it is a non-empty string, or panics after `PATIENCE`.
async fn wait_for_string(client: &Client, expression: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = client.execute(&format!("return {expression};"), vec![]).await.expect("script runs");
        if let Some(text) = value.as_str().filter(|t| !t.is_empty()) {
            return text.to_string();
        }
        assert!(Instant::now() < deadline, "{expression} stayed empty");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn without_onnx_runtime_the_page_says_the_baseline_answers_in_place_of_the_ml_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.model.variant = ModelVariant::Ml;
    let config_path = common::process::write_config(dir.path(), &config);
    let args = ["--config", config_path.to_str().unwrap(), "run", "--serve", "--bind", "127.0.0.1:0", "--speed", "max"];
    let env = [("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")];
    let mut run = common::process::Spawned::start_with_env(dir.path(), "run", &args, &env);
    let line = run.wait_for_stdout_line(|line| line.starts_with("live page: "));
    let page = line.trim_start_matches("live page: ").trim().to_string();

    let driver = Chromedriver::start(dir.path()).await;
    let client = browser(&driver, &dir.path().join("chromium-profile")).await;
    client.goto(&page).await.expect("the page loads");
    let banner = "(() => { const b = document.getElementById('model-fallback'); return b && !b.hidden ? b.textContent : ''; })()";
    let text = wait_for_string(&client, banner).await;
    assert!(text.contains("baseline answers in place of the ML model"), "{text}");
    assert!(text.contains("runtime_unavailable") && text.contains("ORT_DYLIB_PATH"), "{text}");
    assert_eq!(variant_shown(&client).await, "baseline");

    client.close().await.expect("the browser closes");
    assert!(run.interrupt().success(), "spikewatch run --serve did not stop cleanly:\n{}", run.stderr());
}

/// The variant the page's header shows, once `/version` has been read.
async fn variant_shown(client: &Client) -> String {
    wait_for_string(client, "document.getElementById('model-variant').textContent.replace('–', '')").await
}
