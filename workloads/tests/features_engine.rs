//! FeatureEngine on small hand-made fixtures: values computed independently in the test,
//! gap reset, duplicates, out-of-order ticks, invalid input.

use Feature::*;
use chrono::{DateTime, TimeZone, Utc};
use spikewatch::config::FeaturesConfig;
use spikewatch::domain::{Feature, Features, Feed, Side, Tick};
use spikewatch::features::{EngineStats, FeatureEngine, TickRejected};

const TOL: f64 = 1e-12;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 12, 0, 0, 0).unwrap()
}

fn at(secs: f64) -> DateTime<Utc> {
    t0() + chrono::Duration::nanoseconds((secs * 1e9).round() as i64)
}

/// An Exchange tick with mid `mid`, half-spread 0.25, trade id and sequence `id`.
fn tick(secs: f64, mid: f64, id: u64) -> Tick {
    Tick {
        schema: 1,
        product_id: "BTC-USD".into(),
        exchange_time: at(secs),
        receive_time: at(secs + 0.01),
        price: mid + 0.25,
        best_bid: mid - 0.25,
        best_ask: mid + 0.25,
        best_bid_size: Some(1.0),
        best_ask_size: Some(1.0),
        last_size: Some(0.01),
        side: Some(Side::Buy),
        trade_id: Some(id),
        sequence: Some(1000 + id),
        source: Feed::Exchange,
    }
}

fn config() -> FeaturesConfig {
    FeaturesConfig { max_gap_secs: 30.0, out_of_order_tolerance_ms: 2_000 }
}

/// Sample standard deviation (n − 1), two-pass: the definition, written independently of the engine.
fn std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

fn ln(a: f64, b: f64) -> f64 {
    (a / b).ln()
}

/// Mean of `xs` (for the 5-minute mean spread).
fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The listed features of `actual` (the others have their own tests).
fn assert_features(actual: &Features, expected: &[(Feature, f64)]) {
    for &(feature, e) in expected {
        let a = actual[feature];
        assert!((a - e).abs() <= TOL * e.abs().max(1.0), "{}: engine {a}, expected {e}", feature.name());
    }
}

/// (seconds, mid): ten ticks, two sharing a timestamp, windows filling up over 70 s.
const FIXTURE: [(f64, f64); 10] = [
    (0.0, 100.0),
    (0.5, 101.0),
    (1.0, 100.5),
    (1.0, 100.5),
    (2.0, 102.0),
    (6.0, 99.0),
    (12.0, 103.0),
    (40.0, 104.0),
    (61.0, 101.0),
    (70.0, 100.0),
];

fn run_fixture() -> Vec<Features> {
    let mut engine = FeatureEngine::new(&config());
    FIXTURE
        .iter()
        .enumerate()
        .map(|(i, &(secs, mid))| engine.update(&tick(secs, mid, i as u64 + 1)).expect("accepted").features)
        .collect()
}

#[test]
fn first_tick_of_a_product_has_empty_windows() {
    let f = run_fixture()[0];
    assert_features(
        &f,
        &[
            (Price, 100.25),
            (Midprice, 100.0),
            (Return1s, 0.0),
            (Return5s, 0.0),
            (Return30s, 0.0),
            (Return60s, 0.0),
            (Volatility, 0.0),
            (TradeIntensity, 1.0 / 60.0),
            (SpreadAbs, 0.5),
            (SpreadRel, 0.5 / 100.0),
            (OrderBookImbalance, 0.0),
            (TickCount, 1.0),
            (TimeSincePrevTick, 0.0),
            (SpreadRelRatio300s, 1.0),
        ],
    );
}

