//! Incidents: one per (context, kind, sender domain or merchant), with first and last seen, a
//! count, the source and a sample. A rescan never counts a message or a card transaction
//! twice (fingerprints are kept), and an incident is alerted exactly once (`alerted` is set in
//! the same transaction that queues the alert). [`Incident::describe`] says what happened in
//! one plain sentence, for `check-incidents`, alerts, the weekly digest and replies.

use super::matching::Observation;
use crate::outbox::{MessageKind, Outbox};
use crate::store::{decode, encode, Store, StoreError, Table, TableId};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What kind of leak signal an incident is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentKind {
    /// Mail to the alias from a sender that is not the site (incidents recorded before
    /// kinds existed are of this kind, or [`IncidentKind::HibpBreach`] by their source).
    #[default]
    #[serde(rename = "mail.sender")]
    MailSender,
    /// Mail to the alias whose From claims the site's own domain but fails the site's
    /// authentication, as a trusted server recorded it.
    #[serde(rename = "mail.impersonation")]
    MailImpersonation,
    /// An authorisation attempt on the context's card while it was paused, at $0 or closed.
    #[serde(rename = "card.attempt")]
    CardAttempt,
    /// A charge or attempt on the context's card by a merchant that is not the site.
    #[serde(rename = "card.merchant")]
    CardMerchant,
    /// Have I Been Pwned lists the alias or the site in a breach.
    #[serde(rename = "hibp.breach")]
    HibpBreach,
}

impl IncidentKind {
    /// The kind's name (`card.attempt`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::MailSender => "mail.sender",
            IncidentKind::MailImpersonation => "mail.impersonation",
            IncidentKind::CardAttempt => "card.attempt",
            IncidentKind::CardMerchant => "card.merchant",
            IncidentKind::HibpBreach => "hibp.breach",
        }
    }

    /// How strong a signal it is, higher first in listings: someone holding the card number
    /// or impersonating the site outranks a stranger's mail, which outranks a breach report.
    pub fn rank(self) -> u8 {
        match self {
            IncidentKind::CardMerchant | IncidentKind::CardAttempt => 4,
            IncidentKind::MailImpersonation => 3,
            IncidentKind::MailSender => 2,
            IncidentKind::HibpBreach => 1,
        }
    }
}

/// Where the card stood when a card incident was seen, and after an automatic pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStanding {
    /// Open and funded.
    Open,
    /// Paused.
    Paused,
    /// Closed for good.
    Closed,
    /// Open but with a $0 limit.
    Unfunded,
    /// `auto_pause` is pausing it.
    Pausing,
    /// `auto_pause` tried and failed (the alert says why).
    PauseFailed,
}

/// The card side of a card incident: never the card number, only what the owner needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardDetail {
    /// The merchant descriptor as the provider gave it (escaped, truncated).
    pub merchant: String,
    /// The amount in cents.
    pub amount_cents: i64,
    /// The provider's result (`APPROVED`, `CARD_PAUSED`, ...).
    pub result: String,
    /// The card's last four digits.
    pub last_four: String,
    /// Where the card stands.
    pub standing: CardStanding,
    /// The site's registrable domain, which the merchant was compared with.
    pub site_domain: String,
}

/// What a source found, before it is counted as an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Its kind.
    pub kind: IncidentKind,
    /// The sender's registrable domain, or for a card the merchant's normalised descriptor
    /// (its words in capitals): one incident per (context, kind, subject).
    pub subject: String,
    /// Identifies the message or transaction, so it is never counted twice.
    pub fingerprint: String,
    /// A sample subject line (escaped, truncated).
    pub sample_subject: String,
    /// A sample sender address (escaped, truncated) or descriptor.
    pub sample_sender: String,
    /// The card side, for card kinds.
    pub card: Option<CardDetail>,
    /// What the trusted server recorded, for impersonation.
    pub auth: Option<String>,
}

impl Finding {
    /// A finding about one message.
    pub fn mail(obs: &Observation, kind: IncidentKind) -> Finding {
        Finding {
            kind,
            subject: obs.sender_domain.clone(),
            fingerprint: obs.fingerprint.clone(),
            sample_subject: obs.subject.clone(),
            sample_sender: obs.sender.clone(),
            card: None,
            auth: None,
        }
    }
}

