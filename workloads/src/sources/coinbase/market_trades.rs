//! Coinbase Advanced Trade `market_trades`: one entry per trade, without the book. The Advanced
//! Trade ticker carries no trade, so the client subscribes to both channels, and each trade
//! becomes a [`Tick`] with the product's latest best bid and ask ([`TradeTicks`]): the same
//! per-product state then sees trades from either feed, as the Exchange ticker delivers them.
//!
//! ```json
//! {"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z",
//!  "sequence_num":0,"events":[{"type":"update","trades":[{"trade_id":"000000000",
//!  "product_id":"ETH-USD","price":"1260.01","size":"0.3","side":"BUY",
//!  "time":"2019-08-14T20:42:27.265Z"}]}]}
//! ```
//!
//! `side` is the maker's side, as in the Exchange `match` channel (a "SELL" trade is a resting
//! sell order lifted by a buyer); the tick carries the taker's, like the Exchange ticker.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::FrameError;
use super::fields::{self, Decimal};
use crate::domain::{Feed, Side, TICK_SCHEMA, Tick};

/// One trade of the `market_trades` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketTrade {
    pub product_id: String,
    pub trade_id: u64,
    pub price: f64,
    pub size: f64,
    /// The taker's (aggressor's) side.
    pub taker_side: Side,
    pub time: DateTime<Utc>,
}

#[derive(Deserialize)]
pub(super) struct TradeEntry<'a> {
    #[serde(borrow)]
    trade_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    product_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    price: Option<Decimal<'a>>,
    #[serde(borrow)]
    size: Option<Decimal<'a>>,
    #[serde(borrow)]
    side: Option<Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
}

pub(super) fn to_trade(entry: &TradeEntry<'_>) -> Result<MarketTrade, FrameError> {
    let trade_id = fields::required("trade_id", &entry.trade_id)?;
    let trade_id = trade_id
        .parse::<u64>()
        .map_err(|_| FrameError::InvalidNumber { field: "trade_id", value: trade_id.chars().take(64).collect() })?;
    let size = fields::size("size", entry.size.as_ref())?.ok_or(FrameError::MissingField("size"))?;
    let taker_side = match fields::required("side", &entry.side)? {
        "BUY" | "buy" => Side::Sell,
        "SELL" | "sell" => Side::Buy,
        other => {
            return Err(FrameError::InvalidField {
                field: "side",
                reason: format!("{:?}", other.chars().take(64).collect::<String>()),
            });
        }
    };
    Ok(MarketTrade {
        product_id: fields::required("product_id", &entry.product_id)?.to_owned(),
        trade_id,
        price: fields::price("price", entry.price.as_ref())?,
        size,
        taker_side,
        time: fields::timestamp("time", entry.time.as_deref())?,
    })
}

/// The book a trade is paired with: the product's latest ticker.
#[derive(Debug, Clone, Copy)]
struct Book {
    best_bid: f64,
    best_ask: f64,
    best_bid_size: Option<f64>,
    best_ask_size: Option<f64>,
}

/// Turns trades into ticks with each product's latest book. Fed every tick and trade of a
/// stream in order (the live client, a recording reader).
#[derive(Debug, Default)]
pub struct TradeTicks {
    books: HashMap<String, Book>,
}

impl TradeTicks {
    /// Remembers the book of a ticker.
    pub fn observe(&mut self, tick: &Tick) {
        let book = Book {
            best_bid: tick.best_bid,
            best_ask: tick.best_ask,
            best_bid_size: tick.best_bid_size,
            best_ask_size: tick.best_ask_size,
        };
        match self.books.get_mut(tick.product_id.as_str()) {
            Some(known) => *known = book,
            None => {
                self.books.insert(tick.product_id.clone(), book);
            }
        }
    }

    /// The trade as a tick at its own time; `None` before the product's first ticker (no book
    /// to pair it with: the trade is dropped, and counted by the caller).
    pub fn tick(&self, trade: &MarketTrade, receive_time: DateTime<Utc>) -> Option<Tick> {
        let book = self.books.get(trade.product_id.as_str())?;
        Some(Tick {
            schema: TICK_SCHEMA,
            product_id: trade.product_id.clone(),
            exchange_time: trade.time,
            receive_time,
            price: trade.price,
            best_bid: book.best_bid,
            best_ask: book.best_ask,
            best_bid_size: book.best_bid_size,
            best_ask_size: book.best_ask_size,
            last_size: Some(trade.size),
            side: Some(trade.taker_side),
            trade_id: Some(trade.trade_id),
            sequence: None,
            source: Feed::AdvancedTrade,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Frame, parse_frame};
    use super::*;

    const TRADES: &str = r#"{"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z","sequence_num":4,"events":[{"type":"update","trades":[{"trade_id":"12345","product_id":"ETH-USD","price":"1260.01","size":"0.3","side":"SELL","time":"2023-02-09T20:19:35.1Z"},{"trade_id":"12346","product_id":"ETH-USD","price":"1260.00","size":"1.5","side":"BUY","time":"2023-02-09T20:19:35.1Z"}]}]}"#;

    fn trades() -> Vec<MarketTrade> {
        match parse_frame(Feed::AdvancedTrade, TRADES, Utc::now()).unwrap() {
            Frame::Trades(trades) => trades,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn trades_carry_the_takers_side() {
        let t = trades();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].trade_id, t[0].price, t[0].size), (12345, 1260.01, 0.3));
        assert_eq!(t[0].taker_side, Side::Buy, "a resting sell lifted by a buyer");
        assert_eq!(t[1].taker_side, Side::Sell);
        assert_eq!(t[0].time.to_rfc3339(), "2023-02-09T20:19:35.100+00:00");
    }

    #[test]
    fn a_trade_becomes_a_tick_with_the_latest_book() {
        let mut book = TradeTicks::default();
        let t = trades();
        assert!(book.tick(&t[0], Utc::now()).is_none(), "no ticker of the product yet");
        let ticker = Tick {
            schema: TICK_SCHEMA,
            product_id: "ETH-USD".into(),
            exchange_time: t[0].time,
            receive_time: t[0].time,
            price: 1260.0,
            best_bid: 1260.0,
            best_ask: 1260.01,
            best_bid_size: Some(2.0),
            best_ask_size: Some(0.5),
            last_size: None,
            side: None,
            trade_id: None,
            sequence: Some(3),
            source: Feed::AdvancedTrade,
        };
        book.observe(&ticker);
        let tick = book.tick(&t[0], Utc::now()).unwrap();
        assert_eq!((tick.best_bid, tick.best_ask, tick.best_ask_size), (1260.0, 1260.01, Some(0.5)));
        assert_eq!(
            (tick.price, tick.last_size, tick.side, tick.trade_id),
            (1260.01, Some(0.3), Some(Side::Buy), Some(12345))
        );
    }

    #[test]
    fn bad_trades_are_errors_with_the_field() {
        for (from, to, kind) in [
            (r#""trade_id":"12345""#, r#""trade_id":"x1""#, "invalid_number"),
            (r#""side":"SELL""#, r#""side":"HOLD""#, "invalid_field"),
            (r#""size":"0.3""#, r#""size":"-0.3""#, "negative_size"),
            (r#""price":"1260.01""#, r#""price":"0""#, "non_positive_price"),
        ] {
            let text = TRADES.replacen(from, to, 1);
            let err = parse_frame(Feed::AdvancedTrade, &text, Utc::now()).unwrap_err();
            assert_eq!(err.kind(), kind, "{to}");
        }
    }
}
