//! The agent's actors, each a handle (an `mpsc::Sender`) in front of a task that owns its
//! state ("Actors with Tokio"). The core [`agent`] actor carries every command; the alias,
//! card, breach and enrollment actors join it as they are built.

pub mod agent;
pub mod alias;
pub mod breach;
pub mod card;
pub mod enroll;
