//! `GET /predictions/stream` (Server-Sent Events) and `GET /predictions/latest`, in-process
//! against the router, and through a real listener for the shutdown of open streams.

mod api_support;
mod common;

use std::time::Duration;

use api_support::*;
use axum::http::{StatusCode, header};
use common::sse::{Message, PATIENCE, Reader};
use serde_json::Value;
use spikewatch::api::{self, AdminAuth, AppState, Limits};
use spikewatch::domain::{ModelVariant, PREDICTION_SCHEMA, Prediction};

fn prediction(product: &str, probability: f64, threshold: f64) -> Prediction {
    Prediction {
        schema: PREDICTION_SCHEMA,
        product_id: product.into(),
        event_time: chrono::Utc::now(),
        probability,
        prediction: u8::from(probability >= threshold),
        threshold,
        model_name: "spikewatch-gbdt".into(),
        model_version: "7".into(),
        model_variant: ModelVariant::Ml,
        processing_latency_seconds: 0.001,
        midprice: Some(91_234.25),
    }
}

/// A state whose feed has a source (as `run --serve` and `serve` with Kafka set it).
fn live_state(limits: Limits) -> AppState {
    let state = AppState::new(limits, AdminAuth::Disabled, api::ApiMetrics::new().unwrap());
    state.feed().set_source("the test");
    state
}