#[test]
fn warm_up_returns_use_the_oldest_mid_of_the_segment() {
    // Tick 4 at t = 2 s: 1 s base is the latest tick at or before 1 s (tick 3, mid 100.5);
    // the 5/30/60 s windows are not filled yet, so their base is the first mid (100).
    let f = run_fixture()[4];
    let returns = [ln(101.0, 100.0), ln(100.5, 101.0), 0.0, ln(102.0, 100.5)];
    assert_features(
        &f,
        &[
            (Price, 102.25),
            (Midprice, 102.0),
            (Return1s, ln(102.0, 100.5)),
            (Return5s, ln(102.0, 100.0)),
            (Return30s, ln(102.0, 100.0)),
            (Return60s, ln(102.0, 100.0)),
            (Volatility, std(&returns)),
            (TradeIntensity, 5.0 / 60.0),
            (SpreadAbs, 0.5),
            (SpreadRel, 0.5 / 102.0),
            (OrderBookImbalance, 0.0),
            (TickCount, 5.0),
            (TimeSincePrevTick, 1.0),
            (
                SpreadRelRatio300s,
                (0.5 / 102.0) / mean(&[0.5 / 100.0, 0.5 / 101.0, 0.5 / 100.5, 0.5 / 100.5, 0.5 / 102.0]),
            ),
        ],
    );
}

#[test]
fn ticks_sharing_a_timestamp_have_zero_time_since_previous() {
    let f = run_fixture()[3];
    assert_eq!(f[TimeSincePrevTick], 0.0);
    assert_eq!(f[TickCount], 4.0);
    // 100.5 → 100.5 is a zero return, but it still counts as a return
    assert!((f[Volatility] - std(&[ln(101.0, 100.0), ln(100.5, 101.0), 0.0])).abs() < TOL);
}

#[test]
fn windows_slide_after_a_minute() {
    let all = run_fixture();
    // Tick 8 at t = 61 s: the 60 s base is the latest tick at or before 1 s (tick 3, mid 100.5);
    // returns whose later tick lies in (1, 61] come from ticks 4..=8.
    let f = all[8];
    let long = [ln(102.0, 100.5), ln(99.0, 102.0), ln(103.0, 99.0), ln(104.0, 103.0), ln(101.0, 104.0)];
    assert!((f[Return60s] - ln(101.0, 100.5)).abs() < TOL);
    assert!((f[Return30s] - ln(101.0, 103.0)).abs() < TOL, "base: latest tick at or before 31 s (12 s)");
    assert!((f[Volatility] - std(&long)).abs() < TOL);
    assert_eq!(f[TickCount], 5.0);
    assert!((f[TradeIntensity] - 5.0 / 60.0).abs() < TOL);

    // Tick 9 at t = 70 s.
    let f = all[9];
    let long = [ln(103.0, 99.0), ln(104.0, 103.0), ln(101.0, 104.0), ln(100.0, 101.0)];
    // The 5-minute window of the spread still holds the whole segment.
    let mids = [100.0, 101.0, 100.5, 100.5, 102.0, 99.0, 103.0, 104.0, 101.0, 100.0];
    let spreads: Vec<f64> = mids.iter().map(|m| 0.5 / m).collect();
    assert_features(
        &f,
        &[
            (Price, 100.25),
            (Midprice, 100.0),
            (Return1s, ln(100.0, 101.0)),
            (Return5s, ln(100.0, 101.0)),
            (Return30s, ln(100.0, 104.0)),
            (Return60s, ln(100.0, 99.0)),
            (Volatility, std(&long)),
            (TradeIntensity, 4.0 / 60.0),
            (SpreadAbs, 0.5),
            (SpreadRel, 0.005),
            (OrderBookImbalance, 0.0),
            (TickCount, 4.0),
            (TimeSincePrevTick, 9.0),
            (SpreadRelRatio300s, 0.005 / mean(&spreads)),
        ],
    );
}

