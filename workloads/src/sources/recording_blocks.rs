//! A recording read block-parallel: its bytes are cut into blocks at line ends, the blocks are
//! parsed on worker threads and handed on in file order. The result is what
//! [`RecordingReader`](super::recording::RecordingReader) yields line by line: the same ticks in
//! the same order, the same errors with the same line numbers, the same [`RecordingStats`].
//!
//! The one thing a line's meaning can depend on is the flat tick CSV header in force (a header
//! switches the rows after it to CSV). A worker cannot know the header in force where its block
//! starts, so it assumes the one on the first line of the input (or none). A block with a line
//! that depended on that assumption (a row or non-JSON line before any header of its own) is
//! parsed again, in order, when the header actually in force turns out different.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use super::coinbase::{Frame, FrameParser, MarketTrade, TradeTicks};
use super::recording::{LineDecoder, RecordingError, RecordingStats};
use super::tick_csv::Header;
use crate::domain::Tick;

/// How a recording is cut up and parsed.
#[derive(Debug, Clone, Copy)]
pub struct BlockOptions {
    /// Bytes per block; a block ends at the last line end within it (a longer line makes a
    /// longer block).
    pub block_bytes: usize,
    /// Parsing threads.
    pub workers: usize,
}

impl Default for BlockOptions {
    /// 1 MiB blocks (about 2,000 Exchange wrapper lines), one worker per available core.
    fn default() -> Self {
        BlockOptions { block_bytes: 1 << 20, workers: std::thread::available_parallelism().map_or(1, usize::from) }
    }
}

/// One block's ticks, in file order, and the errors of its malformed lines (file line numbers).
#[derive(Debug, Default)]
pub struct ParsedBlock {
    pub ticks: Vec<Tick>,
    pub errors: Vec<RecordingError>,
}

/// Reads `input` to its end, handing each block's ticks and errors to `sink` in file order.
/// Malformed lines are counted and reported, not fatal; a read error ends reading (the blocks
/// before it have been handed on).
pub fn read_blocks<R: Read + Send>(
    input: R,
    parser: FrameParser,
    options: BlockOptions,
    mut sink: impl FnMut(ParsedBlock),
) -> io::Result<RecordingStats> {
    let workers = options.workers.max(1);
    let (jobs, queued) = sync_channel::<Job>(workers);
    // Shared by the workers: once they are all gone, queueing fails instead of blocking.
    let queued = Arc::new(Mutex::new(queued));
    // The results, in the order of the blocks: one receiver per block.
    let (in_order, results) = sync_channel::<Receiver<BlockResult>>(2 * workers);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let queued = Arc::clone(&queued);
            scope.spawn(move || work(&queued, parser));
        }
        drop(queued);
        let splitter = scope.spawn(move || split(input, options.block_bytes, &jobs, &in_order));
        let mut stats = RecordingStats::default();
        // Line number of the last line before the current block, and the header in force there.
        let mut lines_before = 0u64;
        let mut header: Option<Header> = None;
        let mut books = TradeTicks::default();
        for result in results {
            // A worker gone without its result has panicked: the scope re-raises that.
            let Ok(mut block) = result.recv() else { break };
            if block.used_start_header && block.start_header != header {
                block = parse_block(block.bytes, parser, header.clone());
            }
            stats.add(&block.stats);
            let errors = block.errors.into_iter().map(|err| err.lines_down(lines_before)).collect();
            lines_before += block.lines;
            if let Some(met) = block.header_met {
                header = Some(met);
            }
            let ticks = pair_trades(block.ticks, block.trades, &mut books);
            sink(ParsedBlock { ticks, errors });
        }
        splitter.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok(stats)
    })
}

