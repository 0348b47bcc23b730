//! Open Inference Protocol v2: request and response shapes checked against the protocol's JSON
//! layout (kserve/open-inference-protocol, specification/protocol/inference_rest.md and
//! open_inference_rest.yaml), and answers checked against the model.

mod api_support;

use api_support::*;
use axum::http::StatusCode;
use serde_json::{Value, json};
use spikewatch::api::{self, Limits};
use spikewatch::domain::{FEATURE_NAMES, ModelVariant, N_FEATURES};

// ---- the protocol's JSON objects, as checks ($string, $number, #optional as in the spec) ----

fn is_int_array(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(|x| x.is_i64() || x.is_u64()))
}

fn string_array(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
}

/// Only the keys a schema lists (plus none of our own invention at the top level).
fn only_keys(v: &Value, allowed: &[&str], what: &str) {
    for key in v.as_object().unwrap_or_else(|| panic!("{what} is not an object: {v}")).keys() {
        assert!(allowed.contains(&key.as_str()), "{what} has key {key:?} the protocol does not define: {v}");
    }
}

/// `$metadata_tensor = {"name": $string, "datatype": $string, "shape": [$number, ...]}`
fn check_metadata_tensor(v: &Value) {
    only_keys(v, &["name", "datatype", "shape"], "metadata_tensor");
    assert!(v["name"].is_string() && v["datatype"].is_string() && is_int_array(&v["shape"]), "{v}");
}

/// `$metadata_model_response = {"name", "versions" #optional, "platform", "inputs", "outputs"}`
fn check_model_metadata(v: &Value) {
    only_keys(v, &["name", "versions", "platform", "inputs", "outputs"], "metadata_model_response");
    assert!(v["name"].is_string() && v["platform"].is_string(), "{v}");
    assert!(v.get("versions").is_none_or(string_array), "{v}");
    for tensors in ["inputs", "outputs"] {
        v[tensors]
            .as_array()
            .unwrap_or_else(|| panic!("{tensors} missing: {v}"))
            .iter()
            .for_each(check_metadata_tensor);
    }
}

/// `$response_output = {"name", "shape", "datatype", "parameters" #optional, "data"}`; the data
/// holds exactly as many elements as the shape says (flat, row-major).
fn check_response_output(v: &Value) {
    only_keys(v, &["name", "shape", "datatype", "parameters", "data"], "response_output");
    assert!(v["name"].is_string() && v["datatype"].is_string() && is_int_array(&v["shape"]), "{v}");
    let elements: u64 = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).product();
    let data = v["data"].as_array().unwrap_or_else(|| panic!("data is not an array: {v}"));
    assert_eq!(data.len() as u64, elements, "{v}");
    match v["datatype"].as_str().unwrap() {
        "FP32" => assert!(data.iter().all(Value::is_number)),
        "INT64" => assert!(data.iter().all(|x| x.is_i64() || x.is_u64())),
        other => panic!("unexpected datatype {other}"),
    }
}

/// `$inference_response = {"model_name", "model_version" #optional, "id", "parameters" #optional, "outputs"}`
fn check_inference_response(v: &Value) {
    only_keys(v, &["model_name", "model_version", "id", "parameters", "outputs"], "inference_response");
    assert!(v["model_name"].is_string(), "{v}");
    assert!(v.get("model_version").is_none_or(Value::is_string));
    assert!(v.get("id").is_none_or(Value::is_string));
    assert!(v.get("parameters").is_none_or(Value::is_object));
    v["outputs"].as_array().unwrap_or_else(|| panic!("outputs missing: {v}")).iter().for_each(check_response_output);
}

/// `$inference_error_response = {"error": $string}`
fn check_error(v: &Value) {
    only_keys(v, &["error"], "error response");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
}

fn output<'a>(response: &'a Value, name: &str) -> &'a Value {
    response["outputs"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap_or_else(|| panic!("no {name}"))
}

/// `rows` as one `[N, N_FEATURES]` tensor, row-major.
fn matrix_request(rows: &[Value], datatype: &str) -> Value {
    let data: Vec<f64> =
        rows.iter().flat_map(|row| FEATURE_NAMES.iter().map(move |name| row[name].as_f64().unwrap())).collect();
    json!({"inputs": [{"name": "input", "shape": [rows.len(), FEATURE_NAMES.len()], "datatype": datatype, "data": data}]})
}

