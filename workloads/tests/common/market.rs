//! Predictions of a reproducible market, and what an `OnlineEvaluator` fed them directly says:
//! the reference the servers' `/predictions/quality` is checked against.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use spikewatch::domain::{ModelVariant, PREDICTION_SCHEMA, Prediction};
use spikewatch::quality::OnlineEvaluator;

/// Alerts are the predictions with a probability at or above this.
pub const THRESHOLD: f64 = 0.7;

/// A random walk of the mid whose step size changes every 90 s (so some minutes are far more
/// volatile than others, as in a real market), `per_second` predictions a second from
/// 2025-11-12 07:00 UTC with random probabilities, alerts at [`THRESHOLD`].
pub fn market(product: &str, seconds: i64, per_second: i64, seed: u64) -> Vec<Prediction> {
    let start: DateTime<Utc> = "2025-11-12T07:00:00Z".parse().unwrap();
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut mid = 100.0;
    (0..seconds * per_second)
        .map(|i| {
            let step = if (i / per_second / 90) % 3 == 0 { 4e-4 } else { 5e-5 };
            mid *= 1.0 + step * (uniform() - 0.5);
            let probability = uniform();
            Prediction {
                schema: PREDICTION_SCHEMA,
                product_id: product.into(),
                event_time: start + TimeDelta::milliseconds(i * 1000 / per_second),
                probability,
                prediction: u8::from(probability >= THRESHOLD),
                threshold: THRESHOLD,
                model_name: "spikewatch-gbdt".into(),
                model_version: "7".into(),
                model_variant: ModelVariant::Ml,
                processing_latency_seconds: 0.001,
                midprice: Some(mid),
            }
        })
        .collect()
}

/// The evaluator's numbers on `predictions` (each one's point, then the prediction; those
/// without a mid price skipped), as the entries of `/predictions/quality` without their windows.
pub fn judged_directly(predictions: &[Prediction]) -> Vec<Value> {
    let mut evaluator = OnlineEvaluator::default();
    for p in predictions {
        let Some(mid) = p.midprice else { continue };
        evaluator.observe_point(&p.product_id, p.event_time.timestamp_nanos_opt().unwrap(), mid);
        evaluator.observe_prediction(p);
    }
    evaluator
        .quality()
        .into_iter()
        .map(|(product, variant, q)| {
            json!({
                "product_id": product, "variant": variant, "judged": q.labelled, "precision": q.precision(),
                "recall": q.recall(), "brier": q.brier(), "positive_rate": q.positive_rate(),
                "alert_rate": q.alert_rate(),
            })
        })
        .collect()
}

/// The entries of a `/predictions/quality` reply without their windows.
pub fn served_numbers(reply: &Value) -> Vec<Value> {
    let mut entries = reply["quality"].as_array().expect("a quality list").clone();
    for entry in &mut entries {
        let entry = entry.as_object_mut().unwrap();
        entry.remove("window_start");
        entry.remove("window_end");
    }
    entries
}
