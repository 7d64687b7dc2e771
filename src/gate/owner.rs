//! The owner on Signal: what the gateway reports, the owner's messages (signed envelopes or
//! a plain `approve CODE` / `deny CODE`), and the replies that go back through the outbox.
//! Strangers never get here: the channel drops them and only counts them.

use super::admission::{Answer, Request};
use super::jobs::Waiter;
use super::Gate;
use crate::auth::Envelope;
use crate::gateway::protocol::GatewayEvent;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::policy::approvals::{ApprovalCode, ApprovalState};
use crate::reply::{CommandError, ErrorKind};
use crate::store::signal::SignalState;
use serde_json::json;

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
    /// exactly as `approve CODE` / `deny CODE` would, and with the same crash-safe record
    /// (`take_in`): a reaction a crash cut off is answered at the next start. Anything else
    /// does nothing, counted.
    async fn reaction(&mut self, emoji: &str, target: u64, remove: bool, inv: &Invocation) {
        let approve = match emoji.chars().next() {
            Some('👍') => true,
            Some('👎') => false,
            _ => {
                // Counted, and audited as a count every minute ([`Gate::write_tallies`]).
                self.reactions.ignore();
                return;
            }
        };
        if remove || self.prompt_code(target).is_none() {
            self.reactions.ignore();
            return;
        }
        let taken = self.take_in(&reaction_record(approve, target)).await;
        self.reaction_answer(approve, target, inv, taken).await;
    }

    /// The approval whose prompt went out with the Signal timestamp `target`.
    fn prompt_code(&self, target: u64) -> Option<ApprovalCode> {
        let key = self.signal().prompt(target).ok().flatten()?;
        ApprovalCode::from_store_key(key.as_bytes())
    }

    /// Carries out a recorded 👍/👎 on the prompt sent as `target`.
    async fn reaction_answer(
        &mut self,
        approve: bool,
        target: u64,
        inv: &Invocation,
        taken: Option<[u8; 8]>,
    ) {
        let verb = if approve { "approve" } else { "deny" };
        let _ = self.audit_event(
            "signal.reaction",
            inv,
            json!({"verb": verb, "target": target}),
        );
        let Some(code) = self.prompt_code(target) else {
            // The prompt's record went (pruned since a crash): nothing to answer.
            return self.answer_owner(&format!("✗ {verb}: that prompt is no longer known; send `approvals` to see what is pending"), taken);
        };
        let request = Request::Answer(Answer { approve, code });
        self.handle_request(request, inv, Waiter::owner(taken))
            .await;
    }

    /// `approve CODE` / `deny CODE` typed on the phone: the owner's answer, judged and
    /// carried out exactly as the signed command would be.
    async fn typed_answer(&mut self, approve: bool, typed: &str, inv: &Invocation, waiter: Waiter) {
        match ApprovalCode::parse(typed) {
            Some(code) => {
                let request = Request::Answer(Answer { approve, code });
                self.handle_request(request, inv, waiter).await
            }
            None => {
                let verb = if approve { "approve" } else { "deny" };
                let e = crate::commands::invalid("code must look like ABCDE-FGHJK");
                self.deliver(waiter.naming(verb), e.into()).await
            }
        }
    }

    /// Records an owner message before it is acted on, flushed, so that a crash in the middle
    /// leaves it to be answered at the next start ([`Gate::answer_cut_off`]). Its key, or
    /// None when the store cannot record it (then it is handled as it comes, and a crash
    /// before its reply is queued leaves it unanswered).
    async fn take_in(&mut self, body: &(impl AsRef<[u8]> + ?Sized)) -> Option<[u8; 8]> {
        let key = match self.store.next_id() {
            Ok(id) => id.to_be_bytes(),
            Err(e) => {
                tracing::error!(error = %e, "cannot record an owner message");
                return None;
            }
        };
        if let Err(e) = self.signal().take_in(key, body.as_ref()) {
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
            let inv = Invocation::now(Channel::Signal);
            if let Some((approve, target)) = parse_reaction_record(&body) {
                match self.prompt_code(target) {
                    Some(code) => self.cut_off_answer(approve, code, &inv, key).await,
                    None => self.reaction_answer(approve, target, &inv, Some(key)).await,
                }
                continue;
            }
            let body = String::from_utf8_lossy(&body).into_owned();
            if let Some((approve, typed)) = typed_answer_in(body.trim()) {
                if let Some(code) = ApprovalCode::parse(&typed) {
                    self.cut_off_answer(approve, code, &inv, key).await;
                    continue;
                }
            }
            let accepted = Envelope::parse(body.trim().as_bytes())
                .ok()
                .filter(|env| self.admission.replay().contains(&env.sig).unwrap_or(false));
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

    /// An answer to an approval (typed or a reaction) that a crash cut off: carried out now
    /// when the approval still waits; else the owner is told it was taken and where the
    /// approval stands (an approved action that never finished is resumed at start, with a
    /// message of its own).
    async fn cut_off_answer(
        &mut self,
        approve: bool,
        code: ApprovalCode,
        inv: &Invocation,
        key: [u8; 8],
    ) {
        let verb = if approve { "approve" } else { "deny" };
        let settled = match self.policy.approvals.get(&code) {
            Ok(Some(a)) if a.state != ApprovalState::Pending => a,
            _ => {
                let request = Request::Answer(Answer { approve, code });
                return self
                    .handle_request(request, inv, Waiter::owner(Some(key)))
                    .await;
            }
        };
        let _ = self.audit_event(
            "signal.cut_off",
            inv,
            json!({"cmd": verb, "code": settled.code}),
        );
        let state = match settled.state {
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Pending => "pending",
        };
        self.answer_owner(&format!(
            "Your {verb} of approval {} ({}) was taken, but the agent stopped before it answered. The approval is {state}; `audit` shows what was done.",
            settled.reference(),
            crate::text::escape(&settled.summary, crate::text::Lines::Single)
        ), Some(key));
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
        if let Some((approve, typed)) = typed_answer_in(body) {
            let verb = if approve { "approve" } else { "deny" };
            let _ = self.audit_event("signal.plain_approval", inv, json!({"verb": verb}));
            return self
                .typed_answer(approve, &typed, inv, Waiter::owner(taken))
                .await;
        }
        self.answer_owner("Send a signed command envelope ({\"ts\", \"cmd\", \"args\", \"sig\"}, made with `pane-agent sign` or docs/signer.html), or reply `approve CODE` / `deny CODE`.", taken);
    }
}

/// `approve CODE` / `deny CODE` as typed on the phone (any case, the code's groups spaced
/// or not): approve or not, and the code as typed.
fn typed_answer_in(body: &str) -> Option<(bool, String)> {
    let words: Vec<&str> = body.split_whitespace().collect();
    let [verb, code @ ..] = words.as_slice() else {
        return None;
    };
    let approve = match verb.to_ascii_lowercase().as_str() {
        "approve" => true,
        "deny" => false,
        _ => return None,
    };
    (!code.is_empty()).then(|| (approve, code.join("")))
}

/// The first byte of a recorded reaction in the Signal inbox: never the first byte of UTF-8
/// text, so a typed message cannot be read as one.
const REACTION_RECORD: u8 = 0xFF;

/// A 👍 (`approve`) or 👎 on the prompt sent as `target`, as the inbox records it: the
/// prompt's timestamp, not the code, which is looked up again when it is carried out.
fn reaction_record(approve: bool, target: u64) -> Vec<u8> {
    let mut record = vec![REACTION_RECORD, u8::from(approve)];
    record.extend_from_slice(&target.to_be_bytes());
    record
}

/// The reaction an inbox record holds, if it is one.
fn parse_reaction_record(record: &[u8]) -> Option<(bool, u64)> {
    match record {
        [REACTION_RECORD, approve @ (0 | 1), target @ ..] => {
            let target = <[u8; 8]>::try_from(target).ok()?;
            Some((*approve == 1, u64::from_be_bytes(target)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaction_records_round_trip_and_text_is_never_one() {
        for (approve, target) in [(true, 1), (false, u64::MAX), (true, 1_733_000_000_000)] {
            assert_eq!(
                parse_reaction_record(&reaction_record(approve, target)),
                Some((approve, target))
            );
        }
        for text in ["approve ABCDE-FGHJK", "{\"cmd\":\"list\"}", "", "ÿ"] {
            assert_eq!(parse_reaction_record(text.as_bytes()), None);
        }
    }
}
