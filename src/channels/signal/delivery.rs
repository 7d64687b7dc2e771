//! Delivery of the outbox to the owner: every queued message goes to the gateway once per
//! connection until it answers. `sent` removes a message for good; `send_failed` counts an
//! attempt and the message goes again after a pause; an `id_conflict` refusal (the gateway's
//! sent log holds the id for another message) is an error the owner hears about: the message
//! was not delivered, so it is never taken for delivered, and goes again under a new id.
//!
//! An approval prompt's Signal timestamp is recorded with its approval as it goes out, so a
//! 👍 or 👎 on it answers it ([`SignalState::remember_prompt`]).

use super::connection::write;
use crate::gate::GateHandle;
use crate::gateway::protocol::{CoreCommand, Registration, ID_CONFLICT};
use crate::outbox::{Outbox, OutboxId};
use crate::store::signal::SignalState;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::net::unix::OwnedWriteHalf;

/// How long a failed send waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How many times one message gets a new id after `id_conflict` before it is left to wait
/// in the outbox (a gateway that refused every id would otherwise have it re-issued for
/// ever). Each time is audited; after that only the log says so, at every retry.
const MAX_REISSUES: u32 = 3;

/// At most one alert about refused ids this often: the alert is itself a message, and a
/// gateway that refused every id must not make each alert cause another.
const ALERT_EVERY: Duration = Duration::from_secs(600);

/// The delivery state of one connection.
pub(super) struct Delivery {
    gate: GateHandle,
    outbox: Outbox,
    owner: Option<String>,
    signal: SignalState,
    /// Keyed by the id each message was sent with (`OutboxId`'s text): a message given a
    /// new id after an `id_conflict` is a new send.
    in_flight: HashSet<String>,
    /// Failed sends and when they may go again.
    failed: HashMap<String, Instant>,
    /// When the owner was last alerted that the gateway refused an outbox id.
    conflict_alerted: Option<Instant>,
    /// The gateway's latest `health` line says Signal will take no send (unlinked,
    /// unregistered, outdated, a capability missing): nothing is written, everything waits
    /// in the outbox, and goes at once, in order, when the registration is ok again. A
    /// captcha to solve does not hold: a rate limit can lift by itself, and only a send that
    /// goes through shows it did, so failed sends keep being tried at their usual pace.
    held: bool,
}

impl Delivery {
    /// Delivery to `owner` (nothing is sent when there is none).
    pub(super) fn new(
        gate: GateHandle,
        outbox: Outbox,
        owner: Option<String>,
        signal: SignalState,
    ) -> Delivery {
        Delivery {
            gate,
            outbox,
            owner,
            signal,
            in_flight: HashSet::new(),
            failed: HashMap::new(),
            conflict_alerted: None,
            held: false,
        }
    }

    /// The registration the gateway's latest `health` line reports; true when that ends a
    /// hold (the caller sends what waited, every message at once, in the outbox's order).
    pub(super) fn registration(&mut self, registration: Registration) -> bool {
        let was = self.held;
        self.held = !matches!(registration, Registration::Ok | Registration::ProofRequired);
        if was && !self.held {
            tracing::info!("Signal takes sends again: delivering what the outbox kept");
            // What failed while the link was down goes now, in order, not each after its
            // own pause.
            self.failed.clear();
            return true;
        }
        if self.held && !was {
            tracing::warn!(
                registration = registration.as_str(),
                "Signal takes no sends: the outbox keeps everything until it does"
            );
        }
        false
    }

