//! The breach monitor: reads every source, matches each message's sender against the site
//! its alias was given to, and records incidents. It reports new incidents to its caller
//! (the agent), which alerts the owner and queues the burn.
//!
//! A source that is down is reported and skipped; its cursor does not move, so nothing is
//! lost: the next sweep reads what this one could not.
//!
//! Sources: the IMAP mailbox (here, with the impersonation check of mail that claims the
//! site's own domain), SimpleLogin's activity logs (here), the card provider's transactions
//! ([`cards`]) and Have I Been Pwned ([`hibp`]).

mod cards;
mod hibp;

use super::alias::AliasHandle;
use super::card::CardHandle;
use crate::breach::authres::{judge, Verdict};
use crate::breach::imap::{Cursor, ImapError, ImapSource};
use crate::breach::incidents::{incident_id, Finding, Incident, IncidentKind, Incidents};
use crate::breach::matching::{belongs, escape_untrusted, observe, observe_sender, registrable};
use crate::context::Contexts;
use crate::inbox::index::{MailEntry, MailHeader, MailIndex};
use crate::providers::hibp::Hibp;
use crate::providers::ProviderError;
use crate::store::records::{Family, Json, Key, Text};
use crate::store::{Store, StoreError};
use serde::{Serialize, Serializer};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// How far the IMAP mailbox has been read.
const IMAP_CURSOR: Key<Json<Cursor>> = Key::new("breach.imap.cursor");
/// SimpleLogin's forwarded + blocked count last read, per alias id.
const SL_COUNT: Family<Text<u64>> = Family::new("breach.sl.count.");

/// The most Have I Been Pwned look-ups one sweep makes.
pub const HIBP_PER_SWEEP: usize = 20;

/// How one source fared in a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceReport {
    /// The source.
    pub source: &'static str,
    /// True when it was read.
    pub ok: bool,
    /// Messages fetched from it.
    pub fetched: usize,
    /// True when its UIDVALIDITY changed and it was read from the start.
    pub rescanned: bool,
    /// Why it could not be read.
    pub error: Option<String>,
    /// Requests made to it, where that is counted (the card provider).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u32>,
}

/// The result of one sweep.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepReport {
    /// Each source.
    pub sources: Vec<SourceReport>,
    /// Messages whose sender belongs to the site.
    pub expected: usize,
    /// Messages to addresses no context owns.
    pub unmatched: usize,
    /// Incidents seen for the first time, each with its `summary`.
    #[serde(serialize_with = "views")]
    pub new_incidents: Vec<Incident>,
    /// Incidents seen again (count increased).
    pub repeated: usize,
}

impl crate::reply::Words for SweepReport {
    /// A headline with the new incidents (each alerted on its own), then one line per
    /// source: `✓ sweep: 2 new incident(s), 0 seen again · 0 expected · 0 unmatched`.
    fn words(&self, cmd: &str) -> String {
        use crate::words::lines::single;
        let mut out = format!(
            "✓ {}: {} new incident(s), {} seen again · {} expected · {} unmatched",
            single(cmd),
            self.new_incidents.len(),
            self.repeated,
            self.expected,
            self.unmatched
        );
        for i in &self.new_incidents {
            out.push_str(&format!("\n⚠ {}", single(&i.describe())));
        }
        for s in &self.sources {
            let state = match &s.error {
                Some(e) if !s.ok => format!("down: {}", single(e)),
                Some(e) => format!("read {} (errors: {})", s.fetched, single(e)),
                None => format!("read {}", s.fetched),
            };
            let rescanned = if s.rescanned {
                ", read again from the start"
            } else {
                ""
            };
            out.push_str(&format!("\n• {}: {state}{rescanned}", s.source));
        }
        out
    }
}

fn views<S: Serializer>(incidents: &[Incident], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(incidents.iter().map(Incident::view))
}

/// What the monitor takes from the config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BreachSettings {
    /// The authserv-ids whose `Authentication-Results` are believed (lowercase).
    pub trusted_authserv_ids: Vec<String>,
    /// The owner's alias domains for HIBP's domain search.
    pub hibp_domains: Vec<String>,
}

impl BreachSettings {
    /// From `[breach]` and `[aliases]`.
    pub fn from_config(config: &crate::config::Config) -> BreachSettings {
        BreachSettings {
            trusted_authserv_ids: config.breach.trusted_ids(),
            hibp_domains: config.breach.own_alias_domains(&config.aliases.addy_domain),
        }
    }
}

/// Told the result of a sweep.
type SweepReply = oneshot::Sender<Result<SweepReport, String>>;

/// The handle.
#[derive(Clone, Debug)]
pub struct BreachHandle {
    sender: mpsc::UnboundedSender<SweepReply>,
}

