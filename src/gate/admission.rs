//! Admission: everything between an envelope's bytes and a request the policy can judge.
//!
//! Parse, authenticate against the time it arrived (the command secrets, or the MCP key on
//! the control socket), the rollback floor, the envelope rate limit, and replay refusal.
//! [`Admission`] owns the credentials, the replay cache and the envelope budget, and writes
//! nothing but the replay cache: what it decided comes back as an [`Admitted`] request or a
//! [`Refused`] one, which the gate audits.

use crate::auth::replay::ReplayCache;
use crate::auth::{Envelope, SecretSet, WINDOW_SECS};
use crate::commands::Command;
use crate::origin::{Channel, Invocation};
use crate::policy::approvals::ApprovalCode;
use crate::policy::rate_limit::RateLimiter;
use crate::reply::{CommandError, ErrorKind};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::time::Instant;

/// The owner's answer to an approval, whichever way it came: `approve`/`deny` in a signed
/// envelope, typed on the phone as `approve CODE`, or a 👍/👎 on the prompt.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Answer {
    /// Approve (true) or deny (false).
    pub approve: bool,
    /// The approval it answers.
    pub code: ApprovalCode,
}

impl Answer {
    /// The tool the answer runs under (its grant and rate limit): `approve` or `deny`.
    pub(super) fn tool_name(&self) -> &'static str {
        if self.approve {
            "approve"
        } else {
            "deny"
        }
    }
}

/// A request the gate admitted, of one of two kinds.
#[derive(Debug)]
pub(super) enum Request {
    /// A signed envelope's command, with its arguments as signed (an approval binds them).
    Command {
        command: Command,
        args: serde_json::Map<String, serde_json::Value>,
    },
    /// The owner's answer to an approval.
    Answer(Answer),
}

impl Request {
    /// The command name the reply is worded for.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Request::Command { command, .. } => command.name(),
            Request::Answer(a) => a.tool_name(),
        }
    }

    /// A signed command, or the answer an `approve`/`deny` envelope carries.
    pub(super) fn from_command(
        command: Command,
        args: serde_json::Map<String, serde_json::Value>,
    ) -> Request {
        match command {
            Command::Approve(c) => Request::Answer(Answer {
                approve: true,
                code: c.code,
            }),
            Command::Deny(c) => Request::Answer(Answer {
                approve: false,
                code: c.code,
            }),
            command => Request::Command { command, args },
        }
    }
}

/// An envelope that passed admission.
#[derive(Debug)]
pub(super) struct Admitted {
    /// The envelope.
    pub envelope: Envelope,
    /// The invocation, naming the credential's channel (`mcp` for the MCP key).
    pub inv: Invocation,
    /// The time it was signed at.
    pub ts: DateTime<Utc>,
}

/// Why an envelope was not admitted.
#[derive(Debug)]
pub(super) enum Refused {
    /// Refused, with the envelope when it could be read (for the audit log) and the
    /// invocation it was judged as.
    Refused {
        error: CommandError,
        envelope: Option<Box<Envelope>>,
        inv: Invocation,
    },
    /// The replay cache could not be read or written: fail secure.
    Internal(String),
}

/// The credentials, the replay cache and the envelope budget.
pub(super) struct Admission {
    secrets: SecretSet,
    /// The MCP key (`mcp.key`), a credential of its own: see `policy::mcp`.
    mcp_key: Option<SecretSet>,
    replay: ReplayCache,
    /// The envelope budget of each channel (`[rate_limits] envelopes`).
    envelopes: RateLimiter,
    /// Envelopes signed at or before this are refused: the store was rolled back.
    rollback_floor: Option<DateTime<Utc>>,
    /// The MCP key is accepted only when approval codes go to the owner's phone.
    mcp_allowed: bool,
}

impl Admission {
    /// Admission with these credentials and the replay cache.
    pub(super) fn new(
        secrets: SecretSet,
        replay: ReplayCache,
        envelopes: RateLimiter,
        mcp_allowed: bool,
    ) -> Admission {
        Admission {
            secrets,
            mcp_key: None,
            replay,
            envelopes,
            rollback_floor: None,
            mcp_allowed,
        }
    }

    /// The command secrets accepted now.
    pub(super) fn secrets(&self) -> &SecretSet {
        &self.secrets
    }

    /// Replaces the credentials (`secrets.reload`).
    pub(super) fn set_credentials(&mut self, secrets: SecretSet, mcp_key: Option<SecretSet>) {
        self.secrets = secrets;
        self.mcp_key = mcp_key;
    }

