//! A `/predict` body, whatever its bytes: see `spikewatch::fuzzing::predict_body`.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run predict_body -O` from `fuzz/` (corpus in `fuzz/corpus/predict_body`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spikewatch::fuzzing::predict_body(data));