/// `, subject "..."`, or nothing when the source gave no subject (SimpleLogin's activity log
/// has none).
fn subject_part(subject: &str) -> String {
    if subject.is_empty() {
        String::new()
    } else {
        format!(", subject \"{subject}\"")
    }
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id, derived from context and domain (`i-` and 10 hex).
    pub id: String,
    /// The context whose alias received the mail (or whose card was charged).
    pub context: String,
    /// What kind of signal it is.
    #[serde(default)]
    pub kind: IncidentKind,
    /// The sender's registrable domain; for card kinds the merchant's normalised descriptor.
    pub sender_domain: String,
    /// First seen (RFC 3339).
    pub first_seen: String,
    /// Last seen.
    pub last_seen: String,
    /// Messages seen.
    pub count: u64,
    /// Where it was seen (`imap`, `simplelogin`, `hibp`).
    pub source: String,
    /// A sample subject (escaped, truncated).
    pub sample_subject: String,
    /// A sample sender address (escaped, truncated).
    pub sample_sender: String,
    /// The owner was told.
    pub alerted: bool,
    /// The owner acknowledged it.
    pub acked: bool,
    /// The queued burn's approval, by its reference (`a-` and ten hex digits), never its
    /// code: an incident is shown on every channel (`check-incidents`, `incident.ack`, the
    /// audit log). Records written before this held the code; it is read as its reference.
    #[serde(default, deserialize_with = "burn_reference")]
    pub burn_code: Option<String>,
    /// The card side of a card incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardDetail>,
    /// For impersonation: what the trusted server recorded (`dmarc=fail header.from=...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// Reads `burn_code`: a reference as it is, anything else (an older record's code) as the
/// reference of that code, so a code read from the store never reaches a view.
fn burn_reference<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let stored: Option<String> = Option::deserialize(d)?;
    Ok(stored.map(|s| {
        if crate::approval_code::is_reference(&s) {
            s
        } else {
            crate::approval_code::reference(&s)
        }
    }))
}

/// `12.50` for 1250 cents (the sign dropped: a refund is still a use of the number).
fn amount(cents: i64) -> String {
    let c = cents.unsigned_abs();
    format!("${}.{:02}", c / 100, c % 100)
}

impl Incident {
    /// The kind, with incidents recorded before kinds existed read by their source.
    pub fn effective_kind(&self) -> IncidentKind {
        if self.source == "hibp" {
            IncidentKind::HibpBreach
        } else {
            self.kind
        }
    }

    /// What happened, in one plain sentence a person understands ("someone tried to charge
    /// the notion card at SHADYSHOP LLC; the card is paused"). Every text here came from
    /// outside already escaped and truncated.
    pub fn describe(&self) -> String {
        let n = self.count;
        let times = |one: &str, many: &str| {
            if n == 1 {
                one.to_string()
            } else {
                format!("{n} {many}")
            }
        };
        let ctx = &self.context;
        match self.effective_kind() {
            IncidentKind::MailSender => format!(
                "{} sent mail to the {ctx} alias ({}, from {}{}); only the site was given that address, so it may have leaked or been sold",
                self.sender_domain,
                times("1 message", "messages"),
                self.sample_sender,
                subject_part(&self.sample_subject)
            ),
            IncidentKind::MailImpersonation => format!(
                "mail to the {ctx} alias claims to be from {} ({}{}) but fails the site's own authentication ({}){}: someone who has the alias is impersonating the site",
                self.sender_domain,
                self.sample_sender,
                subject_part(&self.sample_subject),
                self.auth.as_deref().unwrap_or("not aligned"),
                if n == 1 { String::new() } else { format!(", {n} messages") },
            ),
            IncidentKind::HibpBreach => format!(
                "Have I Been Pwned lists a breach touching the {ctx} context: {} ({})",
                self.sample_subject,
                self.sender_domain
            ),
            kind @ (IncidentKind::CardAttempt | IncidentKind::CardMerchant) => {
                let Some(card) = &self.card else {
                    return format!("the {ctx} card was used at {}", self.sender_domain);
                };
                let result = if card.result.eq_ignore_ascii_case("APPROVED") {
                    "approved".to_string()
                } else {
                    format!(
                        "declined: {}",
                        card.result.to_ascii_lowercase().replace('_', " ")
                    )
                };
                let standing = match card.standing {
                    CardStanding::Open => "the card is still open: pause it with card.pause",
                    CardStanding::Paused => "the card is paused",
                    CardStanding::Closed => "the card is closed",
                    CardStanding::Unfunded => "the card is at $0",
                    CardStanding::Pausing => "the card is being paused (auto_pause)",
                    CardStanding::PauseFailed => {
                        "pausing the card failed: pause it with card.pause"
                    }
                };
                let more = if n == 1 {
                    String::new()
                } else {
                    format!(", {n} times")
                };
                if kind == IncidentKind::CardAttempt {
                    format!(
                        "someone tried to charge the {ctx} card (…{}) at {} ({}, {result}{more}); {standing}",
                        card.last_four,
                        card.merchant,
                        amount(card.amount_cents)
                    )
                } else {
                    format!(
                        "the {ctx} card (…{}) was charged {} at {} ({result}{more}), which is not the site {}: the card number has left the site; {standing}",
                        card.last_four,
                        amount(card.amount_cents),
                        card.merchant,
                        card.site_domain
                    )
                }
            }
        }
    }