/// The block's ticks with its trades turned into ticks at their places, each paired with its
/// product's latest book; `books` carries the books from block to block.
fn pair_trades(ticks: Vec<Tick>, trades: Vec<(usize, MarketTrade)>, books: &mut TradeTicks) -> Vec<Tick> {
    if trades.is_empty() {
        for tick in &ticks {
            books.observe(tick);
        }
        return ticks;
    }
    let mut out = Vec::with_capacity(ticks.len() + trades.len());
    let mut trades = trades.into_iter().peekable();
    for (i, tick) in ticks.into_iter().enumerate() {
        while let Some((_, trade)) = trades.next_if(|(at, _)| *at == i) {
            out.extend(books.tick(&trade, trade.time));
        }
        books.observe(&tick);
        out.push(tick);
    }
    out.extend(trades.filter_map(|(_, trade)| books.tick(&trade, trade.time)));
    out
}

/// A block to parse, with the header assumed in force at its start and where its result goes.
struct Job {
    bytes: Vec<u8>,
    start_header: Option<Header>,
    result: SyncSender<BlockResult>,
}

/// A parsed block, with what the in-order side needs to check and place it.
struct BlockResult {
    ticks: Vec<Tick>,
    /// Advanced Trade trades, each with the number of the block's ticks before it: the in-order
    /// side pairs them with the latest book ([`TradeTicks`]), which may lie in an earlier block.
    trades: Vec<(usize, MarketTrade)>,
    /// Line numbers counted from the block's first line.
    errors: Vec<RecordingError>,
    stats: RecordingStats,
    /// Lines in the block, blank ones included.
    lines: u64,
    start_header: Option<Header>,
    /// The last header among the block's lines, if it has one.
    header_met: Option<Header>,
    used_start_header: bool,
    /// The block's text, kept only when it may have to be parsed again.
    bytes: Vec<u8>,
}

fn work(queued: &Mutex<Receiver<Job>>, parser: FrameParser) {
    loop {
        // The lock is held only while waiting for a job, not while parsing one.
        let job = match queued.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(Job { bytes, start_header, result }) = job else { return };
        // The in-order side is gone only when it stopped early; nothing left to do then.
        let _ = result.send(parse_block(bytes, parser, start_header));
    }
}

/// Cuts `input` into blocks and queues them, stopping at end of input, at a read error or
/// when the other side is gone.
fn split<R: Read>(
    input: R,
    block_bytes: usize,
    jobs: &SyncSender<Job>,
    in_order: &SyncSender<Receiver<BlockResult>>,
) -> io::Result<()> {
    let mut blocks = Blocks { input, block_bytes: block_bytes.max(1), rest: Vec::new(), done: false };
    let mut assumed: Option<Header> = None;
    let mut first = true;
    while let Some(bytes) = blocks.next_block()? {
        // The first block starts with no header; the others assume the one the input starts with.
        let start_header = if first { None } else { assumed.clone() };
        if first {
            assumed = first_line_header(&bytes);
            first = false;
        }
        let (result, receiver) = sync_channel(1);
        if in_order.send(receiver).is_err() || jobs.send(Job { bytes, start_header, result }).is_err() {
            break;
        }
    }
    Ok(())
}

/// The header on the first non-blank line of `bytes`, if that line is one.
fn first_line_header(bytes: &[u8]) -> Option<Header> {
    let line = lines(bytes).map(<[u8]>::trim_ascii).find(|line| !line.is_empty())?;
    if line.first() == Some(&b'{') { None } else { Header::parse(line) }
}

/// Parses the lines of one block, starting with `start_header` in force.
fn parse_block(bytes: Vec<u8>, parser: FrameParser, start_header: Option<Header>) -> BlockResult {
    let mut decoder = LineDecoder::new(parser, start_header.clone());
    let mut stats = RecordingStats::default();
    // Exchange wrapper lines are about 520 bytes (CSV rows are shorter: the vector grows).
    let mut ticks = Vec::with_capacity(bytes.len() / 512);
    let mut errors = Vec::new();
    let mut trades = Vec::new();
    let mut line = 0u64;
    for text in lines(&bytes) {
        line += 1;
        match decoder.decode(text, line, &mut stats) {
            Some(Ok(Frame::Tickers(frame_ticks))) => ticks.extend(frame_ticks),
            Some(Ok(Frame::Trades(frame_trades))) => trades.extend(frame_trades.into_iter().map(|t| (ticks.len(), t))),
            None | Some(Ok(_)) => {}
            Some(Err(err)) => errors.push(err),
        }
    }
    let used_start_header = decoder.used_start_header();
    BlockResult {
        ticks,
        trades,
        errors,
        stats,
        lines: line,
        header_met: decoder.header_met().cloned(),
        start_header,
        used_start_header,
        bytes: if used_start_header { bytes } else { Vec::new() },
    }
}

