//! Every class of bad input gets a 4xx with a JSON body naming the field and the reason, is
//! counted, and never becomes a 5xx.

mod api_support;

use api_support::*;
use axum::http::StatusCode;
use serde_json::{Value, json};
use spikewatch::api::{self, Limits};
use spikewatch::domain::ModelVariant;

fn with(field: &str, value: Value) -> Value {
    let mut row = row();
    row[field] = value;
    row
}

fn without(field: &str) -> Value {
    let mut row = row();
    row.as_object_mut().unwrap().remove(field);
    row
}

struct Case {
    name: &'static str,
    content_type: &'static str,
    body: String,
    status: StatusCode,
    field: &'static str,
    error_type: &'static str,
}

fn case(name: &'static str, body: Value, status: StatusCode, field: &'static str, error_type: &'static str) -> Case {
    Case { name, content_type: "application/json", body: body.to_string(), status, field, error_type }
}

fn raw(
    name: &'static str,
    content_type: &'static str,
    body: &str,
    status: StatusCode,
    field: &'static str,
    error_type: &'static str,
) -> Case {
    Case { name, content_type, body: body.to_string(), status, field, error_type }
}

fn small_limits() -> Limits {
    // Five full rows of every feature fit; the body-limit cases send far more.
    Limits { max_body_bytes: 16_384, max_rows: 4, ..Limits::default() }
}

