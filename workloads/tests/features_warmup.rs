//! The feature engine's warm-up contract, on which a restarted featurizer relies: an engine
//! that starts from the last tick at or before `t − FeatureEngine::warmup_horizon` computes the
//! same vectors, bit for bit, from `t` on as one that saw everything before. Whole vectors are
//! compared, whatever features they hold.

mod common;

use chrono::{DateTime, Utc};
use spikewatch::config::FeaturesConfig;
use spikewatch::domain::Tick;
use spikewatch::features::FeatureEngine;
use spikewatch::sources::recording;

fn ticks(names: &[&str]) -> Vec<Tick> {
    let mut ticks: Vec<Tick> = names
        .iter()
        .flat_map(|name| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/coinbase/ticks").join(name);
            recording::open(&path).unwrap().filter_map(Result::ok).collect::<Vec<_>>()
        })
        .collect();
    // Two products over the same hours, interleaved as a live feed would deliver them.
    ticks.sort_by_key(|tick| tick.exchange_time);
    ticks
}

/// Index of the tick a rebuild for a resume at `resume` starts from: the last one at or before
/// `time(resume) − horizon`, or the first tick.
fn rebuild_start(ticks: &[Tick], resume: usize, horizon: chrono::Duration) -> usize {
    let cutoff: DateTime<Utc> = ticks[resume].exchange_time - horizon;
    (0..resume).rev().find(|&i| ticks[i].exchange_time <= cutoff).unwrap_or(0)
}

fn check_contract(ticks: &[Tick], config: &FeaturesConfig, resumes: usize) -> (usize, usize) {
    let horizon = FeatureEngine::warmup_horizon(config);
    let mut uninterrupted = FeatureEngine::new(config);
    let expected: Vec<_> = ticks.iter().map(|tick| uninterrupted.update(tick)).collect();
    let (mut bounded, mut compared) = (0, 0);
    for k in 1..=resumes {
        let resume = ticks.len() * k / (resumes + 1);
        let start = rebuild_start(ticks, resume, horizon);
        bounded += usize::from(start > 0);
        let mut rebuilt = FeatureEngine::new(config);
        for tick in &ticks[start..resume] {
            let _ = rebuilt.update(tick);
        }
        for (i, tick) in ticks.iter().enumerate().skip(resume) {
            let got = rebuilt.update(tick);
            assert_eq!(got, expected[i], "tick {i} after a rebuild from tick {start} for a resume at {resume}");
            compared += 1;
        }
    }
    (bounded, compared)
}

#[test]
fn an_engine_rebuilt_from_the_warmup_horizon_computes_the_same_vectors() {
    // Two hours without a gap for BTC-USD and ETH-USD: windows far longer than the horizon.
    let ticks = ticks(&["btc-usd-2026-04-04a.csv.gz", "eth-usd-2026-04-04.csv.gz"]);
    let config = FeaturesConfig::default();
    let (bounded, compared) = check_contract(&ticks, &config, 8);
    assert!(bounded >= 4, "most resumes must rebuild from the horizon, not from the start: {bounded}");
    eprintln!("{compared} vectors identical after 8 rebuilds ({bounded} bounded by the horizon)");
}

#[test]
fn the_contract_holds_across_gaps_and_with_another_tolerance() {
    // 4.6 hours with 17 gaps longer than 30 s: resets inside and before the rebuilt range.
    let ticks = ticks(&["btc-usd-2025-12-06.csv.gz"]);
    let config = FeaturesConfig { out_of_order_tolerance_ms: 500, ..FeaturesConfig::default() };
    let (bounded, _) = check_contract(&ticks, &config, 6);
    assert!(bounded >= 4, "{bounded}");
}

#[test]
fn a_rebuild_shorter_than_the_horizon_is_not_enough() {
    // The check above can fail: starting only one window (30 min) back gives other values.
    let ticks = ticks(&["btc-usd-2026-04-04a.csv.gz"]);
    let config = FeaturesConfig::default();
    let mut uninterrupted = FeatureEngine::new(&config);
    let expected: Vec<_> = ticks.iter().map(|tick| uninterrupted.update(tick)).collect();
    let resume = ticks.len() * 3 / 4;
    let start = rebuild_start(&ticks, resume, chrono::Duration::minutes(30));
    let mut rebuilt = FeatureEngine::new(&config);
    for tick in &ticks[start..resume] {
        let _ = rebuilt.update(tick);
    }
    let differing =
        ticks[resume..].iter().enumerate().filter(|(i, tick)| rebuilt.update(tick) != expected[resume + i]).count();
    assert!(differing > 0, "a 30 min rebuild happened to match: the contract test would not notice a broken horizon");
}
