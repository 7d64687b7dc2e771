//! The Signal link's health in the core's own records, so that a link that died is never
//! silent: the latest `health` line the gateway wrote (and when), whether a gateway is
//! connected to the agent at all, when the link was last active, and the outage in progress
//! (since when, what broke, whether the fallback was called).
//!
//! [`LinkRecords`] is the one owner of these records; the gate writes them (from the Signal
//! channel's lines and its own checks) and everyone else reads them through it: `health`,
//! `signal.challenge`, `/healthz` (through the gate), the systemd status line and `doctor`
//! (through `<data-dir>/link.state`, which the gate writes). [`judge`] turns a snapshot into
//! a verdict with [`Thresholds`] from `[alerts]`; [`GatewayMailbox`] carries the one core
//! command that is not an outbox message (a captcha's answer) to the gateway connection.

pub mod judge;

pub use judge::{Judgement, LinkReport, LinkStatus, Problem, Thresholds};

use crate::gateway::protocol::{CoreCommand, LinkHealth, Registration};
use crate::store::records::{Json, Key, Records, Text};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The latest `health` line, with when it came.
const LATEST: Key<Json<Received>> = Key::new("signal.health");
/// Whether a gateway is connected to the agent, and since when.
const GATEWAY: Key<Json<GatewaySeen>> = Key::new("signal.gateway");
/// The outage in progress.
const OUTAGE: Key<Json<Outage>> = Key::new("signal.outage");
/// The latest activity any `health` line reported (ms): never goes back.
const LAST_ACTIVE: Key<Text<u64>> = Key::new("signal.last_active");
/// The `last_active` the owner was warned about (the warning comes once per quiet spell).
const INACTIVE_WARNED: Key<Text<u64>> = Key::new("signal.inactive_warned");

/// A `health` line as kept: the line, when it arrived, and since when its registration has
/// been what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The line.
    pub health: LinkHealth,
    /// When the core received it (ms).
    pub at: u64,
    /// Since when the registration has been `health.registration` (ms): the first line that
    /// said so.
    pub registration_since: u64,
}

/// Whether a gateway is connected to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewaySeen {
    /// Connected now.
    pub connected: bool,
    /// Since when (ms).
    pub since: u64,
}

/// An outage in progress: Signal judged unusable since `started`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    /// When it was judged unusable (ms).
    pub started: u64,
    /// What is wrong now (it may change during one outage: unlinked, then no gateway while
    /// it is relinked).
    pub problem: Problem,
    /// The fallback URL was handed the alert.
    pub fallback_told: bool,
}

/// Everything the records hold, read at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    /// The latest `health` line.
    pub latest: Option<Received>,
    /// The gateway's connection to the agent (None before the first start with this
    /// version).
    pub gateway: Option<GatewaySeen>,
    /// The outage in progress.
    pub outage: Option<Outage>,
    /// The latest activity reported (ms).
    pub last_active: Option<u64>,
    /// The `last_active` the owner was warned about.
    pub inactive_warned: Option<u64>,
}

impl LinkState {
    /// The pending challenge's token: the latest line says `proof_required` and carries one.
    pub fn challenge_token(&self) -> Option<&str> {
        let latest = self.latest.as_ref()?;
        if latest.health.registration != Registration::ProofRequired {
            return None;
        }
        latest.health.challenge.as_ref().map(|c| c.token.as_str())
    }

    /// True while a gateway is connected to the agent.
    pub fn gateway_connected(&self) -> bool {
        self.gateway.is_some_and(|g| g.connected)
    }
}

/// The link's records. Clones share them.
#[derive(Clone)]
pub struct LinkRecords {
    records: Records,
}

impl LinkRecords {
    /// Over the store's typed records.
    pub fn new(store: &Store) -> LinkRecords {
        LinkRecords {
            records: store.records(),
        }
    }

    /// Everything, read now. A record that does not read is left out (as if never written).
    pub fn state(&self) -> Result<LinkState, StoreError> {
        Ok(LinkState {
            latest: self.records.get_valid(&LATEST)?,
            gateway: self.records.get_valid(&GATEWAY)?,
            outage: self.records.get_valid(&OUTAGE)?,
            last_active: self.records.get_valid(&LAST_ACTIVE)?,
            inactive_warned: self.records.get_valid(&INACTIVE_WARNED)?,
        })
    }

    /// Keeps a `health` line received at `now` (ms), and the activity it reports.
    pub fn record_health(&self, health: LinkHealth, now: u64) -> Result<(), StoreError> {
        let previous: Option<Received> = self.records.get_valid(&LATEST)?;
        let registration_since = match previous {
            Some(p) if p.health.registration == health.registration => p.registration_since,
            _ => now,
        };
        let active = health.last_received.max(health.last_sent);
        self.records.set(
            &LATEST,
            &Received {
                health,
                at: now,
                registration_since,
            },
        )?;
        if let Some(active) = active {
            let known: Option<u64> = self.records.get_valid(&LAST_ACTIVE)?;
            if known.is_none_or(|k| active > k) {
                self.records.set(&LAST_ACTIVE, &active)?;
            }
        }
        Ok(())
    }

    /// Records that a gateway connected (or went away) at `now` (ms). Nothing changes when
    /// it already was so: `since` stays the first time.
    pub fn record_gateway(&self, connected: bool, now: u64) -> Result<(), StoreError> {
        let known: Option<GatewaySeen> = self.records.get_valid(&GATEWAY)?;
        if known.is_some_and(|g| g.connected == connected) {
            return Ok(());
        }
        self.records.set(
            &GATEWAY,
            &GatewaySeen {
                connected,
                since: now,
            },
        )?;
        Ok(())
    }