    /// Sets the MCP key.
    pub(super) fn set_mcp_key(&mut self, mcp_key: Option<SecretSet>) {
        self.mcp_key = mcp_key;
    }

    /// Refuses envelopes signed at or before `floor` from now on.
    pub(super) fn set_rollback_floor(&mut self, floor: DateTime<Utc>) {
        self.rollback_floor = Some(floor);
    }

    /// The replay cache (pruned by housekeeping; read for cut-off messages).
    pub(super) fn replay(&self) -> &ReplayCache {
        &self.replay
    }

    /// Parses and authenticates `bytes` received as `inv`; refuses replays, envelopes
    /// before the rollback floor and envelopes over the channel's budget. An admitted
    /// envelope's signature is in the replay cache (not yet flushed).
    pub(super) fn admit(&mut self, bytes: &[u8], inv: &Invocation) -> Result<Admitted, Refused> {
        let refused =
            |error: CommandError, envelope: Option<&Envelope>, inv: &Invocation| Refused::Refused {
                error,
                envelope: envelope.map(|e| Box::new(e.clone())),
                inv: inv.clone(),
            };
        let envelope = Envelope::parse(bytes).map_err(|e| refused(e, None, inv))?;
        let (ts, inv) = match envelope.authenticate(&self.secrets, inv.now) {
            Ok(ts) => (ts, inv.clone()),
            Err(e) => match self.authenticate_mcp(&envelope, inv) {
                Some(Ok(found)) => found,
                Some(Err(e)) => return Err(refused(e, Some(&envelope), inv)),
                None => return Err(refused(e, Some(&envelope), inv)),
            },
        };
        if inv.channel == Channel::Mcp && !self.mcp_allowed {
            let e = CommandError::new(
                ErrorKind::Unavailable,
                "the MCP key works only when approvals go to the owner's phone: set [signal] owner and keep [approvals] codes_over_signal_only = true",
            );
            return Err(refused(e, Some(&envelope), &inv));
        }
        if matches!(self.rollback_floor, Some(floor) if ts <= floor) {
            let e = CommandError::new(
                ErrorKind::Replayed,
                "refused: the store was restored from an older copy and cannot prove this envelope unused; sign a new one",
            );
            return Err(refused(e, Some(&envelope), &inv));
        }
        // One budget for every authenticated envelope, parseable or not, before anything of
        // it is written.
        if let Err(wait) = self
            .envelopes
            .try_acquire_envelope(inv.channel.as_str(), Instant::now())
        {
            let e = CommandError::new(
                ErrorKind::RateLimited,
                format!(
                    "rate limited: too many envelopes on this channel ([rate_limits] envelopes); try again in {} s",
                    wait.as_secs().max(1)
                ),
            );
            return Err(refused(e, Some(&envelope), &inv));
        }
        // Remembered until the envelope could not pass the window anyway.
        let forget_after = ts + ChronoDuration::seconds(WINDOW_SECS + 1);
        match self.replay.insert_new(&envelope.sig, forget_after) {
            Ok(true) => Ok(Admitted { envelope, inv, ts }),
            Ok(false) => {
                let e = CommandError::new(
                    ErrorKind::Replayed,
                    "replayed: this envelope was already accepted; sign a new one",
                );
                Err(refused(e, Some(&envelope), &inv))
            }
            Err(e) => Err(Refused::Internal(e.to_string())),
        }
    }

