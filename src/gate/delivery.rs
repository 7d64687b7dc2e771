//! What the gateway says about the outbox's messages: `sent` removes one for good,
//! `send_failed` counts an attempt (the channel tries again after a pause), and an
//! `id_conflict` refusal (the gateway's sent log holds the id for another message) is an
//! error the owner hears about: the message was not delivered, so it is never taken for
//! delivered; it goes again under a new id.

use super::Gate;
use crate::gateway::protocol::ID_CONFLICT;
use crate::origin::Invocation;
use crate::outbox::{MessageKind, OutboxId};
use serde_json::json;
use std::time::{Duration, Instant};

/// How many times one message gets a new id after `id_conflict` before it is left to wait
/// in the outbox (a gateway that refused every id would otherwise have it re-issued for
/// ever). Each time is audited; after that only the log says so, at every retry.
const MAX_REISSUES: u32 = 3;

/// At most one alert about refused ids this often: the alert is itself a message, and a
/// gateway that refused every id must not make each alert cause another.
const ALERT_EVERY: Duration = Duration::from_secs(600);

impl Gate {
    /// `sent`: the message `id` names leaves the outbox. An answer naming no queued message
    /// (a repeat, or a message re-issued since) changes nothing.
    pub(super) fn on_sent(&mut self, id: &str, inv: &Invocation) {
        let Ok(parsed) = id.parse::<OutboxId>() else {
            tracing::warn!(%id, "`sent` for an id that is not an outbox id");
            return;
        };
        if let Ok(true) = self.outbox.delivered(&parsed) {
            let _ = self.audit_event("outbox.delivered", inv, json!({"id": id}));
        }
    }

    /// `send_failed`: counted and audited; the channel sends it again after a pause.
    /// `id_conflict` is not an ordinary failure: see [`Gate::id_conflict`].
    pub(super) fn on_send_failed(
        &mut self,
        id: &str,
        error: &str,
        retryable: bool,
        inv: &Invocation,
    ) {
        let Ok(parsed) = id.parse::<OutboxId>() else {
            tracing::warn!(%id, "`send_failed` for an id that is not an outbox id");
            return;
        };
        if error == ID_CONFLICT {
            self.id_conflict(parsed, inv);
            return;
        }
        let _ = self.outbox.record_attempt(&parsed);
        let _ = self.audit_event(
            "outbox.send_failed",
            inv,
            json!({"id": id, "error": crate::redact::truncate(&crate::text::escape(error, crate::text::Lines::Single), 200), "retryable": retryable}),
        );
    }

    /// The gateway refused `id`: its sent log holds that id for a message with other content,
    /// so answering `sent` would have dropped this one silently. Ids carry a random nonce, so
    /// this should never happen; when it does, something is wrong with the gateway's log or
    /// with this store (a copy of it sending through the same gateway?). Loud: an error in
    /// the log, `outbox.id_conflict` in the audit log and an alert to the owner; and the
    /// message is not lost: it keeps its place and goes again under a new id.
    fn id_conflict(&mut self, id: OutboxId, inv: &Invocation) {
        let msg = match self.outbox.get(&id) {
            Ok(Some(msg)) => msg,
            // Not queued under that id: delivered or re-issued since; nothing to do.
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, %id, "cannot read the outbox after an id conflict");
                return;
            }
        };
        if msg.reissued >= MAX_REISSUES {
            tracing::error!(%id, reissued = msg.reissued, "the Signal gateway refused outbox message {id} again as an id it sent with other content; it stays in the outbox, not delivered: check the gateway's sent-ids log");
            let _ = self.outbox.record_attempt(&id);
            return;
        }
        let new = match self.outbox.reissue(&id) {
            Ok(Some(new)) => new,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, %id, "cannot give an outbox message a new id after an id conflict");
                return;
            }
        };
        tracing::error!(%id, new_id = %new.id(), "the Signal gateway refused outbox message {id}: its sent log holds that id for another message. It was NOT delivered; sending it again under a new id");
        let _ = self.audit_event(
            "outbox.id_conflict",
            inv,
            json!({"id": id.to_string(), "new_id": new.id().to_string(), "kind": msg.kind, "reissued": new.reissued}),
        );
        let now = Instant::now();
        if self
            .id_conflict_alerted
            .is_some_and(|t| now.duration_since(t) < ALERT_EVERY)
        {
            return;
        }
        self.id_conflict_alerted = Some(now);
        let _ = self.notify(
            MessageKind::Alert,
            "The Signal gateway refused a message to you because its id had already been used for a different message. It was not delivered then and is being sent again under a new id. This should not happen: was the agent's store restored from a copy, or does a second agent use this gateway? `audit` shows outbox.id_conflict.",
        );
    }
}
