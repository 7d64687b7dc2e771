//! The Have I Been Pwned mock of `pane_agent::sim::providers::hibp`, started as the tests want
//! it: a mock that cannot start fails the test.
#![allow(dead_code)]

pub use pane_agent::sim::providers::hibp::*;

/// Starts a mock that accepts `key` (see [`pane_agent::sim::providers::hibp::hibp`]).
pub fn hibp(key: &str) -> HibpMock {
    pane_agent::sim::providers::hibp::hibp(key).expect("start the HIBP mock")
}
