//! When a stream of predictions raises an alert: a product's probability at or above that
//! product's own trailing-hour 90th percentile, so that about a tenth of every product's seconds
//! alert whatever its level of activity (a fixed threshold chosen on the training days alerts on
//! nearly every second of a busy day and on none of a quiet one).
//!
//! A threshold set in the configuration (`model.threshold`) replaces this: it is the user's.
//!
//! The percentile is taken over one probability per second (the last of each second, as the
//! evaluation scores one row per second), and only once five minutes of them exist: before, the
//! model's own threshold decides. A change of model (a rollback, a reload) starts the product's
//! history again, since another model's probabilities are on another scale.

use std::collections::{HashMap, VecDeque};

use super::ModelInfo;

/// The share of a product's recent seconds that alert.
pub const ALERT_RATE: f64 = 0.1;
/// How far back the percentile looks, in seconds.
pub const WINDOW_SECS: i64 = 3600;
/// Seconds of history before the percentile replaces the model's threshold.
pub const MIN_SECONDS: usize = 300;

#[derive(Debug, Default)]
struct ProductAlerts {
    /// Whose probabilities these are (variant and version).
    model: Option<(String, String)>,
    /// The last probability of each second, oldest first.
    seconds: VecDeque<(i64, f64)>,
    /// The percentile of the closed seconds, once there are enough.
    cut: Option<f64>,
}

/// Per-product trailing thresholds.
#[derive(Debug, Default)]
pub struct TrailingAlerts {
    products: HashMap<String, ProductAlerts>,
}

impl TrailingAlerts {
    /// The threshold for `product`'s prediction at `second` (seconds since the epoch) with
    /// `probability`, recording it; the model's own threshold until five minutes of history exist.
    pub fn threshold(&mut self, product: &str, second: i64, probability: f64, model: &ModelInfo) -> f64 {
        let state = match self.products.get_mut(product) {
            Some(state) => state,
            None => self.products.entry(product.to_string()).or_default(),
        };
        let key = (model.variant.as_str().to_string(), model.version.clone());
        if state.model.as_ref() != Some(&key) {
            *state = ProductAlerts { model: Some(key), ..ProductAlerts::default() };
        }
        match state.seconds.back_mut() {
            Some((last, p)) if *last == second => *p = probability,
            // A tolerated late vector belongs to the latest second.
            Some((last, p)) if *last > second => *p = probability,
            _ => {
                // A new second: the closed ones set the cut.
                while state.seconds.front().is_some_and(|(s, _)| *s <= second - WINDOW_SECS) {
                    state.seconds.pop_front();
                }
                state.cut = (state.seconds.len() >= MIN_SECONDS).then(|| quantile(&state.seconds, 1.0 - ALERT_RATE));
                state.seconds.push_back((second, probability));
            }
        }
        state.cut.unwrap_or(model.threshold)
    }
}

/// The `q` quantile (lower) of the probabilities.
fn quantile(seconds: &VecDeque<(i64, f64)>, q: f64) -> f64 {
    let mut values: Vec<f64> = seconds.iter().map(|(_, p)| *p).collect();
    let k = ((values.len() - 1) as f64 * q).floor() as usize;
    let (_, value, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    *value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ModelVariant;

    fn info(version: &str) -> ModelInfo {
        ModelInfo { name: "m".into(), version: version.into(), variant: ModelVariant::Ml, threshold: 0.42 }
    }

    #[test]
    fn a_tenth_of_the_seconds_alert_at_any_level_once_five_minutes_are_known() {
        let mut alerts = TrailingAlerts::default();
        let model = info("1");
        // A quiet product: probabilities 0.010..0.020, all under the model's threshold.
        let mut alerted = 0;
        for s in 0..3000i64 {
            let p = 0.01 + (s * 7919 % 1000) as f64 / 100_000.0;
            let threshold = alerts.threshold("SOL-USD", s, p, &model);
            if s < MIN_SECONDS as i64 {
                assert_eq!(threshold, 0.42, "the model's threshold before five minutes of history");
            } else if p >= threshold {
                alerted += 1;
            }
        }
        let rate = alerted as f64 / (3000 - MIN_SECONDS) as f64;
        assert!((0.08..=0.12).contains(&rate), "{rate}");
    }

    #[test]
    fn products_and_models_keep_separate_histories() {
        let mut alerts = TrailingAlerts::default();
        for s in 0..400 {
            alerts.threshold("BTC-USD", s, 0.9, &info("1"));
        }
        assert_eq!(alerts.threshold("BTC-USD", 400, 0.9, &info("1")), 0.9);
        assert_eq!(alerts.threshold("ETH-USD", 400, 0.9, &info("1")), 0.42, "another product starts empty");
        assert_eq!(alerts.threshold("BTC-USD", 401, 0.9, &info("2")), 0.42, "another model starts again");
    }

    #[test]
    fn several_predictions_of_one_second_count_once_with_the_last() {
        let mut alerts = TrailingAlerts::default();
        for s in 0..400 {
            for k in 0..5 {
                alerts.threshold("BTC-USD", s, if k == 4 { 0.5 } else { 0.99 }, &info("1"));
            }
        }
        assert_eq!(alerts.threshold("BTC-USD", 400, 0.5, &info("1")), 0.5);
    }
}
