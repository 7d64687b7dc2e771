//! `seal` at the gate: the reply says what is forgotten, and the switch tells the keeper of
//! the seal (`cli::run`), which withdraws the gate from the channels, lets the reply go out,
//! and stops everything that holds a key.

use super::Gate;
use crate::commands::seal::Sealing;
use crate::origin::Invocation;
use crate::reply::{CommandError, ErrorKind};
use serde_json::json;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The gate's end of the line to the keeper of the seal: `seal`, and when the owner was last
/// heard from (for `[seal] after_idle_hours`).
#[derive(Clone, Debug)]
pub struct SealSwitch {
    tx: mpsc::Sender<()>,
    last_owner: Arc<AtomicI64>,
}

impl SealSwitch {
    /// A switch and the keeper's end.
    pub fn new() -> (SealSwitch, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel(4);
        let now = chrono::Utc::now().timestamp();
        (
            SealSwitch {
                tx,
                last_owner: Arc::new(AtomicI64::new(now)),
            },
            rx,
        )
    }

    /// The owner was heard from now (a command of theirs reached the gate).
    pub fn owner_seen(&self, at: i64) {
        self.last_owner.fetch_max(at, Ordering::Relaxed);
    }

    /// When the owner was last heard from (Unix seconds; the switch's creation at first).
    pub fn last_owner(&self) -> i64 {
        self.last_owner.load(Ordering::Relaxed)
    }
}

impl Gate {
    /// Notes that the owner was heard from (for `[seal] after_idle_hours`): any command on
    /// the owner's own channels, not the MCP key's nor the scheduler's.
    pub(super) fn note_owner_activity(&self, inv: &Invocation) {
        use crate::origin::Channel;
        if let (Some(switch), Channel::Signal | Channel::Socket | Channel::Http) =
            (&self.execution.seal, inv.channel)
        {
            switch.owner_seen(inv.now.timestamp());
        }
    }

    /// `seal`: audited, then the keeper is told; the reply goes out before the keys go.
    pub(super) fn seal(&mut self, inv: &Invocation) -> Result<Sealing, CommandError> {
        let Some(switch) = &self.execution.seal else {
            return Err(CommandError::new(
                ErrorKind::Conflict,
                "this installation is not sealed at rest (made with --unsealed): nothing to seal; `pane-agent seal-init` seals it",
            ));
        };
        let switch = switch.clone();
        self.audit_event("seal.sealed", inv, json!({"by": inv.channel.as_str()}))?;
        // The keeper acts once this reply is queued; a full queue means a seal is pending.
        let _ = switch.tx.try_send(());
        Ok(Sealing::now())
    }
}
