//! The owner on Signal: what the gateway reports, the owner's messages (signed envelopes or
//! a plain `approve CODE` / `deny CODE`), and the replies that go back through the outbox.
//! Strangers never get here: the channel drops them and only counts them.

use super::jobs::Waiter;
use super::Gate;
use crate::auth::Envelope;
use crate::commands::Command;
use crate::gateway::protocol::GatewayEvent;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::reply::{CommandError, ErrorKind};
use crate::store::signal::SignalState;
use serde_json::{json, Value};

/// Reactions from the owner judged per minute; more are ignored and counted.
const REACTIONS_JUDGED_PER_MINUTE: u32 = 10;

/// The owner's reactions this minute, and the ones ignored since the last tally: ignored
/// reactions (blocked identity, not on a prompt, over the limit) are audited as one count a
/// minute, so a flood cannot fill the store.
#[derive(Debug)]
pub(super) struct ReactionWindow {
    started: std::time::Instant,
    judged: u32,
    ignored: u64,
}

impl Default for ReactionWindow {
    fn default() -> Self {
        ReactionWindow {
            started: std::time::Instant::now(),
            judged: 0,
            ignored: 0,
        }
    }
}

impl ReactionWindow {
    /// True when one more reaction may be judged this minute.
    fn admit(&mut self) -> bool {
        if self.started.elapsed() >= std::time::Duration::from_secs(60) {
            self.started = std::time::Instant::now();
            self.judged = 0;
        }
        if self.judged < REACTIONS_JUDGED_PER_MINUTE {
            self.judged += 1;
            true
        } else {
            false
        }
    }

    /// One more reaction that did nothing.
    fn ignore(&mut self) {
        self.ignored += 1;
    }

    /// The reactions ignored since the last call.
    pub(super) fn take_ignored(&mut self) -> u64 {
        std::mem::take(&mut self.ignored)
    }
}

