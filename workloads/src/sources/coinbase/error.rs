//! Why a frame was rejected, with a stable metric label per kind.

/// A rejected frame. [`FrameError::kind`] is the `kind` label of the parse-error counters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {limit}-byte limit")]
    Oversized { len: usize, limit: usize },
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}` has the wrong type: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("field `{field}` is not a number: {value:?}")]
    InvalidNumber { field: &'static str, value: String },
    #[error("field `{field}` is not finite: {value:?}")]
    NonFinite { field: &'static str, value: String },
    #[error("field `{field}` must be > 0, got {value}")]
    NonPositivePrice { field: &'static str, value: f64 },
    #[error("field `{field}` must be >= 0, got {value}")]
    NegativeSize { field: &'static str, value: f64 },
    #[error("crossed book: best bid {bid} > best ask {ask}")]
    CrossedBook { bid: f64, ask: f64 },
    #[error("field `{field}` is not an RFC 3339 timestamp: {value:?}")]
    InvalidTimestamp { field: &'static str, value: String },
}

impl FrameError {
    /// Every kind this parser can report, for pre-registering metric series.
    pub const KINDS: &'static [&'static str] = &[
        "oversized",
        "invalid_json",
        "unknown_type",
        "missing_field",
        "invalid_field",
        "invalid_number",
        "non_finite",
        "non_positive_price",
        "negative_size",
        "crossed_book",
        "invalid_timestamp",
    ];

    /// Stable, low-cardinality label (metrics, logs, recording statistics).
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::Oversized { .. } => "oversized",
            FrameError::InvalidJson(_) => "invalid_json",
            FrameError::UnknownType(_) => "unknown_type",
            FrameError::MissingField(_) => "missing_field",
            FrameError::InvalidField { .. } => "invalid_field",
            FrameError::InvalidNumber { .. } => "invalid_number",
            FrameError::NonFinite { .. } => "non_finite",
            FrameError::NonPositivePrice { .. } => "non_positive_price",
            FrameError::NegativeSize { .. } => "negative_size",
            FrameError::CrossedBook { .. } => "crossed_book",
            FrameError::InvalidTimestamp { .. } => "invalid_timestamp",
        }
    }

    /// Maps a serde_json failure: syntax errors are invalid JSON, well-formed JSON with a value
    /// of the wrong shape (an object where a string belongs) is an invalid field.
    pub(crate) fn from_json(err: serde_json::Error) -> FrameError {
        match err.classify() {
            serde_json::error::Category::Data => FrameError::InvalidField { field: "?", reason: err.to_string() },
            _ => FrameError::InvalidJson(err.to_string()),
        }
    }
}
