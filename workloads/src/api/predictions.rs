//! `GET /predictions/stream` (Server-Sent Events) and `GET /predictions/latest`: the live
//! predictions of the [`PredictionFeed`](crate::prediction_feed::PredictionFeed), optionally for some
//! products only.
//!
//! `product_id` may be repeated (`?product_id=BTC-USD&product_id=ETH-USD`) or hold a
//! comma-separated list (`?product_id=BTC-USD,ETH-USD`); both forms combine.

use std::collections::BTreeSet;
use std::convert::Infallible;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderName;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Prediction;
use crate::prediction_feed::{Delivery, PredictionFeed, Subscription, check_product_id};

use super::state::AppState;
use crate::http::error::ApiError;

/// Most product ids one request may name.
pub const MAX_FILTER_PRODUCTS: usize = 100;

/// SSE event name of a prediction.
pub const PREDICTION_EVENT: &str = "prediction";
/// SSE event name of the notice that a slow client lost predictions.
pub const DROPPED_EVENT: &str = "dropped";

/// The products a request asks for; `None` = all.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductFilter(Option<BTreeSet<String>>);

impl ProductFilter {
    /// Parses the query string: `product_id` only, repeatable, comma-separated lists allowed.
    pub fn from_query(query: Option<&str>) -> Result<ProductFilter, ApiError> {
        let mut products = BTreeSet::new();
        let mut named = false;
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if key != "product_id" {
                return Err(ApiError::Invalid {
                    field: key.into_owned(),
                    reason: "unknown query parameter (the only one is product_id)".into(),
                });
            }
            named = true;
            for product in value.split(',') {
                check_product_id(product).map_err(|reason| ApiError::Invalid { field: "product_id".into(), reason })?;
                products.insert(product.to_string());
            }
        }
        if products.len() > MAX_FILTER_PRODUCTS {
            return Err(ApiError::Invalid {
                field: "product_id".into(),
                reason: format!("{} products exceed the limit of {MAX_FILTER_PRODUCTS}", products.len()),
            });
        }
        Ok(ProductFilter(named.then_some(products)))
    }

    pub fn matches(&self, product: &str) -> bool {
        self.0.as_ref().is_none_or(|products| products.contains(product))
    }

    /// The products named, in order; `None` = all.
    pub fn products(&self) -> Option<&BTreeSet<String>> {
        self.0.as_ref()
    }
}

/// 503 when nothing feeds live predictions to this server.
pub(super) fn require_source(feed: &PredictionFeed) -> Result<(), ApiError> {
    match feed.source() {
        Some(_) => Ok(()),
        None => Err(ApiError::PredictionsUnavailable {
            reason: "no live prediction source: run `spikewatch serve` with api.predictions_from_kafka: true \
                     (SPIKEWATCH_PREDICTIONS_FROM_KAFKA=true), or `spikewatch run --serve`"
                .into(),
        }),
    }
}

/// Live predictions as Server-Sent Events: one `prediction` event per prediction (its JSON,
/// alerts are those with `"prediction": 1`), a `dropped` event when this client read too slowly
/// and lost some, and a keep-alive comment every 15 s when nothing happens.
#[utoipa::path(get, path = "/predictions/stream", tag = "predictions",
    params(("product_id" = Option<Vec<String>>, Query, explode = true,
        description = "Only these products (repeatable, or comma-separated). Default: all.")),
    responses(
        (status = 200, content_type = "text/event-stream",
         description = "`event: prediction` with a Prediction as `data`; `event: dropped` with \
                        `{\"dropped\": n, \"dropped_total\": m}` when the client fell behind and lost predictions"),
        (status = 422, body = crate::http::error::ErrorBody, description = "Invalid product id or unknown query parameter"),
        (status = 503, body = crate::http::error::ErrorBody, description = "No live prediction source is configured"),
    ))]
pub async fn stream(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let filter = ProductFilter::from_query(query.as_deref())?;
    require_source(state.feed())?;
    let events = events(state.feed().subscribe(), filter);
    let keep_alive = KeepAlive::new().interval(state.limits().stream_keep_alive).text("keep-alive");
    let sse = Sse::new(events).keep_alive(keep_alive);
    // Reverse proxies (nginx) would otherwise buffer the stream.
    Ok(([(HeaderName::from_static("x-accel-buffering"), "no")], sse).into_response())
}

