//! The offline training table: the online engine run over recorded ticks, plus the forward
//! quantities of the label (`label.rs`), which only exist offline.

use std::borrow::Borrow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::label::{self, LabelPoint};
use super::{EngineStats, FeatureEngine};
use crate::config::FeaturesConfig;
use crate::domain::{Features, Tick};

/// One row of the training table (columns: docs/features.md, in `sinks::table` order).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRow {
    pub product_id: String,
    /// Event time of the feature vector (nanosecond precision).
    pub event_time: DateTime<Utc>,
    /// Per product, increments each time the windows reset after a gap.
    pub segment: u64,
    pub features: Features,
    /// Realized volatility over `(t, t + 60 s]`; `None` when that window is incomplete.
    pub future_volatility_60s: Option<f64>,
    /// The product's segment continues past `t + 60 s`.
    pub future_window_complete: bool,
    /// Ticks in `(t, t + 60 s]`.
    pub future_tick_count: u64,
}

/// Rows and what the engine rejected on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingTable {
    pub rows: Vec<TrainingRow>,
    pub stats: EngineStats,
}

/// Runs [`FeatureEngine::update`] over `ticks` in the given order (one row per accepted tick, in
/// that order) and attaches the forward quantities.
pub fn build_rows<T: Borrow<Tick>>(ticks: impl IntoIterator<Item = T>, config: &FeaturesConfig) -> Vec<TrainingRow> {
    build_table(ticks, config).rows
}

/// [`build_rows`] with the engine's counters.
pub fn build_table<T: Borrow<Tick>>(ticks: impl IntoIterator<Item = T>, config: &FeaturesConfig) -> TrainingTable {
    let mut engine = FeatureEngine::new(config);
    let mut rows = Vec::new();
    for tick in ticks {
        let tick = tick.borrow();
        let Ok(vector) = engine.update(tick) else { continue };
        let segment = engine.segment(&tick.product_id).unwrap_or_default();
        rows.push(TrainingRow {
            product_id: vector.product_id,
            event_time: vector.event_time,
            segment,
            features: vector.features,
            future_volatility_60s: None,
            future_window_complete: false,
            future_tick_count: 0,
        });
    }
    attach_forward(&mut rows);
    TrainingTable { rows, stats: engine.stats() }
}

fn attach_forward(rows: &mut [TrainingRow]) {
    let mut by_product: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        by_product.entry(row.product_id.as_str()).or_default().push(i);
    }
    let mut updates = Vec::with_capacity(rows.len());
    for indices in by_product.values() {
        let points: Vec<LabelPoint> = indices
            .iter()
            .map(|&i| LabelPoint {
                // Engine output times always fit: they came from `timestamp_nanos_opt`.
                time_nanos: rows[i].event_time.timestamp_nanos_opt().unwrap_or_default(),
                segment: rows[i].segment,
                midprice: rows[i].features.midprice,
            })
            .collect();
        updates.extend(indices.iter().copied().zip(label::forward_windows(&points)));
    }
    for (i, forward) in updates {
        let row = &mut rows[i];
        row.future_volatility_60s = forward.volatility_60s;
        row.future_window_complete = forward.window_complete;
        row.future_tick_count = forward.tick_count;
    }
}
