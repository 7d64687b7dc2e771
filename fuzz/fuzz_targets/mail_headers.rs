//! Fuzz target `mail_headers`: the property is `checks::mail_headers` in `fuzz/checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::mail_headers(data));
