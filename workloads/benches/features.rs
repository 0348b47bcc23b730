//! Feature update throughput on the recorded Exchange ticks (ticks/s on one core).
//!
//! `cargo bench -p spikewatch --bench features`; results go to docs/benchmarks.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spikewatch::config::FeaturesConfig;
use spikewatch::domain::Tick;
use spikewatch::features::FeatureEngine;
use spikewatch::features::offline::build_rows;
use spikewatch::sources::recording;

const EXCHANGE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");

fn ticks() -> Vec<Tick> {
    recording::open(EXCHANGE).expect("recording").map(|t| t.expect("tick")).collect()
}

fn feature_update(c: &mut Criterion) {
    let ticks = ticks();
    let config = FeaturesConfig::default();
    let mut group = c.benchmark_group("features");
    group.throughput(Throughput::Elements(ticks.len() as u64));
    group.bench_function("update", |b| {
        b.iter(|| {
            // A fresh engine per pass: the recording's times only go forward once.
            let mut engine = FeatureEngine::new(&config);
            for tick in &ticks {
                let _ = black_box(engine.update(black_box(tick)));
            }
            engine.stats().accepted
        })
    });
    group.bench_function("build_rows", |b| b.iter(|| build_rows(black_box(&ticks), &config).len()));
    group.finish();
}

criterion_group!(benches, feature_update);
criterion_main!(benches);
