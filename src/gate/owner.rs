//! The owner's input from the Signal channel: their messages (signed envelopes, or a plain
//! `approve CODE` / `deny CODE`) and their 👍/👎 on approval prompts. The channel decided who
//! may speak and whether their identity holds ([`crate::channels::signal`]); here each input
//! is recorded before it is acted on (the Signal inbox), judged like any other request, and
//! answered through the outbox in the same transaction that forgets its record, so a crash
//! in between leaves it to be answered at the next start.

use super::admission::{Answer, Request};
use super::jobs::Waiter;
use super::{Gate, OwnerInput};
use crate::auth::Envelope;
use crate::origin::{Channel, Invocation};
use crate::outbox::MessageKind;
use crate::policy::approvals::{ApprovalCode, ApprovalState};
use crate::store::signal::SignalState;
use serde_json::json;

impl Gate {
    /// Records the owner's input, then carries it out; true once it is on disk (the gateway
    /// may forget it).
    pub(super) async fn owner_input(&mut self, input: OwnerInput) -> bool {
        let inv = Invocation::now(Channel::Signal);
        match input {
            OwnerInput::Message { id, body } => {
                match self.take_in(id.as_deref(), body.as_bytes()).await {
                    TakenIn::Again => {}
                    TakenIn::As(taken) => self.owner_message(body.trim(), &inv, taken).await,
                }
            }
            OwnerInput::Reaction { id, approve, code } => {
                match self
                    .take_in(Some(&id), &reaction_record(approve, &code))
                    .await
                {
                    TakenIn::Again => {}
                    TakenIn::As(taken) => self.reaction_answer(approve, code, &inv, taken).await,
                }
            }
        }
        match self.store.flush().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %self.redactor.text(&e.to_string()), "store flush failed after the owner's input");
                false
            }
        }
    }

    /// The Signal channel's records.
    fn signal(&self) -> SignalState {
        SignalState::new(&self.store)
    }

    /// Carries out a recorded 👍/👎 on the prompt of `code`.
    async fn reaction_answer(
        &mut self,
        approve: bool,
        code: ApprovalCode,
        inv: &Invocation,
        taken: Option<[u8; 8]>,
    ) {
        let verb = if approve { "approve" } else { "deny" };
        let _ = self.audit_event("signal.reaction", inv, json!({"verb": verb, "code": code}));
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
    async fn take_in(&mut self, id: Option<&str>, body: &[u8]) -> TakenIn {
        let key = match self.store.next_id() {
            Ok(id) => id.to_be_bytes(),
            Err(e) => {
                tracing::error!(error = %e, "cannot record an owner message");
                return TakenIn::As(None);
            }
        };
        let recorded = match id {
            Some(id) => {
                let now = chrono::Utc::now().timestamp_millis();
                self.signal().take_in_once(key, body, id, now)
            }
            None => self.signal().take_in(key, body).map(|()| true),
        };
        match recorded {
            // A line sent again after a reconnect: acknowledged, acted on once.
            Ok(false) => return TakenIn::Again,
            Ok(true) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot record an owner message");
                return TakenIn::As(None);
            }
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "cannot record an owner message");
        }
        TakenIn::As(Some(key))
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
            if let Some((approve, code)) = parse_reaction_record(&body) {
                self.cut_off_answer(approve, code, &inv, key).await;
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

/// What `take_in` did with an owner's input.
enum TakenIn {
    /// Its id was seen before: already recorded (and acted on, or to be at the next start).
    Again,
    /// Recorded under this key (None when the store could not record it: it is handled as
    /// it comes).
    As(Option<[u8; 8]>),
}

/// The first byte of a recorded reaction in the Signal inbox: never the first byte of UTF-8
/// text, so a typed message cannot be read as one.
const REACTION_RECORD: u8 = 0xFF;

/// A 👍 (`approve`) or 👎 on the prompt of `code`, as the inbox records it.
fn reaction_record(approve: bool, code: &ApprovalCode) -> Vec<u8> {
    let mut record = vec![REACTION_RECORD, u8::from(approve)];
    record.extend_from_slice(code.store_key());
    record
}

/// The reaction an inbox record holds, if it is one.
fn parse_reaction_record(record: &[u8]) -> Option<(bool, ApprovalCode)> {
    match record {
        [REACTION_RECORD, approve @ (0 | 1), code @ ..] => {
            Some((*approve == 1, ApprovalCode::from_store_key(code)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaction_records_round_trip_and_text_is_never_one() {
        for approve in [true, false] {
            let code = ApprovalCode::random().unwrap();
            assert_eq!(
                parse_reaction_record(&reaction_record(approve, &code)),
                Some((approve, code))
            );
        }
        for text in ["approve ABCDE-FGHJK", "{\"cmd\":\"list\"}", "", "ÿ"] {
            assert_eq!(parse_reaction_record(text.as_bytes()), None);
        }
    }
}
