//! Keys of the config file this version does not know: ignored, logged once at start, and
//! exported as `spikewatch_config_unknown_keys` by every workload's `/metrics`, so that a
//! config written for a newer version (by a newer operator) shows up without stopping anything.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{IntGauge, Registry};

/// Name of the gauge.
pub const METRIC: &str = crate::metric_names::config::UNKNOWN_KEYS;

static UNKNOWN_KEYS: AtomicU64 = AtomicU64::new(0);

/// Logs each ignored key as a warning and remembers how many there were.
pub fn report(keys: &[String]) {
    for key in keys {
        tracing::warn!(key = %key, "ignoring a config key this version does not know (written for another version?)");
    }
    UNKNOWN_KEYS.store(keys.len() as u64, Ordering::Relaxed);
}

/// Registers the gauge, set to the count [`report`] saw, in `registry`; a registry that has it
/// already keeps its own.
pub fn register(registry: &Registry) -> prometheus::Result<()> {
    let gauge = IntGauge::new(METRIC, "Keys of the config file this version does not know (ignored, logged at start)")?;
    gauge.set(i64::try_from(UNKNOWN_KEYS.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
    match registry.register(Box::new(gauge)) {
        Ok(()) | Err(prometheus::Error::AlreadyReg) => Ok(()),
        Err(err) => Err(err),
    }
}
