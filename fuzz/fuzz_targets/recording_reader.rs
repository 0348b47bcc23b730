//! The recording reader must never panic and must always terminate on arbitrary input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use spikewatch::sources::recording::RecordingReader;

fuzz_target!(|data: &[u8]| {
    let mut reader = RecordingReader::new(data);
    let mut items = 0u64;
    for _ in reader.by_ref() {
        items += 1;
    }
    // Each item is a tick or a malformed line, and each is counted exactly once.
    let stats = reader.stats();
    assert_eq!(items, stats.ticks + stats.errors_total());
});
