//! Hot reloads and variant switches under load, over real HTTP: no request fails.

mod api_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use api_support::*;
use serde_json::{Value, json};
use spikewatch::domain::{FEATURE_NAMES, ModelVariant, N_FEATURES};

const IN_FLIGHT: usize = 200;
/// Keep loading for at least this many rounds...
const MIN_ROUNDS: usize = 10;
/// ...and until the switcher has done this many reload + switch cycles...
const MIN_CYCLES: usize = 10;
/// ...but never more rounds than this (the test fails instead of hanging).
const MAX_ROUNDS: usize = 300;

/// One request of the mix: single row, batch, or Open Inference Protocol. Returns the variant
/// that answered when the response says so.
async fn one_request(client: &reqwest::Client, base: &str, i: usize) -> Result<Option<String>, String> {
    let (url, body) = match i % 3 {
        0 => (format!("{base}/predict"), row()),
        1 => (format!("{base}/predict"), json!({"rows": [row(), stressed_row()]})),
        _ => {
            let data: Vec<f64> = FEATURE_NAMES.iter().map(|n| stressed_row()[n].as_f64().unwrap()).collect();
            let body = json!({"id": i.to_string(),
                "inputs": [{"name": "input", "shape": [1, N_FEATURES], "datatype": "FP32", "data": data}]});
            (format!("{base}/v2/models/spikewatch/infer"), body)
        }
    };
    let response = client.post(&url).json(&body).send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: {status} {text}"));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("{url}: {e}: {text}"))?;
    let ok = match i % 3 {
        0 => value["probability"].as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)),
        1 => value["predictions"].as_array().is_some_and(|p| p.len() == 2),
        _ => {
            value["id"].as_str() == Some(i.to_string().as_str())
                && value["outputs"].as_array().is_some_and(|o| o.len() == 2)
        }
    };
    if !ok {
        return Err(format!("{url}: unexpected body {text}"));
    }
    Ok(value["parameters"]["model_variant"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_fails_during_hot_reloads_and_variant_switches() {
    let state = state(ModelVariant::Ml).await;
    let (base, stop_server, server) = listen(state.clone()).await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(IN_FLIGHT).build().unwrap();

    // The operator's side: reload, roll back to the baseline, reload, roll forward, repeat.
    let cycles = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let switcher = {
        let (client, base, cycles, stop) = (client.clone(), base.clone(), cycles.clone(), stop.clone());
        tokio::spawn(async move {
            let admin = |path: &str, body: Option<Value>| {
                let mut request = client.post(format!("{base}{path}")).bearer_auth(TOKEN);
                if let Some(body) = body {
                    request = request.json(&body);
                }
                request.send()
            };
            while !stop.load(Ordering::SeqCst) {
                for (path, body) in [
                    ("/admin/reload", None),
                    ("/admin/variant", Some(json!({"variant": "baseline"}))),
                    ("/admin/reload", None),
                    ("/admin/variant", Some(json!({"variant": "ml"}))),
                ] {
                    let response = admin(path, body).await.expect("admin request");
                    assert!(response.status().is_success(), "{path}: {}", response.status());
                }
                cycles.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let mut failures = Vec::new();
    let mut answered = 0usize;
    let mut variants = std::collections::BTreeSet::new();
    let mut rounds = 0;
    while rounds < MAX_ROUNDS
        && (rounds < MIN_ROUNDS || cycles.load(Ordering::SeqCst) < MIN_CYCLES || variants.len() < 2)
    {
        let batch = (0..IN_FLIGHT).map(|i| one_request(&client, &base, rounds * IN_FLIGHT + i));
        for result in futures::future::join_all(batch).await {
            match result {
                Ok(variant) => {
                    answered += 1;
                    variants.extend(variant);
                }
                Err(err) => failures.push(err),
            }
        }
        rounds += 1;
    }
    stop.store(true, Ordering::SeqCst);
    switcher.await.expect("every reload and switch succeeded");

    assert!(
        failures.is_empty(),
        "{} of {} requests failed, first: {}",
        failures.len(),
        answered + failures.len(),
        failures[0]
    );
    let cycles = cycles.load(Ordering::SeqCst);
    eprintln!("{answered} requests in {rounds} rounds of {IN_FLIGHT} in flight, {cycles} reload/switch cycles");
    assert!(cycles >= MIN_CYCLES, "only {cycles} reload cycles ran during {rounds} rounds of load");
    assert_eq!(variants.into_iter().collect::<Vec<_>>(), ["baseline", "ml"], "both variants answered during the test");

    let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    let reloads = sample(&text, "model_reloads_total", &[("result", "success")]).unwrap();
    assert!(reloads >= (4 * cycles) as f64, "{reloads} reloads/switches counted for {cycles} cycles");
    assert_eq!(sample(&text, "model_reloads_total", &[("result", "failure")]), Some(0.0));
    let server_errors: f64 = text
        .lines()
        .filter(|l| l.starts_with("volatility_api_requests_total") && l.contains("status=\"5"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    assert_eq!(server_errors, 0.0, "{text}");

    let _ = stop_server.send(());
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_requests_in_flight() {
    let (state, started, release) = gated_state();
    let (base, stop_server, server) = listen(state).await;
    let rows: Vec<Value> = (0..100).map(|_| row()).collect();
    let in_flight = tokio::spawn({
        let url = format!("{base}/predict");
        async move { reqwest::Client::new().post(url).json(&json!({ "rows": rows })).send().await }
    });
    // The prediction has started: now stop the server, then let the model finish.
    tokio::task::spawn_blocking(move || started.recv()).await.unwrap().expect("the prediction started");
    stop_server.send(()).unwrap();
    release.send(()).unwrap();

    let response = in_flight.await.unwrap().expect("the request in flight is answered");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["predictions"].as_array().unwrap().len(), 100);
    server.await.expect("the server stops once the request is answered");
    assert!(reqwest::get(format!("{base}/health")).await.is_err(), "no new connections after shutdown");
}
