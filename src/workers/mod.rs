//! The workers: slow work runs here, beside the gate, which hands it over and never waits.
//! The mail reader ([`mail`]: one IMAP session, bodies fetched for `inbox` and `mail`) is an
//! actor too.
//! The job runner ([`jobs`]: contexts, one serial queue per context) and the breach monitor
//! (its sources' cursors; overlapping sweep requests merged into one) are actors that own
//! their state; the alias manager and the card manager are throttles over their provider
//! (a cap on calls in flight, a 429 cool-down), which every job and sweep goes through. Every job carries a
//! [`ticket::Ticket`]: its id, the lockdown it must stop at, its deadline.

pub mod alerts;
pub mod alias;
pub mod breach;
pub mod card;
mod changes;
mod creates;
pub mod jobs;
mod lifecycle;
pub mod mail;
mod reconcile;
mod throttle;
pub mod ticket;
