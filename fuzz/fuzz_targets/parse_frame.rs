//! A Coinbase WebSocket frame, whatever its bytes: see `spikewatch::fuzzing::parse_frame`.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_frame -O` from `fuzz/` (corpus in `fuzz/corpus/parse_frame`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spikewatch::fuzzing::parse_frame(data));
