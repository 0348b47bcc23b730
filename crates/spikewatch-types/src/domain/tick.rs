use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the [`Tick`] JSON layout on `ticks.raw`.
pub const TICK_SCHEMA: u32 = 1;

/// Which Coinbase WebSocket feed a tick came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feed {
    /// Coinbase Exchange `ws-feed` (`"type":"ticker"` messages).
    Exchange,
    /// Coinbase Advanced Trade (`"channel":"ticker"` messages).
    AdvancedTrade,
}

/// Aggressor side of the last trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

/// A normalized ticker event, from either Coinbase feed.
///
/// Invariants (enforced by the parsers, relied upon by the feature engine): prices are finite
/// and > 0, `best_bid <= best_ask`, sizes are finite and >= 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub schema: u32,
    pub product_id: String,
    /// Exchange timestamp of the event: the clock every feature is computed in.
    pub exchange_time: DateTime<Utc>,
    /// When this process received the frame: used for lag only, never for features.
    pub receive_time: DateTime<Utc>,
    /// Last trade price.
    pub price: f64,
    pub best_bid: f64,
    pub best_ask: f64,
    pub best_bid_size: Option<f64>,
    pub best_ask_size: Option<f64>,
    /// Size of the last trade (Exchange feed only).
    pub last_size: Option<f64>,
    pub side: Option<Side>,
    /// Exchange trade id (Exchange feed only).
    pub trade_id: Option<u64>,
    /// Per-product sequence number (Exchange) or per-connection `sequence_num` (Advanced Trade).
    pub sequence: Option<u64>,
    pub source: Feed,
}