    /// An envelope the command secrets did not sign, checked against the MCP key: None when
    /// there is no MCP key or it came on a channel other than the control socket (where
    /// `pane-agent mcp` sends from); else its time and the `mcp` invocation, or why not.
    fn authenticate_mcp(
        &self,
        envelope: &Envelope,
        inv: &Invocation,
    ) -> Option<Result<(DateTime<Utc>, Invocation), CommandError>> {
        let key = self
            .mcp_key
            .as_ref()
            .filter(|_| inv.channel == Channel::Socket)?;
        let mcp = Invocation {
            channel: Channel::Mcp,
            now: inv.now,
        };
        match envelope.authenticate(key, inv.now) {
            Ok(ts) => Some(Ok((ts, mcp))),
            Err(e) if e.kind == ErrorKind::BadSignature => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::mcp_key::as_set;
    use crate::auth::Secret;
    use crate::config::RateLimitsConfig;
    use crate::store::Store;
    use serde_json::Map;

    const SECRET: &str = "a-command-secret-of-enough-length-000001";
    const MCP: &str = "an-mcp-key-of-its-own-enough-length-0002";

    fn admission(store: &Store, mcp_allowed: bool) -> Admission {
        let mut a = Admission::new(
            as_set(Secret::new(SECRET)),
            ReplayCache::new(store),
            RateLimiter::new(RateLimitsConfig::default()),
            mcp_allowed,
        );
        a.set_mcp_key(Some(as_set(Secret::new(MCP))));
        a
    }

    fn signed(secret: &str, cmd: &str, at: DateTime<Utc>) -> Vec<u8> {
        Envelope::sign(&Secret::new(secret), at, cmd, Map::new())
            .to_json()
            .into_bytes()
    }

    fn kind(r: Result<Admitted, Refused>) -> ErrorKind {
        match r {
            Err(Refused::Refused { error, .. }) => error.kind,
            Err(Refused::Internal(e)) => panic!("internal: {e}"),
            Ok(a) => panic!("admitted {}", a.envelope.cmd),
        }
    }

    /// A signed envelope is admitted once; the same bytes again are a replay; a forged,
    /// unreadable or stale one is refused, each with its own kind.
    #[test]
    fn admitted_once_and_refused_otherwise() {
        let store = Store::temporary().unwrap();
        let mut a = admission(&store, true);
        let now = Utc::now();
        let inv = Invocation::now(Channel::Socket);
        let bytes = signed(SECRET, "list", now);
        let admitted = a.admit(&bytes, &inv).unwrap();
        assert_eq!(admitted.envelope.cmd, "list");
        assert_eq!(admitted.inv.channel, Channel::Socket);
        assert_eq!(kind(a.admit(&bytes, &inv)), ErrorKind::Replayed);
        let forged = signed("another-secret-of-enough-length-00000003", "list", now);
        assert_eq!(kind(a.admit(&forged, &inv)), ErrorKind::BadSignature);
        assert_eq!(kind(a.admit(b"{not json", &inv)), ErrorKind::Malformed);
        let stale = signed(SECRET, "list", now - chrono::Duration::hours(1));
        assert_eq!(kind(a.admit(&stale, &inv)), ErrorKind::Expired);
    }

    /// The MCP key is its own channel, on the control socket only, and only when codes go
    /// to the owner's phone.
    #[test]
    fn the_mcp_key_is_a_channel_of_its_own() {
        let store = Store::temporary().unwrap();
        let mut a = admission(&store, true);
        let now = Utc::now();
        let socket = Invocation::now(Channel::Socket);
        let admitted = a.admit(&signed(MCP, "list", now), &socket).unwrap();
        assert_eq!(admitted.inv.channel, Channel::Mcp);
        let http = Invocation::now(Channel::Http);
        let over_http = signed(MCP, "status", now);
        assert_eq!(kind(a.admit(&over_http, &http)), ErrorKind::BadSignature);

        let store = Store::temporary().unwrap();
        let mut no_phone = admission(&store, false);
        let refused = no_phone.admit(&signed(MCP, "list", now), &socket);
        assert_eq!(kind(refused), ErrorKind::Unavailable);
    }

    /// After a rollback is found, envelopes signed before its mark are refused: the lost
    /// replay cache cannot prove them unused.
    #[test]
    fn the_rollback_floor_refuses_what_it_cannot_prove_unused() {
        let store = Store::temporary().unwrap();
        let mut a = admission(&store, true);
        let now = Utc::now();
        a.set_rollback_floor(now);
        let inv = Invocation::now(Channel::Socket);
        let before = signed(SECRET, "list", now - chrono::Duration::seconds(1));
        assert_eq!(kind(a.admit(&before, &inv)), ErrorKind::Replayed);
        let after = signed(SECRET, "list", now + chrono::Duration::milliseconds(5));
        assert!(a.admit(&after, &inv).is_ok());
    }

    /// One budget per channel for authenticated envelopes.
    #[test]
    fn the_envelope_budget_is_per_channel() {
        let store = Store::temporary().unwrap();
        let mut a = admission(&store, true);
        let max = RateLimitsConfig::default().envelopes.max;
        let now = Utc::now();
        let http = Invocation::now(Channel::Http);
        for i in 0..max {
            let at = now + chrono::Duration::milliseconds(i as i64);
            assert!(a.admit(&signed(SECRET, "list", at), &http).is_ok(), "{i}");
        }
        let one_more = signed(SECRET, "list", now + chrono::Duration::seconds(30));
        assert_eq!(kind(a.admit(&one_more, &http)), ErrorKind::RateLimited);
        let socket = Invocation::now(Channel::Socket);
        assert!(a.admit(&one_more, &socket).is_ok());
    }
}