    /// At the agent's start: no gateway is connected, since now (none could connect while
    /// the agent was down, and its downtime is not the gateway's).
    pub fn reset_gateway(&self, now: u64) -> Result<(), StoreError> {
        self.records.set(
            &GATEWAY,
            &GatewaySeen {
                connected: false,
                since: now,
            },
        )?;
        Ok(())
    }

    /// Opens (or updates) the outage in progress.
    pub fn set_outage(&self, outage: &Outage) -> Result<(), StoreError> {
        self.records.set(&OUTAGE, outage)?;
        Ok(())
    }

    /// Closes the outage in progress.
    pub fn end_outage(&self) -> Result<(), StoreError> {
        self.records.remove(&OUTAGE)?;
        Ok(())
    }

    /// Records that the owner was warned about the quiet spell that began at `last_active`.
    pub fn warned_inactive(&self, last_active: u64) -> Result<(), StoreError> {
        self.records.set(&INACTIVE_WARNED, &last_active)?;
        Ok(())
    }
}

/// The link as the gate and the commands hold it: its records, the thresholds they are
/// judged by, and the mailbox to the gateway. Clones share them.
#[derive(Clone)]
pub struct Link {
    records: LinkRecords,
    thresholds: Thresholds,
    mailbox: GatewayMailbox,
}

impl Link {
    /// Over the store's records, judged by `thresholds`, writing to the gateway through
    /// `mailbox`.
    pub fn new(store: &Store, thresholds: Thresholds, mailbox: GatewayMailbox) -> Link {
        Link {
            records: LinkRecords::new(store),
            thresholds,
            mailbox,
        }
    }

    /// The records.
    pub fn records(&self) -> &LinkRecords {
        &self.records
    }

    /// The thresholds.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// The mailbox to the gateway.
    pub fn mailbox(&self) -> &GatewayMailbox {
        &self.mailbox
    }

    /// The report at `now` (ms).
    pub fn report(&self, now: u64) -> Result<LinkReport, StoreError> {
        Ok(self.records.state()?.report(now, &self.thresholds))
    }
}

/// Core commands for the gateway that are not outbox messages: a captcha's answer. At most
/// one waits (a newer answer replaces an older one); the gateway connection writes it as soon
/// as its bell rings, or when the next gateway connects. Held in memory only: an answer is
/// good for minutes and is never written to disk. Clones share it.
#[derive(Clone, Default)]
pub struct GatewayMailbox {
    slot: Arc<Mutex<Option<CoreCommand>>>,
    bell: Arc<Notify>,
}

impl std::fmt::Debug for GatewayMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayMailbox")
    }
}

impl GatewayMailbox {
    /// Leaves `command` for the gateway and rings the bell.
    pub fn post(&self, command: CoreCommand) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(command);
        self.bell.notify_one();
    }

    /// The command waiting, taken.
    pub fn take(&self) -> Option<CoreCommand> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Waits until something is posted.
    pub async fn rung(&self) {
        self.bell.notified().await
    }
}

/// Now, in ms since the epoch (the unit of the `health` line).
pub fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::protocol::{Challenge, GatewayBuild};

    pub(crate) fn line(registration: Registration, connected: bool, since: u64) -> LinkHealth {
        LinkHealth {
            connected,
            since,
            last_received: Some(since + 5),
            last_sent: None,
            registration,
            detail: None,
            challenge: (registration == Registration::ProofRequired).then(|| Challenge {
                token: "t0k".into(),
                options: vec!["captcha".into()],
            }),
            build: GatewayBuild::default(),
            proxy: None,
        }
    }

    #[test]
    fn the_records_keep_the_line_the_gateway_and_the_activity() {
        let store = Store::temporary().unwrap();
        let link = LinkRecords::new(&store);
        assert_eq!(link.state().unwrap(), LinkState::default());
        link.record_health(line(Registration::Ok, true, 100), 1_000)
            .unwrap();
        link.record_health(line(Registration::Unlinked, true, 100), 2_000)
            .unwrap();
        link.record_health(line(Registration::Unlinked, true, 50), 3_000)
            .unwrap();
        let s = link.state().unwrap();
        let latest = s.latest.clone().unwrap();
        assert_eq!(latest.at, 3_000);
        // Since the first line that said unlinked; the activity never goes back.
        assert_eq!(latest.registration_since, 2_000);
        assert_eq!(s.last_active, Some(105));
        assert_eq!(s.challenge_token(), None);
        link.record_health(line(Registration::ProofRequired, true, 200), 4_000)
            .unwrap();
        assert_eq!(link.state().unwrap().challenge_token(), Some("t0k"));

        link.record_gateway(true, 10).unwrap();
        link.record_gateway(true, 20).unwrap();
        assert_eq!(
            link.state().unwrap().gateway,
            Some(GatewaySeen {
                connected: true,
                since: 10
            })
        );
        link.record_gateway(false, 30).unwrap();
        assert!(!link.state().unwrap().gateway_connected());
    }

    #[test]
    fn the_mailbox_keeps_the_newest_answer_and_rings() {
        let mailbox = GatewayMailbox::default();
        let answer = |c: &str| CoreCommand::SubmitChallenge {
            token: "t".into(),
            captcha: c.into(),
        };
        mailbox.post(answer("a"));
        mailbox.post(answer("b"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), mailbox.rung())
                .await
                .unwrap()
        });
        assert_eq!(mailbox.take(), Some(answer("b")));
        assert_eq!(mailbox.take(), None);
    }
}
