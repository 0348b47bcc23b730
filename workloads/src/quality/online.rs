//! Online evaluation with the training label (version 2, docs/features.md "Label"): every
//! second `s` of a product's stream is judged, with the last prediction at or before it (as the
//! offline evaluation scores one row per second), once the stream has passed `s + 60 s`. Its
//! truth is the realized variance of one-second mid returns over `(s, s + 60]` on the same grid
//! as the label; the outcome is positive when that is at or above the 90th percentile of the
//! product's values over the trailing `reference` period (24 h): "among the most volatile 10 %
//! of minutes", online.
//!
//! As offline, a second is judged only when it lies at least 60 s after the start of its
//! segment and its window is complete: a silence longer than `max_gap` ends the segment and
//! drops the seconds it cuts. Per product and model variant, the outcomes of the last `window`
//! give the alerts' precision and recall, the Brier score of the probabilities, the rates of
//! positives and alerts, and how many seconds were judged.

use std::collections::{HashMap, VecDeque};

use crate::domain::{ModelVariant, Prediction};
use crate::features::grid::grid_second;
use crate::features::window::log_return;

const NANOS_PER_SEC: i64 = 1_000_000_000;
/// The label horizon.
pub const HORIZON_SECS: i64 = 60;
/// The share of a product's recent realized values below the positive cut.
const POSITIVE_QUANTILE: f64 = 0.9;
/// Judged seconds needed before outcomes are labelled at all (two minutes of history).
const MIN_REFERENCE_VALUES: usize = 120;

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
            reference_nanos: 24 * 3600 * NANOS_PER_SEC,
            window_nanos: 3600 * NANOS_PER_SEC,
        }
    }
}

/// A judged second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The second `s` (ns since the epoch).
    pub time: i64,
    pub variant: ModelVariant,
    pub probability: f64,
    pub alert: bool,
    /// Realized variance of one-second returns over `(s, s + 60]`.
    pub realized: f64,
    /// `realized` at or above the product's trailing 90th percentile; `None` until the product
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

/// The prediction a second is judged with.
#[derive(Debug, Clone, Copy)]
struct Pending {
    variant: ModelVariant,
    probability: f64,
    alert: bool,
}

/// One product's grid, as far as the judging needs it.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// First grid second of the segment.
    start: i64,
    /// The open second (the latest point's) and its mid so far.
    second: i64,
    mid: f64,
    /// `mid(second − 1)`, once that second belongs to the segment.
    base: Option<f64>,
    /// Time of the latest point.
    time: i64,
}

#[derive(Debug, Default)]
struct Product {
    open: Option<Open>,
    /// The latest prediction (it judges every second from its own on, until the next).
    latest: Option<Pending>,
    /// Closed seconds' squared returns `(u, r(u)²)`, from the oldest waiting second on.
    returns: VecDeque<(i64, f64)>,
    /// Seconds waiting for their window to close, in order.
    waiting: VecDeque<(i64, Pending)>,
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
    /// in order) and returns the seconds it resolved.
    pub fn observe_point(&mut self, product: &str, time: i64, mid: f64) -> Vec<Outcome> {
        let config = self.config;
        let state = self.products.entry(product.to_string()).or_default();
        let second = grid_second(time);
        match state.open {
            Some(open) if time - open.time > config.max_gap_nanos => {
                // A new segment: seconds whose window the silence cuts are never judged.
                state.waiting.clear();
                state.returns.clear();
                state.latest = None;
                state.open = Some(Open { start: second, second, mid, base: None, time });
            }
            None => state.open = Some(Open { start: second, second, mid, base: None, time }),
            Some(open) if second == open.second => state.open = Some(Open { mid, time: time.max(open.time), ..open }),
            Some(open) => {
                state.close_seconds(open, second);
                state.open = Some(Open { second, mid, base: Some(open.mid), time: time.max(open.time), ..open });
            }
        }
        let resolved = state.resolve();
        state.expire(time, &config);
        resolved
    }

