//! The properties the fuzz targets in `fuzz/` check, one function per target, each taking the
//! fuzzer's bytes and panicking when a property fails. They live here so that the suite replays
//! the committed corpus (`workloads/tests/fuzz_corpus.rs`) through exactly the checks the
//! campaigns ran, without a fuzzing toolchain.
//!
//! Input handling must never panic: a panic here means a bug in the code under test, or an
//! input that was accepted but breaks an invariant the rest of the pipeline relies on.

use chrono::{DateTime, Utc};

use crate::api::predict::parse_rows;
use crate::api::rows::{Fill, check};
use crate::domain::{FEATURE_NAMES, FEATURES, Feed, Tick};
use crate::sources::coinbase::{Frame, FrameParser};
use crate::sources::recording::{RecordingReader, decode_exchange_line_both_ways};
use crate::sources::recording_blocks::{BlockOptions, read_blocks};
use crate::sources::tick_csv::Header;

/// What every accepted tick keeps: positive finite prices, a book that is not crossed,
/// non-negative finite sizes, a product.
fn assert_tick(t: &Tick) {
    assert!(t.price.is_finite() && t.price > 0.0, "price {}", t.price);
    assert!(t.best_bid.is_finite() && t.best_bid > 0.0, "bid {}", t.best_bid);
    assert!(t.best_ask.is_finite() && t.best_ask > 0.0, "ask {}", t.best_ask);
    assert!(t.best_bid <= t.best_ask, "crossed book {} > {}", t.best_bid, t.best_ask);
    for size in [t.best_bid_size, t.best_ask_size, t.last_size].into_iter().flatten() {
        assert!(size.is_finite() && size >= 0.0, "size {size}");
    }
    assert!(!t.product_id.is_empty());
}

/// A WebSocket frame (first byte: feed and size cap) is parsed without a panic; every ticker it
/// yields keeps the tick invariants, every error has a label and a message.
pub fn parse_frame(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let feed = if selector & 1 == 0 { Feed::Exchange } else { Feed::AdvancedTrade };
    // A small cap sometimes, so the oversized path is exercised too.
    let parser = if selector & 2 == 0 { FrameParser::default() } else { FrameParser::new(256) };
    match parser.parse(feed, text, DateTime::<Utc>::UNIX_EPOCH) {
        Ok(Frame::Tickers(ticks)) => {
            for t in ticks {
                assert_tick(&t);
                assert_eq!(t.source, feed);
            }
        }
        Ok(_) => {}
        Err(err) => {
            assert!(!err.kind().is_empty());
            let _ = err.to_string();
        }
    }
}

/// A recording is read to its end; each item is a tick or a malformed line, counted once. The
/// block-parallel reader (small blocks, so lines and headers fall on block edges) yields the same
/// ticks in the same order, the same errors at the same line numbers and the same counts.
pub fn recording_reader(data: &[u8]) {
    let mut reader = RecordingReader::new(data);
    let mut items = 0u64;
    let (mut ticks, mut errors) = (Vec::new(), Vec::new());
    for item in reader.by_ref() {
        match item {
            Ok(tick) => {
                assert_tick(&tick);
                ticks.push(tick);
            }
            Err(err) => errors.push(err.to_string()),
        }
        items += 1;
    }
    let stats = reader.stats();
    assert_eq!(items, stats.ticks + stats.errors_total());

    let options = BlockOptions { block_bytes: 64, workers: 2 };
    let (mut block_ticks, mut block_errors) = (Vec::new(), Vec::new());
    let block_stats = read_blocks(data, FrameParser::default(), options, |block| {
        block_ticks.extend(block.ticks);
        block_errors.extend(block.errors.iter().map(ToString::to_string));
    })
    .expect("reading from memory cannot fail");
    assert_eq!(&block_stats, stats, "block-parallel stats");
    assert_eq!(block_errors, errors, "block-parallel errors");
    assert!(block_ticks == ticks, "block-parallel ticks differ");

    // Every line the Exchange wrapper fast path (simd-json) reads, the general path (serde_json)
    // reads the same way: the same ticks, or the same error.
    for line in data.split(|&b| b == b'\n') {
        if let Some((fast, general)) = decode_exchange_line_both_ways(line.trim_ascii()) {
            assert_eq!(fast, general, "fast and general paths differ on {:?}", String::from_utf8_lossy(line));
        }
    }
}

/// Tick CSV (a header naming the columns, then one tick per row): every accepted row keeps the
/// tick invariants, every rejected one has a label and a message.
pub fn tick_csv(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let Some(header) = lines.next().and_then(Header::parse) else { return };
    for line in lines {
        match header.tick(line) {
            Ok(t) => assert_tick(&t),
            Err(err) => {
                assert!(!err.kind().is_empty());
                let _ = err.to_string();
            }
        }
    }
}

/// A `/predict` body (first byte: fill mode and row limit) is either rows the model may score
/// (every feature finite and in its documented range) or a client error: never a 5xx.
pub fn predict_body(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    // The API parses the body as JSON before it looks at rows.
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
    // Training medians inside every range, as a model artifact carries them.
    let medians: [f64; FEATURE_NAMES.len()] =
        FEATURES.map(|f| if f.range.min_inclusive { f.range.min } else { f.range.max / 2.0 });
    let fill = match selector % 4 {
        0 => Fill::Medians(&medians),
        1 => Fill::Strict(None),
        2 => Fill::Strict(Some(&medians)),
        _ => Fill::NoReference,
    };
    let max_rows = 1 + usize::from(selector >> 4);
    match parse_rows(&body, max_rows, fill) {
        Ok((rows, batch)) => {
            assert!(!rows.is_empty() && rows.len() <= max_rows);
            assert!(batch || rows.len() == 1);
            for row in rows {
                assert!(check(&row.features, "").is_ok(), "accepted a row outside the ranges: {row:?}");
                assert!(matches!(fill, Fill::Medians(_) | Fill::Strict(Some(_))) || row.imputed.is_empty());
            }
        }
        Err(err) => assert!(err.status().is_client_error(), "{err} answered {}", err.status()),
    }
}