/// The SSE events of one subscription; ends when the feed closes (server shutdown).
fn events(subscription: Subscription, filter: ProductFilter) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((subscription, filter), |(mut subscription, filter)| async move {
        loop {
            let event = match subscription.next().await? {
                Delivery::Prediction(prediction) if filter.matches(&prediction.product_id) => {
                    match serde_json::to_string(&*prediction) {
                        Ok(json) => Event::default().event(PREDICTION_EVENT).data(json),
                        Err(err) => {
                            tracing::warn!(%err, "cannot serialize a prediction; not streamed");
                            continue;
                        }
                    }
                }
                Delivery::Prediction(_) => continue,
                Delivery::Dropped { missed, total } => Event::default()
                    .event(DROPPED_EVENT)
                    .data(serde_json::json!({ "dropped": missed, "dropped_total": total }).to_string()),
            };
            return Some((Ok(event), (subscription, filter)));
        }
    })
}

/// `{"predictions": [...]}`, one per product, in product order.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestPredictions {
    pub predictions: Vec<Prediction>,
}

/// The latest prediction of each product (of the products asked for).
#[utoipa::path(get, path = "/predictions/latest", tag = "predictions",
    params(("product_id" = Option<Vec<String>>, Query, explode = true,
        description = "Only these products (repeatable, or comma-separated). Default: every product seen.")),
    responses(
        (status = 200, body = LatestPredictions),
        (status = 404, body = crate::http::error::ErrorBody, description = "No prediction yet for a product asked for"),
        (status = 422, body = crate::http::error::ErrorBody, description = "Invalid product id or unknown query parameter"),
        (status = 503, body = crate::http::error::ErrorBody, description = "No live prediction source is configured"),
    ))]
pub async fn latest(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<LatestPredictions>, ApiError> {
    let filter = ProductFilter::from_query(query.as_deref())?;
    let feed = state.feed();
    require_source(feed)?;
    let predictions = match filter.products() {
        None => feed.latest(),
        Some(products) => {
            let mut found = Vec::with_capacity(products.len());
            for product in products {
                match feed.latest_of(product) {
                    Some(prediction) => found.push(prediction),
                    None => return Err(unknown_product(feed, product)),
                }
            }
            found
        }
    };
    Ok(Json(LatestPredictions { predictions: predictions.iter().map(|p| (**p).clone()).collect() }))
}

/// 404 for a product asked for without a prediction, naming the products that have one.
pub(super) fn unknown_product(feed: &PredictionFeed, product: &str) -> ApiError {
    let known: Vec<String> = feed.latest().iter().map(|p| p.product_id.clone()).collect();
    let known = if known.is_empty() { "none yet".to_string() } else { known.join(", ") };
    ApiError::NotFound {
        field: "product_id",
        reason: format!("no prediction for {product} (products with predictions: {known})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn products(query: &str) -> Option<Vec<String>> {
        ProductFilter::from_query(Some(query)).unwrap().products().map(|p| p.iter().cloned().collect())
    }

    #[test]
    fn product_ids_repeat_and_split_on_commas() {
        assert_eq!(products(""), None);
        assert_eq!(products("product_id=BTC-USD"), Some(vec!["BTC-USD".into()]));
        assert_eq!(
            products("product_id=ETH-USD,BTC-USD&product_id=SOL-USD&product_id=BTC-USD"),
            Some(vec!["BTC-USD".into(), "ETH-USD".into(), "SOL-USD".into()])
        );
        let filter = ProductFilter::from_query(Some("product_id=BTC-USD")).unwrap();
        assert!(filter.matches("BTC-USD") && !filter.matches("ETH-USD"));
        assert!(ProductFilter::from_query(None).unwrap().matches("anything"));
    }

    #[test]
    fn bad_filters_name_the_parameter_and_the_reason() {
        let cases = [
            ("product=BTC-USD", "product", "unknown query parameter"),
            ("product_id=", "product_id", "must not be empty"),
            ("product_id=BTC-USD,", "product_id", "must not be empty"),
            ("product_id=BTC%20USD", "product_id", "only letters, digits and '-'"),
        ];
        for (query, field, reason) in cases {
            let err = ProductFilter::from_query(Some(query)).unwrap_err();
            assert_eq!(err.field().as_deref(), Some(field), "{query}");
            assert!(err.reason().contains(reason), "{query}: {err}");
            assert!(err.status().is_client_error());
        }
        let many = (0..=MAX_FILTER_PRODUCTS).map(|i| format!("P{i}")).collect::<Vec<_>>().join(",");
        let err = ProductFilter::from_query(Some(&format!("product_id={many}"))).unwrap_err();
        assert!(err.reason().contains("exceed the limit"), "{err}");
    }
}
