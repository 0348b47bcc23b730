//! Several `--input` recordings play as one market: one day's BTC-USD, ETH-USD and SOL-USD tick
//! files (`data/coinbase/ticks/`) replay merged by exchange time, not one after the other.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use spikewatch::domain::Tick;
use spikewatch::pipeline::pacing::Speed;
use spikewatch::pipeline::replay::{ReplayOptions, replay};
use spikewatch::transport::memory;
use tokio_util::sync::CancellationToken;

const LINES: usize = 3_000;

/// The header and the first [`LINES`] rows of a committed tick file, as a plain CSV in `dir`.
fn head_of(dir: &Path, product: &str) -> PathBuf {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../data/coinbase/ticks/{product}-2025-11-25.csv.gz"));
    let file = std::fs::File::open(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let lines = BufReader::new(flate2::read::GzDecoder::new(file)).lines().take(LINES + 1);
    let path = dir.join(format!("{product}.csv"));
    let mut out = std::fs::File::create(&path).unwrap();
    for line in lines {
        writeln!(out, "{}", line.unwrap()).unwrap();
    }
    path
}

async fn replayed(inputs: Vec<PathBuf>) -> Vec<Tick> {
    let options = ReplayOptions { inputs, speed: Speed::Max, max_sleep: Duration::ZERO, repeat: false };
    let (tx, mut rx) = memory::link::<Tick>(1024);
    let collect = tokio::spawn(async move {
        let mut ticks = Vec::new();
        loop {
            let batch = memory::recv_batch(&mut rx, 512).await;
            if batch.is_empty() {
                return ticks;
            }
            ticks.extend(batch);
        }
    });
    let totals = replay(&options, tx, CancellationToken::new(), None).await.unwrap();
    let ticks = collect.await.unwrap();
    assert_eq!(totals.ticks as usize, ticks.len());
    ticks
}

#[tokio::test]
async fn one_days_products_interleave_in_exchange_time() {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<PathBuf> = ["btc-usd", "eth-usd", "sol-usd"].iter().map(|p| head_of(dir.path(), p)).collect();
    let ticks = replayed(inputs).await;
    assert_eq!(ticks.len(), 3 * LINES, "every row of every file is a tick");
    let out_of_order = ticks.windows(2).filter(|w| w[1].exchange_time < w[0].exchange_time).count();
    assert_eq!(out_of_order, 0, "exchange time never goes back");
    // One file after the other would change product twice; merged, they alternate all along.
    let switches = ticks.windows(2).filter(|w| w[1].product_id != w[0].product_id).count();
    assert!(switches > 300, "{switches} product switches");
    let first_tenth: std::collections::BTreeSet<&str> =
        ticks[..ticks.len() / 10].iter().map(|t| t.product_id.as_str()).collect();
    assert_eq!(first_tenth.len(), 3, "all three products from the start: {first_tenth:?}");
}

#[tokio::test]
async fn a_single_file_replays_in_its_own_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = head_of(dir.path(), "eth-usd");
    let ticks = replayed(vec![path.clone()]).await;
    let recorded: Vec<Tick> = spikewatch::sources::recording::open(&path).unwrap().map(Result::unwrap).collect();
    assert_eq!(ticks.len(), recorded.len());
    assert!(ticks.iter().zip(&recorded).all(|(a, b)| a.exchange_time == b.exchange_time && a.price == b.price));
}

#[test]
fn the_feature_table_of_several_files_follows_the_same_merged_order() {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<PathBuf> = ["btc-usd", "eth-usd", "sol-usd"].iter().map(|p| head_of(dir.path(), p)).collect();
    let output = dir.path().join("table.csv");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_spikewatch"))
        .args(["features", "--every-tick", "--output", output.to_str().unwrap(), "--input"])
        .args(&inputs)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let table = std::fs::read_to_string(&output).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let time = header.iter().position(|c| *c == "event_time").expect("an event_time column");
    let rows: Vec<(String, i64)> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[0].to_string(), fields[time].parse().unwrap())
        })
        .collect();
    assert!(rows.len() > 2 * LINES, "{} rows", rows.len());
    assert!(rows.windows(2).all(|w| w[0].1 <= w[1].1), "event time never goes back");
    let switches = rows.windows(2).filter(|w| w[0].0 != w[1].0).count();
    assert!(switches > 300, "{switches} product switches");
}
