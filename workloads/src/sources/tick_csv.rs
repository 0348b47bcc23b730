//! The flat tick CSV layout of the training recordings (`data/coinbase/ticks/`): a header
//! `ts,product_id,price,best_bid,best_ask,bid_qty,ask_qty,volume_24h`, optionally followed by the
//! trade columns `last_size,side,trade_id,sequence`, then one row per ticker update. `ts` is the
//! event time (RFC 3339; without an offset it is read as UTC); the sizes may be empty (the source
//! did not keep them). `side` is the taker's side (`buy` | `sell`), as on the Exchange feed's
//! ticker. Columns are found by name, so their order may vary and extra columns are ignored.
//!
//! A file with a `trade_id` column was recorded from the Exchange ticker channel, where every
//! message is caused by a trade: its ticks carry the trade and are marked [`Feed::Exchange`], so
//! trade detection, duplicate and gap counting work on it as on live frames. Without trade
//! columns the ticks carry no trade ([`Feed::AdvancedTrade`], what those recorders subscribed to).

use std::borrow::Cow;

use super::coinbase::FrameError;
use super::coinbase::fields::{Decimal, check_book, price, side, size, timestamp};
use crate::domain::{Feed, TICK_SCHEMA, Tick};

/// Columns a flat tick CSV must have.
pub const REQUIRED_COLUMNS: [&str; 5] = ["ts", "product_id", "price", "best_bid", "best_ask"];

/// Positions of the known columns in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    ts: usize,
    product_id: usize,
    price: usize,
    best_bid: usize,
    best_ask: usize,
    bid_qty: Option<usize>,
    ask_qty: Option<usize>,
    last_size: Option<usize>,
    side: Option<usize>,
    trade_id: Option<usize>,
    sequence: Option<usize>,
}

/// One CSV line into its fields. Rows of numbers and ids have no quotes and are split
/// directly; a line with quotes goes through the `csv` crate (RFC 4180 quoting).
fn fields(line: &[u8]) -> Result<Vec<String>, FrameError> {
    if !line.contains(&b'"') {
        let text = std::str::from_utf8(line)
            .map_err(|e| FrameError::InvalidField { field: "csv", reason: format!("not UTF-8: {e}") })?;
        return Ok(text.split(',').map(|f| f.trim().to_string()).collect());
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(line);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(record.iter().map(|f| f.trim().to_string()).collect()),
        Ok(false) => Ok(vec![]),
        Err(e) => Err(FrameError::InvalidField { field: "csv", reason: e.to_string() }),
    }
}

impl Header {
    /// The header of `line`, or `None` when the line is not a flat tick CSV header.
    pub fn parse(line: &[u8]) -> Option<Header> {
        let names = fields(line).ok()?;
        let at = |name: &str| names.iter().position(|n| n == name);
        Some(Header {
            ts: at("ts")?,
            product_id: at("product_id")?,
            price: at("price")?,
            best_bid: at("best_bid")?,
            best_ask: at("best_ask")?,
            bid_qty: at("bid_qty"),
            ask_qty: at("ask_qty"),
            last_size: at("last_size"),
            side: at("side"),
            trade_id: at("trade_id"),
            sequence: at("sequence"),
        })
    }

    /// One row into a [`Tick`] (event time = receive time = `ts`).
    pub fn tick(&self, line: &[u8]) -> Result<Tick, FrameError> {
        let row = fields(line)?;
        let cell = |i: usize| row.get(i).map(String::as_str).filter(|s| !s.is_empty());
        let decimal = |i: usize| cell(i).map(|s| Decimal::Text(Cow::Borrowed(s)));
        let product_id = cell(self.product_id).ok_or(FrameError::MissingField("product_id"))?;
        let time = timestamp("ts", cell(self.ts))?;
        let tick = Tick {
            schema: TICK_SCHEMA,
            product_id: product_id.to_string(),
            exchange_time: time,
            receive_time: time,
            price: price("price", decimal(self.price).as_ref())?,
            best_bid: price("best_bid", decimal(self.best_bid).as_ref())?,
            best_ask: price("best_ask", decimal(self.best_ask).as_ref())?,
            best_bid_size: self.bid_qty.map_or(Ok(None), |i| size("bid_qty", decimal(i).as_ref()))?,
            best_ask_size: self.ask_qty.map_or(Ok(None), |i| size("ask_qty", decimal(i).as_ref()))?,
            last_size: self.last_size.map_or(Ok(None), |i| size("last_size", decimal(i).as_ref()))?,
            side: side(self.side.and_then(cell))?,
            trade_id: self.trade_id.map_or(Ok(None), |i| counter("trade_id", cell(i)))?,
            sequence: self.sequence.map_or(Ok(None), |i| counter("sequence", cell(i)))?,
            source: if self.trade_id.is_some() { Feed::Exchange } else { Feed::AdvancedTrade },
        };
        check_book(&tick)?;
        Ok(tick)
    }
}