#[test]
fn spread_and_order_book_imbalance() {
    let mut engine = FeatureEngine::new(&config());
    let mut t = tick(0.0, 100.0, 1);
    t.best_bid = 99.75;
    t.best_ask = 100.25;
    t.best_bid_size = Some(3.0);
    t.best_ask_size = Some(1.0);
    let f = engine.update(&t).unwrap().features;
    assert_eq!(f[Midprice], 100.0);
    assert_eq!(f[SpreadAbs], 0.5);
    assert_eq!(f[SpreadRel], 0.005);
    assert_eq!(f[OrderBookImbalance], 0.5);

    let mut t = tick(1.0, 100.0, 2);
    t.best_bid_size = None;
    assert_eq!(engine.update(&t).unwrap().features[OrderBookImbalance], 0.0, "size missing");
    let mut t = tick(2.0, 100.0, 3);
    t.best_bid_size = Some(0.0);
    t.best_ask_size = Some(0.0);
    assert_eq!(engine.update(&t).unwrap().features[OrderBookImbalance], 0.0, "both sizes zero");
    let mut t = tick(3.0, 100.0, 4);
    t.best_bid_size = Some(0.0);
    t.best_ask_size = Some(2.0);
    assert_eq!(engine.update(&t).unwrap().features[OrderBookImbalance], -1.0);
}

#[test]
fn without_trade_ids_a_trade_is_a_change_of_last_price_or_size() {
    let mut engine = FeatureEngine::new(&config());
    let advanced_trade = |secs: f64, price: f64| {
        let mut t = tick(secs, 100.0, 0);
        t.trade_id = None;
        t.last_size = None;
        t.sequence = None;
        t.source = Feed::AdvancedTrade;
        t.price = price;
        t
    };
    let intensities: Vec<f64> = [(0.0, 100.0), (1.0, 100.0), (2.0, 100.5), (3.0, 100.5), (4.0, 100.0)]
        .iter()
        .map(|&(s, p)| engine.update(&advanced_trade(s, p)).unwrap().features[TradeIntensity] * 60.0)
        .collect();
    // first tick: nothing to compare with; then unchanged, changed, unchanged, changed
    assert_eq!(intensities, vec![0.0, 0.0, 1.0, 1.0, 2.0]);
}

#[test]
fn a_gap_longer_than_the_limit_resets_the_product_windows() {
    let mut engine = FeatureEngine::new(&config());
    engine.update(&tick(0.0, 100.0, 1)).unwrap();
    engine.update(&tick(1.0, 101.0, 2)).unwrap();
    // exactly the limit: same segment
    let f = engine.update(&tick(31.0, 102.0, 3)).unwrap().features;
    assert_eq!(engine.segment("BTC-USD"), Some(0));
    assert_eq!(f[TickCount], 3.0);
    assert_eq!(f[TimeSincePrevTick], 30.0);

    // 30.5 s > 30 s: reset
    let f = engine.update(&tick(61.5, 105.0, 4)).unwrap().features;
    assert_eq!(engine.segment("BTC-USD"), Some(1));
    assert_eq!(engine.stats().resets, 1);
    assert_eq!((f[Return1s], f[Return5s], f[Return30s], f[Return60s]), (0.0, 0.0, 0.0, 0.0), "no return across a gap");
    assert_eq!((f[Volatility], f[TimeSincePrevTick]), (0.0, 0.0));
    assert_eq!(f[TickCount], 1.0);
    assert!((f[TradeIntensity] - 1.0 / 60.0).abs() < TOL);

    let f = engine.update(&tick(62.0, 106.0, 5)).unwrap().features;
    assert!((f[Return1s] - ln(106.0, 105.0)).abs() < TOL, "the new segment starts at the first tick after the gap");
    assert_eq!(f[TickCount], 2.0);
}

