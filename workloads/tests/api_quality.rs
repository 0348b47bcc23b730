//! `GET /predictions/quality`, in-process against the router: the server judges the predictions
//! its feed carries, and its numbers are those of an `OnlineEvaluator` fed the same input.

mod api_support;
mod common;

use api_support::*;
use axum::http::StatusCode;
use chrono::TimeDelta;
use common::market::{judged_directly, market, served_numbers as numbers};
use serde_json::{Value, json};
use spikewatch::api::{self, AdminAuth, AppState, Limits};
use spikewatch::domain::{ModelVariant, Prediction};

fn live_state() -> AppState {
    let state = AppState::new(Limits::default(), AdminAuth::Disabled, api::ApiMetrics::new().unwrap());
    state.feed().set_source("the test");
    state
}

/// Two products interleaved in event time; BTC-USD switches to the baseline after 10 minutes,
/// and every 50th ETH-USD prediction lacks its mid price.
fn two_markets() -> Vec<Prediction> {
    let mut btc = market("BTC-USD", 1200, 2, 1);
    for p in btc.iter_mut().skip(1200) {
        p.model_variant = ModelVariant::Baseline;
    }
    let mut eth = market("ETH-USD", 900, 3, 2);
    for p in eth.iter_mut().step_by(50) {
        p.midprice = None;
    }
    let mut all: Vec<Prediction> = btc.into_iter().chain(eth).collect();
    all.sort_by_key(|p| p.event_time);
    all
}

async fn quality(app: &axum::Router, uri: &str) -> Value {
    let reply = call(app, get(uri)).await;
    assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text);
    reply.body
}

#[tokio::test]
async fn the_numbers_are_those_of_the_evaluator_on_the_same_predictions() {
    let state = live_state();
    let app = api::router(state.clone());
    let predictions = two_markets();
    for p in &predictions {
        state.feed().publish(p.clone());
    }
    let reply = quality(&app, "/predictions/quality").await;
    let expected = judged_directly(&predictions);
    assert_eq!(numbers(&reply), expected);

    // Both variants of BTC-USD and ETH-USD, each with enough judged to mean something.
    let pairs: Vec<(&str, &str)> =
        expected.iter().map(|e| (e["product_id"].as_str().unwrap(), e["variant"].as_str().unwrap())).collect();
    assert_eq!(pairs, [("BTC-USD", "baseline"), ("BTC-USD", "ml"), ("ETH-USD", "ml")]);
    for entry in &expected {
        assert!(entry["judged"].as_u64().unwrap() > 100, "{entry}");
        for field in ["precision", "recall", "brier", "positive_rate", "alert_rate"] {
            let value = entry[field].as_f64().unwrap_or_else(|| panic!("{field} undefined: {entry}"));
            assert!((0.0..=1.0).contains(&value), "{field}: {entry}");
        }
    }

    assert_eq!(reply["horizon_seconds"], 60);
    assert_eq!(reply["window_seconds"], 3600);
    assert!(reply["definition"].as_str().unwrap().contains("90th percentile"), "{}", reply["definition"]);
    let eth_without_mid = predictions.iter().filter(|p| p.midprice.is_none()).count();
    assert_eq!(
        reply["unjudged"],
        json!({"no_midprice": eth_without_mid, "invalid": 0, "out_of_order": 0, "too_many_products": 0})
    );
    let last_btc = predictions.iter().rfind(|p| p.product_id == "BTC-USD").unwrap().event_time;
    let btc = &reply["quality"][0];
    assert_eq!(btc["window_end"], json!(last_btc));
    assert_eq!(btc["window_start"], json!(last_btc - TimeDelta::hours(1)));

    let metrics = metrics_text(&app).await;
    let unjudged = |reason| sample(&metrics, "volatility_api_feed_unjudged_total", &[("reason", reason)]);
    assert_eq!(unjudged("no_midprice"), Some(eth_without_mid as f64), "{metrics}");
    assert_eq!(unjudged("out_of_order"), Some(0.0), "{metrics}");
}

#[tokio::test]
async fn nothing_is_judged_before_the_first_minute_has_passed() {
    let state = live_state();
    let app = api::router(state.clone());
    assert_eq!(quality(&app, "/predictions/quality").await["quality"], json!([]), "no prediction yet");
    for p in market("BTC-USD", 59, 5, 3) {
        state.feed().publish(p);
    }
    assert_eq!(quality(&app, "/predictions/quality").await["quality"], json!([]));
}