impl Gate {
    /// Handles an event from the Signal gateway; returns the id to acknowledge (`ack`) once
    /// the message is recorded.
    pub(super) async fn signal_event(&mut self, event: GatewayEvent) -> Option<String> {
        let inv = Invocation::now(Channel::Signal);
        let owner = self.config.signal.owner.trim().to_string();
        let mut ack = None;
        match event {
            GatewayEvent::Received {
                id,
                sender,
                body,
                expire_timer,
                ..
            } => {
                if owner.is_empty() || sender != owner {
                    // The channel drops strangers before they get here; one that slips
                    // through is refused the same way: no reply, no action.
                    let e = CommandError::new(
                        ErrorKind::NotGranted,
                        "message from someone other than the owner",
                    );
                    let _ = self.refuse(&inv, e, None);
                    return id;
                }
                if let Some(id) = &id {
                    if !self.first_time(id) {
                        // A line sent again after a reconnect: acknowledged, acted on once.
                        return Some(id.clone());
                    }
                }
                // The owner's latest disappearing-message timer goes on every message to them;
                // nothing from an identity nobody confirmed changes it (or anything else).
                if !self.identity_blocked() {
                    let _ = self.signal().set_expire_timer(expire_timer);
                }
                let taken = self.take_in(&body).await;
                ack = id;
                self.owner_message(body.trim(), &inv, taken).await;
            }
            GatewayEvent::Reaction {
                id,
                sender,
                emoji,
                target_timestamp,
                remove,
            } => {
                if owner.is_empty() || sender != owner || !self.first_time(&id) {
                    return Some(id);
                }
                // The same block as typed messages: a reaction from an identity nobody
                // confirmed settles nothing. Beyond a few a minute, reactions are not judged
                // at all, so guessing a prompt's timestamp with a burst of 👍 gets nowhere.
                if self.identity_blocked() || !self.reactions.admit() {
                    self.reactions.ignore();
                } else {
                    self.reaction(&emoji, target_timestamp, remove, &inv).await;
                }
                ack = Some(id);
            }
            GatewayEvent::IdentityChanged { sender } => {
                if sender == owner {
                    let _ = self.signal().block_identity();
                    let _ = self.audit_event(
                        "signal.identity_changed",
                        &inv,
                        json!({"sender": sender}),
                    );
                    tracing::warn!(
                        "the owner's Signal safety number changed: commands from Signal are refused until you verify it and run `pane-agent trust`"
                    );
                }
            }
            GatewayEvent::Sent { id, .. } => self.on_sent(&id, &inv),
            GatewayEvent::SendFailed {
                id,
                error,
                retryable,
            } => self.on_send_failed(&id, &error, retryable, &inv),
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %self.redactor.text(&e.to_string()), "store flush failed after a gateway event");
            return None;
        }
        ack
    }

    /// True while the owner's safety number changed and nobody has confirmed it (`pane-agent
    /// trust`): every kind of input from Signal is refused.
    fn identity_blocked(&self) -> bool {
        self.signal().identity_blocked().unwrap_or(false)
    }

    /// The Signal channel's records.
    fn signal(&self) -> SignalState {
        SignalState::new(&self.store)
    }

    /// Records `id` as seen; false when it was seen before.
    fn first_time(&mut self, id: &str) -> bool {
        let now = chrono::Utc::now().timestamp_millis();
        match self.signal().first_time(id, now) {
            Ok(first) => first,
            Err(e) => {
                tracing::error!(error = %e, "cannot record a Signal message id");
                true
            }
        }
    }

    /// The owner reacted to a message: 👍 on an approval prompt approves it, 👎 denies it,
    /// exactly as `approve CODE` / `deny CODE` would. Anything else does nothing, audited.
    async fn reaction(&mut self, emoji: &str, target: u64, remove: bool, inv: &Invocation) {
        let verb = match emoji.chars().next() {
            Some('👍') => "approve",
            Some('👎') => "deny",
            _ => "",
        };
        let code = self.signal().prompt(target).ok().flatten();
        let (Some(code), false, false) = (code, remove, verb.is_empty()) else {
            // Counted, and audited as a count every minute ([`Gate::write_tallies`]).
            self.reactions.ignore();
            return;
        };
        let _ = self.audit_event(
            "signal.reaction",
            inv,
            json!({"verb": verb, "target": target}),
        );
        self.settle_from_phone(verb, code, inv, Waiter::owner(None))
            .await;
    }

    /// `approve CODE` / `deny CODE` as the owner gave it on the phone (typed, or as a
    /// reaction), judged and carried out exactly as the signed command would be.
    async fn settle_from_phone(
        &mut self,
        verb: &str,
        code: String,
        inv: &Invocation,
        waiter: Waiter,
    ) {
        let mut args = serde_json::Map::new();
        args.insert("code".into(), Value::String(code));
        match Command::parse(verb, &args) {
            Ok(command) => {
                let envelope = Envelope {
                    ts: inv.now.to_rfc3339(),
                    cmd: verb.to_string(),
                    args,
                    sig: [0; 32],
                };
                self.judge_and_run(command, &envelope, inv, waiter).await;
            }
            Err(e) => self.deliver(waiter, e.into()).await,
        }
    }

    /// Records an owner message before it is acted on, flushed, so that a crash in the middle
    /// leaves it to be answered at the next start ([`Gate::answer_cut_off`]). Its key, or
    /// None when the store cannot record it (then it is handled as it comes, and a crash
    /// before its reply is queued leaves it unanswered).
    async fn take_in(&mut self, body: &str) -> Option<[u8; 8]> {
        let key = match self.store.next_id() {
            Ok(id) => id.to_be_bytes(),
            Err(e) => {
                tracing::error!(error = %e, "cannot record an owner message");
                return None;
            }
        };
        if let Err(e) = self.signal().take_in(key, body) {
            tracing::error!(error = %e, "cannot record an owner message");
            return None;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "cannot record an owner message");
        }
        Some(key)
    }

    /// Queues the reply to an owner message and, in the same transaction, forgets the record
    /// of the message (`take_in`): after a crash there is either both the reply and no
    /// record, or the record to answer again.
    pub(super) fn answer_owner(&self, reply: &str, taken: Option<[u8; 8]>) {
        if let Err(e) = self.queue(MessageKind::Reply, reply, taken) {
            tracing::error!(error = %e, "cannot queue a Signal reply");
        }
    }

    /// Answers the owner's Signal messages that a crash cut off: recorded by `take_in`,
    /// never answered. An envelope that was accepted gets a note saying so (it may have done
    /// its work, which the audit log shows); anything else is handled now, as if it had just
    /// arrived (an envelope then still has to be inside its time window).
    pub(super) async fn answer_cut_off(&mut self) {
        let records = self.signal().cut_off();
        for (key, body) in records {
            let Ok(key) = <[u8; 8]>::try_from(key.as_ref()) else {
                let _ = self.signal().forget(&key);
                continue;
            };
            let body = String::from_utf8_lossy(&body).into_owned();
            let inv = Invocation::now(Channel::Signal);
            let accepted = Envelope::parse(body.trim().as_bytes())
                .ok()
                .filter(|env| self.replay.contains(&env.sig).unwrap_or(false));
            match accepted {
                Some(env) => {
                    let cmd = crate::redact::truncate(&env.cmd, 40);
                    let sig = &env.sig_hex()[..12];
                    let _ =
                        self.audit_event("signal.cut_off", &inv, json!({"cmd": cmd, "sig": sig}));
                    self.answer_owner(&format!(
                        "Your `{cmd}` command was accepted, but the agent stopped before it answered. It may have done its work: `audit` shows what it did. Sign a new envelope to run it again."
                    ), Some(key));
                }
                None => self.owner_message(body.trim(), &inv, Some(key)).await,
            }
        }
    }

    /// Carries out an owner's message; the answer is queued for them (now, or when the job
    /// it started is done).
    async fn owner_message(&mut self, body: &str, inv: &Invocation, taken: Option<[u8; 8]>) {
        if self.identity_blocked() {
            let _ = self.audit_event(
                "signal.blocked",
                inv,
                json!({"reason": "safety number changed"}),
            );
            self.answer_owner("Commands over Signal are paused: your safety number changed. The operator must verify it and run `pane-agent trust` at the console.", taken);
            return;
        }
        if body.starts_with('{') {
            return self
                .handle_envelope(body.as_bytes(), inv, Waiter::owner(taken))
                .await;
        }
        let words: Vec<&str> = body.split_whitespace().collect();
        if let [verb, code @ ..] = words.as_slice() {
            let verb = verb.to_ascii_lowercase();
            if (verb == "approve" || verb == "deny") && !code.is_empty() {
                let _ = self.audit_event("signal.plain_approval", inv, json!({"verb": verb}));
                return self
                    .settle_from_phone(&verb, code.join(""), inv, Waiter::owner(taken))
                    .await;
            }
        }
        self.answer_owner("Send a signed command envelope ({\"ts\", \"cmd\", \"args\", \"sig\"}, made with `pane-agent sign` or docs/signer.html), or reply `approve CODE` / `deny CODE`.", taken);
    }
}
