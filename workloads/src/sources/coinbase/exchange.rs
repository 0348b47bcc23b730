//! Coinbase Exchange `ws-feed` messages: one flat object per message, dispatched on `type`.
//!
//! ```json
//! {"type":"ticker","sequence":115498669093,"product_id":"BTC-USD","price":"103472.28",
//!  "best_bid":"103472.27","best_bid_size":"0.04145138","best_ask":"103472.28",
//!  "best_ask_size":"0.02560996","side":"buy","time":"2025-11-12T07:20:11.615272Z",
//!  "trade_id":900701309,"last_size":"0.00068754", ...}
//! ```

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::fields::{self, Decimal};
use super::{Frame, FrameError, ParsedFrame};
use crate::domain::{Feed, TICK_SCHEMA, Tick};

/// Every field of every message type we read; serde skips the rest (24 h statistics etc.).
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    product_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    price: Option<Decimal<'a>>,
    #[serde(borrow)]
    best_bid: Option<Decimal<'a>>,
    #[serde(borrow)]
    best_ask: Option<Decimal<'a>>,
    #[serde(borrow)]
    best_bid_size: Option<Decimal<'a>>,
    #[serde(borrow)]
    best_ask_size: Option<Decimal<'a>>,
    #[serde(borrow)]
    last_size: Option<Decimal<'a>>,
    #[serde(borrow)]
    side: Option<Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    trade_id: Option<u64>,
    sequence: Option<u64>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
}

/// Message types of channels we do not subscribe to: valid Exchange messages, not ours to use.
const OTHER_TYPES: &[&str] =
    &["status", "snapshot", "l2update", "match", "last_match", "received", "open", "done", "change", "activate"];

pub(super) fn parse(text: &str, receive_time: DateTime<Utc>) -> Result<ParsedFrame, FrameError> {
    let msg: Message<'_> = serde_json::from_str(text).map_err(FrameError::from_json)?;
    let kind = fields::required("type", &msg.kind)?;
    let frame = match kind {
        "ticker" => Frame::Tickers(vec![ticker(&msg, receive_time)?]),
        "heartbeat" => Frame::Heartbeat,
        "subscriptions" => Frame::Subscriptions,
        "error" => {
            let message = msg.message.as_deref().unwrap_or("");
            let reason = msg.reason.as_deref().unwrap_or("");
            Frame::Error(format!("{message}: {reason}").trim_end_matches(": ").to_owned())
        }
        other if OTHER_TYPES.contains(&other) => Frame::Other(other.to_owned()),
        other => return Err(FrameError::UnknownType(other.chars().take(64).collect())),
    };
    // Exchange sequences are per product and carried by the tick itself.
    Ok(ParsedFrame { frame, sequence_num: None })
}

fn ticker(msg: &Message<'_>, receive_time: DateTime<Utc>) -> Result<Tick, FrameError> {
    let tick = Tick {
        schema: TICK_SCHEMA,
        product_id: fields::required("product_id", &msg.product_id)?.to_owned(),
        exchange_time: fields::timestamp("time", msg.time.as_deref())?,
        receive_time,
        price: fields::price("price", msg.price.as_ref())?,
        best_bid: fields::price("best_bid", msg.best_bid.as_ref())?,
        best_ask: fields::price("best_ask", msg.best_ask.as_ref())?,
        best_bid_size: fields::size("best_bid_size", msg.best_bid_size.as_ref())?,
        best_ask_size: fields::size("best_ask_size", msg.best_ask_size.as_ref())?,
        last_size: fields::size("last_size", msg.last_size.as_ref())?,
        side: fields::side(msg.side.as_deref())?,
        trade_id: msg.trade_id,
        sequence: msg.sequence,
        source: Feed::Exchange,
    };
    fields::check_book(&tick)?;
    Ok(tick)
}
