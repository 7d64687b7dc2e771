//! Fuzz target `sealed_record`: the property is `checks::sealed_record` in `fuzz/checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sealed_record(data));
