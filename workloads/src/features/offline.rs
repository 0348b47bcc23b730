//! The offline tables: the online engine run over recorded ticks. Every tick's vector
//! ([`build_table`] with [`Rows::EveryTick`]), or the training table: one row per evaluated
//! second (the last vector at or before it) with the label of that second ([`label`]), which
//! only exists offline.

use std::borrow::Borrow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::label::{self, LabelPoint, SecondLabel};
use super::{EngineStats, FeatureEngine};
use crate::config::FeaturesConfig;
use crate::domain::{Feature, Features, Tick};

/// Which rows a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// One per evaluated second, labelled: the training table.
    PerSecond,
    /// One per accepted tick, unlabelled: what the online featurizer publishes.
    EveryTick,
}

/// One row of a table (columns: docs/features.md, in `sinks::table` order).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRow {
    pub product_id: String,
    /// Event time of the feature vector (nanosecond precision).
    pub event_time: DateTime<Utc>,
    /// Per product, increments each time the windows reset after a gap.
    pub segment: u64,
    pub features: Features,
    /// The evaluated second this row stands for and its label ([`Rows::PerSecond`] only).
    pub label: Option<SecondLabel>,
}

/// Rows and what the engine rejected on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingTable {
    pub rows: Vec<TrainingRow>,
    pub stats: EngineStats,
}

/// Runs [`FeatureEngine::update`] over `ticks` in the given order and keeps every vector.
pub fn build_rows<T: Borrow<Tick>>(ticks: impl IntoIterator<Item = T>, config: &FeaturesConfig) -> Vec<TrainingRow> {
    build_table(ticks, config, Rows::EveryTick).rows
}

/// Runs [`FeatureEngine::update`] over `ticks` in the given order: every accepted tick's row in
/// that order, or the evaluated seconds by product and time.
pub fn build_table<T: Borrow<Tick>>(
    ticks: impl IntoIterator<Item = T>,
    config: &FeaturesConfig,
    rows: Rows,
) -> TrainingTable {
    let mut engine = FeatureEngine::new(config);
    let mut out = Vec::new();
    for tick in ticks {
        let tick = tick.borrow();
        let Ok(vector) = engine.update(tick) else { continue };
        let segment = engine.segment(&tick.product_id).unwrap_or_default();
        out.push(TrainingRow {
            product_id: vector.product_id,
            event_time: vector.event_time,
            segment,
            features: vector.features,
            label: None,
        });
    }
    let out = match rows {
        Rows::EveryTick => out,
        Rows::PerSecond => per_second(out),
    };
    TrainingTable { rows: out, stats: engine.stats() }
}

/// The evaluated seconds of every product (products in name order, seconds in time order), each
/// with the last row at or before it.
fn per_second(rows: Vec<TrainingRow>) -> Vec<TrainingRow> {
    let mut by_product: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        by_product.entry(row.product_id.as_str()).or_default().push(i);
    }
    let mut products: Vec<_> = by_product.into_iter().collect();
    products.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (_, indices) in products {
        let points: Vec<LabelPoint> = indices
            .iter()
            .map(|&i| LabelPoint {
                // Engine output times always fit: they came from `timestamp_nanos_opt`.
                time_nanos: rows[i].event_time.timestamp_nanos_opt().unwrap_or_default(),
                midprice: rows[i].features[Feature::Midprice],
            })
            .collect();
        for second in label::evaluated_seconds(&points) {
            out.push(TrainingRow { label: Some(second), ..rows[indices[second.point]].clone() });
        }
    }
    out
}
