//! Frame parser and recording reader: every malformed frame is classified by kind and skipped,
//! never a panic; the shared recordings parse completely.

use std::io::Write;

use chrono::{DateTime, TimeZone, Utc};
use spikewatch::domain::{Feed, Side};
use spikewatch::sources::coinbase::{Frame, FrameError, FrameParser, parse_frame};
use spikewatch::sources::recording::{self, RecordingReader};

const EXCHANGE_RECORDING: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson");
const ADVANCED_TRADE_RECORDING: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/advanced-trade-ticker-btcusd-2025-11-08.ndjson");

const EXCHANGE_TICKER: &str = r#"{"type":"ticker","sequence":115498669093,"product_id":"BTC-USD","price":"103472.28","open_24h":"104763.2","volume_24h":"5461.74127717","low_24h":"102422.43","high_24h":"105504.83","volume_30d":"222137.61075405","best_bid":"103472.27","best_bid_size":"0.04145138","best_ask":"103472.28","best_ask_size":"0.02560996","side":"buy","time":"2025-11-12T07:20:11.615272Z","trade_id":900701309,"last_size":"0.00068754"}"#;

const ADVANCED_TICKER: &str = r#"{"channel":"ticker","client_id":"","timestamp":"2025-11-08T15:12:31.463496Z","sequence_num":7,"events":[{"type":"snapshot","tickers":[{"type":"ticker","product_id":"BTC-USD","price":"102020.48","volume_24_h":"5410.75570938","best_bid":"102020.47","best_bid_quantity":"0.02944129","best_ask":"102020.48","best_ask_quantity":"0.16980542"},{"type":"ticker","product_id":"ETH-USD","price":"3401.5","best_bid":"3401.4","best_bid_quantity":"1.5","best_ask":"3401.6","best_ask_quantity":"0"}]}]}"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 12, 7, 20, 12).unwrap()
}

/// Replaces `"field":"<old>"` in a frame; panics when absent so a fixture typo fails loudly.
fn with_field(frame: &str, field: &str, old: &str, new: &str) -> String {
    let from = format!("\"{field}\":{old}");
    assert!(frame.contains(&from), "fixture has no {from}");
    frame.replacen(&from, &format!("\"{field}\":{new}"), 1)
}

fn without_field(frame: &str, field: &str, old: &str) -> String {
    let from = format!(",\"{field}\":{old}");
    assert!(frame.contains(&from), "fixture has no {from}");
    frame.replacen(&from, "", 1)
}

fn kind_of(feed: Feed, frame: &str) -> &'static str {
    match parse_frame(feed, frame, now()) {
        Ok(frame) => panic!("expected an error, parsed {frame:?}"),
        Err(err) => err.kind(),
    }
}

#[test]
fn exchange_ticker_is_normalized() {
    let Frame::Tickers(ticks) = parse_frame(Feed::Exchange, EXCHANGE_TICKER, now()).unwrap() else {
        panic!("not a ticker")
    };
    assert_eq!(ticks.len(), 1);
    let t = &ticks[0];
    assert_eq!(t.product_id, "BTC-USD");
    assert_eq!(t.price, 103472.28);
    assert_eq!(t.best_bid, 103472.27);
    assert_eq!(t.best_ask, 103472.28);
    assert_eq!(t.best_bid_size, Some(0.04145138));
    assert_eq!(t.best_ask_size, Some(0.02560996));
    assert_eq!(t.last_size, Some(0.00068754));
    assert_eq!(t.side, Some(Side::Buy));
    assert_eq!(t.trade_id, Some(900701309));
    assert_eq!(t.sequence, Some(115498669093));
    assert_eq!(t.exchange_time, "2025-11-12T07:20:11.615272Z".parse::<DateTime<Utc>>().unwrap());
    assert_eq!(t.receive_time, now());
    assert_eq!(t.source, Feed::Exchange);
}