fn cases() -> Vec<Case> {
    use StatusCode as S;
    let huge_price = with("price", json!(123456789.5)).to_string().replacen("123456789.5", "1e400", 1);
    vec![
        case("missing field", without("price"), S::UNPROCESSABLE_ENTITY, "price", "missing_field"),
        case(
            "missing field in a batch row",
            json!({"rows": [row(), without("spread_rel")]}),
            S::UNPROCESSABLE_ENTITY,
            "rows[1].spread_rel",
            "missing_field",
        ),
        case("wrong type", with("price", json!("91234.5")), S::BAD_REQUEST, "price", "invalid_type"),
        case("null", with("midprice", Value::Null), S::BAD_REQUEST, "midprice", "invalid_type"),
        case("NaN as a string", with("volatility", json!("NaN")), S::BAD_REQUEST, "volatility", "invalid_type"),
        case("Infinity as a string", with("return_1s", json!("Infinity")), S::BAD_REQUEST, "return_1s", "invalid_type"),
        raw("number too large for f64", "application/json", &huge_price, S::BAD_REQUEST, "price", "non_finite"),
        raw("bare NaN token", "application/json", r#"{"price": NaN}"#, S::BAD_REQUEST, "body", "malformed_json"),
        case("negative price", with("price", json!(-1.0)), S::UNPROCESSABLE_ENTITY, "price", "out_of_range"),
        case("zero midprice", with("midprice", json!(0.0)), S::UNPROCESSABLE_ENTITY, "midprice", "out_of_range"),
        case(
            "spread_rel above 1",
            with("spread_rel", json!(1.5)),
            S::UNPROCESSABLE_ENTITY,
            "spread_rel",
            "out_of_range",
        ),
        case(
            "negative spread",
            with("spread_abs", json!(-0.01)),
            S::UNPROCESSABLE_ENTITY,
            "spread_abs",
            "out_of_range",
        ),
        case(
            "imbalance below -1",
            with("order_book_imbalance", json!(-1.2)),
            S::UNPROCESSABLE_ENTITY,
            "order_book_imbalance",
            "out_of_range",
        ),
        case(
            "return beyond ±100 %",
            with("return_30s", json!(3.0)),
            S::UNPROCESSABLE_ENTITY,
            "return_30s",
            "out_of_range",
        ),
        case("negative variance", with("rv_10s", json!(-0.001)), S::UNPROCESSABLE_ENTITY, "rv_10s", "out_of_range"),
        case(
            "negative tick count",
            with("tick_count", json!(-5)),
            S::UNPROCESSABLE_ENTITY,
            "tick_count",
            "out_of_range",
        ),
        case(
            "out of range in a batch row",
            json!({"rows": [row(), row(), with("trade_intensity", json!(-1))]}),
            S::UNPROCESSABLE_ENTITY,
            "rows[2].trade_intensity",
            "out_of_range",
        ),
        case("empty batch", json!({"rows": []}), S::UNPROCESSABLE_ENTITY, "rows", "invalid_request"),
        case("rows not an array", json!({"rows": {"price": 1}}), S::BAD_REQUEST, "rows", "invalid_type"),
        case("row not an object", json!({"rows": [1]}), S::BAD_REQUEST, "rows[0]", "invalid_type"),
        case(
            "too many rows",
            json!({"rows": [row(), row(), row(), row(), row()]}),
            S::PAYLOAD_TOO_LARGE,
            "rows",
            "too_many_rows",
        ),
        case("body is an array", json!([row()]), S::BAD_REQUEST, "body", "invalid_type"),
        case("body is a number", json!(42), S::BAD_REQUEST, "body", "invalid_type"),
        raw("malformed JSON", "application/json", r#"{"price": 1,"#, S::BAD_REQUEST, "body", "malformed_json"),
        raw("trailing garbage", "application/json", &format!("{} x", row()), S::BAD_REQUEST, "body", "malformed_json"),
        raw("empty body", "application/json", "", S::BAD_REQUEST, "body", "malformed_json"),
        raw(
            "oversized body",
            "application/json",
            &format!("{{\"pad\": \"{}\"}}", "x".repeat(20_000)),
            S::PAYLOAD_TOO_LARGE,
            "body",
            "body_too_large",
        ),
        raw(
            "text/plain",
            "text/plain",
            &row().to_string(),
            S::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
            "unsupported_media_type",
        ),
        raw(
            "form encoded",
            "application/x-www-form-urlencoded",
            "price=1",
            S::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
            "unsupported_media_type",
        ),
    ]
}

#[tokio::test]
async fn absent_fields_are_filled_with_training_medians_unless_strict() {
    let app = api::router(state_with(ModelVariant::Ml, small_limits()).await);
    // The runbook's own smoke test, as curl -d sends it (a form content type, a JSON body).
    let reply =
        call(&app, post_raw("/predict", "application/x-www-form-urlencoded", r#"{"price": 50000.0}"#.to_string()))
            .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let imputed: Vec<&str> = reply.body["imputed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let with_medians = spikewatch::domain::FEATURES.iter().filter(|f| f.impute == spikewatch::domain::Impute::Median);
    assert_eq!(imputed.len(), with_medians.count() - 1, "every feature with a median but the price: {imputed:?}");
    assert!(!imputed.contains(&"price"));
    // A complete row lists nothing.
    let full = call(&app, post_json("/predict", &row())).await;
    assert!(full.body.get("imputed").is_none(), "{}", full.text);
    // Strict per request: 422 naming every absent field.
    let strict = call(&app, post_json("/predict?strict=true", &json!({"price": 50000.0}))).await;
    assert_eq!(strict.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(strict.error_field(), Some("midprice"));
    assert!(strict.body["error"]["reason"].as_str().unwrap().contains("return_1s"), "{}", strict.text);
    // Bad values are still refused, imputation or not.
    let bad = call(&app, post_json("/predict", &json!({"price": -5.0}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.error_field(), Some("price"));
    let nan = call(&app, post_raw("/predict", "application/json", r#"{"price": NaN}"#.to_string())).await;
    assert_eq!(nan.status, StatusCode::BAD_REQUEST);
    // A form body that is really a form stays unsupported.
    let form = call(&app, post_raw("/predict", "application/x-www-form-urlencoded", "price=1".to_string())).await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let text = metrics_text(&app).await;
    assert_eq!(sample(&text, "volatility_api_imputed_requests_total", &[]), Some(1.0), "{text}");
}

#[tokio::test]
async fn every_bad_input_class_is_a_4xx_naming_the_field() {
    let app = api::router(state_with(ModelVariant::Ml, small_limits()).await);
    for case in cases() {
        // Strict mode: an absent field is refused rather than filled in (see the next test).
        let reply = call(&app, post_raw("/predict?strict=true", case.content_type, case.body.clone())).await;
        assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.text);
        assert_eq!(reply.error_field(), Some(case.field), "{}: {}", case.name, reply.text);
        let reason = reply.body["error"]["reason"].as_str().unwrap_or_default();
        assert!(!reason.is_empty(), "{}: no reason in {}", case.name, reply.text);
    }
    // Each case is counted once under its error type.
    let text = metrics_text(&app).await;
    let mut expected: std::collections::BTreeMap<&str, f64> = Default::default();
    for case in cases() {
        *expected.entry(case.error_type).or_default() += 1.0;
    }
    for (error_type, count) in expected {
        let labels = [("endpoint", "/predict"), ("error_type", error_type)];
        assert_eq!(sample(&text, "volatility_api_errors_total", &labels), Some(count), "{error_type}\n{text}");
    }
}

#[tokio::test]
async fn missing_content_type_is_415() {
    let app = api::router(state(ModelVariant::Ml).await);
    let request = axum::http::Request::post("/predict").body(axum::body::Body::from(row().to_string())).unwrap();
    let reply = call(&app, request).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.error_field(), Some("content-type"));
}

#[tokio::test]
async fn out_of_range_reason_states_the_range_and_the_value() {
    let app = api::router(state(ModelVariant::Ml).await);
    let reply = call(&app, post_json("/predict", &with("spread_rel", json!(1.5)))).await;
    assert_eq!(reply.body["error"]["reason"], "must be in [0, 1] (got 1.5)");
    let reply = call(&app, post_json("/predict", &with("price", json!(-2)))).await;
    assert_eq!(reply.body["error"]["reason"], "must be in (0, 1000000000] (got -2)");
}

#[tokio::test]
async fn no_prefix_of_a_valid_body_is_a_5xx() {
    // Every truncation of a valid batch body: malformed, never a server error.
    let app = api::router(state(ModelVariant::Ml).await);
    let body = json!({"rows": [row(), stressed_row()]}).to_string();
    for end in 0..body.len() {
        let reply = call(&app, post_raw("/predict", "application/json", body[..end].to_string())).await;
        assert!(reply.status.is_client_error(), "prefix {end}: {} {}", reply.status, reply.text);
        assert!(reply.error_field().is_some(), "prefix {end}: {}", reply.text);
    }
    // The 5xx series exist from the start (at 0, for increase()); none may have counted.
    let text = metrics_text(&app).await;
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("volatility_api_requests_total") && l.contains("status=\"5") && !l.ends_with(" 0")),
        "{text}"
    );
}

#[tokio::test]
async fn values_of_every_feature_at_their_bounds_are_accepted() {
    let app = api::router(state(ModelVariant::Ml).await);
    // Every feature at its upper bound, then at its lower one (just above it where open).
    for at_max in [true, false] {
        let edge: serde_json::Map<String, Value> = spikewatch::domain::FEATURES
            .iter()
            .map(|f| {
                let v = match (at_max, f.range.min_inclusive) {
                    (true, _) => f.range.max,
                    (false, true) => f.range.min,
                    (false, false) => f.range.min + 1e-9,
                };
                (f.name.to_string(), json!(v))
            })
            .collect();
        let reply = call(&app, post_json("/predict", &Value::Object(edge))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let p = reply.body["probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
    }
}
