//! Every native endpoint of the prediction API, in-process, against the committed model.

mod api_support;

use api_support::*;
use axum::http::{StatusCode, header};
use futures::StreamExt;
use serde_json::{Value, json};
use spikewatch::api::{self, AdminAuth, Limits};
use spikewatch::domain::{FEATURE_NAMES, FEATURES, Features, Impute, ModelVariant};

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort();
    keys
}

/// JSON parsing may differ from the exact value by one unit in the last place.
fn assert_close(got: &Value, want: f64) {
    let got = got.as_f64().unwrap_or_else(|| panic!("not a number: {got}"));
    assert!((got - want).abs() <= 1e-12, "got {got}, want {want}");
}

/// What the model itself says about `rows`, bypassing HTTP.
async fn expected(state: &spikewatch::api::AppState, rows: &[Features]) -> Vec<f64> {
    state.model().unwrap().predict_proba(rows).unwrap()
}

#[tokio::test]
async fn predict_returns_the_models_probability_in_the_original_shape() {
    for variant in [ModelVariant::Ml, ModelVariant::Baseline] {
        let state = state(variant).await;
        let app = api::router(state.clone());
        let reply = call(&app, post_json("/predict", &stressed_row())).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(keys(&reply.body), ["model_version", "prediction", "probability", "timestamp"]);

        let model = state.model().unwrap();
        let want = expected(&state, &[features(&stressed_row())]).await[0];
        assert_close(&reply.body["probability"], want);
        assert_eq!(reply.body["prediction"].as_u64(), Some(u64::from(want >= model.info().threshold)));
        assert_eq!(reply.body["model_version"], model.info().version.as_str());
        let timestamp = reply.body["timestamp"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(timestamp).expect("RFC 3339 timestamp");
    }
}

#[tokio::test]
async fn batch_answers_every_row_in_order() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    let rows = [row(), stressed_row(), row()];
    let reply = call(&app, post_json("/predict", &json!({ "rows": rows }))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(keys(&reply.body), ["predictions"]);
    let predictions = reply.body["predictions"].as_array().unwrap();
    let want = expected(&state, &rows.iter().map(features).collect::<Vec<_>>()).await;
    assert_eq!(predictions.len(), 3);
    for (prediction, want) in predictions.iter().zip(&want) {
        assert_eq!(keys(prediction), ["model_version", "prediction", "probability", "timestamp"]);
        assert_close(&prediction["probability"], *want);
    }
    assert_eq!(predictions[0]["probability"], predictions[2]["probability"], "same row, same answer");
}

#[tokio::test]
async fn original_eleven_field_body_uses_the_documented_defaults() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    // The newer features: the training median where every source has the feature, missing
    // (as for a source without trades) where it may be absent (docs/api.md).
    let medians = state.reference().expect("the committed model has a reference").medians();
    let mut defaulted = features(&row());
    for (i, spec) in FEATURES.iter().enumerate() {
        if !spec.seed {
            defaulted.0[i] = if spec.impute == Impute::Median { medians[i] } else { f64::NAN };
        }
    }
    let want = expected(&state, &[defaulted]).await[0];
    let reply = call(&app, post_json("/predict", &original_row())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_close(&reply.body["probability"], want);
    let imputed: Vec<&str> = reply.body["imputed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let medians_used: Vec<&str> =
        FEATURES.iter().filter(|f| !f.seed && f.impute == Impute::Median).map(|f| f.name).collect();
    assert_eq!(imputed, medians_used, "every feature filled with a median is listed, nothing else");
}

#[tokio::test]
async fn health_reports_the_loaded_model() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    let reply = call(&app, get("/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(keys(&reply.body), ["model_loaded", "model_version", "status", "timestamp"]);
    assert_eq!(reply.body["status"], "healthy");
    assert_eq!(reply.body["model_loaded"], true);
    assert_eq!(reply.body["model_version"], state.model().unwrap().info().version.as_str());
}

#[tokio::test]
async fn without_a_model_health_is_503_with_the_reason_and_predict_refuses() {
    let app = api::router(state_without_model("loading model from models:/spikewatch@prod"));
    let reply = call(&app, get("/health")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["status"], "unhealthy");
    assert_eq!(reply.body["model_loaded"], false);
    assert_eq!(reply.body["model_version"], Value::Null);
    assert_eq!(reply.body["reason"], "loading model from models:/spikewatch@prod");

    let reply = call(&app, post_json("/predict", &row())).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body["error"]["reason"].as_str().unwrap().contains("loading model"), "{}", reply.text);

    let reply = call(&app, get("/version")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["model_version"], Value::Null);
    assert_eq!(call(&app, get("/v2/health/ready")).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(call(&app, get("/v2/health/live")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn version_reports_api_model_and_variant() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    let reply = call(&app, get("/version")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let info = state.model().unwrap().info().clone();
    assert_eq!(reply.body["api_version"], spikewatch::VERSION, "the build's version (the image's)");
    assert_eq!(reply.body["model_version"], info.version.as_str());
    assert_eq!(reply.body["model_name"], info.name.as_str());
    assert_eq!(reply.body["model_variant"], "ml");
    assert_eq!(reply.body["threshold"].as_f64(), Some(info.threshold));
    assert_eq!(reply.body["feature_names"], json!(FEATURE_NAMES[..]));
}

#[tokio::test]
async fn metrics_count_requests_errors_latency_and_report_the_model() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    for _ in 0..3 {
        assert_eq!(call(&app, post_json("/predict", &row())).await.status, StatusCode::OK);
    }
    assert_eq!(call(&app, post_json("/predict", &json!({"rows": [row(), row()]}))).await.status, StatusCode::OK);
    let bad = call(&app, post_json("/predict?strict=true", &json!({"price": 1}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let text = metrics_text(&app).await;
    let ok = [("endpoint", "/predict"), ("method", "POST"), ("status", "200")];
    assert_eq!(sample(&text, "volatility_api_requests_total", &ok), Some(4.0), "{text}");
    let rejected = [("endpoint", "/predict"), ("method", "POST"), ("status", "422")];
    assert_eq!(sample(&text, "volatility_api_requests_total", &rejected), Some(1.0));
    let missing = [("endpoint", "/predict"), ("error_type", "missing_field")];
    assert_eq!(sample(&text, "volatility_api_errors_total", &missing), Some(1.0), "{text}");
    let latency = [("endpoint", "/predict"), ("variant", "ml")];
    assert_eq!(sample(&text, "volatility_prediction_latency_seconds_count", &latency), Some(4.0));
    assert!(sample(&text, "volatility_prediction_latency_seconds_sum", &latency).unwrap() > 0.0);
    assert_eq!(sample(&text, "volatility_api_rows_predicted_total", &[("variant", "ml")]), Some(5.0));
    assert!(sample(&text, "model_load_time_seconds", &[]).is_some());
    assert_eq!(sample(&text, "model_variant_active", &[("variant", "ml")]), Some(1.0));
    assert_eq!(sample(&text, "model_variant_active", &[("variant", "baseline")]), Some(0.0));
    assert_eq!(sample(&text, "model_loaded", &[]), Some(1.0));
}

#[tokio::test]
async fn admin_endpoints_are_disabled_without_a_token_file() {
    let state =
        spikewatch::api::AppState::with_models(Limits::default(), AdminAuth::Disabled, handle(ModelVariant::Ml).await)
            .unwrap();
    let app = api::router(state);
    for uri in ["/admin/reload", "/admin/variant"] {
        let reply = call(&app, admin_post(uri, Some(&json!({"variant": "baseline"})), Some(TOKEN))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(reply.error_field(), Some("authorization"));
        assert!(reply.body["error"]["reason"].as_str().unwrap().contains("admin_token_file"));
    }
}

#[tokio::test]
async fn admin_endpoints_need_the_bearer_token() {
    let app = api::router(state(ModelVariant::Ml).await);
    for token in [None, Some("wrong"), Some("")] {
        let reply = call(&app, admin_post("/admin/reload", None, token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(reply.headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
        assert_eq!(reply.error_field(), Some("authorization"));
    }
    let text = metrics_text(&app).await;
    let unauthorized = [("endpoint", "/admin/reload"), ("error_type", "unauthorized")];
    assert_eq!(sample(&text, "volatility_api_errors_total", &unauthorized), Some(3.0));
}

#[tokio::test]
async fn variant_switch_is_reported_by_version_metrics_and_predictions() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    let reply = call(&app, admin_post("/admin/variant", Some(&json!({"variant": "baseline"})), Some(TOKEN))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["model_variant"], "baseline");

    assert_eq!(call(&app, get("/version")).await.body["model_variant"], "baseline");
    let text = metrics_text(&app).await;
    assert_eq!(sample(&text, "model_variant_active", &[("variant", "baseline")]), Some(1.0));
    assert_eq!(sample(&text, "model_variant_active", &[("variant", "ml")]), Some(0.0));

    let baseline = state.model().unwrap();
    assert_eq!(baseline.info().variant, ModelVariant::Baseline);
    let reply = call(&app, post_json("/predict", &stressed_row())).await;
    let want = baseline.predict_proba(&[features(&stressed_row())]).unwrap()[0];
    assert_close(&reply.body["probability"], want);
    assert_eq!(reply.body["model_version"], baseline.info().version.as_str());

    let back = call(&app, admin_post("/admin/variant", Some(&json!({"variant": "ml"})), Some(TOKEN))).await;
    assert_eq!(back.body["model_variant"], "ml");
    let text = metrics_text(&app).await;
    assert_eq!(sample(&text, "model_variant_active", &[("variant", "ml")]), Some(1.0));
    let scored = [("endpoint", "/predict"), ("variant", "baseline")];
    assert_eq!(sample(&text, "volatility_prediction_latency_seconds_count", &scored), Some(1.0));
}

/// `api.admin_bind`: the admin endpoints answer on their own listener only, so a NetworkPolicy
/// can admit them from fewer peers than the API.
#[tokio::test]
async fn with_an_admin_address_the_admin_endpoints_are_served_there_alone() {
    let state = state(ModelVariant::Ml).await;
    let (public, admin) = (api::router_without_admin(state.clone()), api::admin_router(state.clone()));
    for uri in ["/admin/variant", "/admin/reload"] {
        let reply = call(&public, admin_post(uri, Some(&json!({"variant": "baseline"})), Some(TOKEN))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri} is not on the API port");
    }
    assert_eq!(call(&public, get("/version")).await.body["model_variant"], "ml", "nothing switched");
    let reply = call(&admin, admin_post("/admin/variant", Some(&json!({"variant": "baseline"})), Some(TOKEN))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(call(&public, get("/version")).await.body["model_variant"], "baseline", "one model, two listeners");
    let unauthorized = call(&admin, admin_post("/admin/reload", None, Some("wrong"))).await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED, "still behind the token");
    assert_eq!(call(&admin, get("/predict")).await.status, StatusCode::NOT_FOUND, "nothing else there");
}

#[tokio::test]
async fn variant_switch_rejects_unknown_variants() {
    let app = api::router(state(ModelVariant::Ml).await);
    for body in [json!({"variant": "gpt"}), json!({"variant": 1}), json!({})] {
        let reply = call(&app, admin_post("/admin/variant", Some(&body), Some(TOKEN))).await;
        assert!(reply.status.is_client_error(), "{body}: {}", reply.status);
        assert_eq!(reply.error_field(), Some("variant"), "{body}: {}", reply.text);
    }
    assert_eq!(call(&app, get("/version")).await.body["model_variant"], "ml");
}

#[tokio::test]
async fn reload_swaps_in_the_model_and_counts_it() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    let before = state.model().unwrap();
    let reply = call(&app, admin_post("/admin/reload", None, Some(TOKEN))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["model_variant"], "ml");
    assert_eq!(reply.body["model_version"], before.info().version.as_str());
    let after = state.model().unwrap();
    assert!(!std::sync::Arc::ptr_eq(&before, &after), "a fresh model instance answers after reload");
    let text = metrics_text(&app).await;
    assert_eq!(sample(&text, "model_reloads_total", &[("result", "success")]), Some(1.0));
    assert!(sample(&text, "model_load_time_seconds", &[]).unwrap() > 0.0);
}

#[tokio::test]
async fn openapi_document_is_generated_from_the_handlers() {
    let app = api::router(state(ModelVariant::Ml).await);
    let reply = call(&app, get("/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let spec = reply.body;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/predict", "post"),
        ("/health", "get"),
        ("/version", "get"),
        ("/metrics", "get"),
        ("/admin/reload", "post"),
        ("/admin/variant", "post"),
        ("/v2", "get"),
        ("/v2/health/live", "get"),
        ("/v2/health/ready", "get"),
        ("/v2/models/{name}", "get"),
        ("/v2/models/{name}/ready", "get"),
        ("/v2/models/{name}/infer", "post"),
        ("/v2/models/{name}/versions/{version}", "get"),
        ("/v2/models/{name}/versions/{version}/ready", "get"),
        ("/v2/models/{name}/versions/{version}/infer", "post"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing from the document");
    }
    // Every field may be left out (filled in, or refused with ?strict=true), and each is described.
    let row = &spec["components"]["schemas"]["FeatureRow"];
    assert!(row.get("required").is_none_or(|r| r.as_array().is_some_and(|r| r.is_empty())), "{row}");
    for name in FEATURE_NAMES {
        assert!(row["properties"].get(name).is_some(), "{name}");
    }
    assert!(newer_fields().iter().all(|n| FEATURE_NAMES.contains(n)));
    let params = paths["/predict"]["post"]["parameters"].as_array().unwrap();
    assert!(params.iter().any(|p| p["name"] == "strict"), "{params:?}");
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());

    // The docs page, with or without the trailing slash, loads its viewer from this server only.
    for path in ["/docs", "/docs/"] {
        let docs = call(&app, get(path)).await;
        assert_eq!(docs.status, StatusCode::OK, "{path}");
        assert!(docs.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        assert!(docs.text.contains("<title>spikewatch API</title>"), "{}", docs.text);
        assert!(docs.text.contains(r#"spec-url="/openapi.json""#));
        let policy = docs.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.starts_with("default-src 'self'") && !policy.contains("http"), "{policy}");
    }
    let viewer = call(&app, get("/docs/rapidoc-min.js")).await;
    assert_eq!(viewer.status, StatusCode::OK);
    assert!(viewer.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert!(viewer.text.starts_with("/*! RapiDoc 9.3.8 "), "the vendored, pinned release");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let app = api::router(state(ModelVariant::Ml).await);
    let reply = call(&app, get("/nope")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_field(), Some("path"));
    let reply = call(&app, get("/predict")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.body["error"]["reason"].is_string(), "{}", reply.text);
    let text = metrics_text(&app).await;
    let unmatched = [("endpoint", "unmatched"), ("method", "GET"), ("status", "404")];
    assert_eq!(sample(&text, "volatility_api_requests_total", &unmatched), Some(1.0), "raw paths never become labels");
}

#[tokio::test]
async fn inference_failure_is_a_counted_500_with_a_json_body() {
    let app = api::router(broken_state(None, Limits::default()));
    let reply = call(&app, post_json("/predict", &row())).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.body["error"]["reason"].as_str().unwrap().contains("session run failed"), "{}", reply.text);
    let text = metrics_text(&app).await;
    let inference = [("endpoint", "/predict"), ("error_type", "inference")];
    assert_eq!(sample(&text, "volatility_api_errors_total", &inference), Some(1.0));
}

/// A request whose body never finishes: `head` is sent, then nothing (the connection stays open).
fn stalled_upload(content_length: usize, head: &'static str) -> axum::http::Request<axum::body::Body> {
    let chunks =
        futures::stream::iter([Ok::<_, std::io::Error>(head.as_bytes().to_vec())]).chain(futures::stream::pending());
    axum::http::Request::post("/predict")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, content_length)
        .body(axum::body::Body::from_stream(chunks))
        .unwrap()
}

#[tokio::test]
async fn a_stalled_upload_times_out_with_408_as_the_clients_fault() {
    let limits = Limits { request_timeout: std::time::Duration::from_millis(50), ..Limits::default() };
    let app = api::router(state_with(ModelVariant::Ml, limits).await);
    let reply = call(&app, stalled_upload(500, r#"{"price": 9"#)).await;
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT, "{}", reply.text);
    assert_eq!(reply.error_field(), Some("body"));
    assert!(reply.body["error"]["reason"].as_str().unwrap().contains("50 ms"), "{}", reply.text);
    let text = metrics_text(&app).await;
    let timeout = [("endpoint", "/predict"), ("error_type", "body_timeout")];
    assert_eq!(sample(&text, "volatility_api_errors_total", &timeout), Some(1.0));
}

#[tokio::test]
async fn a_body_announced_over_the_limit_is_refused_before_it_is_read() {
    // A stalled body and a deadline far away: only a refusal on the header answers at once.
    let limits =
        Limits { max_body_bytes: 4096, request_timeout: std::time::Duration::from_secs(600), ..Limits::default() };
    let app = api::router(state_with(ModelVariant::Ml, limits).await);
    let reply = call(&app, stalled_upload(4097, "{")).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
    assert_eq!(reply.error_field(), Some("body"));
}

#[tokio::test]
async fn slow_requests_time_out_with_a_json_503() {
    let limits = Limits { request_timeout: std::time::Duration::from_millis(50), ..Limits::default() };
    // The model sleeps far longer than the timeout; a batch runs on the blocking pool, so the
    // request future can be abandoned while the model is still busy.
    let app = api::router(broken_state(Some(std::time::Duration::from_secs(1)), limits));
    let rows: Vec<Value> = (0..100).map(|_| row()).collect();
    let reply = call(&app, post_json("/predict", &json!({ "rows": rows }))).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body["error"]["reason"].as_str().unwrap().contains("50 ms"), "{}", reply.text);
    let text = metrics_text(&app).await;
    let timeout = [("endpoint", "/predict"), ("error_type", "timeout")];
    assert_eq!(sample(&text, "volatility_api_errors_total", &timeout), Some(1.0));
}

#[tokio::test]
async fn predict_reproduces_the_trainers_probabilities_on_the_fixtures() {
    let fixtures = fixtures();
    assert!(!fixtures.is_empty());
    let rows: Vec<Value> = fixtures.iter().map(|f| f.features.clone()).collect();
    for variant in [ModelVariant::Ml, ModelVariant::Baseline] {
        let app = api::router(state(variant).await);
        let reply = call(&app, post_json("/predict", &json!({ "rows": rows }))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let predictions = reply.body["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), fixtures.len());
        for (i, (prediction, fixture)) in predictions.iter().zip(&fixtures).enumerate() {
            let want = match variant {
                ModelVariant::Ml => fixture.ml,
                ModelVariant::Baseline => fixture.baseline,
            };
            let got = prediction["probability"].as_f64().unwrap();
            assert!((got - want).abs() <= 1e-5, "{variant:?} row {i}: API {got}, trainer {want}");
        }
    }
}