// ---- tests ----

#[tokio::test]
async fn health_and_server_metadata() {
    let app = api::router(state(ModelVariant::Ml).await);
    let live = call(&app, get("/v2/health/live")).await;
    assert_eq!((live.status, live.body.clone()), (StatusCode::OK, json!({"live": true})));
    let ready = call(&app, get("/v2/health/ready")).await;
    assert_eq!((ready.status, ready.body.clone()), (StatusCode::OK, json!({"ready": true})));
    let server = call(&app, get("/v2")).await;
    only_keys(&server.body, &["name", "version", "extensions"], "metadata_server_response");
    assert!(
        server.body["name"].is_string()
            && server.body["version"].is_string()
            && string_array(&server.body["extensions"])
    );
}

#[tokio::test]
async fn model_metadata_describes_the_tensors() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    let info = state.model().unwrap().info().clone();
    for name in ["spikewatch", info.name.as_str()] {
        let reply = call(&app, get(&format!("/v2/models/{name}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        check_model_metadata(&reply.body);
        assert_eq!(reply.body["name"], name);
        assert_eq!(reply.body["versions"], json!([info.version]));
        assert_eq!(reply.body["platform"], "onnxruntime_onnx");
        assert_eq!(reply.body["inputs"], json!([{"name": "input", "datatype": "FP32", "shape": [-1, N_FEATURES]}]));
        let outputs: Vec<&str> =
            reply.body["outputs"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
        assert_eq!(outputs, ["probability", "prediction"]);

        let ready = call(&app, get(&format!("/v2/models/{name}/ready"))).await;
        assert_eq!(ready.body, json!({"name": name, "ready": true}));
    }
    let versioned = call(&app, get(&format!("/v2/models/spikewatch/versions/{}", info.version))).await;
    assert_eq!(versioned.status, StatusCode::OK);
    check_model_metadata(&versioned.body);
}

#[tokio::test]
async fn unknown_model_or_version_is_404_with_the_protocols_error_object() {
    let app = api::router(state(ModelVariant::Ml).await);
    for uri in ["/v2/models/resnet50", "/v2/models/resnet50/ready", "/v2/models/spikewatch/versions/999/ready"] {
        let reply = call(&app, get(uri)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        check_error(&reply.body);
    }
    let reply = call(&app, post_json("/v2/models/resnet50/infer", &matrix_request(&[row()], "FP32"))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    check_error(&reply.body);
    assert!(reply.body["error"].as_str().unwrap().starts_with("model_name: "), "{}", reply.text);
}

#[tokio::test]
async fn infer_a_batch_tensor_matches_the_model() {
    for variant in [ModelVariant::Ml, ModelVariant::Baseline] {
        let state = state(variant).await;
        let app = api::router(state.clone());
        let model = state.model().unwrap();
        let rows = [row(), stressed_row(), row()];
        let mut request = matrix_request(&rows, "FP32");
        request["id"] = json!("42");
        let reply = call(&app, post_json("/v2/models/spikewatch/infer", &request)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        check_inference_response(&reply.body);
        assert_eq!(reply.body["id"], "42", "the request id is echoed");
        assert_eq!(reply.body["model_name"], "spikewatch");
        assert_eq!(reply.body["model_version"], model.info().version.as_str());
        assert_eq!(reply.body["parameters"]["model_variant"], variant.as_str());

        let want = model.predict_proba(&rows.iter().map(features).collect::<Vec<_>>()).unwrap();
        let probability = output(&reply.body, "probability");
        assert_eq!((probability["datatype"].as_str(), &probability["shape"]), (Some("FP32"), &json!([3])));
        for (got, want) in probability["data"].as_array().unwrap().iter().zip(&want) {
            // FP32 on the wire.
            assert!((got.as_f64().unwrap() - want).abs() < 1e-6, "{got} vs {want}");
        }
        let prediction = output(&reply.body, "prediction");
        assert_eq!((prediction["datatype"].as_str(), &prediction["shape"]), (Some("INT64"), &json!([3])));
        let decisions: Vec<i64> = want.iter().map(|&p| i64::from(p >= model.info().threshold)).collect();
        assert_eq!(prediction["data"], json!(decisions));
    }
}

#[tokio::test]
async fn nested_data_fp64_columns_and_requested_outputs() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    let flat =
        call(&app, post_json("/v2/models/spikewatch/infer", &matrix_request(&[row(), stressed_row()], "FP32"))).await;
    let want = output(&flat.body, "probability")["data"].clone();

    // Nested row-major data, FP64.
    let nested: Vec<Vec<f64>> = [row(), stressed_row()]
        .iter()
        .map(|r| FEATURE_NAMES.iter().map(|n| r[n].as_f64().unwrap()).collect())
        .collect();
    let request = json!({"inputs": [{"name": "input", "shape": [2, N_FEATURES], "datatype": "FP64", "data": nested}],
                         "outputs": [{"name": "probability"}]});
    let reply = call(&app, post_json("/v2/models/spikewatch/infer", &request)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    check_inference_response(&reply.body);
    assert_eq!(reply.body["outputs"].as_array().unwrap().len(), 1, "only the requested output");
    assert_eq!(output(&reply.body, "probability")["data"], want);
    assert!(reply.body.get("id").is_none(), "no id requested, none echoed");

    // One [N] tensor per feature, in any order.
    let inputs: Vec<Value> = FEATURE_NAMES
        .iter()
        .rev()
        .map(|name| {
            json!({"name": name, "shape": [2], "datatype": "FP32",
                           "data": [row()[name].clone(), stressed_row()[name].clone()]})
        })
        .collect();
    let reply = call(&app, post_json("/v2/models/spikewatch/infer", &json!({"inputs": inputs}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    check_inference_response(&reply.body);
    assert_eq!(output(&reply.body, "probability")["data"], want);
}

#[tokio::test]
async fn infer_on_a_version_path() {
    let state = state(ModelVariant::Ml).await;
    let app = api::router(state.clone());
    let version = state.model().unwrap().info().version.clone();
    let ok = call(
        &app,
        post_json(&format!("/v2/models/spikewatch/versions/{version}/infer"), &matrix_request(&[row()], "FP32")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    check_inference_response(&ok.body);
    let stale =
        call(&app, post_json("/v2/models/spikewatch/versions/0.0.0-stale/infer", &matrix_request(&[row()], "FP32")))
            .await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    check_error(&stale.body);
}

#[tokio::test]
async fn bad_tensors_are_4xx_with_the_protocols_error_object() {
    let limits = Limits { max_rows: 4, ..Limits::default() };
    let app = api::router(state_with(ModelVariant::Ml, limits).await);
    let good = matrix_request(&[row()], "FP32");
    let mut cases: Vec<(&str, Value, StatusCode, &str)> = Vec::new();
    let mut edit = |name: &'static str, status: StatusCode, field: &'static str, f: &dyn Fn(&mut Value)| {
        let mut request = good.clone();
        f(&mut request);
        cases.push((name, request, status, field));
    };
    edit("no inputs", StatusCode::UNPROCESSABLE_ENTITY, "inputs:", &|r| r["inputs"] = json!([]));
    edit("inputs missing", StatusCode::UNPROCESSABLE_ENTITY, "inputs:", &|r| {
        r.as_object_mut().unwrap().remove("inputs");
    });
    edit("wrong datatype", StatusCode::UNPROCESSABLE_ENTITY, "inputs[0].datatype:", &|r| {
        r["inputs"][0]["datatype"] = json!("BYTES")
    });
    edit("wrong width", StatusCode::UNPROCESSABLE_ENTITY, "inputs[0].shape:", &|r| {
        r["inputs"][0]["shape"] = json!([1, 13])
    });
    edit("negative dim", StatusCode::UNPROCESSABLE_ENTITY, "inputs[0].shape:", &|r| {
        r["inputs"][0]["shape"] = json!([-1, N_FEATURES])
    });
    edit("shape/data mismatch", StatusCode::UNPROCESSABLE_ENTITY, "inputs[0].data:", &|r| {
        r["inputs"][0]["shape"] = json!([2, N_FEATURES])
    });
    edit("string in data", StatusCode::BAD_REQUEST, "inputs[0].data[3]:", &|r| {
        r["inputs"][0]["data"][3] = json!("NaN")
    });
    edit("out of range", StatusCode::UNPROCESSABLE_ENTITY, "inputs[0].data[9] (row 0, spread_rel):", &|r| {
        r["inputs"][0]["data"][9] = json!(2.0)
    });
    edit("negative price", StatusCode::UNPROCESSABLE_ENTITY, "inputs[0].data[0] (row 0, price):", &|r| {
        r["inputs"][0]["data"][0] = json!(-5.0)
    });
    edit("too many rows", StatusCode::PAYLOAD_TOO_LARGE, "inputs[0].shape:", &|r| {
        r["inputs"][0]["shape"] = json!([5, N_FEATURES])
    });
    edit("unknown output", StatusCode::UNPROCESSABLE_ENTITY, "outputs[0].name:", &|r| {
        r["outputs"] = json!([{"name": "logits"}])
    });
    edit("unknown column", StatusCode::UNPROCESSABLE_ENTITY, "inputs[1].name:", &|r| {
        r["inputs"] = json!([{"name": "price", "shape": [1], "datatype": "FP32", "data": [1.0]},
                             {"name": "colour", "shape": [1], "datatype": "FP32", "data": [1.0]}]);
    });
    edit("missing column", StatusCode::UNPROCESSABLE_ENTITY, "inputs (tensor \"return_1s\"):", &|r| {
        r["inputs"] = json!([{"name": "price", "shape": [1], "datatype": "FP32", "data": [1.0]},
                             {"name": "midprice", "shape": [1], "datatype": "FP32", "data": [1.0]}]);
    });
    edit("id not a string", StatusCode::BAD_REQUEST, "id:", &|r| r["id"] = json!(42));

    for (name, request, status, prefix) in cases {
        let reply = call(&app, post_json("/v2/models/spikewatch/infer", &request)).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text);
        check_error(&reply.body);
        let message = reply.body["error"].as_str().unwrap();
        assert!(message.starts_with(prefix), "{name}: {message:?} should start with {prefix:?}");
    }
    let reply = call(&app, post_raw("/v2/models/spikewatch/infer", "text/plain", good.to_string())).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    check_error(&reply.body);
    let reply = call(&app, post_raw("/v2/models/spikewatch/infer", "application/json", "{\"inputs\": [")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    check_error(&reply.body);
}

#[tokio::test]
async fn oip_requests_are_counted_under_the_route_template() {
    let app = api::router(state(ModelVariant::Ml).await);
    let reply = call(&app, post_json("/v2/models/spikewatch/infer", &matrix_request(&[row(), row()], "FP32"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = metrics_text(&app).await;
    let ok = [("endpoint", "/v2/models/{name}/infer"), ("method", "POST"), ("status", "200")];
    assert_eq!(sample(&text, "volatility_api_requests_total", &ok), Some(1.0), "{text}");
    let latency = [("endpoint", "/v2/models/{name}/infer"), ("variant", "ml")];
    assert_eq!(sample(&text, "volatility_prediction_latency_seconds_count", &latency), Some(1.0));
    assert_eq!(sample(&text, "volatility_api_rows_predicted_total", &[("variant", "ml")]), Some(2.0));
}

#[tokio::test]
async fn infer_reproduces_the_trainers_probabilities_on_the_fixtures() {
    let app = api::router(state(ModelVariant::Ml).await);
    // A tensor holds numbers only: the fixtures whose every feature is present (a source
    // without trades has missing trade features, which `/predict` takes as `null`).
    let fixtures: Vec<Fixture> =
        fixtures().into_iter().filter(|f| f.features.as_object().unwrap().values().all(Value::is_number)).collect();
    assert!(fixtures.len() >= 10, "{}", fixtures.len());
    let rows: Vec<Value> = fixtures.iter().map(|f| f.features.clone()).collect();
    let reply = call(&app, post_json("/v2/models/spikewatch/infer", &matrix_request(&rows, "FP64"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    check_inference_response(&reply.body);
    let probability = output(&reply.body, "probability");
    assert_eq!(probability["shape"], json!([fixtures.len()]));
    for (i, (got, fixture)) in probability["data"].as_array().unwrap().iter().zip(&fixtures).enumerate() {
        let got = got.as_f64().unwrap();
        assert!((got - fixture.ml).abs() <= 1e-5, "row {i}: API {got}, trainer {}", fixture.ml);
    }
}
