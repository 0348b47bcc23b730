//! A recording, whatever its bytes: see `spikewatch::fuzzing::recording_reader`.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run recording_reader -O` from `fuzz/` (corpus in `fuzz/corpus/recording_reader`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spikewatch::fuzzing::recording_reader(data));
