//! Online evaluation: the truth of a prediction is known 60 s later, from the same feature
//! stream. Each prediction waits until its product's stream has passed `t + 60 s`; its realized
//! volatility over `(t, t + 60 s]` is then computed exactly as the training label's
//! (`features::label`: sample std of the log mid returns whose later tick lies in the window),
//! and compared with the product's recent history: the prediction's outcome is positive when
//! the realized volatility is at or above the 90th percentile of the product's realized values
//! over the last `reference` period — the online form of the model's label, "among the day's
//! most volatile 10 % of minutes".
//!
//! Per product and model variant, the outcomes of the last `window` give the alerts' precision
//! and recall, the Brier score of the probabilities, the rates of positives and alerts, and how
//! many were labelled. A silence longer than `max_gap` ends the product's segment, as it resets
//! the feature engine: predictions whose window it cuts are never labelled.

use std::collections::{HashMap, VecDeque};

use crate::domain::{ModelVariant, Prediction};
use crate::features::label::PrefixMoments;

const NANOS_PER_SEC: i64 = 1_000_000_000;
/// The label horizon.
pub const HORIZON_SECS: i64 = 60;
/// The share of a product's recent realized values below the positive cut.
const POSITIVE_QUANTILE: f64 = 0.9;
/// Realized values needed before outcomes are labelled at all.
const MIN_REFERENCE_VALUES: usize = 100;

/// The evaluator's periods.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineConfig {
    /// Longest silence inside a segment (the feature engine's `max_gap_secs`).
    pub max_gap_nanos: i64,
    /// Recent realized values the positive cut is computed from.
    pub reference_nanos: i64,
    /// Outcomes the quality numbers cover.
    pub window_nanos: i64,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        OnlineConfig {
            max_gap_nanos: 30 * NANOS_PER_SEC,
            reference_nanos: 3600 * NANOS_PER_SEC,
            window_nanos: 3600 * NANOS_PER_SEC,
        }
    }
}

/// A prediction whose truth is now known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Event time of the features the prediction was made on.
    pub time: i64,
    pub variant: ModelVariant,
    pub probability: f64,
    pub alert: bool,
    /// Realized volatility over `(t, t + 60 s]`.
    pub realized: f64,
    /// `realized` at or above the product's recent 90th percentile; `None` until the product
    /// has enough history to say.
    pub positive: Option<bool>,
}

/// Quality of one product's predictions of one variant over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quality {
    pub labelled: u64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    pub brier_sum: f64,
}

impl Quality {
    fn add(&mut self, o: &Outcome, positive: bool, sign: i64) {
        let step = |n: &mut u64| *n = n.saturating_add_signed(sign);
        step(&mut self.labelled);
        match (o.alert, positive) {
            (true, true) => step(&mut self.true_positives),
            (true, false) => step(&mut self.false_positives),
            (false, true) => step(&mut self.false_negatives),
            (false, false) => {}
        }
        let y = if positive { 1.0 } else { 0.0 };
        self.brier_sum += sign as f64 * (o.probability - y).powi(2);
        if self.labelled == 0 {
            self.brier_sum = 0.0;
        }
    }

    /// Share of alerts that were positive; `None` without alerts.
    pub fn precision(&self) -> Option<f64> {
        let alerts = self.true_positives + self.false_positives;
        (alerts > 0).then(|| self.true_positives as f64 / alerts as f64)
    }

    /// Share of positives that were alerted; `None` without positives.
    pub fn recall(&self) -> Option<f64> {
        let positives = self.true_positives + self.false_negatives;
        (positives > 0).then(|| self.true_positives as f64 / positives as f64)
    }

    pub fn brier(&self) -> Option<f64> {
        (self.labelled > 0).then(|| self.brier_sum.max(0.0) / self.labelled as f64)
    }

    pub fn positive_rate(&self) -> Option<f64> {
        (self.labelled > 0).then(|| (self.true_positives + self.false_negatives) as f64 / self.labelled as f64)
    }

