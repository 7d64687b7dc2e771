//! The provider mocks of `pane_agent::sim::providers` (the same servers `pane-agent demo`
//! runs), started as the tests want them: a mock that cannot start fails the test.
#![allow(dead_code)]

pub use pane_agent::sim::providers::*;

/// addy.io (see [`pane_agent::sim::providers::addy`]).
pub fn addy(key: &str) -> MockServer {
    pane_agent::sim::providers::addy(key).expect("start the addy.io mock")
}

/// SimpleLogin (see [`pane_agent::sim::providers::simplelogin`]).
pub fn simplelogin(key: &str) -> MockServer {
    pane_agent::sim::providers::simplelogin(key).expect("start the SimpleLogin mock")
}

/// Privacy.com (see [`pane_agent::sim::providers::privacy`]).
pub fn privacy(key: &str) -> MockServer {
    pane_agent::sim::providers::privacy(key).expect("start the Privacy.com mock")
}

/// Lithic (see [`pane_agent::sim::providers::lithic`]).
pub fn lithic(key: &str) -> MockServer {
    pane_agent::sim::providers::lithic(key).expect("start the Lithic mock")
}