#[test]
fn advanced_trade_tickers_take_the_message_timestamp_and_sequence() {
    let parsed = FrameParser::default().parse_with_sequence(Feed::AdvancedTrade, ADVANCED_TICKER, now()).unwrap();
    assert_eq!(parsed.sequence_num, Some(7));
    let Frame::Tickers(ticks) = parsed.frame else { panic!("not a ticker") };
    assert_eq!(ticks.len(), 2);
    let ts = "2025-11-08T15:12:31.463496Z".parse::<DateTime<Utc>>().unwrap();
    assert!(ticks.iter().all(|t| t.exchange_time == ts && t.sequence == Some(7) && t.source == Feed::AdvancedTrade));
    assert_eq!(ticks[0].product_id, "BTC-USD");
    assert_eq!(ticks[0].best_bid_size, Some(0.02944129));
    assert_eq!(ticks[1].product_id, "ETH-USD");
    assert_eq!(ticks[1].best_ask_size, Some(0.0));
    assert_eq!(ticks[1].trade_id, None);
}

#[test]
fn control_frames_of_both_feeds_are_recognized() {
    let cases: &[(Feed, &str, Frame)] = &[
        (
            Feed::Exchange,
            r#"{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD","time":"2025-11-12T07:20:11Z"}"#,
            Frame::Heartbeat,
        ),
        (
            Feed::Exchange,
            r#"{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["BTC-USD"]}]}"#,
            Frame::Subscriptions,
        ),
        (
            Feed::Exchange,
            r#"{"type":"error","message":"Failed to subscribe","reason":"BTC-XXX is not a valid product"}"#,
            Frame::Error("Failed to subscribe: BTC-XXX is not a valid product".into()),
        ),
        (Feed::Exchange, r#"{"type":"status","products":[]}"#, Frame::Other("status".into())),
        (
            Feed::AdvancedTrade,
            r#"{"channel":"heartbeats","client_id":"","timestamp":"2025-11-08T15:12:31Z","sequence_num":3,"events":[{"current_time":"2025-11-08 15:12:31","heartbeat_counter":3}]}"#,
            Frame::Heartbeat,
        ),
        (
            Feed::AdvancedTrade,
            r#"{"channel":"subscriptions","client_id":"","timestamp":"2025-11-08T15:12:31Z","sequence_num":0,"events":[{"subscriptions":{"ticker":["BTC-USD"]}}]}"#,
            Frame::Subscriptions,
        ),
        (
            Feed::AdvancedTrade,
            r#"{"type":"error","message":"failure to subscribe"}"#,
            Frame::Error("failure to subscribe".into()),
        ),
    ];
    for (feed, text, expected) in cases {
        assert_eq!(&parse_frame(*feed, text, now()).unwrap(), expected, "{text}");
    }
}

/// (feed, frame, expected kind) for every malformed class, on both feeds.
fn malformed_frames() -> Vec<(Feed, String, &'static str)> {
    let ex = EXCHANGE_TICKER;
    let at = ADVANCED_TICKER;
    let e = Feed::Exchange;
    let a = Feed::AdvancedTrade;
    vec![
        (e, "{\"type\":\"ticker\",".into(), "invalid_json"),
        (e, "not json at all".into(), "invalid_json"),
        (e, String::new(), "invalid_json"),
        (e, "[1,2,3]".into(), "invalid_json"),
        (e, "\u{1F4A5}".into(), "invalid_json"),
        // Deep nesting neither overflows the stack in an ignored field nor in a read one.
        (e, format!("{{\"type\":\"ticker\",\"x\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000)), "missing_field"),
        (
            e,
            ex.replacen(
                "\"price\":\"103472.28\"",
                &format!("\"price\":{}{}", "[".repeat(100_000), "]".repeat(100_000)),
                1,
            ),
            "invalid_field",
        ),
        (a, "{\"channel\":".into(), "invalid_json"),
        (e, with_field(ex, "type", "\"ticker\"", "\"tickerz\""), "unknown_type"),
        (a, with_field(at, "channel", "\"ticker\"", "\"level9\""), "unknown_type"),
        (a, with_field(at, "type", "\"snapshot\"", "\"rewrite\""), "unknown_type"),
        (e, r#"{"product_id":"BTC-USD"}"#.into(), "missing_field"),
        (e, without_field(ex, "price", "\"103472.28\""), "missing_field"),
        (e, without_field(ex, "best_bid", "\"103472.27\""), "missing_field"),
        (e, without_field(ex, "time", "\"2025-11-12T07:20:11.615272Z\""), "missing_field"),
        (a, without_field(at, "timestamp", "\"2025-11-08T15:12:31.463496Z\""), "missing_field"),
        (a, r#"{"channel":"ticker","timestamp":"2025-11-08T15:12:31Z","sequence_num":1}"#.into(), "missing_field"),
        (a, r#"{"timestamp":"2025-11-08T15:12:31Z"}"#.into(), "missing_field"),
        (e, with_field(ex, "price", "\"103472.28\"", "\"abc\""), "invalid_number"),
        (e, with_field(ex, "best_ask", "\"103472.28\"", "\"\""), "invalid_number"),
        (a, with_field(at, "best_bid", "\"102020.47\"", "\"1,020\""), "invalid_number"),
        (e, with_field(ex, "price", "\"103472.28\"", "\"NaN\""), "non_finite"),
        (e, with_field(ex, "best_bid", "\"103472.27\"", "\"-inf\""), "non_finite"),
        (e, with_field(ex, "best_ask_size", "\"0.02560996\"", "\"Infinity\""), "non_finite"),
        (a, with_field(at, "price", "\"102020.48\"", "\"nan\""), "non_finite"),
        (e, with_field(ex, "price", "\"103472.28\"", "1e999"), "invalid_json"),
        (e, with_field(ex, "price", "\"103472.28\"", "\"-5\""), "non_positive_price"),
        (e, with_field(ex, "price", "\"103472.28\"", "\"0\""), "non_positive_price"),
        (e, with_field(ex, "best_bid", "\"103472.27\"", "\"0.0\""), "non_positive_price"),
        (a, with_field(at, "best_ask", "\"102020.48\"", "\"-102020.48\""), "non_positive_price"),
        (e, with_field(ex, "best_bid_size", "\"0.04145138\"", "\"-1\""), "negative_size"),
        (e, with_field(ex, "best_bid", "\"103472.27\"", "\"103500\""), "crossed_book"),
        (a, with_field(at, "best_bid", "\"102020.47\"", "\"102020.49\""), "crossed_book"),
        (e, with_field(ex, "time", "\"2025-11-12T07:20:11.615272Z\"", "\"yesterday\""), "invalid_timestamp"),
        (e, with_field(ex, "side", "\"buy\"", "\"up\""), "invalid_field"),
        (e, with_field(ex, "trade_id", "900701309", "\"x\""), "invalid_field"),
        (e, with_field(ex, "price", "\"103472.28\"", "{}"), "invalid_field"),
    ]
}

#[test]
fn every_malformed_class_has_its_kind() {
    let cases = malformed_frames();
    let mut seen = std::collections::BTreeSet::new();
    for (feed, text, expected) in &cases {
        let preview: String = text.chars().take(120).collect();
        assert_eq!(kind_of(*feed, text), *expected, "{feed:?} {preview}");
        seen.insert(*expected);
    }
    for kind in FrameError::KINDS.iter().filter(|k| **k != "oversized") {
        assert!(seen.contains(kind), "no case covers {kind}");
    }
}

#[test]
fn a_10_mb_frame_is_rejected_as_oversized_before_parsing() {
    // Unterminated JSON: had the parser looked at it, the kind would be `invalid_json`.
    let mut frame = String::from("{\"type\":\"ticker\",\"pad\":\"");
    frame.push_str(&"x".repeat(10 * 1024 * 1024));
    for feed in [Feed::Exchange, Feed::AdvancedTrade] {
        let err = parse_frame(feed, &frame, now()).unwrap_err();
        assert_eq!(err.kind(), "oversized");
        assert!(matches!(err, FrameError::Oversized { len, limit: 1_048_576 } if len == frame.len()));
    }
}

#[test]
fn the_size_cap_is_configurable() {
    let small = FrameParser::new(100);
    assert_eq!(small.parse(Feed::Exchange, EXCHANGE_TICKER, now()).unwrap_err().kind(), "oversized");
    let exact = FrameParser::new(EXCHANGE_TICKER.len());
    assert!(matches!(exact.parse(Feed::Exchange, EXCHANGE_TICKER, now()), Ok(Frame::Tickers(_))));
}

/// Wraps a frame in the Exchange recording layout.
fn exchange_line(frame: &str) -> String {
    serde_json::json!({"ts": 1762932011.629353, "pair": "BTC-USD", "raw": frame}).to_string()
}

#[test]
fn a_recording_with_every_malformed_class_keeps_going_and_counts_by_kind() {
    let mut text = String::new();
    let mut expected = std::collections::BTreeMap::<&str, u64>::new();
    for (feed, frame, kind) in malformed_frames() {
        let line = match feed {
            Feed::Exchange => exchange_line(&frame),
            Feed::AdvancedTrade => {
                serde_json::json!({"received_at": "2025-11-08T15:12:31Z", "feed": "advanced_trade", "frame": frame})
                    .to_string()
            }
        };
        text.push_str(&line);
        text.push('\n');
        text.push_str(&exchange_line(EXCHANGE_TICKER));
        text.push('\n');
        *expected.entry(kind).or_default() += 1;
    }
    // Lines that are not frames at all.
    text.push_str("garbage\n{\"unrelated\":1}\n\n{\"ts\":\"soon\",\"raw\":\"{}\"}\n");
    text.push_str(&serde_json::json!({"pair": "BTC-USD", "raw": EXCHANGE_TICKER}).to_string());
    text.push_str("\n\u{0}\u{ff}\n");
    *expected.entry("invalid_json").or_default() += 2;
    *expected.entry("unknown_layout").or_default() += 1;
    *expected.entry("invalid_field").or_default() += 1;
    *expected.entry("missing_field").or_default() += 1;
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"\xff\xfe{}\n");
    *expected.entry("invalid_json").or_default() += 1;

    let mut reader = RecordingReader::new(bytes.as_slice());
    let mut ticks = 0;
    let mut errors = 0;
    for item in reader.by_ref() {
        match item {
            Ok(_) => ticks += 1,
            Err(_) => errors += 1,
        }
    }
    let cases = malformed_frames().len() as u64;
    assert_eq!(ticks, cases, "every good line between bad ones is read");
    assert_eq!(reader.stats().ticks, cases);
    assert_eq!(errors, expected.values().sum::<u64>());
    let got: std::collections::BTreeMap<&str, u64> = reader.stats().errors.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(got, expected);
}

#[test]
fn an_oversized_recording_line_is_counted_not_fatal() {
    let mut text = exchange_line(&"y".repeat(3 * 1024 * 1024));
    text.push('\n');
    text.push_str(&exchange_line(EXCHANGE_TICKER));
    let mut reader = RecordingReader::new(text.as_bytes());
    assert_eq!(reader.next().unwrap().unwrap_err().kind(), "oversized");
    assert!(reader.next().unwrap().is_ok());
    assert!(reader.next().is_none());
}

#[test]
fn the_exchange_recording_has_5996_tickers_and_4_subscription_acks() {
    let mut reader = recording::open(EXCHANGE_RECORDING).unwrap();
    let ticks: Vec<_> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(ticks.len(), 5_996);
    let stats = reader.stats();
    assert_eq!(stats.lines, 6_000);
    assert_eq!(stats.ticks, 5_996);
    assert_eq!(stats.skipped.get("subscriptions"), Some(&4));
    assert_eq!(stats.errors_total(), 0);
    assert!(ticks.iter().all(|t| t.product_id == "BTC-USD" && t.source == Feed::Exchange && t.best_bid <= t.best_ask));
    assert_eq!(ticks[0].trade_id, Some(900701309));
    // Receive time comes from the wrapper's `ts`, exchange time from the frame's `time`.
    assert_eq!(ticks[0].receive_time.timestamp(), 1762932011);
    assert_eq!(ticks[0].exchange_time, "2025-11-12T07:20:11.615272Z".parse::<DateTime<Utc>>().unwrap());
}

#[test]
fn the_embedded_recordings_are_the_files() {
    let from_file: Vec<_> = recording::open(EXCHANGE_RECORDING).unwrap().map(Result::unwrap).collect();
    let embedded: Vec<_> = recording::embedded_exchange().map(Result::unwrap).collect();
    assert_eq!(embedded, from_file);
    let hour = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/coinbase/market-hour-2025-11-25.csv.gz");
    let from_file: Vec<_> = recording::open(hour).unwrap().map(Result::unwrap).collect();
    let embedded: Vec<_> = recording::embedded().map(Result::unwrap).collect();
    assert_eq!(embedded.len(), 48_562);
    assert_eq!(embedded, from_file);
    let mut products: Vec<&str> = embedded.iter().map(|t| t.product_id.as_str()).collect();
    products.sort();
    products.dedup();
    assert_eq!(products, ["BTC-USD", "ETH-USD", "SOL-USD"]);
    assert!(embedded.windows(2).all(|w| w[0].exchange_time <= w[1].exchange_time), "merged by event time");
}

#[test]
fn the_advanced_trade_recording_has_223_tickers() {
    let mut reader = recording::open(ADVANCED_TRADE_RECORDING).unwrap();
    let ticks: Vec<_> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(ticks.len(), 223);
    assert_eq!(reader.stats().errors_total(), 0);
    assert_eq!(reader.stats().skipped_total(), 0);
    let first = &ticks[0];
    assert_eq!(first.source, Feed::AdvancedTrade);
    assert_eq!(first.price, 102020.48);
    assert_eq!(first.best_bid_size, Some(0.02944129));
    assert_eq!(first.best_ask_size, Some(0.16980542));
    // The recorder kept no exchange time; its naive receive time (UTC) stands in for both.
    let ts = "2025-11-08T15:12:31.463496Z".parse::<DateTime<Utc>>().unwrap();
    assert_eq!((first.exchange_time, first.receive_time), (ts, ts));
}

#[test]
fn mirror_lines_are_read_back_with_their_feed() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for (feed, frame) in [
        ("exchange", EXCHANGE_TICKER),
        ("advanced_trade", ADVANCED_TICKER),
        (
            "advanced_trade",
            r#"{"channel":"heartbeats","timestamp":"2025-11-08T15:12:31Z","sequence_num":8,"events":[]}"#,
        ),
    ] {
        let line = serde_json::json!({"received_at": "2025-11-12T07:20:12.5Z", "feed": feed, "frame": frame});
        writeln!(file, "{line}").unwrap();
    }
    writeln!(file, r#"{{"received_at":"2025-11-12T07:20:12Z","feed":"nyse","frame":"{{}}"}}"#).unwrap();
    let mut reader = recording::open(file.path()).unwrap();
    let items: Vec<_> = reader.by_ref().collect();
    let ticks: Vec<_> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ticks.len(), 3);
    assert_eq!(ticks[0].source, Feed::Exchange);
    assert_eq!(ticks[0].receive_time, "2025-11-12T07:20:12.5Z".parse::<DateTime<Utc>>().unwrap());
    assert_eq!(ticks[2].product_id, "ETH-USD");
    assert_eq!(reader.stats().skipped.get("heartbeat"), Some(&1));
    assert_eq!(reader.stats().errors.get("invalid_field"), Some(&1), "unknown feed name");
}
