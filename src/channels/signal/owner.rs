//! The owner's side of the channel: who may speak (the configured owner only; strangers are
//! dropped and counted, never answered), whether their identity is confirmed, their
//! disappearing timer, and which of their reactions mean anything. What is left (a message
//! from the owner, or a 👍/👎 on an approval prompt) goes to the gate as an
//! [`OwnerInput`]; each event is acknowledged to the gateway once it is recorded.

use crate::gate::{GateHandle, OwnerInput, SignalTally};
use crate::gateway::protocol::GatewayEvent;
use crate::policy::approvals::ApprovalCode;
use crate::store::signal::SignalState;
use serde_json::json;
use std::time::{Duration, Instant};

/// Reactions from the owner judged per minute; more are ignored and counted.
const REACTIONS_JUDGED_PER_MINUTE: u32 = 10;

/// What the owner hears while their identity is blocked.
const BLOCKED: &str = "Commands over Signal are paused: your safety number changed. The operator must verify it and run `pane-agent trust` at the console.";

/// The owner's side of one connection.
pub(super) struct OwnerSide {
    gate: GateHandle,
    owner: Option<String>,
    tally: SignalTally,
    signal: SignalState,
    reactions: ReactionWindow,
}

impl OwnerSide {
    pub(super) fn new(
        gate: GateHandle,
        owner: Option<String>,
        tally: SignalTally,
        signal: SignalState,
    ) -> OwnerSide {
        OwnerSide {
            gate,
            owner,
            tally,
            signal,
            reactions: ReactionWindow::default(),
        }
    }

    fn is_owner(&self, sender: &str) -> bool {
        self.owner.as_deref() == Some(sender)
    }

    /// Handles a message, a reaction or an identity change; returns the id to acknowledge
    /// once what it changed is on disk.
    pub(super) async fn event(&mut self, event: GatewayEvent) -> Option<String> {
        match event {
            GatewayEvent::Received {
                id,
                sender,
                body,
                expire_timer,
                ..
            } => {
                if !self.is_owner(&sender) {
                    // Strangers get no reply and never reach the gate; the gateway may
                    // forget their message.
                    self.tally.stranger();
                    return id;
                }
                if self.signal.identity_blocked().unwrap_or(true) {
                    // Nothing from an identity nobody confirmed changes anything. (A line
                    // sent again after a reconnect is acknowledged and not answered twice.)
                    if id.as_deref().is_none_or(|id| self.first_time(id)) {
                        self.blocked().await;
                    }
                    return id;
                }
                // The owner's latest disappearing-message timer goes on every message to them.
                if let Err(e) = self.signal.set_expire_timer(expire_timer) {
                    tracing::error!(error = %e, "cannot record the owner's disappearing timer");
                }
                // Recorded (flushed) by the gate before it returns, its id marked seen in the
                // same transaction: a line sent again is acknowledged and acted on once.
                let input = OwnerInput::Message {
                    id: id.clone(),
                    body,
                };
                self.gate.owner(input).await.then_some(())?;
                id
            }
            GatewayEvent::Reaction {
                id,
                sender,
                emoji,
                target_timestamp,
                remove,
            } => {
                if !self.is_owner(&sender) {
                    self.tally.stranger();
                    return Some(id);
                }
                match self.answer_in(&emoji, target_timestamp, remove) {
                    Some((approve, code)) => {
                        // Recorded with its id as seen, as a message is.
                        let input = OwnerInput::Reaction {
                            id: id.clone(),
                            approve,
                            code,
                        };
                        self.gate.owner(input).await.then_some(())?;
                    }
                    // Counted (once), and audited as a count every minute.
                    None => {
                        if self.first_time(&id) {
                            self.tally.reaction_ignored();
                        }
                    }
                }
                Some(id)
            }
            GatewayEvent::IdentityChanged { sender } => {
                if self.is_owner(&sender) {
                    if let Err(e) = self.signal.block_identity() {
                        tracing::error!(error = %e, "cannot record the owner's identity change");
                    }
                    tracing::warn!(
                        "the owner's Signal safety number changed: commands from Signal are refused until you verify it and run `pane-agent trust`"
                    );
                    // Audited and on disk, the block with it.
                    self.gate
                        .notice("signal.identity_changed", json!({"sender": sender}), None)
                        .await;
                }
                None
            }
            // Delivery's, not the owner's.
            GatewayEvent::Sent { .. }
            | GatewayEvent::SendFailed { .. }
            | GatewayEvent::Health(_) => None,
        }
    }

    /// The approval a reaction answers, and how: 👍 approves, 👎 denies, on an approval
    /// prompt. None for anything else: another emoji, a removed reaction, a reaction to
    /// another message, a reaction from an identity nobody confirmed (the same block as
    /// typed messages), or one over the limit a minute (so guessing a prompt's timestamp
    /// with a burst of 👍 gets nowhere).
    fn answer_in(
        &mut self,
        emoji: &str,
        target: u64,
        remove: bool,
    ) -> Option<(bool, ApprovalCode)> {
        if self.signal.identity_blocked().unwrap_or(true) || !self.reactions.admit() {
            return None;
        }
        let approve = match emoji.chars().next() {
            Some('👍') => true,
            Some('👎') => false,
            _ => return None,
        };
        if remove {
            return None;
        }
        let code = self.signal.prompt(target).ok().flatten()?;
        Some((approve, ApprovalCode::from_store_key(code.as_bytes())?))
    }

    /// Records `id` as seen; false when it was seen before.
    fn first_time(&self, id: &str) -> bool {
        let now = chrono::Utc::now().timestamp_millis();
        match self.signal.first_time(id, now) {
            Ok(first) => first,
            Err(e) => {
                tracing::error!(error = %e, "cannot record a Signal message id");
                true
            }
        }
    }

    /// A message from the owner while their identity is blocked: audited, answered with why
    /// (delivered once the identity is trusted), and not acted on.
    async fn blocked(&self) {
        self.gate
            .notice(
                "signal.blocked",
                json!({"reason": "safety number changed"}),
                Some(BLOCKED.to_string()),
            )
            .await;
    }
}

/// The owner's reactions this minute.
#[derive(Debug)]
struct ReactionWindow {
    started: Instant,
    judged: u32,
}

impl Default for ReactionWindow {
    fn default() -> Self {
        ReactionWindow {
            started: Instant::now(),
            judged: 0,
        }
    }
}

impl ReactionWindow {
    /// True when one more reaction may be judged this minute.
    fn admit(&mut self) -> bool {
        if self.started.elapsed() >= Duration::from_secs(60) {
            self.started = Instant::now();
            self.judged = 0;
        }
        if self.judged < REACTIONS_JUDGED_PER_MINUTE {
            self.judged += 1;
            true
        } else {
            false
        }
    }
}
