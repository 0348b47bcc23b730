//! Recordings → [`Tick`]s, in the four layouts this project meets:
//!
//! - Exchange wrapper: `{"ts": <receive epoch s>, "pair": "BTC-USD", "raw": "<frame JSON as a string>"}`
//! - Advanced Trade ticker object: `{"timestamp": "<receive time>", "product_id", ..., "raw": {<ticker entry>}}`
//!   (the entry has no exchange time: the receive time stands in for it)
//! - Mirror (written by [`crate::sinks::mirror`]):
//!   `{"received_at": "<RFC 3339>", "feed": "exchange"|"advanced_trade", "frame": "<raw frame text>"}`
//! - Flat tick CSV ([`super::tick_csv`]): a header line naming `ts,product_id,price,best_bid,
//!   best_ask` (and optionally `bid_qty,ask_qty`), then one row per ticker update.
//!
//! The layout is recognized per line (a CSV header switches the rows after it to CSV), so files
//! may even be concatenated; [`open`] also reads any of them gzip-compressed. Non-ticker frames
//! are skipped and counted; malformed lines are yielded as errors (and counted) and reading
//! goes on.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::coinbase::{Frame, FrameError, FrameParser, TradeTicks, parse_ticker_object, parse_timestamp};
use super::tick_csv;
use crate::domain::{Feed, Tick};

/// The bundled Exchange recording (`data/coinbase/`): Exchange frames as the live feed sends
/// them, for the tests of the frame readers.
pub static EMBEDDED_EXCHANGE_RECORDING: &[u8] =
    include_bytes!("../../../data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");

/// The bundled market hour (`data/coinbase/market-hour-2025-11-25.csv.gz`), the default input
/// of `spikewatch run` and `replay`: BTC-USD, ETH-USD and SOL-USD trades with the book, 18:00 to
/// 19:00 UTC on 2025-11-25, merged by event time (gzip).
pub static EMBEDDED_MARKET_HOUR: &[u8] = include_bytes!("../../../data/coinbase/market-hour-2025-11-25.csv.gz");

/// The layouts a recording may have, for error messages.
pub const LAYOUTS: &str = "expected NDJSON lines with `raw` (Exchange wrapper or Advanced Trade ticker object) or \
    `frame` (mirror), or a flat tick CSV with a header naming ts,product_id,price,best_bid,best_ask; \
    any of them may be gzip-compressed";

/// A line that could not be turned into ticks.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("line {line}: {source}")]
    Frame { line: u64, source: FrameError },
    #[error("line {line}: not a known recording layout ({LAYOUTS})")]
    UnknownLayout { line: u64 },
    #[error("cannot read recording: {0}")]
    Io(#[from] std::io::Error),
}

impl RecordingError {
    /// Stable label: a [`FrameError::kind`], `unknown_layout` or `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordingError::Frame { source, .. } => source.kind(),
            RecordingError::UnknownLayout { .. } => "unknown_layout",
            RecordingError::Io(_) => "io",
        }
    }

    /// The same error `lines` lines further down (a block's line numbers → the file's).
    pub(crate) fn lines_down(self, lines: u64) -> Self {
        match self {
            RecordingError::Frame { line, source } => RecordingError::Frame { line: line + lines, source },
            RecordingError::UnknownLayout { line } => RecordingError::UnknownLayout { line: line + lines },
            io @ RecordingError::Io(_) => io,
        }
    }
}

/// What a reader has seen so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordingStats {
    /// Non-empty lines read.
    pub lines: u64,
    pub ticks: u64,
    /// Well-formed frames without tickers, by type (`subscriptions`, `heartbeat`, `error`, `other`).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Malformed lines, by [`RecordingError::kind`].
    pub errors: BTreeMap<&'static str, u64>,
}

impl RecordingStats {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Why an input gave no tick, with counts: `no tick in 4 lines (rejected: 2 crossed_book,
    /// 1 non_finite, 1 non_positive_price; skipped: none)`, then the layouts read.
    pub fn no_tick_message(&self, input: &str) -> String {
        format!(
            "{input}: no tick in {} lines (rejected: {}; skipped: {}): {LAYOUTS}",
            self.lines,
            by_count(&self.errors),
            by_count(&self.skipped)
        )
    }

    /// Adds the counts of a later part of the same input.
    pub fn add(&mut self, other: &RecordingStats) {
        self.lines += other.lines;
        self.ticks += other.ticks;
        for (kind, n) in &other.skipped {
            *self.skipped.entry(kind).or_default() += n;
        }
        for (kind, n) in &other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }
}

