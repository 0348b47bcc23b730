//! The frame parser must never panic, and whatever it accepts must satisfy the Tick invariants.
//!
//! `cargo +nightly fuzz run parse_frame` from the repository root (seeds in `fuzz/corpus/parse_frame`).

#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use spikewatch::domain::Feed;
use spikewatch::sources::coinbase::{Frame, FrameParser};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let feed = if selector & 1 == 0 { Feed::Exchange } else { Feed::AdvancedTrade };
    // A small cap sometimes, so the oversized path is exercised too.
    let parser = if selector & 2 == 0 { FrameParser::default() } else { FrameParser::new(256) };
    let now = DateTime::<Utc>::UNIX_EPOCH;
    match parser.parse(feed, text, now) {
        Ok(Frame::Tickers(ticks)) => {
            for t in ticks {
                assert!(t.price.is_finite() && t.price > 0.0);
                assert!(t.best_bid.is_finite() && t.best_bid > 0.0);
                assert!(t.best_ask.is_finite() && t.best_ask > 0.0);
                assert!(t.best_bid <= t.best_ask);
                for size in [t.best_bid_size, t.best_ask_size, t.last_size].into_iter().flatten() {
                    assert!(size.is_finite() && size >= 0.0);
                }
                assert_eq!(t.source, feed);
            }
        }
        Ok(_) => {}
        Err(err) => {
            // Every error has a label and a message.
            assert!(!err.kind().is_empty());
            let _ = err.to_string();
        }
    }
});