/// The lines of `bytes` as `BufRead::read_until(b'\n')` returns them: each with its line end,
/// the last one without when the text does not end with one.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1);
        let (line, after) = rest.split_at(end);
        rest = after;
        Some(line)
    })
}

/// Blocks of whole lines (the last one may lack its line end).
struct Blocks<R> {
    input: R,
    block_bytes: usize,
    /// The start of a line read with the previous block.
    rest: Vec<u8>,
    done: bool,
}

impl<R: Read> Blocks<R> {
    fn next_block(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut block = Vec::with_capacity(self.block_bytes.max(2 * self.rest.len()));
        block.append(&mut self.rest);
        loop {
            // Up to a block's worth; more when one line is longer than that.
            let wanted = if block.len() < self.block_bytes { self.block_bytes - block.len() } else { block.len() };
            let read = (&mut self.input).take(wanted as u64).read_to_end(&mut block)?;
            if read < wanted {
                self.done = true;
                return Ok((!block.is_empty()).then_some(block));
            }
            if let Some(last) = memchr::memrchr(b'\n', &block) {
                self.rest = block.split_off(last + 1);
                return Ok(Some(block));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::recording::{EMBEDDED_EXCHANGE_RECORDING, RecordingReader};

    /// Ticks, errors (as text) and stats, as the line-by-line reader gives them.
    fn sequential(bytes: &[u8]) -> (Vec<Tick>, Vec<String>, RecordingStats) {
        let mut reader = RecordingReader::new(bytes);
        let mut ticks = Vec::new();
        let mut errors = Vec::new();
        for item in &mut reader {
            match item {
                Ok(tick) => ticks.push(tick),
                Err(err) => errors.push(err.to_string()),
            }
        }
        (ticks, errors, reader.stats().clone())
    }

    fn in_blocks(bytes: &[u8], block_bytes: usize, workers: usize) -> (Vec<Tick>, Vec<String>, RecordingStats) {
        let mut ticks = Vec::new();
        let mut errors = Vec::new();
        let options = BlockOptions { block_bytes, workers };
        let stats = read_blocks(bytes, FrameParser::default(), options, |block| {
            ticks.extend(block.ticks);
            errors.extend(block.errors.iter().map(ToString::to_string));
        })
        .unwrap();
        (ticks, errors, stats)
    }

    fn assert_same_as_sequential(bytes: &[u8], block_sizes: &[usize]) {
        let expected = sequential(bytes);
        for &block_bytes in block_sizes {
            for workers in [1, 2, 3] {
                let got = in_blocks(bytes, block_bytes, workers);
                assert_eq!(got.0, expected.0, "ticks, {block_bytes} B blocks, {workers} workers");
                assert_eq!(got.1, expected.1, "errors, {block_bytes} B blocks, {workers} workers");
                assert_eq!(got.2, expected.2, "stats, {block_bytes} B blocks, {workers} workers");
            }
        }
    }

    #[test]
    fn the_bundled_recording_reads_as_line_by_line() {
        let bytes = EMBEDDED_EXCHANGE_RECORDING;
        assert_eq!(sequential(bytes).0.len(), 5_996);
        assert_same_as_sequential(bytes, &[1, 700, 64 * 1024, 1 << 20, bytes.len() + 1]);
    }

    #[test]
    fn malformed_lines_keep_their_numbers_and_kinds() {
        let good: Vec<&str> = std::str::from_utf8(EMBEDDED_EXCHANGE_RECORDING).unwrap().lines().take(40).collect();
        let mut text = String::new();
        for (i, line) in good.iter().enumerate() {
            text.push_str(line);
            text.push('\n');
            match i % 7 {
                0 => text.push_str("not json at all\n"),
                1 => text.push_str("\n  \r\n"),
                2 => text.push_str("{\"ts\": 1, \"pair\": \"BTC-USD\", \"raw\": \"{\\\"type\\\":\\\"ticker\\\"}\"}\n"),
                3 => text.push_str("{\"ts\": 1, \"raw\": \"{\\\"type\\\":\\\"nope\\\"}\"}\r\n"),
                4 => text.push_str("{\"ts\": 1, \"pair\"\n"),
                5 => text.push_str("{\"something\": \"else\"}\n"),
                _ => {}
            }
        }
        // A last line without its line end.
        text.push_str(good[0]);
        let (_, errors, stats) = sequential(text.as_bytes());
        assert!(stats.errors_total() >= 20, "{stats:?}");
        assert!(errors.iter().any(|e| e.starts_with("line 2:")), "{errors:?}");
        assert_same_as_sequential(text.as_bytes(), &[1, 64, 333, 4096, text.len()]);
    }

    #[test]
    fn a_csv_header_switches_the_lines_after_it() {
        let exchange: Vec<&str> = std::str::from_utf8(EMBEDDED_EXCHANGE_RECORDING).unwrap().lines().take(5).collect();
        let header = "ts,product_id,price,best_bid,best_ask,bid_qty,ask_qty";
        let row = |i: usize| format!("2025-11-30T23:56:{:02}.5Z,BTC-USD,85748.0,85747.97,85747.98,0.1,0.2", i % 60);
        // A CSV file with Exchange lines among its rows (the header stays in force) and then a
        // second header with other columns; a file that starts with Exchange lines, has a row
        // before any header (malformed JSON) and then switches to CSV.
        let mut csv_first = format!("{header}\n");
        for i in 0..30 {
            csv_first.push_str(&row(i));
            csv_first.push('\n');
            if i % 10 == 9 {
                csv_first.push_str(exchange[i / 10]);
                csv_first.push('\n');
            }
        }
        csv_first.push_str("product_id,ts,best_bid,best_ask,price\n");
        for i in 0..10 {
            csv_first.push_str(&format!("ETH-USD,2025-11-30T23:57:{i:02}Z,2000,2001,2000.5\n"));
        }
        let mut json_first = String::new();
        for line in &exchange {
            json_first.push_str(line);
            json_first.push('\n');
        }
        json_first.push_str(&row(1));
        json_first.push('\n');
        json_first.push_str(&format!("{header}\n"));
        for i in 0..20 {
            json_first.push_str(&row(i));
            json_first.push('\n');
        }
        for text in [csv_first, json_first] {
            let (ticks, _, stats) = sequential(text.as_bytes());
            assert!(ticks.len() >= 24, "{stats:?}");
            assert_same_as_sequential(text.as_bytes(), &[1, 50, 200, 1000, text.len()]);
        }
    }

    #[test]
    fn blocks_end_at_line_ends() {
        let text = b"a\nbb\n\nccc\nlong line longer than a block\nd";
        for block_bytes in 1..12 {
            let mut blocks = Blocks { input: &text[..], block_bytes, rest: Vec::new(), done: false };
            let mut joined = Vec::new();
            while let Some(block) = blocks.next_block().unwrap() {
                assert!(block.ends_with(b"\n") || joined.len() + block.len() == text.len(), "{block:?}");
                joined.extend(block);
            }
            assert_eq!(joined, text);
        }
        assert_eq!(lines(b"a\n\nb").collect::<Vec<_>>(), [&b"a\n"[..], b"\n", b"b"]);
        assert_eq!(lines(b"").count(), 0);
    }

    #[test]
    fn a_read_error_ends_reading() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let err = read_blocks(Failing, FrameParser::default(), BlockOptions::default(), |_| {}).unwrap_err();
        assert_eq!(err.to_string(), "disk gone");
    }
}