    /// The incident as replies show it: its record, its `summary` ([`Incident::describe`])
    /// and its `rank` ([`IncidentKind::rank`]).
    pub fn view(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".into(), self.effective_kind().as_str().into());
            o.insert("summary".into(), self.describe().into());
            o.insert("rank".into(), self.effective_kind().rank().into());
        }
        v
    }

    fn key(&self) -> Vec<u8> {
        store_key(&self.context, self.kind, &self.sender_domain)
    }
}

/// The incidents and seen-message trees.
#[derive(Clone)]
pub struct Incidents {
    incidents: Table,
    seen: Table,
}

/// The store key: (context, subject) for the kinds that existed before kinds did, so their
/// ids stay; (context, kind:subject) for the others.
fn store_key(context: &str, kind: IncidentKind, subject: &str) -> Vec<u8> {
    match kind {
        IncidentKind::MailSender | IncidentKind::HibpBreach => {
            format!("{context}\u{0}{subject}").into_bytes()
        }
        kind => format!("{context}\u{0}{}:{subject}", kind.as_str()).into_bytes(),
    }
}

/// The id of the incident of `kind` for `context` and `subject` (a sender domain or a
/// merchant).
pub fn incident_id(context: &str, kind: IncidentKind, subject: &str) -> String {
    let h = Sha256::digest(store_key(context, kind, subject));
    format!("i-{}", &hex::encode(h)[..10])
}

impl Incidents {
    /// Uses the store's `incidents` and `breach_seen` trees.
    pub fn new(store: &Store) -> Incidents {
        Incidents {
            incidents: store.table(TableId::Incidents),
            seen: store.table(TableId::BreachSeen),
        }
    }

    /// Records what a source found against `context`. Returns the incident and whether it
    /// is new; None when this message or transaction was already counted.
    pub fn record(
        &self,
        context: &str,
        found: &Finding,
        source: &str,
    ) -> Result<Option<(Incident, bool)>, StoreError> {
        let seen_key = format!("{source}:{}", found.fingerprint);
        if self.seen.insert(seen_key.as_bytes(), [1u8])?.is_some() {
            return Ok(None);
        }
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let k = store_key(context, found.kind, &found.subject);
        let (incident, is_new) = match self.incidents.get(&k)? {
            Some(bytes) => {
                let mut i: Incident = decode(&bytes)?;
                i.count += 1;
                i.last_seen = now;
                (i, false)
            }
            None => (
                Incident {
                    id: incident_id(context, found.kind, &found.subject),
                    context: context.to_string(),
                    kind: found.kind,
                    sender_domain: found.subject.clone(),
                    first_seen: now.clone(),
                    last_seen: now,
                    count: 1,
                    source: source.to_string(),
                    sample_subject: found.sample_subject.clone(),
                    sample_sender: super::matching::escape_untrusted(&found.sample_sender, 80),
                    alerted: false,
                    acked: false,
                    burn_code: None,
                    card: found.card.clone(),
                    auth: found.auth.clone(),
                },
                true,
            ),
        };
        self.incidents.insert(&k, encode(&incident)?)?;
        Ok(Some((incident, is_new)))
    }

    /// Writes an incident back (after alerting, acknowledging).
    pub fn put(&self, incident: &Incident) -> Result<(), StoreError> {
        self.incidents.insert(incident.key(), encode(incident)?)?;
        Ok(())
    }

    /// Marks `incident` alerted and queues its alert (at outbox position `seq`) in one
    /// transaction, so that a crash can neither alert it twice nor mark it alerted without
    /// its alert.
    pub fn mark_alerted(
        &self,
        incident: &mut Incident,
        outbox: &Outbox,
        seq: u64,
        alert: &str,
    ) -> Result<(), StoreError> {
        incident.alerted = true;
        let value = encode(&*incident)?;
        let k = incident.key();
        outbox.push_with(
            seq,
            MessageKind::Alert,
            alert,
            self.incidents.entry(&k),
            &value,
        )?;
        Ok(())
    }

    /// Sets where the card of incident `id` stands (after `auto_pause`); false when there is
    /// no such card incident.
    pub fn set_card_standing(&self, id: &str, standing: CardStanding) -> Result<bool, StoreError> {
        let Some(mut incident) = self.by_id(id)? else {
            return Ok(false);
        };
        let Some(card) = incident.card.as_mut() else {
            return Ok(false);
        };
        card.standing = standing;
        self.put(&incident)?;
        Ok(true)
    }

    /// Every incident, oldest first.
    pub fn all(&self) -> Result<Vec<Incident>, StoreError> {
        let mut out: Vec<Incident> = self
            .incidents
            .iter()
            .map(|r| decode(&r?.1))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The incident with this id.
    pub fn by_id(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        Ok(self.all()?.into_iter().find(|i| i.id == id))
    }

    /// Incidents not yet alerted (after a crash between recording and alerting).
    pub fn unalerted(&self) -> Result<Vec<Incident>, StoreError> {
        Ok(self.all()?.into_iter().filter(|i| !i.alerted).collect())
    }
}
