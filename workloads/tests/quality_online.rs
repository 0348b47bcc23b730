//! The online evaluation on real recordings: it judges exactly the seconds the training table
//! labels, on exactly the realized variance the table labels them with, and on nothing else.

use std::collections::{HashMap, VecDeque};

use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{Feature, ModelVariant, Prediction, Tick};
use spikewatch::features::FeatureEngine;
use spikewatch::features::offline::{Rows, build_table};
use spikewatch::quality::{OnlineEvaluator, Outcome};
use spikewatch::sources::recording;

const RECORDINGS: [&str; 2] = [
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/ticks/btc-usd-2025-11-30.csv.gz"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/ticks/eth-usd-2026-04-04.csv.gz"),
];

fn load(path: &str) -> Vec<Tick> {
    recording::open(path)
        .unwrap_or_else(|e| panic!("cannot open {path}: {e}"))
        .map(|t| t.expect("the recording parses"))
        .collect()
}

fn config() -> FeaturesConfig {
    FeaturesConfig { max_gap_secs: 30.0, out_of_order_tolerance_ms: 2_000 }
}

fn prediction(product: &str, event_time: chrono::DateTime<chrono::Utc>, probability: f64) -> Prediction {
    Prediction {
        schema: 1,
        product_id: product.into(),
        event_time,
        probability,
        prediction: u8::from(probability >= 0.5),
        threshold: 0.5,
        model_name: "test".into(),
        model_version: "1".into(),
        model_variant: ModelVariant::Ml,
        processing_latency_seconds: 0.0,
        midprice: None,
    }
}

/// Every scored vector is a point and a prediction, as in the predictor.
fn evaluate(ticks: &[Tick]) -> Vec<(String, Outcome)> {
    let mut engine = FeatureEngine::new(&config());
    let mut evaluator = OnlineEvaluator::default();
    let mut outcomes = Vec::new();
    for (i, tick) in ticks.iter().enumerate() {
        let Ok(vector) = engine.update(tick) else { continue };
        let time = vector.event_time.timestamp_nanos_opt().unwrap();
        for o in evaluator.observe_point(&vector.product_id, time, vector.features[Feature::Midprice]) {
            outcomes.push((vector.product_id.clone(), o));
        }
        // Alternate confident alerts and quiet predictions: the judging must not depend on them.
        evaluator.observe_prediction(&prediction(
            &vector.product_id,
            vector.event_time,
            if i % 2 == 0 { 0.9 } else { 0.1 },
        ));
    }
    outcomes
}

#[test]
fn online_outcomes_are_the_training_tables_labels() {
    for path in RECORDINGS {
        let ticks = load(path);
        let rows = build_table(&ticks, &config(), Rows::PerSecond).rows;
        let mut expected: HashMap<String, VecDeque<(i64, f64)>> = HashMap::new();
        for row in &rows {
            let label = row.label.expect("a labelled row");
            expected
                .entry(row.product_id.clone())
                .or_default()
                .push_back((label.second * 1_000_000_000, label.rv_future_60s));
        }
        let outcomes = evaluate(&ticks);
        let complete: usize = expected.values().map(VecDeque::len).sum();
        assert!(complete > 1_000, "{path}: {complete} evaluated seconds");
        assert_eq!(outcomes.len(), complete, "{path}: one outcome per evaluated second");
        for (product, outcome) in &outcomes {
            let (time, realized) =
                expected.get_mut(product).and_then(VecDeque::pop_front).expect("a row for every outcome");
            assert_eq!(outcome.time, time, "{path}: outcomes in row order");
            assert!(
                (outcome.realized - realized).abs() <= 1e-9 * realized.max(1e-18),
                "{path} at {time}: online {} vs offline {realized}",
                outcome.realized
            );
        }
    }
}

#[test]
fn about_a_tenth_of_the_judged_minutes_are_positive_on_a_real_day() {
    let ticks = load(RECORDINGS[0]);
    let outcomes = evaluate(&ticks);
    let judged: Vec<&Outcome> = outcomes.iter().map(|(_, o)| o).filter(|o| o.positive.is_some()).collect();
    assert_eq!(judged.len() + 120, outcomes.len(), "only the first 120 seconds lack a reference");
    let positive = judged.iter().filter(|o| o.positive == Some(true)).count() as f64 / judged.len() as f64;
    // The cut is the trailing 90th percentile, so a rising market labels more than 10 %
    // positive and a calming one fewer; on a whole recording the share stays near a tenth.
    assert!((0.03..=0.25).contains(&positive), "positive share {positive}");
}
