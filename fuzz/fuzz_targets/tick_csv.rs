//! The flat tick CSV layout, whatever its bytes: see `spikewatch::fuzzing::tick_csv`.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run tick_csv -O` from `fuzz/` (corpus in `fuzz/corpus/tick_csv`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spikewatch::fuzzing::tick_csv(data));
