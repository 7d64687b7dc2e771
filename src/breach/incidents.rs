//! Incidents: one per (context, sender domain), with first and last seen, a count, the
//! source and a sample. A rescan never counts a message twice (fingerprints are kept), and
//! an incident is alerted exactly once (`alerted` is set in the same transaction that queues
//! the alert).

use super::matching::Observation;
use crate::outbox::{MessageKind, Outbox};
use crate::store::{decode, encode, StoreError};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id, derived from context and domain (`i-` and 10 hex).
    pub id: String,
    /// The context whose alias received the mail.
    pub context: String,
    /// The sender's registrable domain.
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
    /// The queued burn's approval code, if one was opened.
    pub burn_code: Option<String>,
}

/// The incidents and seen-message trees.
#[derive(Clone)]
pub struct Incidents {
    incidents: sled::Tree,
    seen: sled::Tree,
}

fn key(context: &str, domain: &str) -> Vec<u8> {
    format!("{context}\u{0}{domain}").into_bytes()
}

/// The id of the incident for `context` and `domain`.
pub fn incident_id(context: &str, domain: &str) -> String {
    let h = Sha256::digest(key(context, domain));
    format!("i-{}", &hex::encode(h)[..10])
}

impl Incidents {
    /// Uses the store's `incidents` and `breach_seen` trees.
    pub fn new(incidents: sled::Tree, seen: sled::Tree) -> Incidents {
        Incidents { incidents, seen }
    }

    /// Records a message from a sender that does not belong to `context`. Returns the
    /// incident and whether it is new; None when this message was already counted.
    pub fn record(
        &self,
        context: &str,
        obs: &Observation,
        source: &str,
    ) -> Result<Option<(Incident, bool)>, StoreError> {
        let seen_key = format!("{source}:{}", obs.fingerprint);
        if self.seen.insert(seen_key.as_bytes(), &[1u8])?.is_some() {
            return Ok(None);
        }
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let k = key(context, &obs.sender_domain);
        let (incident, is_new) = match self.incidents.get(&k)? {
            Some(bytes) => {
                let mut i: Incident = decode(&bytes)?;
                i.count += 1;
                i.last_seen = now;
                (i, false)
            }
            None => (
                Incident {
                    id: incident_id(context, &obs.sender_domain),
                    context: context.to_string(),
                    sender_domain: obs.sender_domain.clone(),
                    first_seen: now.clone(),
                    last_seen: now,
                    count: 1,
                    source: source.to_string(),
                    sample_subject: obs.subject.clone(),
                    sample_sender: super::matching::escape_untrusted(&obs.sender, 80),
                    alerted: false,
                    acked: false,
                    burn_code: None,
                },
                true,
            ),
        };
        self.incidents.insert(&k, encode(&incident)?)?;
        Ok(Some((incident, is_new)))
    }

    /// Writes an incident back (after alerting, acknowledging).
    pub fn put(&self, incident: &Incident) -> Result<(), StoreError> {
        self.incidents.insert(
            key(&incident.context, &incident.sender_domain),
            encode(incident)?,
        )?;
        Ok(())
    }

    /// Marks `incident` alerted and queues its alert (outbox id `id`) in one transaction, so
    /// that a crash can neither alert it twice nor mark it alerted without its alert.
    pub fn mark_alerted(
        &self,
        incident: &mut Incident,
        outbox: &Outbox,
        id: u64,
        alert: &str,
    ) -> Result<(), StoreError> {
        incident.alerted = true;
        let value = encode(&*incident)?;
        let k = key(&incident.context, &incident.sender_domain);
        outbox.push_with(id, MessageKind::Alert, alert, (&self.incidents, &k, &value))?;
        Ok(())
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