/// `3 crossed_book, 1 non_finite`: kinds by count, the most frequent first (`none` for none).
pub fn by_count(counts: &BTreeMap<&'static str, u64>) -> String {
    let mut kinds: Vec<(&str, u64)> = counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (*k, *n)).collect();
    if kinds.is_empty() {
        return "none".into();
    }
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    kinds.iter().map(|(kind, n)| format!("{n} {kind}")).collect::<Vec<_>>().join(", ")
}

/// Iterator over the ticks of a recording. Yields `Err` for each malformed line and continues;
/// only a read error ends it early.
pub struct RecordingReader<R> {
    reader: R,
    decoder: LineDecoder,
    buf: Vec<u8>,
    pending: VecDeque<Tick>,
    /// Each product's latest book, for Advanced Trade trades.
    books: TradeTicks,
    line: u64,
    stats: RecordingStats,
    done: bool,
}

/// Turns lines into frames, one at a time, in file order: the only state carried from line to
/// line is the flat tick CSV header in force (a header switches the rows after it to CSV).
pub(crate) struct LineDecoder {
    parser: FrameParser,
    /// Set by a flat tick CSV header: the lines after it are rows.
    csv: Option<tick_csv::Header>,
    /// Whether this decoder has met a header itself (rather than starting with one).
    own_header: bool,
    /// Whether a line was read as a CSV row or as malformed JSON before this decoder met a
    /// header: its meaning depended on the header the decoder started with.
    used_start_header: bool,
}

impl LineDecoder {
    /// A decoder for lines that follow `csv` (the header in force, if any).
    pub(crate) fn new(parser: FrameParser, csv: Option<tick_csv::Header>) -> Self {
        LineDecoder { parser, csv, own_header: false, used_start_header: false }
    }

    /// The last header among the lines decoded so far, if there was one.
    pub(crate) fn header_met(&self) -> Option<&tick_csv::Header> {
        self.csv.as_ref().filter(|_| self.own_header)
    }

    /// Whether a line's meaning depended on the header given to [`LineDecoder::new`].
    pub(crate) fn used_start_header(&self) -> bool {
        self.used_start_header
    }

    /// Decodes line number `line` (as read, line end included) and counts it in `stats`;
    /// `None` for a blank line or a CSV header.
    pub(crate) fn decode(
        &mut self,
        line_bytes: &[u8],
        line: u64,
        stats: &mut RecordingStats,
    ) -> Option<Result<Frame, RecordingError>> {
        let bytes = line_bytes.trim_ascii();
        if bytes.is_empty() {
            return None;
        }
        stats.lines += 1;
        // A JSON object is a frame line; otherwise a CSV header switches to rows, and without
        // one the line is reported as the malformed JSON it most likely is.
        let decoded = if bytes.first() == Some(&b'{') {
            decode_line(&self.parser, bytes, line)
        } else if let Some(header) = tick_csv::Header::parse(bytes) {
            self.csv = Some(header);
            self.own_header = true;
            return None;
        } else {
            self.used_start_header |= !self.own_header;
            match &self.csv {
                Some(header) => header
                    .tick(bytes)
                    .map(|tick| Frame::Tickers(vec![tick]))
                    .map_err(|source| RecordingError::Frame { line, source }),
                None => decode_line(&self.parser, bytes, line),
            }
        };
        match &decoded {
            Ok(Frame::Tickers(ticks)) => stats.ticks += ticks.len() as u64,
            // Each becomes a tick once paired with its product's book (dropped before the first).
            Ok(Frame::Trades(trades)) => stats.ticks += trades.len() as u64,
            Ok(other) => *stats.skipped.entry(skipped_label(other)).or_default() += 1,
            Err(err) => *stats.errors.entry(err.kind()).or_default() += 1,
        }
        Some(decoded)
    }
}

/// Every key of the three layouts; which ones are present tells the layout.
#[derive(Deserialize)]
struct Line<'a> {
    ts: Option<f64>,
    #[serde(borrow)]
    raw: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    received_at: Option<Cow<'a, str>>,
    feed: Option<Feed>,
    #[serde(borrow)]
    frame: Option<Cow<'a, str>>,
}

