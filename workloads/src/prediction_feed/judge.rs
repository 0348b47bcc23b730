//! The online quality of the predictions a feed carries, judged where they are served.
//!
//! The predictor judges its own predictions ([`crate::pipeline::predict`]), but its numbers live
//! in its process: in cluster mode the API is another process, fed from Kafka. Rather than ship
//! the numbers across, the API judges what it receives with the same [`OnlineEvaluator`]: a
//! prediction carries the mid price of its features, so each one is a point of its product's
//! stream followed by itself, exactly the order the predictor feeds its evaluator. The same
//! code and the same input give the same numbers in `run --serve` and in cluster mode.
//!
//! Input that would corrupt the evaluator's state is refused, and counted by [`Unjudged`]
//! reason: a stream must not go back in time (the evaluator's windows assume ordered points),
//! and a mid price must be a positive number for its log returns to mean anything.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::feed::MAX_PRODUCTS;
use crate::domain::{ModelVariant, Prediction};
use crate::quality::{OnlineConfig, OnlineEvaluator, Quality};

/// Why a prediction was streamed but not judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unjudged {
    /// It carries no `midprice` (written by a predictor older than the field).
    NoMidprice,
    /// A mid price that is not a positive number, a probability outside [0, 1], or an event
    /// time beyond what nanoseconds since 1970 hold.
    Invalid,
    /// Its event time is before its product's latest judged one.
    OutOfOrder,
    /// Its product would exceed [`MAX_PRODUCTS`] judged products.
    TooManyProducts,
}

impl Unjudged {
    pub const ALL: [Unjudged; 4] =
        [Unjudged::NoMidprice, Unjudged::Invalid, Unjudged::OutOfOrder, Unjudged::TooManyProducts];

    /// The `reason` label of `volatility_api_feed_unjudged_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unjudged::NoMidprice => "no_midprice",
            Unjudged::Invalid => "invalid",
            Unjudged::OutOfOrder => "out_of_order",
            Unjudged::TooManyProducts => "too_many_products",
        }
    }
}

/// Predictions received but not judged since the process started, by reason (all products).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct UnjudgedCounts {
    /// Without a `midprice`.
    pub no_midprice: u64,
    /// A mid price that is not a positive number, a probability outside [0, 1], or an event time
    /// out of range.
    pub invalid: u64,
    /// Event time before the product's latest judged prediction.
    pub out_of_order: u64,
    /// Beyond the bound on products judged (1024).
    pub too_many_products: u64,
}

impl UnjudgedCounts {
    fn count(&mut self, reason: Unjudged) {
        let n = match reason {
            Unjudged::NoMidprice => &mut self.no_midprice,
            Unjudged::Invalid => &mut self.invalid,
            Unjudged::OutOfOrder => &mut self.out_of_order,
            Unjudged::TooManyProducts => &mut self.too_many_products,
        };
        *n += 1;
    }
}

/// One product's and variant's quality over the window ending at its stream's latest point.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedQuality {
    pub product_id: String,
    pub variant: ModelVariant,
    pub quality: Quality,
    /// Event time (ns since 1970) of the product's latest point: the window's end.
    pub stream_time: i64,
}

/// The evaluator behind a feed, with the checks that keep its input well-formed.
#[derive(Debug)]
pub struct FeedJudge {
    config: OnlineConfig,
    evaluator: OnlineEvaluator,
    /// Event time of each judged product's latest point.
    stream_times: HashMap<String, i64>,
    unjudged: UnjudgedCounts,
}

impl Default for FeedJudge {
    fn default() -> Self {
        FeedJudge::new(OnlineConfig::default())
    }
}

impl FeedJudge {
    pub fn new(config: OnlineConfig) -> FeedJudge {
        FeedJudge {
            config,
            evaluator: OnlineEvaluator::new(config),
            stream_times: HashMap::new(),
            unjudged: UnjudgedCounts::default(),
        }
    }

    /// The evaluator's periods (the window the numbers cover).
    pub fn config(&self) -> &OnlineConfig {
        &self.config
    }

    /// Adds `prediction`'s point to its product's stream, then the prediction itself; O(1)
    /// amortized (the evaluator's cost). Refused input is counted and leaves no trace.
    pub fn observe(&mut self, prediction: &Prediction) -> Result<(), Unjudged> {
        let verdict = self.check(prediction);
        match verdict {
            Ok((time, mid)) => {
                self.evaluator.observe_point(&prediction.product_id, time, mid);
                self.evaluator.observe_prediction(prediction);
                match self.stream_times.get_mut(&prediction.product_id) {
                    Some(latest) => *latest = time,
                    None => {
                        self.stream_times.insert(prediction.product_id.clone(), time);
                    }
                }
                Ok(())
            }
            Err(reason) => {
                self.unjudged.count(reason);
                Err(reason)
            }
        }
    }

