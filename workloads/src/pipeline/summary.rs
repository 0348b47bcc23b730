//! The console summary of `spikewatch run`: a live line per interval (rates and each product's
//! latest values) and the final totals.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::local::{Counters, LocalTotals};
use crate::domain::{Feature, FeatureVector, Prediction};
use crate::transport::memory::LinkReceiver;

/// What reaches the end of the local topology.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalEvent {
    /// Boxed: a vector of every feature is several times a prediction's size.
    Features(Box<FeatureVector>),
    Prediction(Prediction),
}

/// Latest values of one product.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProductLast {
    pub price: f64,
    pub return_60s: f64,
    pub volatility: f64,
    pub spread_rel: f64,
    pub probability: Option<f64>,
    /// Predictions made for the product, and how many of them raised an alert (`prediction = 1`).
    pub predictions: u64,
    pub alerts: u64,
}

pub(super) struct Summary<W> {
    out: W,
    counters: Arc<Counters>,
    interval: Duration,
    started: Instant,
    products: BTreeMap<String, ProductLast>,
}

impl<W: Write + Send + 'static> Summary<W> {
    pub(super) fn new(out: W, counters: Arc<Counters>, interval: Duration) -> Summary<W> {
        Summary { out, counters, interval, started: Instant::now(), products: BTreeMap::new() }
    }

    /// Consumes events until the link closes, printing a progress line every interval.
    pub(super) async fn run(mut self, mut events: LinkReceiver<LocalEvent>) -> Summary<W> {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        let mut previous = (0, 0, 0, Instant::now());
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.record(event),
                    None => break,
                },
                _ = ticker.tick() => {
                    let now = Instant::now();
                    let current = (
                        self.counters.ticks.load(Ordering::Relaxed),
                        self.counters.features.load(Ordering::Relaxed),
                        self.counters.predictions.load(Ordering::Relaxed),
                    );
                    let seconds = now.duration_since(previous.3).as_secs_f64().max(1e-9);
                    let progress = Progress {
                        elapsed: self.started.elapsed(),
                        totals: [current.0, current.1, current.2],
                        rates: [
                            (current.0 - previous.0) as f64 / seconds,
                            (current.1 - previous.1) as f64 / seconds,
                            (current.2 - previous.2) as f64 / seconds,
                        ],
                    };
                    let line = progress_line(&progress, &self.products);
                    // A closed stdout (e.g. `| head`) must not stop the pipeline.
                    let _ = writeln!(self.out, "{line}");
                    previous = (current.0, current.1, current.2, now);
                }
            }
        }
        self
    }

    fn record(&mut self, event: LocalEvent) {
        match event {
            LocalEvent::Features(vector) => {
                let last = self.products.entry(vector.product_id).or_default();
                last.price = vector.features[Feature::Price];
                last.return_60s = vector.features[Feature::Return60s];
                last.volatility = vector.features[Feature::Volatility];
                last.spread_rel = vector.features[Feature::SpreadRel];
            }
            LocalEvent::Prediction(prediction) => {
                let last = self.products.entry(prediction.product_id).or_default();
                last.probability = Some(prediction.probability);
                last.predictions += 1;
                last.alerts += u64::from(prediction.prediction);
            }
        }
    }

    /// Prints each product's latest values and the totals line.
    pub(super) fn finish(&mut self, totals: &LocalTotals) -> std::io::Result<()> {
        for (product, last) in &self.products {
            writeln!(self.out, "last {}", product_values(product, last))?;
        }
        for (product, last) in self.products.iter().filter(|(_, last)| last.predictions > 0) {
            writeln!(self.out, "alerts {product}={} predictions={}", last.alerts, last.predictions)?;
        }
        if let Some(fallback) = totals.model.as_ref().and_then(|m| m.fallback.as_ref()) {
            writeln!(self.out, "warning: {fallback}")?;
        }
        writeln!(self.out, "{}", totals_line(totals))?;
        self.out.flush()
    }
}

/// Counts and rates of ticks, feature vectors and predictions at one point of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub elapsed: Duration,
    pub totals: [u64; 3],
    /// Per second since the previous line.
    pub rates: [f64; 3],
}

