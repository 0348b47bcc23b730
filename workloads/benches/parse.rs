//! Frame parsing throughput on the shared Exchange recording (5,996 ticker frames).
//!
//! `cargo bench -p spikewatch --bench parse`

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spikewatch::domain::Feed;
use spikewatch::sources::coinbase::FrameParser;
use spikewatch::sources::coinbase::{Frame, parse_frame};
use spikewatch::sources::recording::{self, EMBEDDED_EXCHANGE_RECORDING};
use spikewatch::sources::recording_blocks::{BlockOptions, read_blocks};

/// The raw frames as the Exchange feed sends them (the recording wraps each in a JSON string).
fn exchange_frames() -> Vec<String> {
    std::str::from_utf8(EMBEDDED_EXCHANGE_RECORDING)
        .expect("recording is UTF-8")
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("recording line");
            v["raw"].as_str().expect("raw frame").to_owned()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let frames = exchange_frames();
    let now = Utc::now();
    let mut group = c.benchmark_group("frame_parsing");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("exchange_recording/parse_frame", |b| {
        b.iter(|| {
            let mut ticks = 0usize;
            for frame in &frames {
                if let Ok(Frame::Tickers(t)) = parse_frame(Feed::Exchange, black_box(frame), now) {
                    ticks += t.len();
                }
            }
            assert_eq!(ticks, 5_996);
            ticks
        })
    });
    group.bench_function("exchange_recording/recording_reader", |b| {
        b.iter(|| recording::embedded().filter(Result::is_ok).count())
    });
    // The same through the block-parallel reader `spikewatch features` uses (64 KiB blocks: the
    // recording is 3.1 MB), one worker per core.
    group.bench_function("exchange_recording/recording_blocks", |b| {
        let options = BlockOptions { block_bytes: 64 * 1024, ..BlockOptions::default() };
        b.iter(|| {
            let mut ticks = 0usize;
            read_blocks(EMBEDDED_EXCHANGE_RECORDING, FrameParser::default(), options, |block| {
                ticks += block.ticks.len()
            })
            .expect("in-memory input");
            ticks
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