    pub fn alert_rate(&self) -> Option<f64> {
        (self.labelled > 0).then(|| (self.true_positives + self.false_positives) as f64 / self.labelled as f64)
    }
}

#[derive(Debug, Clone, Copy)]
struct Point {
    time: i64,
    /// Moments of the segment's returns up to and including this point.
    prefix: PrefixMoments,
    mid: f64,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    time: i64,
    variant: ModelVariant,
    probability: f64,
    alert: bool,
}

#[derive(Debug, Default)]
struct Product {
    /// The segment's points from the oldest pending prediction's base on.
    points: VecDeque<Point>,
    /// Waiting for their horizon, in time order.
    pending: VecDeque<Pending>,
    /// Recent realized values (time, value), for the positive cut.
    reference: VecDeque<(i64, f64)>,
    cut: Option<f64>,
    /// Reference values added since `cut` was computed.
    stale: usize,
    /// Labelled outcomes of the window, with the positive they were labelled with.
    outcomes: VecDeque<(Outcome, bool)>,
    quality: HashMap<ModelVariant, Quality>,
}

/// The online evaluator of one predictor process (every product it sees).
#[derive(Debug, Default)]
pub struct OnlineEvaluator {
    config: OnlineConfig,
    products: HashMap<String, Product>,
}

impl OnlineEvaluator {
    pub fn new(config: OnlineConfig) -> OnlineEvaluator {
        OnlineEvaluator { config, products: HashMap::new() }
    }

    /// Records a point of `product`'s stream (every scored feature vector's event time and mid,
    /// in order) and returns the predictions it resolved.
    pub fn observe_point(&mut self, product: &str, time: i64, mid: f64) -> Vec<Outcome> {
        let config = self.config;
        let state = self.products.entry(product.to_string()).or_default();
        let mut resolved = Vec::new();
        let last = state.points.back().copied();
        if let Some(last) = last
            && time - last.time > config.max_gap_nanos
        {
            // A new segment: windows the silence cuts are never complete.
            state.pending.clear();
            state.points.clear();
        }
        let last = state.points.back().copied();
        let mut prefix = last.map_or(PrefixMoments::default(), |p| p.prefix);
        if let Some(last) = last {
            prefix.add(crate::features::window::log_return(mid, last.mid));
        }
        state.points.push_back(Point { time, prefix, mid });

        // A prediction at t is complete once a point lies beyond t + 60 s.
        while let Some(p) = state.pending.front().copied() {
            if time <= p.time + HORIZON_SECS * NANOS_PER_SEC {
                break;
            }
            state.pending.pop_front();
            let realized = realized(&state.points, p.time);
            let outcome = state.label(p, realized);
            resolved.push(outcome);
        }
        state.trim_points();
        state.expire(time, &config);
        resolved
    }

    /// Records a prediction made on `product`'s features at its event time.
    pub fn observe_prediction(&mut self, prediction: &Prediction) {
        let Some(time) = prediction.event_time.timestamp_nanos_opt() else { return };
        let state = self.products.entry(prediction.product_id.clone()).or_default();
        state.pending.push_back(Pending {
            time,
            variant: prediction.model_variant,
            probability: prediction.probability,
            alert: prediction.prediction == 1,
        });
    }

    /// Quality over the window, per product and variant.
    pub fn quality(&self) -> Vec<(String, ModelVariant, Quality)> {
        let mut out: Vec<_> = self
            .products
            .iter()
            .flat_map(|(product, state)| state.quality.iter().map(move |(v, q)| (product.clone(), *v, *q)))
            .collect();
        out.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
        out
    }

    /// Predictions still waiting for their horizon (all products).
    pub fn pending(&self) -> usize {
        self.products.values().map(|p| p.pending.len()).sum()
    }
}

