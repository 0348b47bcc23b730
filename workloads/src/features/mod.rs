//! The one feature engine, used online (`featurize`) and offline (`features`). Formulas: docs/features.md.
//!
//! [`FeatureEngine::update`] turns each [`Tick`](crate::domain::Tick) into a
//! [`FeatureVector`](crate::domain::FeatureVector) in event time, per product, with amortized O(1)
//! work and memory bounded by the ticks of the last 30 minutes. [`offline::build_rows`] runs the same
//! engine over recordings and adds the label's forward quantities ([`label`]).

mod dedup;
mod engine;
pub mod label;
pub mod offline;
mod rejected;
pub(crate) mod window;

pub use engine::{EngineStats, FeatureEngine};
pub use rejected::TickRejected;

use crate::config::FeaturesConfig;

/// Rejects settings the engine would silently turn into something else.
pub fn check_config(config: &FeaturesConfig) -> Result<(), String> {
    if config.max_gap_secs.is_nan() || config.max_gap_secs <= 0.0 {
        return Err(format!("features.max_gap_secs must be a positive number of seconds, got {}", config.max_gap_secs));
    }
    Ok(())
}