    /// The event time and mid price of a prediction the evaluator can take.
    fn check(&self, prediction: &Prediction) -> Result<(i64, f64), Unjudged> {
        let mid = prediction.midprice.ok_or(Unjudged::NoMidprice)?;
        if !(mid.is_finite() && mid > 0.0 && (0.0..=1.0).contains(&prediction.probability)) {
            return Err(Unjudged::Invalid);
        }
        let time = prediction.event_time.timestamp_nanos_opt().ok_or(Unjudged::Invalid)?;
        match self.stream_times.get(&prediction.product_id) {
            Some(latest) if time < *latest => Err(Unjudged::OutOfOrder),
            Some(_) => Ok((time, mid)),
            None if self.stream_times.len() >= MAX_PRODUCTS => Err(Unjudged::TooManyProducts),
            None => Ok((time, mid)),
        }
    }

    /// Quality per product (those `wanted`) and variant, in product then variant order. Only
    /// pairs with a judged prediction since the process started are listed.
    pub fn quality(&self, wanted: impl Fn(&str) -> bool) -> Vec<JudgedQuality> {
        self.evaluator
            .quality()
            .into_iter()
            .filter(|(product, _, _)| wanted(product))
            .map(|(product_id, variant, quality)| {
                let stream_time = self.stream_times.get(&product_id).copied().unwrap_or_default();
                JudgedQuality { product_id, variant, quality, stream_time }
            })
            .collect()
    }

    pub fn unjudged(&self) -> UnjudgedCounts {
        self.unjudged
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    const S: i64 = 1_000_000_000;

    fn prediction(product: &str, time: i64, mid: Option<f64>, probability: f64) -> Prediction {
        super::super::test_prediction(product, DateTime::<Utc>::from_timestamp_nanos(time), mid, probability)
    }

    /// A jittery market, one prediction a second, an alert every seventh.
    fn market(product: &str, seconds: i64) -> Vec<Prediction> {
        (0..seconds)
            .map(|i| {
                let mid = 100.0 + ((i * 37) % 11) as f64 * 0.01 + ((i * 13) % 7) as f64 * 0.003;
                prediction(product, i * S, Some(mid), if i % 7 == 0 { 0.8 } else { ((i % 5) as f64) / 10.0 })
            })
            .collect()
    }

    #[test]
    fn judges_as_an_evaluator_fed_point_then_prediction() {
        let mut judge = FeedJudge::default();
        let mut direct = OnlineEvaluator::default();
        for p in market("BTC-USD", 1000) {
            judge.observe(&p).unwrap();
            direct.observe_point(&p.product_id, p.event_time.timestamp_nanos_opt().unwrap(), p.midprice.unwrap());
            direct.observe_prediction(&p);
        }
        let judged = judge.quality(|_| true);
        let expected = direct.quality();
        assert_eq!(judged.len(), 1);
        assert_eq!(
            (&judged[0].product_id, judged[0].variant, judged[0].quality),
            (&expected[0].0, expected[0].1, expected[0].2)
        );
        // Seconds 60..=938 are judged; the first two minutes of them build the reference.
        assert_eq!(judged[0].quality.labelled, 939 - 60 - 120, "{:?}", judged[0].quality);
        assert_eq!(judged[0].stream_time, 999 * S);
        assert!(judge.quality(|p| p == "ETH-USD").is_empty());
    }

    #[test]
    fn input_that_would_corrupt_the_evaluator_is_refused_and_counted() {
        let mut judge = FeedJudge::default();
        judge.observe(&prediction("BTC-USD", 10 * S, Some(100.0), 0.1)).unwrap();
        let refused = [
            (prediction("BTC-USD", 11 * S, None, 0.1), Unjudged::NoMidprice),
            (prediction("BTC-USD", 11 * S, Some(0.0), 0.1), Unjudged::Invalid),
            (prediction("BTC-USD", 11 * S, Some(f64::INFINITY), 0.1), Unjudged::Invalid),
            (prediction("BTC-USD", 11 * S, Some(100.0), 1.5), Unjudged::Invalid),
            (prediction("BTC-USD", 11 * S, Some(100.0), f64::NAN), Unjudged::Invalid),
            (prediction("BTC-USD", 9 * S, Some(100.0), 0.1), Unjudged::OutOfOrder),
        ];
        for (p, reason) in &refused {
            assert_eq!(judge.observe(p), Err(*reason), "{p:?}");
        }
        let mut far = prediction("BTC-USD", 0, Some(100.0), 0.1);
        far.event_time = DateTime::<Utc>::MAX_UTC;
        assert_eq!(judge.observe(&far), Err(Unjudged::Invalid));
        assert_eq!(judge.observe(&prediction("BTC-USD", 10 * S, Some(100.0), 0.1)), Ok(()), "same time is in order");
        assert_eq!(
            judge.unjudged(),
            UnjudgedCounts { no_midprice: 1, invalid: 5, out_of_order: 1, too_many_products: 0 }
        );
    }

    #[test]
    fn products_beyond_the_bound_are_not_judged() {
        let mut judge = FeedJudge::default();
        for i in 0..MAX_PRODUCTS {
            judge.observe(&prediction(&format!("P{i}-USD"), S, Some(1.0), 0.1)).unwrap();
        }
        assert_eq!(judge.observe(&prediction("ONE-MORE", S, Some(1.0), 0.1)), Err(Unjudged::TooManyProducts));
        assert_eq!(judge.observe(&prediction("P0-USD", 2 * S, Some(1.0), 0.1)), Ok(()), "known products still count");
        assert_eq!(judge.unjudged().too_many_products, 1);
    }
}
