//! Refusals at the gate: each is audited, at most [`REFUSALS_AUDITED_PER_MINUTE`] a channel a
//! minute; the rest are counted and written as one summary, so a flood cannot fill the
//! store.

use super::Gate;
use crate::auth::Envelope;
use crate::origin::{Channel, Invocation};
use crate::reply::{CommandError, Reply};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Refused envelopes written to the audit log per channel per minute.
const REFUSALS_AUDITED_PER_MINUTE: u32 = 30;

#[derive(Debug)]
struct Window {
    started: Instant,
    audited: u32,
    suppressed: u64,
}

/// The refusals of this minute, per channel.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    windows: HashMap<Channel, Window>,
}

impl Refusals {
    /// Counts one refusal on `channel` at `now`: whether to audit it, and the count of the
    /// previous minute's refusals that were not audited, when there were any.
    fn count(&mut self, channel: Channel, now: Instant) -> (bool, Option<u64>) {
        let window = self.windows.entry(channel).or_insert(Window {
            started: now,
            audited: 0,
            suppressed: 0,
        });
        let mut summary = None;
        if now.duration_since(window.started) >= Duration::from_secs(60) {
            if window.suppressed > 0 {
                summary = Some(window.suppressed);
            }
            *window = Window {
                started: now,
                audited: 0,
                suppressed: 0,
            };
        }
        let audit_this = window.audited < REFUSALS_AUDITED_PER_MINUTE;
        if audit_this {
            window.audited += 1;
        } else {
            window.suppressed += 1;
        }
        (audit_this, summary)
    }

    /// Each channel's refusals not audited one by one since the last call.
    pub(super) fn take_suppressed(&mut self) -> Vec<(Channel, u64)> {
        self.windows
            .iter_mut()
            .filter_map(|(c, w)| {
                Some((*c, std::mem::take(&mut w.suppressed))).filter(|(_, n)| *n > 0)
            })
            .collect()
    }
}

impl Gate {
    /// Audits a refusal (at most [`REFUSALS_AUDITED_PER_MINUTE`] a channel a minute; the
    /// rest are counted and written as one summary) and returns it as the reply.
    pub(super) fn refuse(
        &mut self,
        inv: &Invocation,
        error: CommandError,
        envelope: Option<&Envelope>,
    ) -> Reply {
        tracing::info!(
            channel = inv.channel.as_str(),
            kind = error.kind.as_str(),
            "envelope refused"
        );
        let (audit_this, summary) = self.refusals.count(inv.channel, Instant::now());
        if let Some(n) = summary {
            let _ = self.audit_event("envelope.refused.suppressed", inv, json!({"count": n}));
        }
        if audit_this {
            let detail = match envelope {
                Some(env) => json!({
                    "kind": error.kind.as_str(),
                    "reason": error.message,
                    "cmd": crate::redact::truncate(&env.cmd, 40),
                    "ts": env.ts,
                    "sig": &env.sig_hex()[..12],
                }),
                None => json!({"kind": error.kind.as_str(), "reason": error.message}),
            };
            if let Err(e) = self.audit_event("envelope.refused", inv, detail) {
                return Reply::Err(e);
            }
        }
        Reply::Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_audited_as_a_count() {
        let mut r = Refusals::default();
        let t0 = Instant::now();
        let audited = (0..100).filter(|_| r.count(Channel::Http, t0).0).count();
        assert_eq!(audited, REFUSALS_AUDITED_PER_MINUTE as usize);
        // Another channel has its own budget.
        assert!(r.count(Channel::Socket, t0).0);
        // A minute later: audited again, and the 70 left out are summed up.
        let (audit, summary) = r.count(Channel::Http, t0 + Duration::from_secs(61));
        assert!(audit);
        assert_eq!(summary, Some(70));
    }
}