struct BreachMonitor {
    store: Store,
    aliases: AliasHandle,
    cards: CardHandle,
    settings: BreachSettings,
    hibp: Option<Result<Hibp, ProviderError>>,
    contexts: Contexts,
    incidents: Incidents,
    mail: MailIndex,
    imap: Option<Result<ImapSource, ImapError>>,
    receiver: mpsc::UnboundedReceiver<SweepReply>,
}

impl BreachHandle {
    /// Starts the monitor with its sources; it owns their cursors. The card provider is
    /// read through the card manager, so its cap and 429 cool-down hold for sweeps too.
    pub fn start(
        store: Store,
        contexts: Contexts,
        imap: Option<Result<ImapSource, ImapError>>,
        aliases: AliasHandle,
        cards: CardHandle,
        hibp: Option<Result<Hibp, ProviderError>>,
        settings: BreachSettings,
    ) -> BreachHandle {
        let (sender, receiver) = mpsc::unbounded_channel();
        let monitor = BreachMonitor {
            cards,
            settings,
            contexts,
            incidents: Incidents::new(&store),
            mail: MailIndex::new(&store),
            store,
            aliases,
            hibp,
            imap,
            receiver,
        };
        tokio::spawn(monitor.run());
        BreachHandle { sender }
    }

    /// Asks for a sweep of every source without waiting for it: the receiver gets the
    /// report. Requests that arrive while a sweep runs are merged into the one sweep after
    /// it, which reads everything that arrived before any of them asked.
    pub fn sweep(&self) -> oneshot::Receiver<Result<SweepReport, String>> {
        let (reply, rx) = oneshot::channel();
        // A monitor that stopped drops the reply, which its receiver reports.
        let _ = self.sender.send(reply);
        rx
    }
}

impl SourceReport {
    /// A source that could not be read.
    fn down(source: &'static str, error: String) -> SourceReport {
        SourceReport {
            source,
            ok: false,
            fetched: 0,
            rescanned: false,
            error: Some(error),
            requests: None,
        }
    }

    /// A source that was read.
    fn read(source: &'static str, fetched: usize, errors: Vec<String>) -> SourceReport {
        SourceReport {
            source,
            ok: errors.is_empty(),
            fetched,
            rescanned: false,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            requests: None,
        }
    }
}

impl BreachMonitor {
    /// Records what a source found against `context`, counting a new incident against the
    /// context.
    fn record(
        &mut self,
        context: &str,
        found: &Finding,
        source: &str,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        match self.incidents.record(context, found, source)? {
            Some((incident, true)) => {
                self.contexts.add_incident(context)?;
                report.new_incidents.push(incident);
            }
            Some((_, false)) => report.repeated += 1,
            None => {}
        }
        Ok(())
    }

    async fn run(mut self) {
        while let Some(first) = self.receiver.recv().await {
            // Everyone waiting now shares this sweep.
            let mut waiting = vec![first];
            while let Ok(more) = self.receiver.try_recv() {
                waiting.push(more);
            }
            let result = self.sweep().await.map_err(|e| e.to_string());
            for reply in waiting {
                let _ = reply.send(result.clone());
            }
        }
    }