#[test]
fn products_have_independent_state() {
    let mut engine = FeatureEngine::new(&config());
    engine.update(&tick(0.0, 100.0, 1)).unwrap();
    let mut eth = tick(100.0, 3000.0, 1);
    eth.product_id = "ETH-USD".into();
    let f = engine.update(&eth).unwrap().features;
    assert_eq!(f[TickCount], 1.0, "same trade id on another product is not a duplicate");
    assert_eq!(engine.stats().resets, 0, "a gap of BTC-USD's clock says nothing about ETH-USD");
    let f = engine.update(&tick(1.0, 101.0, 2)).unwrap().features;
    assert_eq!(f[TickCount], 2.0);
    assert!((f[Return1s] - ln(101.0, 100.0)).abs() < TOL);
    let mut products: Vec<&str> = engine.products().collect();
    products.sort();
    assert_eq!(products, vec!["BTC-USD", "ETH-USD"]);
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let mut engine = FeatureEngine::new(&config());
    let first = tick(0.0, 100.0, 1);
    engine.update(&first).unwrap();
    let err = engine.update(&first).unwrap_err();
    assert_eq!(err.kind(), "duplicate");

    // same trade id, other sequence
    let mut same_trade = tick(0.5, 101.0, 1);
    same_trade.sequence = Some(99_999);
    assert!(matches!(engine.update(&same_trade), Err(TickRejected::Duplicate { .. })));

    // same sequence at another time with no trade id (Advanced Trade after a reconnect): a new tick
    let mut renumbered = tick(0.7, 101.0, 0);
    renumbered.trade_id = None;
    renumbered.sequence = first.sequence;
    let f = engine.update(&renumbered).unwrap().features;
    assert_eq!(f[TickCount], 2.0, "the duplicates left no trace in the windows");

    let stats = engine.stats();
    assert_eq!(stats, EngineStats { accepted: 2, duplicates: 2, ..EngineStats::default() });
}

#[test]
fn late_ticks_within_tolerance_are_applied_at_the_latest_time() {
    let mut engine = FeatureEngine::new(&config());
    engine.update(&tick(10.0, 100.0, 1)).unwrap();
    let late = engine.update(&tick(8.5, 102.0, 2)).unwrap();
    assert_eq!(late.event_time, at(10.0), "applied at the product's latest event time");
    assert_eq!(late.receive_time, at(8.51), "receive time is carried through unchanged");
    let f = late.features;
    assert_eq!(f[TimeSincePrevTick], 0.0);
    assert_eq!(f[TickCount], 2.0);
    assert!((f[Return1s] - ln(102.0, 100.0)).abs() < TOL);

    // a duplicate of the late tick is still a duplicate
    assert_eq!(engine.update(&tick(8.5, 102.0, 2)).unwrap_err().kind(), "duplicate");

    let f = engine.update(&tick(11.0, 103.0, 3)).unwrap().features;
    assert!((f[Return1s] - ln(103.0, 102.0)).abs() < TOL, "the late tick is the latest at or before 10 s");
    assert_eq!(engine.stats().late_accepted, 1);
}

#[test]
fn ticks_later_than_the_tolerance_are_dropped_and_counted() {
    let mut engine = FeatureEngine::new(&config());
    engine.update(&tick(10.0, 100.0, 1)).unwrap();
    let err = engine.update(&tick(7.5, 90.0, 2)).unwrap_err();
    assert_eq!(err, TickRejected::OutOfOrder { product_id: "BTC-USD".into(), behind_ms: 2_500 });
    assert_eq!(err.kind(), "out_of_order");
    let f = engine.update(&tick(10.5, 101.0, 3)).unwrap().features;
    assert_eq!(f[TickCount], 2.0, "the dropped tick is not in the windows");
    assert_eq!(engine.stats().out_of_order, 1);

    // zero tolerance: any earlier tick is dropped, an equal time is fine
    let mut strict = FeatureEngine::new(&FeaturesConfig { out_of_order_tolerance_ms: 0, ..config() });
    strict.update(&tick(10.0, 100.0, 1)).unwrap();
    assert!(strict.update(&tick(10.0, 100.0, 2)).is_ok());
    assert_eq!(strict.update(&tick(9.999, 100.0, 3)).unwrap_err().kind(), "out_of_order");
}

