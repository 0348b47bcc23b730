//! `POST /predict`: the original API's flat body, or a batch `{"rows": [...]}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::Features;
use crate::model::Model;

use super::metrics::Scored;
use super::rows::{Completed, FeatureRow, Fill};
use super::state::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::json_body::{JsonBody, from_value};

/// Batches larger than this are scored on the blocking pool, off the async workers.
const INLINE_ROWS: usize = 64;

/// Either one row of features (the original body) or a batch.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // documents the body; the handler parses it row by row for precise errors
#[serde(untagged)]
pub enum PredictRequest {
    Single(Box<FeatureRow>),
    Batch(BatchRequest),
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct BatchRequest {
    /// 1 to `api.max_rows` rows.
    rows: Vec<FeatureRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PredictResponse {
    /// 1 when `probability >= threshold` of the model.
    pub prediction: u8,
    /// P(volatility spike within the next 60 s).
    pub probability: f64,
    pub model_version: String,
    pub timestamp: DateTime<Utc>,
    /// Fields the request left out that were filled with the training medians (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imputed: Vec<&'static str>,
}

/// `?strict=true`: refuse rows with absent fields instead of filling them in.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct PredictParams {
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One prediction per row, in request order.
    pub predictions: Vec<PredictResponse>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum PredictResponseBody {
    Single(PredictResponse),
    Batch(BatchResponse),
}

/// Score one row of features, or a batch of rows.
#[utoipa::path(post, path = "/predict", tag = "prediction", request_body = PredictRequest, params(PredictParams),
    responses(
        (status = 200, body = PredictResponseBody, description = "One prediction, or `predictions` for a batch"),
        (status = 400, body = ErrorBody, description = "Malformed JSON, wrong type, non-finite number"),
        (status = 413, body = ErrorBody, description = "Body or row count over the limit"),
        (status = 415, body = ErrorBody, description = "Content-Type is not application/json"),
        (status = 422, body = ErrorBody, description = "Value out of range, empty batch, or (strict mode, or a model without training medians) a missing field"),
        (status = 500, body = ErrorBody, description = "Inference failed"),
        (status = 503, body = ErrorBody, description = "No model loaded"),
    ))]
pub async fn predict(
    State(state): State<AppState>,
    Query(params): Query<PredictParams>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let reference = state.reference();
    let medians = reference.as_ref().map(|r| r.medians());
    let fill = match (params.strict || state.limits().strict_rows, &medians) {
        (true, medians) => Fill::Strict(medians.as_ref()),
        (false, Some(medians)) => Fill::Medians(medians),
        (false, None) => Fill::NoReference,
    };
    let (rows, batch) = parse_rows(&body, state.limits().max_rows, fill)?;
    if rows.iter().any(|r| !r.imputed.is_empty()) {
        state.metrics().imputed_requests.inc();
    }
    let model = state.model()?;
    let scored = Scored { variant: model.info().variant, rows: rows.len() };
    let (features, imputed): (Vec<Features>, Vec<Vec<&'static str>>) =
        rows.into_iter().map(|c| (c.features, c.imputed)).unzip();
    let probabilities = score(model.clone(), features).await?;

    let info = model.info();
    let timestamp = Utc::now();
    let mut predictions = probabilities.into_iter().zip(imputed).map(|(probability, imputed)| PredictResponse {
        prediction: u8::from(probability >= info.threshold),
        probability,
        model_version: info.version.clone(),
        timestamp,
        imputed,
    });
    let mut response = if batch {
        Json(BatchResponse { predictions: predictions.collect() }).into_response()
    } else {
        let one =
            predictions.next().ok_or_else(|| ApiError::Inference { reason: "model returned no probability".into() })?;
        Json(one).into_response()
    };
    response.extensions_mut().insert(scored);
    Ok(response)
}

/// The validated rows of a body (absent fields filled per `fill`), and whether it was the
/// batch form.
pub fn parse_rows(body: &Value, max_rows: usize, fill: Fill<'_>) -> Result<(Vec<Completed>, bool), ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::InvalidType { field: "body".into(), reason: "expected a JSON object".into() });
    };
    let Some(rows) = object.get("rows") else {
        let row: FeatureRow = from_value(body, "")?;
        return Ok((vec![row.complete("", fill)?], false));
    };
    let Some(rows) = rows.as_array() else {
        return Err(ApiError::InvalidType { field: "rows".into(), reason: "expected an array of feature rows".into() });
    };
    if rows.is_empty() {
        return Err(ApiError::Invalid { field: "rows".into(), reason: "must contain at least one row".into() });
    }
    if rows.len() > max_rows {
        return Err(ApiError::TooManyRows { field: "rows".into(), rows: rows.len(), max: max_rows });
    }
    let features = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("rows[{i}]");
            from_value::<FeatureRow>(row, &at)?.complete(&at, fill)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((features, true))
}

/// Probabilities for `rows`, checked: one per row, each in [0, 1]. Large batches run on the
/// blocking pool so that one big request does not stall the small ones.
pub async fn score(model: Arc<dyn Model>, rows: Vec<Features>) -> Result<Vec<f64>, ApiError> {
    let n = rows.len();
    let result = if n <= INLINE_ROWS {
        model.predict_proba(&rows)
    } else {
        tokio::task::spawn_blocking(move || model.predict_proba(&rows))
            .await
            .map_err(|e| ApiError::Inference { reason: format!("inference task failed: {e}") })?
    };
    let probabilities = result.map_err(|e| ApiError::Inference { reason: e.to_string() })?;
    if probabilities.len() != n {
        return Err(ApiError::Inference {
            reason: format!("model returned {} probabilities for {n} rows", probabilities.len()),
        });
    }
    if let Some(bad) = probabilities.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(ApiError::Inference { reason: format!("model returned probability {bad} outside [0, 1]") });
    }
    Ok(probabilities)
}
