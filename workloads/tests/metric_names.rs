//! Every metric a workload exports is declared in `spikewatch_types::metric_names`, the names
//! the operator's rules, dashboard and rollback checks query: a metric registered under a name
//! written anywhere else could drift away from its readers unnoticed.

use std::collections::BTreeSet;

use prometheus::Registry;
use spikewatch::admin::ModelMetrics;
use spikewatch::api::ApiMetrics;
use spikewatch::domain::ModelVariant;
use spikewatch::model::ModelInfo;
use spikewatch::pipeline::featurize::FeaturizerMetrics;
use spikewatch::pipeline::predict::PredictorMetrics;
use spikewatch::pipeline::replay::ReplayMetrics;
use spikewatch::sources::metrics::IngestMetrics;

/// The string values of the constants in `metric_names.rs`.
fn declared() -> BTreeSet<String> {
    let source = include_str!("../../crates/spikewatch-types/src/metric_names.rs");
    source
        .lines()
        .filter(|line| line.trim_start().starts_with("pub const "))
        .filter_map(|line| Some(line.split_once("= \"")?.1.split_once('"')?.0.to_string()))
        .collect()
}

/// The metric families of every workload's registry: the API, the predictor (with the model
/// metrics of its metrics port), the featurizer, ingest and replay. A labelled family is only
/// exported once it has a series, so one series of each is created.
fn exported() -> BTreeSet<String> {
    let api = ApiMetrics::new().unwrap();
    api.errors.with_label_values(&["/predict", "invalid"]);
    api.latency.with_label_values(&["/predict", "ml"]);
    let info = ModelInfo { name: "m".into(), version: "1".into(), variant: ModelVariant::Ml, threshold: 0.5 };
    api.model.model_changed(&info, None);

    let predictor = Registry::new();
    let metrics = PredictorMetrics::register(&predictor).unwrap();
    let quality = &metrics.quality;
    for gauge in [&quality.precision, &quality.recall, &quality.brier, &quality.positive_rate, &quality.alert_rate] {
        gauge.with_label_values(&["BTC-USD", "ml"]);
    }
    quality.labelled.with_label_values(&["BTC-USD", "ml"]);
    quality.psi.with_label_values(&["price"]);
    quality.psi_limit.with_label_values(&["price"]);
    ModelMetrics::register(&predictor).unwrap().model_changed(&info, None);

    let featurizer = Registry::new();
    FeaturizerMetrics::register(&featurizer).unwrap();

    let ingest = Registry::new();
    let metrics = IngestMetrics::register(&ingest).unwrap();
    for counter in [&metrics.ticks_published, &metrics.sequence_gaps, &metrics.missed_messages, &metrics.out_of_order] {
        counter.with_label_values(&["BTC-USD"]);
    }
    metrics.frames_skipped.with_label_values(&["subscriptions"]);

    let replay = Registry::new();
    let metrics = ReplayMetrics::register(&replay).unwrap();
    metrics.frames_skipped.with_label_values(&["subscriptions"]);
    metrics.malformed_lines.with_label_values(&["json"]);

    let registries = [api.registry().clone(), predictor, featurizer, ingest, replay];
    for registry in &registries {
        spikewatch::telemetry::config_keys::register(registry).unwrap();
    }
    registries.iter().flat_map(|r| r.gather()).map(|family| family.name().to_string()).collect()
}

#[test]
fn every_exported_metric_is_declared_in_metric_names() {
    let declared = declared();
    assert!(declared.len() > 50, "{declared:?}");
    let exported = exported();
    assert!(exported.len() > 60, "{exported:?}");
    let undeclared: Vec<&String> = exported.difference(&declared).collect();
    assert!(undeclared.is_empty(), "exported but not declared in metric_names: {undeclared:?}");
}
