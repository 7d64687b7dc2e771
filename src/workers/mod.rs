//! The workers: slow work runs here, beside the gate, which hands it over and never waits.
//! One per subsystem, each owning its state ("Actors with Tokio"): the alias manager and the
//! card manager (each its provider, its cap on calls in flight, its 429 cool-down),
//! placeholder enrollment (contexts, one serial queue per context) and the breach monitor
//! (its sources' cursors; overlapping sweep requests merged into one). Every job carries a
//! [`ticket::Ticket`]: its id, the lockdown it must stop at, its deadline.

pub mod alias;
pub mod breach;
pub mod card;
mod changes;
pub mod enroll;
mod lifecycle;
mod pool;
pub mod ticket;
