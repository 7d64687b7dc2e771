//! What the gate writes for others to read: an audit entry, and a message for the owner in
//! the outbox (redacted, as everything that leaves; a reply in the same transaction that
//! forgets the record of the message it answers).

use super::Gate;
use crate::origin::Invocation;
use crate::outbox::MessageKind;
use crate::policy::approvals::ApprovalCode;
use crate::reply::CommandError;
use crate::store::signal::SignalState;
use serde_json::Value;

impl Gate {
    /// Writes an audit entry; a failure refuses the command (fail secure).
    pub(super) fn audit_event(
        &self,
        event: &str,
        inv: &Invocation,
        detail: Value,
    ) -> Result<(), CommandError> {
        self.audit
            .append(event, Some(inv.channel.as_str()), detail)
            .map(|_| ())
            .map_err(|e| self.internal(e))
    }

    /// Queues a message for the owner in the outbox; its Signal timestamp.
    pub(super) fn notify(&self, kind: MessageKind, body: &str) -> Result<u64, CommandError> {
        self.queue(kind, body, None)
    }

    /// Queues the prompt of the approval `code` for the owner (redacted, as every message).
    pub(super) fn queue_prompt(&self, body: &str, code: &ApprovalCode) -> Result<(), CommandError> {
        let body = self.redactor.text(body);
        let seq = self.store.next_id().map_err(|e| self.internal(e))?;
        self.outbox
            .push_prompt(seq, &body, code.store_key())
            .map_err(|e| self.internal(e))?;
        Ok(())
    }

    /// Queues `body` (redacted) for the owner; with `answered`, also forgets that record of
    /// an owner message (`take_in`) in the same transaction.
    pub(super) fn queue(
        &self,
        kind: MessageKind,
        body: &str,
        answered: Option<[u8; 8]>,
    ) -> Result<u64, CommandError> {
        let body = self.redactor.text(body);
        let seq = self.store.next_id().map_err(|e| self.internal(e))?;
        let msg = match answered {
            Some(key) => {
                let signal = SignalState::new(&self.store);
                self.outbox
                    .push_removing(seq, kind, &body, signal.taken(&key))
            }
            None => self.outbox.push(seq, kind, &body),
        }
        .map_err(|e| self.internal(e))?;
        Ok(msg.timestamp)
    }
}