/// Realized volatility of the returns whose later point lies in `(t, t + 60 s]`: the first
/// return starts from the last point at or before `t`.
fn realized(points: &VecDeque<Point>, t: i64) -> f64 {
    let end = t + HORIZON_SECS * NANOS_PER_SEC;
    let base = points.partition_point(|p| p.time <= t);
    let past = points.partition_point(|p| p.time <= end);
    // `base` ≥ 1: the prediction's own point (at t) is kept until it resolves.
    let before = if base > 0 { points[base - 1].prefix } else { PrefixMoments::default() };
    let until = if past > 0 { points[past - 1].prefix } else { before };
    until.minus(&before).std()
}

impl Product {
    fn label(&mut self, p: Pending, realized: f64) -> Outcome {
        let positive = self.positive(realized);
        self.reference.push_back((p.time, realized));
        self.stale += 1;
        let outcome = Outcome {
            time: p.time,
            variant: p.variant,
            probability: p.probability,
            alert: p.alert,
            realized,
            positive,
        };
        if let Some(positive) = positive {
            self.quality.entry(p.variant).or_default().add(&outcome, positive, 1);
            self.outcomes.push_back((outcome, positive));
        }
        outcome
    }

    /// Whether `realized` is at or above the recent 90th percentile (recomputed after every
    /// 1 % of the reference's size, so the cost stays O(1) amortized per outcome).
    fn positive(&mut self, realized: f64) -> Option<bool> {
        if self.reference.len() < MIN_REFERENCE_VALUES {
            return None;
        }
        if self.cut.is_none() || self.stale * 100 >= self.reference.len() {
            let mut values: Vec<f64> = self.reference.iter().map(|(_, v)| *v).collect();
            let k = ((values.len() - 1) as f64 * POSITIVE_QUANTILE).round() as usize;
            let (_, cut, _) = values.select_nth_unstable_by(k, f64::total_cmp);
            self.cut = Some(*cut);
            self.stale = 0;
        }
        self.cut.map(|cut| realized >= cut)
    }

    /// Points before the base of the oldest pending prediction are no longer needed.
    fn trim_points(&mut self) {
        let keep_from = match self.pending.front() {
            // The base of a window at t is the last point at or before t.
            Some(p) => self.points.partition_point(|q| q.time <= p.time).saturating_sub(1),
            // Nothing pending: only the newest point (the next return's base).
            None => self.points.len().saturating_sub(1),
        };
        self.points.drain(..keep_from);
    }

