//! Coinbase Advanced Trade messages: an envelope per channel, tickers nested in events.
//!
//! ```json
//! {"channel":"ticker","client_id":"","timestamp":"2025-11-08T15:12:31.46Z","sequence_num":7,
//!  "events":[{"type":"update","tickers":[{"type":"ticker","product_id":"BTC-USD",
//!  "price":"102020.48","best_bid":"102020.47","best_bid_quantity":"0.02944129",
//!  "best_ask":"102020.48","best_ask_quantity":"0.16980542", ...}]}]}
//! ```
//!
//! A ticker has no exchange time of its own: the envelope's `timestamp` is used. Trades come on
//! the `market_trades` channel (`market_trades.rs`).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::fields::{self, Decimal};
use super::market_trades::{self, MarketTrade, TradeEntry};
use super::{Frame, FrameError, ParsedFrame};
use crate::domain::{Feed, TICK_SCHEMA, Tick};

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    /// Only error messages have a top-level `type`.
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    sequence_num: Option<u64>,
    #[serde(borrow)]
    events: Option<Vec<Event<'a>>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tickers: Option<Vec<Ticker<'a>>>,
    #[serde(borrow)]
    trades: Option<Vec<TradeEntry<'a>>>,
}

/// One ticker entry; also the `raw` object of the Advanced Trade recording.
#[derive(Deserialize)]
pub(crate) struct Ticker<'a> {
    #[serde(borrow)]
    product_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    price: Option<Decimal<'a>>,
    #[serde(borrow)]
    best_bid: Option<Decimal<'a>>,
    #[serde(borrow)]
    best_ask: Option<Decimal<'a>>,
    #[serde(borrow)]
    best_bid_quantity: Option<Decimal<'a>>,
    #[serde(borrow)]
    best_ask_quantity: Option<Decimal<'a>>,
}

/// Channels we do not subscribe to: valid messages, not ours to use.
const OTHER_CHANNELS: &[&str] = &["status", "candles", "level2", "l2_data", "user", "futures_balance_summary"];

pub(super) fn parse(text: &str, receive_time: DateTime<Utc>) -> Result<ParsedFrame, FrameError> {
    let msg: Message<'_> = serde_json::from_str(text).map_err(FrameError::from_json)?;
    let frame = match (msg.channel.as_deref(), msg.kind.as_deref()) {
        (Some("ticker" | "ticker_batch"), _) => Frame::Tickers(tickers(&msg, receive_time)?),
        (Some("market_trades"), _) => Frame::Trades(trades(&msg)?),
        (Some("heartbeats"), _) => Frame::Heartbeat,
        (Some("subscriptions"), _) => Frame::Subscriptions,
        (None, Some("error")) => Frame::Error(msg.message.as_deref().unwrap_or("").to_owned()),
        (Some(other), _) if OTHER_CHANNELS.contains(&other) => Frame::Other(other.to_owned()),
        (Some(other), _) | (None, Some(other)) => {
            return Err(FrameError::UnknownType(other.chars().take(64).collect()));
        }
        (None, None) => return Err(FrameError::MissingField("channel")),
    };
    Ok(ParsedFrame { frame, sequence_num: msg.sequence_num })
}

fn tickers(msg: &Message<'_>, receive_time: DateTime<Utc>) -> Result<Vec<Tick>, FrameError> {
    let exchange_time = fields::timestamp("timestamp", msg.timestamp.as_deref())?;
    let events = msg.events.as_ref().ok_or(FrameError::MissingField("events"))?;
    let mut ticks = Vec::with_capacity(events.iter().map(|e| e.tickers.as_ref().map_or(0, Vec::len)).sum());
    for event in events {
        match event.kind.as_deref() {
            Some("snapshot" | "update") => {}
            Some(other) => return Err(FrameError::UnknownType(other.chars().take(64).collect())),
            None => return Err(FrameError::MissingField("events[].type")),
        }
        let entries = event.tickers.as_ref().ok_or(FrameError::MissingField("events[].tickers"))?;
        for entry in entries {
            ticks.push(to_tick(entry, exchange_time, receive_time, msg.sequence_num)?);
        }
    }
    Ok(ticks)
}

fn trades(msg: &Message<'_>) -> Result<Vec<MarketTrade>, FrameError> {
    let events = msg.events.as_ref().ok_or(FrameError::MissingField("events"))?;
    let mut out = Vec::new();
    for event in events {
        match event.kind.as_deref() {
            Some("snapshot" | "update") => {}
            Some(other) => return Err(FrameError::UnknownType(other.chars().take(64).collect())),
            None => return Err(FrameError::MissingField("events[].type")),
        }
        let entries = event.trades.as_ref().ok_or(FrameError::MissingField("events[].trades"))?;
        for entry in entries {
            out.push(market_trades::to_trade(entry)?);
        }
    }
    Ok(out)
}

/// Normalizes one ticker entry. `exchange_time` is the envelope's timestamp (or, for the
/// recording that kept only the entry, the time it was received).
pub(crate) fn to_tick(
    t: &Ticker<'_>,
    exchange_time: DateTime<Utc>,
    receive_time: DateTime<Utc>,
    sequence: Option<u64>,
) -> Result<Tick, FrameError> {
    let tick = Tick {
        schema: TICK_SCHEMA,
        product_id: fields::required("product_id", &t.product_id)?.to_owned(),
        exchange_time,
        receive_time,
        price: fields::price("price", t.price.as_ref())?,
        best_bid: fields::price("best_bid", t.best_bid.as_ref())?,
        best_ask: fields::price("best_ask", t.best_ask.as_ref())?,
        best_bid_size: fields::size("best_bid_quantity", t.best_bid_quantity.as_ref())?,
        best_ask_size: fields::size("best_ask_quantity", t.best_ask_quantity.as_ref())?,
        last_size: None,
        side: None,
        trade_id: None,
        sequence,
        source: Feed::AdvancedTrade,
    };
    fields::check_book(&tick)?;
    Ok(tick)
}

/// Parses a bare ticker entry (the Advanced Trade recording's `raw` object).
pub(crate) fn parse_ticker_object(
    text: &str,
    exchange_time: DateTime<Utc>,
    receive_time: DateTime<Utc>,
) -> Result<Tick, FrameError> {
    let ticker: Ticker<'_> = serde_json::from_str(text).map_err(FrameError::from_json)?;
    to_tick(&ticker, exchange_time, receive_time, None)
}
