//! The one feature engine, used online (`featurize`) and offline (`features`). Formulas: docs/features.md.
//!
//! [`FeatureEngine::update`] turns each [`Tick`](crate::domain::Tick) into a
//! [`FeatureVector`](crate::domain::FeatureVector) in event time, per product, with amortized O(1)
//! work and memory bounded by the ticks of the last hour. [`offline::build_rows`] runs the same
//! engine over recordings and adds the label ([`label`]).
//!
//! Every feature is a function of the product's ticks of the last [`WARMUP_SECS`] of event time
//! (windows hold exact sums, `exact`): an engine fed only that much history before a tick
//! computes the same vector for it as one that saw everything (what a restarted featurizer
//! relies on).

mod book;
mod dedup;
pub mod describe;
mod engine;
mod exact;
pub(crate) mod grid;
pub mod label;
pub mod offline;
mod rejected;
mod trades;
pub(crate) mod window;

pub use engine::{EngineStats, FeatureEngine};

/// How much event time before a tick determines its features: the longest window (the trailing
/// hour of the level, the trade scale and the price increment) plus a minute of margin for the
/// return base, ties and tolerated late ticks.
pub const WARMUP_SECS: i64 = 3660;
pub use rejected::TickRejected;

use crate::config::FeaturesConfig;

/// Rejects settings the engine would silently turn into something else.
pub fn check_config(config: &FeaturesConfig) -> Result<(), String> {
    if config.max_gap_secs.is_nan() || config.max_gap_secs <= 0.0 {
        return Err(format!("features.max_gap_secs must be a positive number of seconds, got {}", config.max_gap_secs));
    }
    Ok(())
}
