//! Fuzz target `sender_matching`: the property is `checks::sender_matching` in `fuzz/checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sender_matching(data));