/// An optional non-negative integer column (`trade_id`, `sequence`); empty is absent.
fn counter(field: &'static str, cell: Option<&str>) -> Result<Option<u64>, FrameError> {
    cell.map(|text| {
        text.parse::<u64>().map_err(|_| FrameError::InvalidNumber { field, value: text.chars().take(64).collect() })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"ts,product_id,price,best_bid,best_ask,bid_qty,ask_qty,volume_24h";

    #[test]
    fn rows_become_ticks() {
        let header = Header::parse(HEADER).unwrap();
        let tick = header
            .tick(b"2025-11-30T23:56:11.637517Z,BTC-USD,85748.0,85747.97,85747.98,3.711e-05,0.08305734,7669.05")
            .unwrap();
        assert_eq!(tick.product_id, "BTC-USD");
        assert_eq!(tick.exchange_time.to_rfc3339(), "2025-11-30T23:56:11.637517+00:00");
        assert_eq!((tick.best_bid, tick.best_ask), (85747.97, 85747.98));
        assert_eq!(tick.best_bid_size, Some(3.711e-05));
        let no_sizes = header.tick(b"2026-04-06T15:02:34.590029Z,BTC-USD,69705.9,69705.9,69705.91,,,7640.3").unwrap();
        assert_eq!((no_sizes.best_bid_size, no_sizes.best_ask_size), (None, None));
    }

    #[test]
    fn trade_columns_become_the_ticks_trade() {
        let header = Header::parse(
            b"ts,product_id,price,best_bid,best_ask,bid_qty,ask_qty,volume_24h,last_size,side,trade_id,sequence",
        )
        .unwrap();
        let tick = header
            .tick(b"2025-11-25T00:00:04.172063Z,BTC-USD,88241.78,88241.77,88241.78,0.14347223,0.08737142,14865.26,0.00017939,buy,910837755,116714327775")
            .unwrap();
        assert_eq!(tick.last_size, Some(0.00017939));
        assert_eq!(tick.side, Some(crate::domain::Side::Buy));
        assert_eq!((tick.trade_id, tick.sequence), (Some(910837755), Some(116714327775)));
        assert_eq!(tick.source, Feed::Exchange);
        let sell = header.tick(b"2025-11-25T00:00:05Z,BTC-USD,5,4,6,1,1,1,0.5,sell,7,8").unwrap();
        assert_eq!(sell.side, Some(crate::domain::Side::Sell));
        let untraded = header.tick(b"2025-11-25T00:00:05Z,BTC-USD,5,4,6,1,1,1,,,,").unwrap();
        assert_eq!((untraded.last_size, untraded.side, untraded.trade_id, untraded.sequence), (None, None, None, None));
        let cases: [(&[u8], &str); 4] = [
            (b"2025-11-25T00:00:05Z,BTC-USD,5,4,6,1,1,1,-0.5,buy,7,8", "negative_size"),
            (b"2025-11-25T00:00:05Z,BTC-USD,5,4,6,1,1,1,0.5,hold,7,8", "invalid_field"),
            (b"2025-11-25T00:00:05Z,BTC-USD,5,4,6,1,1,1,0.5,buy,-7,8", "invalid_number"),
            (b"2025-11-25T00:00:05Z,BTC-USD,5,4,6,1,1,1,0.5,buy,7,x", "invalid_number"),
        ];
        for (row, kind) in cases {
            let err = header.tick(row).unwrap_err();
            assert_eq!(err.kind(), kind, "{}: {err}", String::from_utf8_lossy(row));
        }
        let old = Header::parse(HEADER).unwrap().tick(b"2025-11-30T23:56:11Z,BTC-USD,5,4,6,1,1,1").unwrap();
        assert_eq!((old.trade_id, old.source), (None, Feed::AdvancedTrade));
    }

    #[test]
    fn columns_are_found_by_name() {
        let header = Header::parse(b"product_id,best_ask,best_bid,price,ts").unwrap();
        let tick = header.tick(b"ETH-USD,2001,2000,2000.5,2026-04-04T03:19:00").unwrap();
        assert_eq!((tick.product_id.as_str(), tick.best_bid, tick.best_ask), ("ETH-USD", 2000.0, 2001.0));
        assert!(Header::parse(b"time,symbol,last").is_none(), "not this layout");
        assert!(Header::parse(br#"{"ts": 1}"#).is_none());
    }

    #[test]
    fn quoted_fields_are_unquoted() {
        let header = Header::parse(br#""ts","product_id","price","best_bid","best_ask""#).unwrap();
        let tick = header.tick(br#""2026-04-04T03:19:00Z","BTC-USD","5","4.5","5.5""#).unwrap();
        assert_eq!((tick.product_id.as_str(), tick.price), ("BTC-USD", 5.0));
    }

    #[test]
    fn bad_rows_are_errors_with_the_field() {
        let header = Header::parse(HEADER).unwrap();
        let cases: [(&[u8], &str); 6] = [
            (b"2025-11-30T23:56:11Z,BTC-USD,-1,1,2,,,", "non_positive_price"),
            (b"2025-11-30T23:56:11Z,BTC-USD,NaN,1,2,,,", "non_finite"),
            (b"2025-11-30T23:56:11Z,BTC-USD,5,3,2,,,", "crossed_book"),
            (b"yesterday,BTC-USD,5,1,2,,,", "invalid_timestamp"),
            (b"2025-11-30T23:56:11Z,,5,1,2,,,", "missing_field"),
            (b"2025-11-30T23:56:11Z,BTC-USD,5,1,2,-3,,", "negative_size"),
        ];
        for (row, kind) in cases {
            let err = header.tick(row).unwrap_err();
            assert_eq!(err.kind(), kind, "{}: {err}", String::from_utf8_lossy(row));
        }
    }
}