async fn open_stream(
    app: &axum::Router,
    uri: &str,
) -> Reader<impl futures::Stream<Item = Result<bytes::Bytes, axum::Error>> + Unpin> {
    use tower::ServiceExt;
    let response = app.clone().oneshot(get(uri)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    Reader::new(response.into_body().into_data_stream())
}

fn data(message: &Message) -> Value {
    message.json()
}

#[tokio::test]
async fn the_stream_carries_each_prediction_of_the_products_asked_for() {
    let state = live_state(Limits::default());
    let app = api::router(state.clone());
    let mut btc_only = open_stream(&app, "/predictions/stream?product_id=BTC-USD").await;
    let mut all = open_stream(&app, "/predictions/stream").await;

    let published = [prediction("ETH-USD", 0.1, 0.5), prediction("BTC-USD", 0.9, 0.5), prediction("BTC-USD", 0.2, 0.5)];
    for p in &published {
        state.feed().publish(p.clone());
    }

    for expected in &published {
        let message = all.next_event().await.unwrap();
        assert_eq!(message.event.as_deref(), Some("prediction"));
        let got: Prediction = serde_json::from_value(data(&message)).unwrap();
        assert_eq!(&got, expected, "the Prediction, unchanged");
    }
    let first = data(&btc_only.next_event().await.unwrap());
    assert_eq!((first["product_id"].as_str(), first["prediction"].as_u64()), (Some("BTC-USD"), Some(1)), "an alert");
    let second = data(&btc_only.next_event().await.unwrap());
    assert_eq!((second["product_id"].as_str(), second["prediction"].as_u64()), (Some("BTC-USD"), Some(0)));
}

#[tokio::test]
async fn both_filter_forms_combine() {
    let state = live_state(Limits::default());
    let app = api::router(state.clone());
    let mut stream = open_stream(&app, "/predictions/stream?product_id=SOL-USD,ETH-USD&product_id=BTC-USD").await;
    for product in ["XRP-USD", "SOL-USD", "DOGE-USD", "ETH-USD", "BTC-USD"] {
        state.feed().publish(prediction(product, 0.1, 0.5));
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(data(&stream.next_event().await.unwrap())["product_id"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["SOL-USD", "ETH-USD", "BTC-USD"]);
}

#[tokio::test]
async fn a_slow_client_loses_the_oldest_predictions_and_is_told_how_many() {
    let state = live_state(Limits { stream_buffer: 4, ..Limits::default() });
    let app = api::router(state.clone());
    let mut stream = open_stream(&app, "/predictions/stream").await;
    // The client reads nothing while ten predictions are published: publishing never waits.
    for i in 0..10 {
        state.feed().publish(prediction("BTC-USD", f64::from(i) / 10.0, 0.5));
    }
    let notice = stream.next_event().await.unwrap();
    assert_eq!(notice.event.as_deref(), Some("dropped"));
    assert_eq!(data(&notice), serde_json::json!({"dropped": 6, "dropped_total": 6}));
    for i in 6..10 {
        assert_eq!(data(&stream.next_event().await.unwrap())["probability"], f64::from(i) / 10.0);
    }
    let metrics = metrics_text(&app).await;
    assert_eq!(sample(&metrics, "volatility_api_stream_dropped_total", &[]), Some(6.0), "{metrics}");
    assert_eq!(sample(&metrics, "volatility_api_feed_predictions_total", &[]), Some(10.0), "{metrics}");
}

#[tokio::test]
async fn an_idle_stream_gets_keep_alive_comments() {
    let state = live_state(Limits { stream_keep_alive: Duration::from_millis(50), ..Limits::default() });
    let app = api::router(state.clone());
    let mut stream = open_stream(&app, "/predictions/stream").await;
    let message = stream.next().await.unwrap();
    assert_eq!(message, Message { event: None, text: "keep-alive".into() });
}

#[tokio::test]
async fn connected_clients_are_counted_until_they_leave() {
    let state = live_state(Limits::default());
    let app = api::router(state.clone());
    let clients = |text: &str| sample(text, "volatility_api_stream_clients", &[]);
    assert_eq!(clients(&metrics_text(&app).await), Some(0.0));
    let stream = open_stream(&app, "/predictions/stream").await;
    assert_eq!(clients(&metrics_text(&app).await), Some(1.0));
    drop(stream);
    assert_eq!(clients(&metrics_text(&app).await), Some(0.0));
}

#[tokio::test]
async fn latest_answers_one_prediction_per_product() {
    let state = live_state(Limits::default());
    let app = api::router(state.clone());
    let empty = call(&app, get("/predictions/latest")).await;
    assert_eq!((empty.status, empty.body.clone()), (StatusCode::OK, serde_json::json!({"predictions": []})));

    for p in [prediction("ETH-USD", 0.1, 0.5), prediction("BTC-USD", 0.2, 0.5), prediction("ETH-USD", 0.7, 0.5)] {
        state.feed().publish(p);
    }
    let all = call(&app, get("/predictions/latest")).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let products: Vec<(&str, f64)> = all.body["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["product_id"].as_str().unwrap(), p["probability"].as_f64().unwrap()))
        .collect();
    assert_eq!(products, [("BTC-USD", 0.2), ("ETH-USD", 0.7)]);

    let eth = call(&app, get("/predictions/latest?product_id=ETH-USD")).await;
    assert_eq!(eth.body["predictions"].as_array().unwrap().len(), 1);
    assert_eq!(eth.body["predictions"][0]["prediction"], 1);
    assert_eq!(eth.body["predictions"][0]["midprice"], 91_234.25);
}

#[tokio::test]
async fn unknown_products_and_bad_filters_are_clear_errors() {
    let state = live_state(Limits::default());
    state.feed().publish(prediction("BTC-USD", 0.2, 0.5));
    let app = api::router(state.clone());

    let unknown = call(&app, get("/predictions/latest?product_id=BTC-USD,XRP-USD")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    assert_eq!(unknown.error_field(), Some("product_id"));
    assert_eq!(unknown.body["error"]["reason"], "no prediction for XRP-USD (products with predictions: BTC-USD)");

    for uri in [
        "/predictions/latest?product_id=BTC%20USD",
        "/predictions/stream?product_id=",
        "/predictions/stream?symbol=BTC-USD",
    ] {
        let reply = call(&app, get(uri)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {}", reply.text);
        assert!(reply.error_field().is_some(), "{uri}: {}", reply.text);
    }
    let metrics = metrics_text(&app).await;
    assert_eq!(
        sample(
            &metrics,
            "volatility_api_errors_total",
            &[("endpoint", "/predictions/latest"), ("error_type", "not_found")]
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_a_prediction_source_both_endpoints_say_how_to_configure_one() {
    let state = AppState::new(Limits::default(), AdminAuth::Disabled, api::ApiMetrics::new().unwrap());
    let app = api::router(state);
    for uri in ["/predictions/latest", "/predictions/stream"] {
        let reply = call(&app, get(uri)).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        let reason = reply.body["error"]["reason"].as_str().unwrap();
        assert!(reason.contains("api.predictions_from_kafka") && reason.contains("run --serve"), "{reason}");
    }
}

#[tokio::test]
async fn shutdown_ends_open_streams_so_the_server_stops() {
    let state = live_state(Limits::default());
    let (base, stop, server) = listen(state.clone()).await;
    let response = reqwest::get(format!("{base}/predictions/stream")).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = Reader::new(response.bytes_stream());
    state.feed().publish(prediction("BTC-USD", 0.3, 0.5));
    assert_eq!(stream.next_event().await.unwrap().event.as_deref(), Some("prediction"));

    stop.send(()).unwrap();
    assert_eq!(stream.next_event().await, None, "the stream ends at shutdown");
    tokio::time::timeout(PATIENCE, server).await.expect("the server stops with a client connected").unwrap();
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let app = api::router(live_state(Limits::default()));
    let page = call(&app, get("/")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with("default-src 'self'"));
    assert!(page.text.contains("/assets/live.js"));
    for (asset, content_type) in [
        ("live.js", "text/javascript"),
        ("live.css", "text/css"),
        ("uPlot.iife.min.js", "text/javascript"),
        ("uPlot.min.css", "text/css"),
    ] {
        let reply = call(&app, get(&format!("/assets/{asset}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
        assert!(reply.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(content_type), "{asset}");
        assert!(!reply.text.is_empty(), "{asset}");
    }
    let missing = call(&app, get("/assets/../Cargo.toml")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing = call(&app, get("/assets/secrets.js")).await;
    assert_eq!((missing.status, missing.error_field()), (StatusCode::NOT_FOUND, Some("path")));
}

#[tokio::test]
async fn the_openapi_document_describes_both_endpoints() {
    let app = api::router(live_state(Limits::default()));
    let doc = call(&app, get("/openapi.json")).await.body;
    let stream = &doc["paths"]["/predictions/stream"]["get"];
    assert_eq!(stream["parameters"][0]["name"], "product_id");
    assert!(stream["responses"]["200"]["content"]["text/event-stream"].is_object(), "{stream}");
    let latest = &doc["paths"]["/predictions/latest"]["get"];
    assert!(latest["responses"]["404"].is_object(), "{latest}");
    let schema = &doc["components"]["schemas"]["Prediction"];
    assert!(schema["properties"]["midprice"].is_object(), "{schema}");
    assert!(schema["required"].as_array().unwrap().iter().all(|f| f != "midprice"), "midprice is optional");
}