/// `[   3.0s] ticks=4500 (1520/s) features=4500 (1519/s) predictions=0 (0/s) | BTC-USD price=... ...`
pub fn progress_line(progress: &Progress, products: &BTreeMap<String, ProductLast>) -> String {
    let [ticks, features, predictions] = progress.totals;
    let [tick_rate, feature_rate, prediction_rate] = progress.rates;
    let mut line = format!(
        "[{:>7.1}s] ticks={ticks} ({tick_rate:.0}/s) features={features} ({feature_rate:.0}/s) predictions={predictions} ({prediction_rate:.0}/s)",
        progress.elapsed.as_secs_f64(),
    );
    for (product, last) in products {
        line.push_str(" | ");
        line.push_str(&product_values(product, last));
    }
    line
}

fn product_values(product: &str, last: &ProductLast) -> String {
    let mut values = format!(
        "{product} price={:.2} return_60s={:+.6} volatility={:.6} spread_rel={:.6}",
        last.price, last.return_60s, last.volatility, last.spread_rel
    );
    if let Some(probability) = last.probability {
        values.push_str(&format!(" p_spike={probability:.3}"));
    }
    values
}

/// The last line of a run, `key=value` pairs that scripts and tests parse.
/// `model=` names the variant that answered (`none`: no predictions were made), and
/// `model_fallback=` the reason the baseline answered in place of the ML model, when it did.
pub fn totals_line(totals: &LocalTotals) -> String {
    let mut line = format!(
        "totals: ticks={} features={} rejected={} predictions={} skipped_frames={} malformed_lines={} elapsed_s={:.3} model={}",
        totals.ticks,
        totals.features,
        totals.rejected,
        totals.predictions,
        totals.skipped_frames,
        totals.malformed_lines,
        totals.elapsed.as_secs_f64(),
        totals.model.as_ref().map_or("none", |m| m.variant.as_str()),
    );
    if let Some(fallback) = totals.model.as_ref().and_then(|m| m.fallback.as_ref()) {
        line.push_str(" model_fallback=");
        line.push_str(fallback.reason.as_str());
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ModelVariant;
    use crate::model::{Fallback, FallbackReason};
    use crate::pipeline::local::AnsweringModel;

    #[test]
    fn totals_line_is_key_value_pairs() {
        let totals = LocalTotals {
            ticks: 5996,
            features: 5990,
            rejected: 6,
            predictions: 0,
            skipped_frames: 4,
            malformed_lines: 0,
            elapsed: Duration::from_millis(1500),
            model: None,
        };
        assert_eq!(
            totals_line(&totals),
            "totals: ticks=5996 features=5990 rejected=6 predictions=0 skipped_frames=4 malformed_lines=0 elapsed_s=1.500 model=none"
        );
    }

    #[test]
    fn totals_line_names_the_model_and_a_fallback() {
        let answering = |fallback: Option<Fallback>| LocalTotals {
            ticks: 10,
            features: 9,
            rejected: 1,
            predictions: 9,
            skipped_frames: 0,
            malformed_lines: 0,
            elapsed: Duration::from_secs(1),
            model: Some(AnsweringModel { variant: ModelVariant::Baseline, fallback: fallback.map(Arc::new) }),
        };
        assert!(totals_line(&answering(None)).ends_with("elapsed_s=1.000 model=baseline"));
        let fallback =
            Fallback { reason: FallbackReason::RuntimeUnavailable, detail: "ORT_DYLIB_PATH is unset".into() };
        assert!(
            totals_line(&answering(Some(fallback))).ends_with("model=baseline model_fallback=runtime_unavailable"),
            "{}",
            totals_line(&answering(None))
        );
    }

    #[test]
    fn progress_line_lists_products_in_name_order() {
        let mut products = BTreeMap::new();
        products.insert("ETH-USD".to_string(), ProductLast { price: 3000.0, ..Default::default() });
        products.insert(
            "BTC-USD".to_string(),
            ProductLast { price: 100_000.5, probability: Some(0.25), ..Default::default() },
        );
        let progress =
            Progress { elapsed: Duration::from_secs(3), totals: [4500, 4499, 0], rates: [1520.0, 1519.4, 0.0] };
        let line = progress_line(&progress, &products);
        assert!(
            line.starts_with(
                "[    3.0s] ticks=4500 (1520/s) features=4499 (1519/s) predictions=0 (0/s) | BTC-USD price=100000.50"
            ),
            "{line}"
        );
        assert!(line.contains("p_spike=0.250 | ETH-USD price=3000.00"), "{line}");
    }
}