    async fn sweep(&mut self) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        match &self.imap {
            None => {}
            Some(Err(e)) => report
                .sources
                .push(SourceReport::down("imap", e.to_string())),
            Some(Ok(source)) => {
                let source = source.clone();
                self.sweep_imap(&source, &mut report).await?;
            }
        }
        if self.aliases.keeps_activity_log() {
            self.sweep_simplelogin(&mut report).await?;
        }
        if self.cards.is_configured() {
            self.sweep_cards(&mut report).await?;
        }
        match &self.hibp {
            None => {}
            Some(Err(e)) => report
                .sources
                .push(SourceReport::down("hibp", e.to_string())),
            Some(Ok(hibp)) => {
                let hibp = hibp.clone();
                self.sweep_hibp(&hibp, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// SimpleLogin's activity logs, read only for aliases whose forward or block counter
    /// moved since the last sweep, and only as many entries as it moved by.
    async fn sweep_simplelogin(&mut self, report: &mut SweepReport) -> Result<(), StoreError> {
        let down = |e: String| SourceReport::down("simplelogin", e);
        let (list, _) = match self.aliases.list().await {
            Ok(l) => l,
            Err(e) => {
                report.sources.push(down(e.to_string()));
                return Ok(());
            }
        };
        let by_id: HashMap<String, crate::context::Context> = self
            .contexts
            .all()?
            .into_iter()
            .filter_map(|c| {
                let id = c.alias.as_ref().filter(|a| !a.deleted)?.id.clone();
                Some((id, c))
            })
            .collect();
        let mut fetched = 0;
        let mut errors = Vec::new();
        for info in list {
            let Some(ctx) = by_id.get(&info.id) else {
                continue;
            };
            let key = SL_COUNT.key(&info.id);
            let old: u64 = self.store.records().get_valid(&key)?.unwrap_or(0);
            let now = info.forwarded + info.blocked;
            if now == old {
                continue;
            }
            if now > old {
                let want = (now - old).min(10_000) as usize;
                let activities = match self.aliases.activities(&info.id, want).await {
                    Ok(Some(a)) => a,
                    Ok(None) => break,
                    Err(e) => {
                        // This alias's counter stays, so the next sweep reads it again.
                        errors.push(e.to_string());
                        continue;
                    }
                };
                fetched += activities.len();
                for (k, act) in activities.iter().enumerate() {
                    if !matches!(act.action.as_str(), "forward" | "block") {
                        continue;
                    }
                    let fingerprint = format!("{}:{}", info.id, now - k as u64);
                    let Some(obs) = observe_sender(&act.to, &act.from, fingerprint) else {
                        continue;
                    };
                    if belongs(&obs.sender_domain, &ctx.domain, &ctx.sender_domains) {
                        report.expected += 1;
                        continue;
                    }
                    let found = Finding::mail(&obs, IncidentKind::MailSender);
                    self.record(&ctx.name, &found, "simplelogin", report)?;
                }
            }
            self.store.records().set(&key, &now)?;
        }
        self.store.flush().await?;
        report
            .sources
            .push(SourceReport::read("simplelogin", fetched, errors));
        Ok(())
    }

    async fn sweep_imap(
        &mut self,
        source: &ImapSource,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let cursor: Option<Cursor> = self.store.records().get(&IMAP_CURSOR)?;
        let batch = match source.read_new(cursor).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "IMAP source unavailable; its cursor stays where it was");
                report
                    .sources
                    .push(SourceReport::down("imap", e.to_string()));
                return Ok(());
            }
        };
        let by_alias: HashMap<String, crate::context::Context> = self
            .contexts
            .all()?
            .into_iter()
            .filter_map(|c| {
                let email = c.alias.as_ref()?.email.to_ascii_lowercase();
                Some((email, c))
            })
            .collect();
        let validity = batch.cursor.map(|c| c.uid_validity).unwrap_or(0);
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut delivered: HashMap<String, Vec<MailEntry>> = HashMap::new();
        for headers in &batch.messages {
            let Some(obs) = observe(&headers.raw) else {
                report.unmatched += 1;
                continue;
            };
            let Some(ctx) = by_alias.get(&obs.alias) else {
                report.unmatched += 1;
                continue;
            };
            let found = if !belongs(&obs.sender_domain, &ctx.domain, &ctx.sender_domains) {
                Some(Finding::mail(&obs, IncidentKind::MailSender))
            } else if let Some(failed) = self.impersonates(&obs, ctx) {
                let mut found = Finding::mail(&obs, IncidentKind::MailImpersonation);
                found.auth = Some(failed);
                Some(found)
            } else {
                report.expected += 1;
                None
            };
            if let Some(found) = &found {
                self.record(&ctx.name, found, "imap", report)?;
            }
            delivered
                .entry(ctx.name.clone())
                .or_default()
                .push(MailEntry {
                    header: MailHeader {
                        id: headers.uid,
                        at: headers.received.clone().unwrap_or_else(|| now.clone()),
                        from: escape_untrusted(&obs.sender, 120),
                        sender_domain: obs.sender_domain.clone(),
                        subject: obs.subject.clone(),
                        incident: found.map(|f| incident_id(&ctx.name, f.kind, &f.subject)),
                    },
                    uid_validity: validity,
                });
        }
        // The inbox's index, read by `inbox` and `mail`, before the cursor moves past it.
        for (context, entries) in delivered {
            self.mail.add(&context, entries)?;
        }
        // The cursor moves only after everything it covers is recorded.
        if let Some(c) = batch.cursor {
            self.store.records().set(&IMAP_CURSOR, &c)?;
        }
        self.store.flush().await?;
        report.sources.push(SourceReport {
            rescanned: batch.rescanned,
            ..SourceReport::read("imap", batch.messages.len(), Vec::new())
        });
        Ok(())
    }

    /// For mail whose sender has the site's own registrable domain: what a trusted server
    /// recorded when it failed the site's authentication (None when it passed or no trusted
    /// server judged it; [`crate::breach::authres`]).
    fn impersonates(
        &self,
        obs: &crate::breach::matching::Observation,
        ctx: &crate::context::Context,
    ) -> Option<String> {
        if registrable(&ctx.domain).as_deref() != Some(obs.sender_domain.as_str()) {
            return None;
        }
        match judge(
            &obs.auth_results,
            &obs.sender_domain,
            &self.settings.trusted_authserv_ids,
        ) {
            Verdict::Fail(what) => Some(crate::breach::matching::escape_untrusted(&what, 160)),
            Verdict::Pass | Verdict::Unknown => None,
        }
    }
}
