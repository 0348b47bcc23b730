//! Coinbase ticker frames (Exchange and Advanced Trade) → [`crate::domain::Tick`].
//!
//! One entry point, [`parse_frame`], for both feeds. Every rejected frame is a [`FrameError`]
//! whose [`FrameError::kind`] labels the parse-error counters; nothing here panics on input.

mod advanced_trade;
mod error;
mod exchange;
pub(crate) mod fields;
mod market_trades;

use chrono::{DateTime, Utc};

pub use error::FrameError;
pub use fields::parse_timestamp;
pub use market_trades::{MarketTrade, TradeTicks};

pub(crate) use advanced_trade::parse_ticker_object;

use crate::domain::{Feed, Tick};

/// Frames larger than this are rejected unread (configurable through [`FrameParser`]).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Normalized tickers: one for Exchange, one or more for Advanced Trade.
    Tickers(Vec<Tick>),
    /// Advanced Trade `market_trades`: trades without the book ([`TradeTicks`] pairs them).
    Trades(Vec<MarketTrade>),
    Heartbeat,
    /// The acknowledgement of a subscribe request.
    Subscriptions,
    /// An error the server reported (for example a rejected subscription).
    Error(String),
    /// A well-formed message of a channel this system does not use (its type or channel name).
    Other(String),
}

/// A frame with its connection-level sequence number (Advanced Trade's `sequence_num`, which
/// numbers every message on a connection, heartbeats included).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFrame {
    pub frame: Frame,
    pub sequence_num: Option<u64>,
}

/// Frame parser with a size cap.
#[derive(Debug, Clone, Copy)]
pub struct FrameParser {
    pub max_frame_bytes: usize,
}

impl Default for FrameParser {
    fn default() -> Self {
        FrameParser { max_frame_bytes: DEFAULT_MAX_FRAME_BYTES }
    }
}

impl FrameParser {
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameParser { max_frame_bytes }
    }

    pub fn parse(&self, feed: Feed, text: &str, receive_time: DateTime<Utc>) -> Result<Frame, FrameError> {
        self.parse_with_sequence(feed, text, receive_time).map(|parsed| parsed.frame)
    }

    pub fn parse_with_sequence(
        &self,
        feed: Feed,
        text: &str,
        receive_time: DateTime<Utc>,
    ) -> Result<ParsedFrame, FrameError> {
        // The cap is checked on the length alone so a hostile frame costs nothing to reject.
        if text.len() > self.max_frame_bytes {
            return Err(FrameError::Oversized { len: text.len(), limit: self.max_frame_bytes });
        }
        // Both feeds send objects only; anything else would surface as a confusing field error.
        if text.trim_start().as_bytes().first() != Some(&b'{') {
            return Err(FrameError::InvalidJson("frame is not a JSON object".into()));
        }
        match feed {
            Feed::Exchange => exchange::parse(text, receive_time),
            Feed::AdvancedTrade => advanced_trade::parse(text, receive_time),
        }
    }
}

/// Parses one WebSocket text frame of `feed` with the default size cap.
pub fn parse_frame(feed: Feed, text: &str, receive_time: DateTime<Utc>) -> Result<Frame, FrameError> {
    FrameParser::default().parse(feed, text, receive_time)
}