    /// Writes every queued message not already on its way; false when the gateway is gone.
    pub(super) async fn send_pending(&mut self, writer: &mut OwnedWriteHalf) -> bool {
        let Some(owner) = self.owner.clone() else {
            return true;
        };
        if self.held {
            return true;
        }
        if self.signal.identity_blocked().unwrap_or(false) {
            // Fail secure: nothing goes to an owner whose new identity nobody confirmed;
            // messages wait in the outbox until `pane-agent trust`.
            return true;
        }
        let expire_timer = self.signal.expire_timer().ok().flatten();
        let pending = match self.outbox.pending(100) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                return true;
            }
        };
        let now = Instant::now();
        for msg in pending {
            let id = msg.id().to_string();
            if self.in_flight.contains(&id) || self.failed.get(&id).is_some_and(|t| *t > now) {
                continue;
            }
            let timestamp = if msg.timestamp > 0 {
                msg.timestamp
            } else {
                // Queued before timestamps were kept: the time it was queued (to the
                // second), still the same on every retry.
                chrono::DateTime::parse_from_rfc3339(&msg.created)
                    .map(|t| t.timestamp_millis().max(0) as u64)
                    .unwrap_or(msg.seq)
            };
            if let Some(code) = &msg.approval {
                // A 👍 or 👎 on this prompt answers it. Written before the prompt goes; on
                // disk at the latest with its `sent`, before it leaves the outbox.
                if let Err(e) = self.signal.remember_prompt(timestamp, code.as_bytes()) {
                    tracing::error!(error = %e, "cannot record an approval prompt");
                }
            }
            let cmd = CoreCommand::Send {
                id: id.clone(),
                recipient: owner.clone(),
                body: msg.body,
                timestamp,
                expire_timer,
            };
            if !write(writer, &cmd).await {
                tracing::info!("Signal gateway disconnected");
                return false;
            }
            self.in_flight.insert(id);
        }
        true
    }

    /// `sent`: the message `id` names leaves the outbox. An answer naming no queued message
    /// (a repeat, or a message re-issued since) changes nothing.
    pub(super) async fn sent(&mut self, id: &str) {
        self.in_flight.remove(id);
        self.failed.remove(id);
        let Ok(parsed) = id.parse::<OutboxId>() else {
            tracing::warn!(%id, "`sent` for an id that is not an outbox id");
            return;
        };
        if let Ok(true) = self.outbox.delivered(&parsed) {
            self.gate
                .notice("outbox.delivered", json!({"id": id}), None)
                .await;
        }
    }

    /// `send_failed`: counted and audited; sent again after a pause. `id_conflict` is not an
    /// ordinary failure: see [`Delivery::id_conflict`].
    pub(super) async fn failed(&mut self, id: &str, error: &str, retryable: bool) {
        self.in_flight.remove(id);
        self.failed
            .insert(id.to_string(), Instant::now() + RETRY_AFTER);
        let Ok(parsed) = id.parse::<OutboxId>() else {
            tracing::warn!(%id, "`send_failed` for an id that is not an outbox id");
            return;
        };
        if error == ID_CONFLICT {
            return self.id_conflict(parsed).await;
        }
        let _ = self.outbox.record_attempt(&parsed);
        let error = crate::text::escape(error, crate::text::Lines::Single);
        self.gate
            .notice(
                "outbox.send_failed",
                json!({"id": id, "error": crate::redact::truncate(&error, 200), "retryable": retryable}),
                None,
            )
            .await;
    }

    /// The gateway refused `id`: its sent log holds that id for a message with other content,
    /// so answering `sent` would have dropped this one silently. Ids carry a random nonce, so
    /// this should never happen; when it does, something is wrong with the gateway's log or
    /// with this store (a copy of it sending through the same gateway?). Loud: an error in
    /// the log, `outbox.id_conflict` in the audit log and an alert to the owner; and the
    /// message is not lost: it keeps its place and goes again under a new id.
    async fn id_conflict(&mut self, id: OutboxId) {
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
        // The old id is never sent again: its retry time goes with it.
        self.failed.remove(&id.to_string());
        tracing::error!(%id, new_id = %new.id(), "the Signal gateway refused outbox message {id}: its sent log holds that id for another message. It was NOT delivered; sending it again under a new id");
        let now = Instant::now();
        let alert = self
            .conflict_alerted
            .is_none_or(|t| now.duration_since(t) >= ALERT_EVERY);
        if alert {
            self.conflict_alerted = Some(now);
        }
        // The notice is on disk (the new id with it) before the new id is sent.
        self.gate
            .notice(
                "outbox.id_conflict",
                json!({"id": id.to_string(), "new_id": new.id().to_string(), "kind": msg.kind, "reissued": new.reissued}),
                alert.then(|| "The Signal gateway refused a message to you because its id had already been used for a different message. It was not delivered then and is being sent again under a new id. This should not happen: was the agent's store restored from a copy, or does a second agent use this gateway? `audit` shows outbox.id_conflict.".to_string()),
            )
            .await;
    }
}
