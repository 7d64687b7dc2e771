//! `seal` at the gate: the reply says what is forgotten, and the switch tells the keeper of
//! the seal (`cli::run`), which withdraws the gate from the channels, lets the reply go out,
//! and stops everything that holds a key.

use super::Gate;
use crate::commands::seal::Sealing;
use crate::origin::Invocation;
use crate::reply::{CommandError, ErrorKind};
use serde_json::json;
use tokio::sync::mpsc;

/// The gate's end of the line to the keeper of the seal.
#[derive(Clone, Debug)]
pub struct SealSwitch(mpsc::Sender<()>);

impl SealSwitch {
    /// A switch and the keeper's end.
    pub fn new() -> (SealSwitch, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel(4);
        (SealSwitch(tx), rx)
    }
}

impl Gate {
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
        let _ = switch.0.try_send(());
        Ok(Sealing::now())
    }
}