    /// Records a prediction made on `product`'s features at its event time: it judges the
    /// seconds from its own on, until the next prediction.
    pub fn observe_prediction(&mut self, prediction: &Prediction) {
        let state = self.products.entry(prediction.product_id.clone()).or_default();
        state.latest = Some(Pending {
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

    /// Seconds still waiting for their horizon (all products).
    pub fn pending(&self) -> usize {
        self.products.values().map(|p| p.waiting.len()).sum()
    }
}

impl Product {
    /// The seconds from the open one to `next − 1` are final: store their returns, and queue
    /// each one that is judged (a minute into the segment, with a prediction at or before it).
    fn close_seconds(&mut self, open: Open, next: i64) {
        for u in open.second..next {
            let r = match (u == open.second, open.base) {
                (true, Some(base)) => log_return(open.mid, base),
                // Later seconds repeat the open second's mid; the segment's first has no return.
                _ => 0.0,
            };
            if u > open.start {
                self.returns.push_back((u, r * r));
            }
            if u >= open.start + HORIZON_SECS
                && let Some(latest) = self.latest
            {
                self.waiting.push_back((u, latest));
            }
        }
    }

    /// Judges every waiting second whose window `(s, s + 60]` has closed.
    fn resolve(&mut self) -> Vec<Outcome> {
        let Some(last_closed) = self.returns.back().map(|&(u, _)| u) else { return Vec::new() };
        let mut resolved = Vec::new();
        while let Some(&(s, p)) = self.waiting.front() {
            if s + HORIZON_SECS > last_closed {
                break;
            }
            self.waiting.pop_front();
            while self.returns.front().is_some_and(|&(u, _)| u <= s) {
                self.returns.pop_front();
            }
            let realized = self.returns.iter().take_while(|&&(u, _)| u <= s + HORIZON_SECS).map(|&(_, sq)| sq).sum();
            resolved.push(self.label(s * NANOS_PER_SEC, p, realized));
        }
        let keep_from = self.waiting.front().map_or(last_closed, |&(s, _)| s);
        while self.returns.front().is_some_and(|&(u, _)| u <= keep_from.min(last_closed - HORIZON_SECS)) {
            self.returns.pop_front();
        }
        resolved
    }

    fn label(&mut self, time: i64, p: Pending, realized: f64) -> Outcome {
        let positive = self.positive(realized);
        self.reference.push_back((time, realized));
        self.stale += 1;
        let outcome =
            Outcome { time, variant: p.variant, probability: p.probability, alert: p.alert, realized, positive };
        if let Some(positive) = positive {
            self.quality.entry(p.variant).or_default().add(&outcome, positive, 1);
            self.outcomes.push_back((outcome, positive));
        }
        outcome
    }

    /// Whether `realized` is at or above the trailing 90th percentile (recomputed after every
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
    fn a_second_is_judged_once_its_minute_has_passed() {
        let mut e = OnlineEvaluator::default();
        // One point per second from 0 to 200 s; the mid moves at 100.5 s and 130.2 s.
        let mid_at = |t: f64| {
            if t < 100.5 {
                100.0
            } else if t < 130.2 {
                101.0
            } else {
                100.0
            }
        };
        let mut times: Vec<f64> = (0..=200).map(f64::from).collect();
        times.extend([100.5, 130.2]);
        times.sort_by(f64::total_cmp);
        let mut resolved = vec![];
        for t in times {
            let ns = (t * S as f64) as i64;
            resolved.extend(e.observe_point("BTC-USD", ns, mid_at(t)));
            e.observe_prediction(&prediction("BTC-USD", ns, 0.9, true));
        }
        // Seconds 60.. are judged (a minute into the segment), each once its window closed.
        let seconds: Vec<i64> = resolved.iter().map(|o| o.time / S).collect();
        assert_eq!(seconds.first(), Some(&60));
        assert_eq!(seconds, (60..=139).collect::<Vec<_>>());
        let r1 = (101.0f64 / 100.0).ln();
        let r2 = (100.0f64 / 101.0).ln();
        let at = |s: i64| resolved.iter().find(|o| o.time == s * S).unwrap().realized;
        assert!((at(70) - r1 * r1).abs() < 1e-15, "(70, 130] holds second 101");
        assert!((at(71) - (r1 * r1 + r2 * r2)).abs() < 1e-15, "(71, 131] holds 101 and 131");
        assert_eq!(at(131), 0.0);
        assert!(resolved.iter().all(|o| o.positive.is_none()), "not enough history to call it");
    }

    #[test]
    fn a_silence_drops_the_seconds_it_cuts() {
        let mut e = OnlineEvaluator::default();
        for i in 0..100 {
            e.observe_point("ETH-USD", i * S, 10.0);
            e.observe_prediction(&prediction("ETH-USD", i * S, 0.1, false));
        }
        assert!(e.pending() > 0);
        assert!(e.observe_point("ETH-USD", 145 * S, 10.0).is_empty(), "a 46 s silence: a new segment");
        assert_eq!(e.pending(), 0);
    }

    #[test]
    fn outcomes_are_judged_against_the_products_recent_top_decile() {
        let mut e = OnlineEvaluator::default();
        // Alternating mids with bursts; one prediction per second, alert on every tenth.
        let mut outcomes = vec![];
        for i in 0..2000i64 {
            let step = if (i / 40) % 7 == 0 { 0.05 } else { 0.01 * (1 + (i / 7) % 5) as f64 };
            let mid = if i % 2 == 0 { 100.0 } else { 100.0 + step };
            outcomes.extend(e.observe_point("BTC-USD", i * S, mid));
            e.observe_prediction(&prediction("BTC-USD", i * S, if i % 10 == 0 { 0.8 } else { 0.1 }, i % 10 == 0));
        }
        let labelled: Vec<&Outcome> = outcomes.iter().filter(|o| o.positive.is_some()).collect();
        assert!(labelled.len() > 1000, "{}", labelled.len());
        let positives = labelled.iter().filter(|o| o.positive == Some(true)).count() as f64;
        let share = positives / labelled.len() as f64;
        assert!((0.05..=0.3).contains(&share), "about a tenth are positive: {share}");
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
    fn quiet_seconds_are_judged_with_the_last_prediction() {
        let mut e = OnlineEvaluator::default();
        let mut resolved = vec![];
        // A point every 10 s: nine seconds out of ten have no point and no prediction of their own.
        for i in 0..40i64 {
            resolved.extend(e.observe_point("SOL-USD", i * 10 * S, 100.0 + (i % 2) as f64));
            e.observe_prediction(&prediction("SOL-USD", i * 10 * S, i as f64 / 100.0, false));
        }
        let at = |s: i64| resolved.iter().find(|o| o.time == s * S).unwrap();
        assert_eq!(at(60).probability, 0.06, "second 60: the prediction made at 60 s");
        assert_eq!(at(69).probability, 0.06, "second 69: still the one made at 60 s");
        assert_eq!(at(70).probability, 0.07);
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
        // At 999 s the last closed second is 998: judged seconds reach 938; the window keeps
        // those within 120 s of 999 s: 879..=938.
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