/// [`Line`] with `raw` read as a string: the Exchange wrapper layout.
#[derive(Deserialize)]
struct ExchangeLine<'a> {
    ts: Option<f64>,
    #[serde(borrow)]
    raw: Option<Cow<'a, str>>,
    // The other keys are read as in `Line`, so that a line reads as both or neither.
    #[serde(borrow, rename = "timestamp")]
    _timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "received_at")]
    _received_at: Option<Cow<'a, str>>,
    #[serde(rename = "feed")]
    _feed: Option<Feed>,
    #[serde(borrow)]
    frame: Option<Cow<'a, str>>,
}

impl<R: BufRead> RecordingReader<R> {
    pub fn new(reader: R) -> Self {
        Self::with_parser(reader, FrameParser::default())
    }

    pub fn with_parser(reader: R, parser: FrameParser) -> Self {
        RecordingReader {
            reader,
            decoder: LineDecoder::new(parser, None),
            buf: Vec::with_capacity(1024),
            pending: VecDeque::new(),
            books: TradeTicks::default(),
            line: 0,
            stats: RecordingStats::default(),
            done: false,
        }
    }

    pub fn stats(&self) -> &RecordingStats {
        &self.stats
    }

    /// Reads lines until one yields ticks or an error; `None` at end of input.
    fn fill(&mut self) -> Option<Result<(), RecordingError>> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    *self.stats.errors.entry("io").or_default() += 1;
                    return Some(Err(RecordingError::Io(err)));
                }
            }
            self.line += 1;
            match self.decoder.decode(&self.buf, self.line, &mut self.stats) {
                Some(Ok(Frame::Tickers(ticks))) => {
                    for tick in &ticks {
                        self.books.observe(tick);
                    }
                    self.pending.extend(ticks);
                    if !self.pending.is_empty() {
                        return Some(Ok(()));
                    }
                }
                Some(Ok(Frame::Trades(trades))) => {
                    self.pending.extend(trades.iter().filter_map(|t| self.books.tick(t, t.time)));
                    if !self.pending.is_empty() {
                        return Some(Ok(()));
                    }
                }
                None | Some(Ok(_)) => {}
                Some(Err(err)) => return Some(Err(err)),
            }
        }
    }
}

impl<R: BufRead> Iterator for RecordingReader<R> {
    type Item = Result<Tick, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(tick) = self.pending.pop_front() {
            return Some(Ok(tick));
        }
        if self.done {
            return None;
        }
        match self.fill() {
            None => {
                self.done = true;
                None
            }
            Some(Ok(())) => self.pending.pop_front().map(Ok),
            Some(Err(err)) => {
                if matches!(err, RecordingError::Io(_)) {
                    self.done = true;
                }
                Some(Err(err))
            }
        }
    }
}

fn skipped_label(frame: &Frame) -> &'static str {
    match frame {
        Frame::Tickers(_) => "tickers",
        Frame::Trades(_) => "trades",
        Frame::Heartbeat => "heartbeat",
        Frame::Subscriptions => "subscriptions",
        Frame::Error(_) => "error",
        Frame::Other(_) => "other",
    }
}

fn decode_line(parser: &FrameParser, bytes: &[u8], line: u64) -> Result<Frame, RecordingError> {
    let err = |source: FrameError| RecordingError::Frame { line, source };
    // A wrapper line holds one frame plus a little metadata; escaping can double a frame's size.
    let line_limit = parser.max_frame_bytes.saturating_mul(2).saturating_add(4096);
    if bytes.len() > line_limit {
        return Err(err(FrameError::Oversized { len: bytes.len(), limit: line_limit }));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| err(FrameError::InvalidJson(format!("not UTF-8: {e}"))))?;
    // Exchange wrapper lines (all lines of most recordings) are read in one pass, their frame
    // unescaped in place (simd-json). A line that does not read so (another layout, a malformed
    // line) is read again below, the general way (serde_json), which reports exactly what it
    // always did. The fuzz property `recording_reader` checks that both ways agree.
    if raw_is_a_string(text)
        && let Some(decoded) = decode_exchange_line(parser, bytes)
    {
        return decoded.map_err(err);
    }
    decode_any_layout(parser, text, line)
}

thread_local! {
    /// A copy of the line for simd-json to parse in place, and its reusable buffers.
    static EXCHANGE_SCRATCH: RefCell<(Vec<u8>, simd_json::Buffers)> =
        RefCell::new((Vec::with_capacity(1024), simd_json::Buffers::default()));
}