    fn expire(&mut self, now: i64, config: &OnlineConfig) {
        while self.reference.front().is_some_and(|(t, _)| now - t > config.reference_nanos) {
            self.reference.pop_front();
        }
        while let Some((o, positive)) = self.outcomes.front().copied() {
            if now - o.time <= config.window_nanos {
                break;
            }
            self.outcomes.pop_front();
            if let Some(q) = self.quality.get_mut(&o.variant) {
                q.add(&o, positive, -1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    const S: i64 = NANOS_PER_SEC;

    fn prediction(product: &str, time: i64, probability: f64, alert: bool) -> Prediction {
        Prediction {
            schema: 1,
            product_id: product.into(),
            event_time: DateTime::<Utc>::from_timestamp_nanos(time),
            probability,
            prediction: u8::from(alert),
            threshold: 0.5,
            model_name: "m".into(),
            model_version: "1".into(),
            model_variant: ModelVariant::Ml,
            processing_latency_seconds: 0.0,
            midprice: None,
        }
    }

    #[test]
    fn a_prediction_resolves_once_its_product_passes_the_horizon() {
        let mut e = OnlineEvaluator::default();
        let mids = [100.0, 101.0, 100.0, 102.0, 101.0];
        e.observe_point("BTC-USD", 0, mids[0]);
        e.observe_prediction(&prediction("BTC-USD", 0, 0.9, true));
        let mut resolved = vec![];
        for (i, mid) in mids.iter().enumerate().skip(1) {
            resolved.extend(e.observe_point("BTC-USD", i as i64 * 20 * S, *mid));
        }
        // Points at 20, 40, 60 s are in (0, 60]; the point at 80 s completes the window.
        assert_eq!(resolved.len(), 1);
        let r: Vec<f64> = mids[..4].windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let mean = r.iter().sum::<f64>() / 3.0;
        let std = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((resolved[0].realized - std).abs() < 1e-15, "{} vs {std}", resolved[0].realized);
        assert_eq!(resolved[0].positive, None, "not enough history to call it");
        assert_eq!(e.pending(), 0);
    }

    #[test]
    fn a_silence_drops_the_windows_it_cuts() {
        let mut e = OnlineEvaluator::default();
        e.observe_point("ETH-USD", 0, 10.0);
        e.observe_prediction(&prediction("ETH-USD", 0, 0.1, false));
        assert!(e.observe_point("ETH-USD", 45 * S, 10.0).is_empty(), "a 45 s silence: a new segment");
        assert_eq!(e.pending(), 0);
    }

    #[test]
    fn outcomes_are_judged_against_the_products_recent_top_decile() {
        let mut e = OnlineEvaluator::default();
        // A steady market: alternating mids, one prediction per second, alert on every tenth.
        let mut outcomes = vec![];
        for i in 0..600i64 {
            let mid = if i % 2 == 0 { 100.0 } else { 100.0 + 0.01 * (1 + (i / 7) % 5) as f64 };
            outcomes.extend(e.observe_point("BTC-USD", i * S, mid));
            e.observe_prediction(&prediction("BTC-USD", i * S, if i % 10 == 0 { 0.8 } else { 0.1 }, i % 10 == 0));
        }
        let labelled: Vec<&Outcome> = outcomes.iter().filter(|o| o.positive.is_some()).collect();
        assert!(labelled.len() > 300, "{}", labelled.len());
        let positives = labelled.iter().filter(|o| o.positive == Some(true)).count() as f64;
        let share = positives / labelled.len() as f64;
        assert!((0.05..=0.2).contains(&share), "about a tenth are positive: {share}");
        let quality = e.quality();
        assert_eq!(quality.len(), 1);
        let (product, variant, q) = &quality[0];
        assert_eq!((product.as_str(), *variant), ("BTC-USD", ModelVariant::Ml));
        assert_eq!(q.labelled as usize, labelled.len());
        let alert_rate = q.alert_rate().unwrap();
        assert!((alert_rate - 0.1).abs() < 0.02, "{alert_rate}");
        assert!(q.precision().is_some() && q.recall().is_some() && q.brier().unwrap() > 0.0);
    }

    #[test]
    fn the_window_forgets_old_outcomes() {
        let config = OnlineConfig { window_nanos: 120 * S, ..OnlineConfig::default() };
        let mut e = OnlineEvaluator::new(config);
        let mut outcomes = vec![];
        for i in 0..1000i64 {
            let mid = 100.0 + ((i * 37) % 11) as f64 * 0.01;
            outcomes.extend(e.observe_point("BTC-USD", i * S, mid));
            e.observe_prediction(&prediction("BTC-USD", i * S, 0.5, i % 3 == 0));
        }
        let (_, _, q) = e.quality()[0];
        // At 999 s, the window holds the outcomes of 879..=938 s: later ones await their horizon.
        assert_eq!(q.labelled, 60);
        let recent: Vec<&Outcome> = outcomes.iter().filter(|o| o.time >= 879 * S).collect();
        assert_eq!(recent.len(), 60);
        let count = |alert: bool, positive: bool| {
            recent.iter().filter(|o| o.alert == alert && o.positive == Some(positive)).count() as u64
        };
        assert_eq!(
            (q.true_positives, q.false_positives, q.false_negatives),
            (count(true, true), count(true, false), count(false, true))
        );
        assert!((q.brier().unwrap() - 0.25).abs() < 1e-9, "p = 0.5 scores 0.25 whatever the outcome");
    }
}
