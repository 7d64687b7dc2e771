//! Fuzz target `mail_body`: the property is `checks::mail_body` in `fuzz/checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::mail_body(data));