/// An Exchange wrapper line, read by simd-json: the frame string is unescaped in place, without
/// a copy. `None` when the line does not read as one (then the general path reads it).
fn decode_exchange_line(parser: &FrameParser, bytes: &[u8]) -> Option<Result<Frame, FrameError>> {
    EXCHANGE_SCRATCH.with_borrow_mut(|(scratch, buffers)| {
        scratch.clear();
        scratch.extend_from_slice(bytes);
        let rec = simd_json::serde::from_slice_with_buffers::<ExchangeLine<'_>>(scratch, buffers).ok()?;
        if rec.frame.is_some() {
            return None;
        }
        let frame = rec.raw?;
        Some(epoch_seconds(rec.ts).and_then(|received_at| parser.parse(Feed::Exchange, &frame, received_at)))
    })
}

/// The general path's reading of a line that [`decode_exchange_line`] reads too; for the fuzz
/// property that checks both agree.
pub(crate) fn decode_exchange_line_both_ways(bytes: &[u8]) -> Option<(String, String)> {
    let parser = FrameParser::default();
    let text = std::str::from_utf8(bytes).ok()?;
    let fast = decode_exchange_line(&parser, bytes)?;
    let general = decode_any_layout(&parser, text, 1);
    Some((format!("{:?}", fast.map_err(|source| RecordingError::Frame { line: 1, source })), format!("{general:?}")))
}

/// A line of any layout (through [`Line`]).
fn decode_any_layout(parser: &FrameParser, text: &str, line: u64) -> Result<Frame, RecordingError> {
    let err = |source: FrameError| RecordingError::Frame { line, source };
    let rec: Line<'_> = serde_json::from_str(text).map_err(|e| err(FrameError::from_json(e)))?;

    if let Some(frame) = rec.frame.as_deref() {
        let feed = rec.feed.ok_or_else(|| err(FrameError::MissingField("feed")))?;
        let received_at = time_field("received_at", rec.received_at.as_deref()).map_err(err)?;
        return parser.parse(feed, frame, received_at).map_err(err);
    }
    let raw = rec.raw.ok_or(RecordingError::UnknownLayout { line })?.get();
    if raw.starts_with('"') {
        let received_at = epoch_seconds(rec.ts).map_err(err)?;
        let frame: Cow<'_, str> = serde_json::from_str(raw).map_err(|e| err(FrameError::from_json(e)))?;
        return parser.parse(Feed::Exchange, &frame, received_at).map_err(err);
    }
    if raw.starts_with('{') {
        let received_at = time_field("timestamp", rec.timestamp.as_deref()).map_err(err)?;
        let tick = parse_ticker_object(raw, received_at, received_at).map_err(err)?;
        return Ok(Frame::Tickers(vec![tick]));
    }
    Err(RecordingError::UnknownLayout { line })
}

/// Whether the line's `"raw"` key is followed by a string, as in the Exchange wrapper layout
/// (a guess to pick the faster reading: `"raw"` could be a value elsewhere, which only costs a
/// second reading).
fn raw_is_a_string(text: &str) -> bool {
    memchr::memmem::find(text.as_bytes(), b"\"raw\"").is_some_and(|at| {
        let after = text[at + 5..].trim_ascii_start();
        after.strip_prefix(':').is_some_and(|value| value.trim_ascii_start().starts_with('"'))
    })
}

fn time_field(field: &'static str, value: Option<&str>) -> Result<DateTime<Utc>, FrameError> {
    let text = value.ok_or(FrameError::MissingField(field))?;
    parse_timestamp(text).ok_or_else(|| FrameError::InvalidTimestamp { field, value: text.chars().take(64).collect() })
}

fn epoch_seconds(ts: Option<f64>) -> Result<DateTime<Utc>, FrameError> {
    let ts = ts.ok_or(FrameError::MissingField("ts"))?;
    if !ts.is_finite() {
        return Err(FrameError::NonFinite { field: "ts", value: ts.to_string() });
    }
    let secs = ts.floor();
    let nanos = ((ts - secs) * 1e9).round().min(999_999_999.0) as u32;
    if secs < i64::MIN as f64 || secs > i64::MAX as f64 {
        return Err(FrameError::InvalidTimestamp { field: "ts", value: ts.to_string() });
    }
    DateTime::from_timestamp(secs as i64, nanos)
        .ok_or_else(|| FrameError::InvalidTimestamp { field: "ts", value: ts.to_string() })
}

/// A recording file's bytes, decompressed when they are gzip.
pub type RecordingInput = Box<dyn BufRead + Send>;

