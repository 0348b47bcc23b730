//! The fuzz corpus as a regression suite: every input the campaigns kept (`fuzz/corpus/<target>`,
//! minimized, with the inputs of crashes found and fixed) goes through the same property checks
//! the fuzz targets run (`spikewatch::fuzzing`), in an ordinary build without a fuzzing
//! toolchain.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use spikewatch::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("corpus").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return vec![] };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs `check` on every corpus input of `target`; fails listing every input that panicked. An
/// empty corpus is a failure too: the replay would prove nothing.
fn replay(target: &str, check: fn(&[u8])) {
    let corpus = corpus(target);
    assert!(!corpus.is_empty(), "no corpus for {target} in {}", fuzz_dir().display());
    let mut failed = vec![];
    for path in &corpus {
        let data = std::fs::read(path).unwrap();
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: {} inputs fail their properties: {failed:#?}", failed.len());
    eprintln!("{target}: {} corpus inputs pass", corpus.len());
}

#[test]
fn parse_frame_corpus() {
    replay("parse_frame", fuzzing::parse_frame);
}

#[test]
fn recording_reader_corpus() {
    replay("recording_reader", fuzzing::recording_reader);
}

#[test]
fn tick_csv_corpus() {
    replay("tick_csv", fuzzing::tick_csv);
}

#[test]
fn predict_body_corpus() {
    replay("predict_body", fuzzing::predict_body);
}

/// The reader refuses what the properties forbid (here a crossed book), rather than the
/// replay passing because nothing is checked.
#[test]
fn a_crossed_book_in_a_tick_csv_row_is_refused_not_accepted() {
    let csv = b"ts,product_id,price,best_bid,best_ask\n2025-12-06T01:12:47Z,BTC-USD,100,101,99\n";
    let mut lines = csv.split(|&b| b == b'\n');
    let header = spikewatch::sources::tick_csv::Header::parse(lines.next().unwrap()).unwrap();
    assert!(header.tick(lines.next().unwrap()).is_err(), "a crossed book must be an error");
    fuzzing::tick_csv(csv);
}
