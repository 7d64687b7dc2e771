//! The world outside the agent, simulated: local servers that answer as the providers'
//! documented APIs do ([`providers`]: addy.io, SimpleLogin, Privacy.com, Lithic, Have I Been
//! Pwned) and the owner's phone on the relay protocol ([`phone`]).
//!
//! One copy serves both `pane-agent demo` and the tests, so what the demo shows is what the
//! tests check. Nothing here is used by a running agent: product code talks to the real
//! services, and reaches these only when a base URL or the gateway socket points it here.

pub mod phone;
pub mod providers;
