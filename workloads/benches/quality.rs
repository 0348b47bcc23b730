//! What judging costs the predictor per prediction: the online evaluation (each point and
//! prediction of a product's stream, outcomes once their minute has passed) and the drift
//! monitor (22 bin lookups, a sliding window of 20,000 rows), over a real recording's vectors;
//! and what publishing costs the live feed of the API, which judges each prediction too.
//!
//! `cargo bench -p spikewatch --bench quality`

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{FeatureVector, ModelVariant, Prediction};
use spikewatch::features::FeatureEngine;
use spikewatch::model::Reference;
use spikewatch::prediction_feed::{FeedMetrics, PredictionFeed};
use spikewatch::quality::{DriftMonitor, OnlineEvaluator};
use spikewatch::sources::recording;

fn vectors() -> Vec<FeatureVector> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/coinbase/ticks/btc-usd-2025-12-06.csv.gz");
    let mut engine = FeatureEngine::new(&FeaturesConfig::default());
    recording::open(&path).unwrap().filter_map(|t| engine.update(&t.unwrap()).ok()).collect()
}

fn prediction(v: &FeatureVector, i: usize) -> Prediction {
    Prediction {
        schema: 1,
        product_id: v.product_id.clone(),
        event_time: v.event_time,
        probability: (i % 100) as f64 / 100.0,
        prediction: u8::from(i.is_multiple_of(10)),
        threshold: 0.5,
        model_name: "bench".into(),
        model_version: "1".into(),
        model_variant: ModelVariant::Ml,
        processing_latency_seconds: 0.0,
        midprice: Some(v.features[spikewatch::domain::Feature::Midprice]),
    }
}

fn bench(c: &mut Criterion) {
    let vectors = vectors();
    let predictions: Vec<Prediction> = vectors.iter().enumerate().map(|(i, v)| prediction(v, i)).collect();
    let reference = Reference::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/spikewatch-gbdt/reference.json"),
    )
    .unwrap();
    let mut group = c.benchmark_group("quality");
    group.throughput(Throughput::Elements(vectors.len() as u64));
    group.bench_function("online_evaluation", |b| {
        b.iter(|| {
            let mut evaluator = OnlineEvaluator::default();
            let mut judged = 0;
            for (v, p) in vectors.iter().zip(&predictions) {
                let time = v.event_time.timestamp_nanos_opt().unwrap();
                judged += evaluator
                    .observe_point(&v.product_id, time, v.features[spikewatch::domain::Feature::Midprice])
                    .len();
                evaluator.observe_prediction(p);
            }
            judged
        })
    });
    // Publishing into a fresh feed: remembering the latest, the broadcast to no subscriber, and
    // judging (the feed's own evaluator).
    group.bench_function("feed_publish", |b| {
        b.iter(|| {
            let feed = PredictionFeed::new(1024, FeedMetrics::register(&prometheus::Registry::new()).unwrap());
            for p in &predictions {
                feed.publish(p.clone());
            }
            feed.latest().len()
        })
    });
    group.bench_function("drift_window_20000", |b| {
        b.iter(|| {
            let mut monitor = DriftMonitor::new(&reference, 20_000);
            for v in &vectors {
                monitor.observe(&v.features);
            }
            monitor.rows()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
