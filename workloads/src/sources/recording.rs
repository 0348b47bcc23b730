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
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::coinbase::{Frame, FrameError, FrameParser, parse_ticker_object, parse_timestamp};
use super::tick_csv;
use crate::domain::{Feed, Tick};

/// The bundled Exchange recording (`data/coinbase/`), the default input of `spikewatch run`.
pub static EMBEDDED_EXCHANGE_RECORDING: &[u8] =
    include_bytes!("../../../data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");

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
}

/// Iterator over the ticks of a recording. Yields `Err` for each malformed line and continues;
/// only a read error ends it early.
pub struct RecordingReader<R> {
    reader: R,
    parser: FrameParser,
    buf: Vec<u8>,
    pending: VecDeque<Tick>,
    line: u64,
    stats: RecordingStats,
    done: bool,
    /// Set by a flat tick CSV header: the lines after it are rows.
    csv: Option<tick_csv::Header>,
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

impl<R: BufRead> RecordingReader<R> {
    pub fn new(reader: R) -> Self {
        Self::with_parser(reader, FrameParser::default())
    }

    pub fn with_parser(reader: R, parser: FrameParser) -> Self {
        RecordingReader {
            reader,
            parser,
            buf: Vec::with_capacity(1024),
            pending: VecDeque::new(),
            line: 0,
            stats: RecordingStats::default(),
            done: false,
            csv: None,
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
            let bytes = self.buf.trim_ascii();
            if bytes.is_empty() {
                continue;
            }
            self.stats.lines += 1;
            let line = self.line;
            // A JSON object is a frame line; otherwise a CSV header switches to rows, and without
            // one the line is reported as the malformed JSON it most likely is.
            let decoded = if bytes.first() == Some(&b'{') {
                decode_line(&self.parser, bytes, line)
            } else if let Some(header) = tick_csv::Header::parse(bytes) {
                self.csv = Some(header);
                continue;
            } else {
                match &self.csv {
                    Some(header) => header
                        .tick(bytes)
                        .map(|tick| Frame::Tickers(vec![tick]))
                        .map_err(|source| RecordingError::Frame { line, source }),
                    None => decode_line(&self.parser, bytes, line),
                }
            };
            match decoded {
                Ok(Frame::Tickers(ticks)) => {
                    self.stats.ticks += ticks.len() as u64;
                    self.pending.extend(ticks);
                    if !self.pending.is_empty() {
                        return Some(Ok(()));
                    }
                }
                Ok(other) => *self.stats.skipped.entry(skipped_label(&other)).or_default() += 1,
                Err(err) => {
                    *self.stats.errors.entry(err.kind()).or_default() += 1;
                    return Some(Err(err));
                }
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
    let mut file = BufReader::with_capacity(256 * 1024, File::open(path.as_ref())?);
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let input: RecordingInput = if gzip {
        Box::new(BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    };
    Ok(RecordingReader::new(input))
}

/// Reader over the bundled Exchange recording (5,996 BTC-USD tickers, 2025-11-12 → 14).
pub fn embedded() -> RecordingReader<&'static [u8]> {
    RecordingReader::new(EMBEDDED_EXCHANGE_RECORDING)
}