#[tokio::test]
async fn the_filter_narrows_the_products_and_unknown_ones_are_404() {
    let state = live_state();
    let app = api::router(state.clone());
    let predictions = two_markets();
    for p in &predictions {
        state.feed().publish(p.clone());
    }
    let expected = judged_directly(&predictions);
    let eth = quality(&app, "/predictions/quality?product_id=ETH-USD").await;
    assert_eq!(numbers(&eth), &expected[2..]);
    let both = quality(&app, "/predictions/quality?product_id=ETH-USD&product_id=BTC-USD").await;
    assert_eq!(numbers(&both), expected);
    assert_eq!(numbers(&quality(&app, "/predictions/quality?product_id=BTC-USD,ETH-USD").await), expected);

    let unknown = call(&app, get("/predictions/quality?product_id=BTC-USD,XRP-USD")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    assert_eq!(unknown.body["error"]["field"], "product_id");
    assert_eq!(
        unknown.body["error"]["reason"],
        "no prediction for XRP-USD (products with predictions: BTC-USD, ETH-USD)"
    );
    for uri in ["/predictions/quality?product_id=BTC%20USD", "/predictions/quality?variant=ml"] {
        let reply = call(&app, get(uri)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {}", reply.text);
        assert!(reply.error_field().is_some(), "{uri}: {}", reply.text);
    }
}

#[tokio::test]
async fn out_of_order_predictions_are_streamed_but_not_judged() {
    let state = live_state();
    let app = api::router(state.clone());
    let predictions = market("BTC-USD", 300, 2, 4);
    let (first, second) = predictions.split_at(400);
    for p in first.iter().chain(&first[..10]).chain(second) {
        state.feed().publish(p.clone());
    }
    let reply = quality(&app, "/predictions/quality").await;
    assert_eq!(numbers(&reply), judged_directly(&predictions), "the repeats left no trace");
    assert_eq!(reply["unjudged"]["out_of_order"], 10);
    let metrics = metrics_text(&app).await;
    assert_eq!(sample(&metrics, "volatility_api_feed_predictions_total", &[]), Some(610.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_hold_up_publishing() {
    // Clients ask for the numbers as fast as they can while the pipeline publishes: publishing
    // completes, and the final numbers are still exactly the evaluator's.
    let state = live_state();
    let app = api::router(state.clone());
    let predictions = two_markets();
    let publisher = {
        let state = state.clone();
        let predictions = predictions.clone();
        tokio::spawn(async move {
            for chunk in predictions.chunks(100) {
                for p in chunk {
                    state.feed().publish(p.clone());
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..4 {
        let app = app.clone();
        readers.push(tokio::spawn(async move {
            let mut answered = 0;
            for _ in 0..50 {
                assert_eq!(call(&app, get("/predictions/quality")).await.status, StatusCode::OK);
                answered += 1;
                tokio::task::yield_now().await;
            }
            answered
        }));
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), publisher).await.expect("publishing finishes").unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), 50);
    }
    assert_eq!(numbers(&quality(&app, "/predictions/quality").await), judged_directly(&predictions));
}

#[tokio::test]
async fn without_a_prediction_source_it_answers_503_as_the_other_feed_endpoints() {
    let app = api::router(AppState::new(Limits::default(), AdminAuth::Disabled, api::ApiMetrics::new().unwrap()));
    let quality = call(&app, get("/predictions/quality")).await;
    let latest = call(&app, get("/predictions/latest")).await;
    assert_eq!(quality.status, StatusCode::SERVICE_UNAVAILABLE, "{}", quality.text);
    assert_eq!(quality.body, latest.body);
    assert!(quality.body["error"]["reason"].as_str().unwrap().contains("api.predictions_from_kafka"));
}

#[tokio::test]
async fn the_openapi_document_describes_the_endpoint() {
    let app = api::router(live_state());
    let doc = call(&app, get("/openapi.json")).await.body;
    let get = &doc["paths"]["/predictions/quality"]["get"];
    assert_eq!(get["parameters"][0]["name"], "product_id", "{get}");
    for status in ["200", "404", "422", "503"] {
        assert!(get["responses"][status].is_object(), "{status}: {get}");
    }
    let body = &get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(body, "#/components/schemas/OnlineQuality");
    let entry = &doc["components"]["schemas"]["ProductQuality"];
    for field in ["product_id", "variant", "judged", "precision", "recall", "brier", "positive_rate", "alert_rate"] {
        assert!(entry["properties"][field].is_object(), "{field}: {entry}");
    }
    let precision = entry["properties"]["precision"].to_string();
    assert!(precision.contains("null"), "precision is nullable: {precision}");
    assert!(doc["components"]["schemas"]["UnjudgedCounts"]["properties"]["no_midprice"].is_object());
}
