//! Model inference cost per row: the GBDT through ONNX Runtime and the z-score baseline,
//! one row at a time and in batches of 256 (the predictor's default micro-batch).
//!
//! `source scripts/env && cargo bench -p spikewatch --bench inference`

use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use spikewatch::config::ModelConfig;
use spikewatch::domain::{Features, ModelVariant};
use spikewatch::model::{self, Model};

fn fixture_rows() -> Vec<Features> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/spikewatch-gbdt/fixtures.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["rows"].as_array().unwrap().iter().map(|r| serde_json::from_value(r["features"].clone()).unwrap()).collect()
}

fn load(variant: ModelVariant) -> std::sync::Arc<dyn Model> {
    if variant == ModelVariant::Ml && std::env::var("ORT_DYLIB_PATH").map_or(true, |v| v.is_empty()) {
        panic!("ORT_DYLIB_PATH is not set: run `source scripts/env` first");
    }
    let config = ModelConfig {
        variant,
        source: Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts/spikewatch-gbdt").display().to_string(),
        ..ModelConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(model::load(&config)).unwrap()
}

fn bench(c: &mut Criterion) {
    let fixtures = fixture_rows();
    let batch: Vec<Features> = fixtures.iter().cycle().take(256).copied().collect();
    for variant in [ModelVariant::Ml, ModelVariant::Baseline] {
        let model = load(variant);
        let mut group = c.benchmark_group(format!("inference/{}", variant.as_str()));
        group.throughput(Throughput::Elements(1));
        let mut i = 0;
        group.bench_function("single_row", |b| {
            b.iter_batched(
                || {
                    i = (i + 1) % fixtures.len();
                    fixtures[i]
                },
                |row| model.predict_proba(std::slice::from_ref(&row)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_function("batch_256", |b| b.iter(|| model.predict_proba(&batch).unwrap()));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
