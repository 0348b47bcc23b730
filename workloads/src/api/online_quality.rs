//! `GET /predictions/quality`: the online quality of the live predictions, as judged by the
//! [`PredictionFeed`](crate::prediction_feed::PredictionFeed) that serves them (see [`crate::prediction_feed::judge`]
//! for why the API judges them itself). Same filter and errors as `/predictions/latest`.

use axum::Json;
use axum::extract::{RawQuery, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ModelVariant;
use crate::prediction_feed::{JudgedQuality, UnjudgedCounts};
use crate::quality::online::HORIZON_SECS;

use super::predictions::{ProductFilter, require_source, unknown_product};
use super::state::AppState;
use crate::http::error::ApiError;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// What the numbers are, for whoever reads the JSON without the docs at hand.
pub const DEFINITION: &str = "Every second s of a product's stream is judged, with the last prediction at or \
    before it, once the stream passes s + 60 s (from a minute into each segment): positive when the realized \
    variance of one-second mid returns over (s, s + 60] is at or above the 90th percentile of the product's values \
    over the trailing 24 hours (its first 120 seconds only set that bar), the training label. precision: share of \
    alerts that were positive; recall: share of positives that were alerted; positive_rate: share of seconds that \
    were positive (the precision of alerting at random); alert_rate: share that alerted; brier: mean squared error \
    of the probabilities. Over the seconds judged in the window (the last hour of the product's event time); null \
    while undefined.";

/// The online quality of the live predictions, per product and model variant.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnlineQuality {
    /// How a prediction is judged and what each number means.
    #[schema(example = "Each prediction is judged once its product's stream passes its event time + 60 s: ...")]
    pub definition: String,
    /// Seconds after a prediction's event time when it is judged.
    #[schema(example = 60)]
    pub horizon_seconds: i64,
    /// Length of the window the numbers cover, in seconds of the product's event time.
    #[schema(example = 3600)]
    pub window_seconds: i64,
    /// Predictions received but not judged, since the server started (all products).
    pub unjudged: UnjudgedCounts,
    /// Per product and variant (product, then variant order), for the pairs with a judged
    /// prediction since the server started.
    pub quality: Vec<ProductQuality>,
}

/// One product's predictions of one variant, judged over the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductQuality {
    #[schema(example = "BTC-USD")]
    pub product_id: String,
    pub variant: ModelVariant,
    /// Predictions judged in the window (made in `[window_start, window_end - 60 s]`).
    #[schema(example = 1234)]
    pub judged: u64,
    /// Share of the alerts that were positive; null without an alert.
    #[schema(example = 0.31)]
    pub precision: Option<f64>,
    /// Share of the positives that were alerted; null without a positive.
    #[schema(example = 0.22)]
    pub recall: Option<f64>,
    /// Mean squared error of the probabilities against the outcomes; null when nothing is judged.
    #[schema(example = 0.09)]
    pub brier: Option<f64>,
    /// Share of judged predictions that were positive: the precision of alerting at random.
    #[schema(example = 0.1)]
    pub positive_rate: Option<f64>,
    /// Share of judged predictions that alerted.
    #[schema(example = 0.07)]
    pub alert_rate: Option<f64>,
    /// Start of the window (event time).
    pub window_start: DateTime<Utc>,
    /// End of the window: the event time of the product's latest prediction.
    pub window_end: DateTime<Utc>,
}

impl ProductQuality {
    fn new(judged: JudgedQuality, window_nanos: i64) -> ProductQuality {
        let q = judged.quality;
        ProductQuality {
            product_id: judged.product_id,
            variant: judged.variant,
            judged: q.labelled,
            precision: q.precision(),
            recall: q.recall(),
            brier: q.brier(),
            positive_rate: q.positive_rate(),
            alert_rate: q.alert_rate(),
            window_start: DateTime::from_timestamp_nanos(judged.stream_time.saturating_sub(window_nanos)),
            window_end: DateTime::from_timestamp_nanos(judged.stream_time),
        }
    }
}

/// Precision, recall, Brier score, positive and alert rates of the live predictions over the
/// last hour, per product and variant, judged by this server on the predictions it streams.
#[utoipa::path(get, path = "/predictions/quality", tag = "predictions",
    params(("product_id" = Option<Vec<String>>, Query, explode = true,
        description = "Only these products (repeatable, or comma-separated). Default: every product judged.")),
    responses(
        (status = 200, body = OnlineQuality),
        (status = 404, body = crate::http::error::ErrorBody, description = "No prediction yet for a product asked for"),
        (status = 422, body = crate::http::error::ErrorBody, description = "Invalid product id or unknown query parameter"),
        (status = 503, body = crate::http::error::ErrorBody, description = "No live prediction source is configured"),
    ))]
pub async fn quality(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<OnlineQuality>, ApiError> {
    let filter = ProductFilter::from_query(query.as_deref())?;
    let feed = state.feed();
    require_source(feed)?;
    for product in filter.products().into_iter().flatten() {
        if feed.latest_of(product).is_none() {
            return Err(unknown_product(feed, product));
        }
    }
    // A copy taken under the judge's lock; serializing and sending happen after it is released.
    let (judged, unjudged, config) = feed.quality(|product| filter.matches(product));
    Ok(Json(OnlineQuality {
        definition: DEFINITION.into(),
        horizon_seconds: HORIZON_SECS,
        window_seconds: config.window_nanos / NANOS_PER_SEC,
        unjudged,
        quality: judged.into_iter().map(|j| ProductQuality::new(j, config.window_nanos)).collect(),
    }))
}
