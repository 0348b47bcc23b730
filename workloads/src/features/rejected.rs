/// Why the feature engine did not use a tick. Every rejection is counted in
/// [`super::EngineStats`]; [`TickRejected::kind`] is the metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TickRejected {
    /// Same `trade_id`, or same `sequence` at the same exchange time, as an accepted tick.
    #[error("duplicate tick for {product_id}")]
    Duplicate { product_id: String },
    /// Older than the product's latest event time by more than the out-of-order tolerance.
    #[error("out-of-order tick for {product_id}: {behind_ms} ms behind the latest tick, beyond the tolerance")]
    OutOfOrder { product_id: String, behind_ms: i64 },
    /// Breaks the tick invariants (positive finite prices, bid <= ask, finite non-negative sizes).
    #[error("invalid tick for {product_id}: {reason}")]
    Invalid { product_id: String, reason: &'static str },
    /// Exchange time outside what nanoseconds since the epoch in an i64 can hold (1677..2262).
    #[error("exchange time of tick for {product_id} is out of range")]
    TimeOutOfRange { product_id: String },
}

impl TickRejected {
    /// Stable label for metrics (`..._errors_total{error_type=...}`).
    pub fn kind(&self) -> &'static str {
        match self {
            TickRejected::Duplicate { .. } => "duplicate",
            TickRejected::OutOfOrder { .. } => "out_of_order",
            TickRejected::Invalid { .. } => "invalid_tick",
            TickRejected::TimeOutOfRange { .. } => "time_out_of_range",
        }
    }
}