#[test]
fn invalid_ticks_are_rejected_without_touching_state() {
    let mut engine = FeatureEngine::new(&config());
    engine.update(&tick(0.0, 100.0, 1)).unwrap();
    type Corruption = (&'static str, fn(&mut Tick));
    let cases: [Corruption; 7] = [
        ("nan price", |t| t.price = f64::NAN),
        ("zero price", |t| t.price = 0.0),
        ("negative bid", |t| t.best_bid = -1.0),
        ("infinite ask", |t| t.best_ask = f64::INFINITY),
        ("crossed book", |t| t.best_bid = t.best_ask + 1.0),
        ("negative size", |t| t.best_bid_size = Some(-1.0)),
        ("nan size", |t| t.last_size = Some(f64::NAN)),
    ];
    for (i, (name, corrupt)) in cases.iter().enumerate() {
        let mut t = tick(1.0, 101.0, 10 + i as u64);
        corrupt(&mut t);
        assert_eq!(engine.update(&t).unwrap_err().kind(), "invalid_tick", "{name}");
    }
    let mut far_future = tick(1.0, 101.0, 20);
    far_future.exchange_time = Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(engine.update(&far_future).unwrap_err().kind(), "time_out_of_range");

    let f = engine.update(&tick(1.0, 101.0, 2)).unwrap().features;
    assert_eq!(f[TickCount], 2.0);
    assert_eq!(engine.stats().invalid, cases.len() as u64 + 1);
}

#[test]
fn extreme_but_valid_prices_give_finite_features() {
    let mut engine = FeatureEngine::new(&config());
    let prices = [1e-300, 1e300, f64::MIN_POSITIVE, f64::MAX / 2.0, 1.0, f64::MAX, 5e-324];
    for (i, &p) in prices.iter().enumerate() {
        let mut t = tick(i as f64 * 0.1, 1.0, i as u64 + 1);
        (t.price, t.best_bid, t.best_ask) = (p, p, p);
        (t.best_bid_size, t.best_ask_size) = (Some(f64::MAX), Some(f64::MAX));
        let f = engine.update(&t).unwrap().features;
        // Finite and in range, or missing where a feature may be (no trade notional to compare
        // the depth with, at a price of 1e-300).
        if let Err(e) = spikewatch::api::rows::check(&f, "") {
            panic!("at price {p}: {e}");
        }
    }
}

#[test]
fn the_same_ticks_give_the_same_vectors() {
    let ticks: Vec<Tick> = FIXTURE.iter().enumerate().map(|(i, &(s, m))| tick(s, m, i as u64 + 1)).collect();
    let run = || {
        let mut engine = FeatureEngine::new(&config());
        ticks.iter().map(|t| engine.update(t).unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn advanced_trade_trades_are_counted_once_and_feed_the_trade_features() {
    let mut engine = FeatureEngine::new(&config());
    // An Advanced Trade ticker (no trade id), then a `market_trades` trade paired with its book.
    let ticker = |secs: f64, price: f64| {
        let mut t = tick(secs, 100.0, 0);
        (t.trade_id, t.last_size, t.side, t.sequence, t.source) =
            (None, None, None, Some(secs as u64), Feed::AdvancedTrade);
        t.price = price;
        t
    };
    let trade = |secs: f64, id: u64| {
        let mut t = tick(secs, 100.0, id);
        (t.sequence, t.source, t.side) = (None, Feed::AdvancedTrade, Some(Side::Sell));
        t
    };
    let f = engine.update(&ticker(0.0, 100.0)).unwrap().features;
    assert!(f[TradeRate60s].is_nan(), "no trade with an id yet: trade features missing");
    let f = engine.update(&trade(0.5, 7)).unwrap().features;
    assert_eq!(f[TradeRate60s], 1.0, "one trade in the first covered second");
    assert_eq!(f[TradeImbalance60s], -1.0, "a taker sell");
    // The ticker that follows a trade shows the trade's price: with trades arriving with ids it
    // is not counted a second time.
    let f = engine.update(&ticker(1.0, 100.5)).unwrap().features;
    assert_eq!(f[TradeIntensity] * 60.0, 1.0);
}