/// Opens a recording file, plain or gzip-compressed (recognized by its magic bytes, whatever
/// the file name).
pub fn open(path: impl AsRef<Path>) -> std::io::Result<RecordingReader<RecordingInput>> {
    open_input(path).map(RecordingReader::new)
}

/// The bytes of a recording file, decompressed when they are gzip (recognized by their magic
/// bytes, whatever the file name).
pub fn open_input(path: impl AsRef<Path>) -> std::io::Result<RecordingInput> {
    let mut file = BufReader::with_capacity(256 * 1024, File::open(path.as_ref())?);
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let input: RecordingInput = if gzip {
        Box::new(BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    };
    Ok(input)
}

/// Reader over the bundled market hour (48,562 trades of BTC-USD, ETH-USD and SOL-USD with the
/// book, 2025-11-25 18:00 → 19:00 UTC), the default input of `run` and `replay`.
pub fn embedded() -> RecordingReader<BufReader<flate2::bufread::MultiGzDecoder<&'static [u8]>>> {
    RecordingReader::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(EMBEDDED_MARKET_HOUR)))
}

/// Reader over the bundled Exchange recording (5,996 BTC-USD tickers, 2025-11-12 → 14).
pub fn embedded_exchange() -> RecordingReader<&'static [u8]> {
    RecordingReader::new(EMBEDDED_EXCHANGE_RECORDING)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass reading of Exchange wrapper lines gives what the general reading gives.
    #[test]
    fn exchange_lines_read_as_in_the_general_layout() {
        let ticker = r#"{\"type\":\"ticker\",\"sequence\":1,\"product_id\":\"BTC-USD\",\"price\":\"5\",\"best_bid\":\"4.5\",\"best_ask\":\"5.5\",\"time\":\"2025-11-12T07:20:11.615272Z\"}"#;
        let mut lines: Vec<String> =
            std::str::from_utf8(EMBEDDED_EXCHANGE_RECORDING).unwrap().lines().take(50).map(str::to_owned).collect();
        lines.extend(
            [
                format!(r#"{{"ts": 1762932011.5, "pair": "BTC-USD", "raw" : "{ticker}"}}"#),
                format!(r#"{{"raw":"{ticker}"}}"#),
                format!(r#"{{"ts":"soon","raw":"{ticker}"}}"#),
                format!(r#"{{"ts":1,"raw":"{ticker}","raw":"{ticker}"}}"#),
                format!(r#"{{"ts":1,"raw":"{ticker}"}} trailing"#),
                format!(r#"{{"ts":1,"raw":"{ticker}","feed":"exchange","frame":"{ticker}","received_at":"2025-11-12T07:20:11Z"}}"#),
                format!(r#"{{"ts":1,"raw":"{ticker}","timestamp":"2025-11-12T07:20:11Z"}}"#),
                format!(r#"{{"ts":1,"raw":"{ticker}","feed":"neither"}}"#),
                r#"{"ts":1,"raw":"{\"type\":\"ticker\",\"product_id\":\"\ud800\"}"}"#.to_owned(),
                r#"{"ts":1,"raw":"{\"type\":\"heartbeat\",\"note\":\"\u00e9\t\/\"}"}"#.to_owned(),
                r#"{"ts":1,"raw":"{\"type\":\"heartbeat\"}","pair":"raw"}"#.to_owned(),
                r#"{"ts":1,"raw":"not a frame"}"#.to_owned(),
                r#"{"ts":1,"raw":""}"#.to_owned(),
                r#"{"ts":1,"raw":null}"#.to_owned(),
                r#"{"ts":1,"raw":12}"#.to_owned(),
                r#"{"ts":1,"raw":"unterminated}"#.to_owned(),
                r#"{"timestamp":"2025-11-12T07:20:11Z","raw":{"product_id":"BTC-USD","price":"5","best_bid":"4.5","best_ask":"5.5"}}"#.to_owned(),
                r#"{"pair":"\"raw\": \"x\"","raw":{"price":"5"}}"#.to_owned(),
            ],
        );
        let parser = FrameParser::default();
        for (i, line) in lines.iter().enumerate() {
            let number = i as u64 + 1;
            let general = decode_any_layout(&parser, line, number);
            let decoded = decode_line(&parser, line.as_bytes(), number);
            assert_eq!(format!("{decoded:?}"), format!("{general:?}"), "{line}");
        }
    }
}
