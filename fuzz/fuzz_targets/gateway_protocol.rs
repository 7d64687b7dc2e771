//! Fuzz target `gateway_protocol`: the property is `checks::gateway_protocol` in `fuzz/checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::gateway_protocol(data));
