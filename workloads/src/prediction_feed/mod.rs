//! The prediction feed of the API, for people watching (the live page and stream clients; not
//! to be confused with the exchange's live market feed, `crate::sources`): the
//! [`PredictionFeed`] that `/predictions/stream`, `/predictions/latest` and
//! `/predictions/quality` read, and where it is filled from.
//!
//! - `spikewatch run --serve`: the predict stage of the in-process pipeline publishes into it
//!   ([`crate::pipeline::local`]).
//! - `spikewatch serve` with `api.predictions_from_kafka`: [`kafka::PredictionTail`] reads the
//!   predictions topic into it.

pub mod feed;
pub mod judge;
pub mod kafka;

pub use feed::{Delivery, FeedMetrics, PredictionFeed, Subscription};
pub use judge::{FeedJudge, JudgedQuality, Unjudged, UnjudgedCounts};

/// Longest product id accepted (Coinbase's are like `BTC-USD`, well under this).
pub const MAX_PRODUCT_ID_LEN: usize = 64;

/// Checks that `id` looks like a product id: 1 to 64 ASCII letters, digits or `-`.
///
/// Shared by the query filter of the API and the Kafka reader, so that a garbage id neither
/// reaches a client nor takes a slot in the per-product memory.
pub fn check_product_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_PRODUCT_ID_LEN {
        return Err(format!("must be at most {MAX_PRODUCT_ID_LEN} characters (got {})", id.len()));
    }
    if let Some(bad) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
        return Err(format!("{id:?} contains {bad:?}: only letters, digits and '-' are allowed"));
    }
    Ok(())
}

/// A prediction of `product` at `event_time` for the feed's tests (model `m` version 1, `ml`,
/// alerting from 0.5).
#[cfg(test)]
fn test_prediction(
    product: &str,
    event_time: chrono::DateTime<chrono::Utc>,
    midprice: Option<f64>,
    probability: f64,
) -> crate::domain::Prediction {
    crate::domain::Prediction {
        schema: crate::domain::PREDICTION_SCHEMA,
        product_id: product.into(),
        event_time,
        probability,
        prediction: u8::from(probability >= 0.5),
        threshold: 0.5,
        model_name: "m".into(),
        model_version: "1".into(),
        model_variant: crate::domain::ModelVariant::Ml,
        processing_latency_seconds: 0.0,
        midprice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_ids_are_letters_digits_and_dashes() {
        for good in ["BTC-USD", "eth-usd", "1INCH-USD"] {
            assert_eq!(check_product_id(good), Ok(()), "{good}");
        }
        assert!(check_product_id("").unwrap_err().contains("empty"));
        assert!(check_product_id("BTC USD").unwrap_err().contains("' '"));
        assert!(check_product_id("BTC-USD<script>").is_err());
        assert!(check_product_id(&"A".repeat(65)).unwrap_err().contains("at most 64"));
    }
}
