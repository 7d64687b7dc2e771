//! Have I Been Pwned as a breach source: each enrolled site's domain (`/breaches?domain=`),
//! each alias by address (`/breachedaccount/`), and, for aliases on a domain of the owner's
//! own that is verified with HIBP (`[breach] hibp_domains`), the domain search
//! (`/breacheddomain/{domain}`): one request for every alias on the domain instead of one per
//! alias. Each look-up at most once a day, at most [`HIBP_PER_SWEEP`] a sweep (the API is
//! rate limited); a breach named by the domain search is read once (`/breach/{name}`) and
//! kept.

use super::{BreachMonitor, SourceReport, SweepReport, HIBP_PER_SWEEP};
use crate::breach::incidents::{Finding, IncidentKind};
use crate::breach::matching::{escape_untrusted, registrable};
use crate::context::{Context, ContextState};
use crate::providers::hibp::{Breach, Hibp};
use crate::store::records::{Family, Json, Key, Text};
use crate::store::StoreError;

/// When each look-up subject was last checked (seconds since the epoch), by subject.
const CHECKED: Family<Text<i64>> = Family::new("breach.hibp.checked.");
/// A breach's details as read once, by breach name.
const BREACH: Family<Json<Breach>> = Family::new("breach.hibp.breach.");

/// One sweep's budget and tally.
#[derive(Default)]
struct Run {
    lookups: usize,
    fetched: usize,
    errors: Vec<String>,
}

fn alias_on(ctx: &Context, domain: &str) -> Option<String> {
    let a = ctx.alias.as_ref().filter(|a| !a.deleted)?;
    let (_, d) = a.email.rsplit_once('@')?;
    d.eq_ignore_ascii_case(domain)
        .then(|| a.email.to_ascii_lowercase())
}

impl BreachMonitor {
    /// Have I Been Pwned, as the module says.
    pub(super) async fn sweep_hibp(
        &mut self,
        hibp: &Hibp,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let mut run = Run::default();
        let contexts: Vec<Context> = self
            .contexts
            .all()?
            .into_iter()
            .filter(|c| c.state != ContextState::Expired)
            .collect();
        let own = self.settings.hibp_domains.clone();
        for domain in &own {
            self.domain_search(hibp, domain, &contexts, &mut run, report)
                .await?;
        }
        for ctx in &contexts {
            let mut subjects = vec![(format!("domain:{}", ctx.domain), None)];
            if let Some(a) = ctx.alias.as_ref().filter(|a| !a.deleted) {
                if !own.iter().any(|d| alias_on(ctx, d).is_some()) {
                    subjects.push((format!("account:{}", a.email), Some(a.email.clone())));
                }
            }
            for (subject, account) in subjects {
                let key = CHECKED.key(&subject);
                if !self.due(&key)? || run.lookups >= HIBP_PER_SWEEP {
                    continue;
                }
                run.lookups += 1;
                let found = match &account {
                    Some(email) => hibp.breached_account(email).await,
                    None => hibp.breaches_for_domain(&ctx.domain).await,
                };
                let breaches = match found {
                    Ok(b) => b,
                    Err(e) => {
                        run.errors.push(e.to_string());
                        continue;
                    }
                };
                run.fetched += breaches.len();
                for b in &breaches {
                    self.record_breach(&ctx.name, &subject, b, report)?;
                }
                self.mark(&key)?;
            }
        }
        self.store.flush().await?;
        report
            .sources
            .push(SourceReport::read("hibp", run.fetched, run.errors));
        Ok(())
    }

    /// True when the look-up under `key` was last made more than a day ago (or never).
    fn due(&self, key: &Key<Text<i64>>) -> Result<bool, StoreError> {
        let day_ago = (chrono::Utc::now() - chrono::Duration::days(1)).timestamp();
        let last = self.store.records().get_valid(key)?.unwrap_or(0);
        Ok(last <= day_ago)
    }

    fn mark(&self, key: &Key<Text<i64>>) -> Result<(), StoreError> {
        self.store
            .records()
            .set(key, &chrono::Utc::now().timestamp())?;
        Ok(())
    }

    /// Counts breach `b` against `context`; `subject` is what was looked up (`account:...`
    /// or `domain:...`), so a breach is counted once per look-up subject whichever request
    /// found it.
    fn record_breach(
        &mut self,
        context: &str,
        subject: &str,
        b: &Breach,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let domain = registrable(&b.domain)
            .unwrap_or_else(|| escape_untrusted(&b.name.to_ascii_lowercase(), 60));
        let found = Finding {
            kind: IncidentKind::HibpBreach,
            subject: domain,
            fingerprint: format!("{subject}:{}", b.name),
            sample_subject: escape_untrusted(
                &format!(
                    "{} ({}): {}",
                    if b.title.is_empty() {
                        &b.name
                    } else {
                        &b.title
                    },
                    b.breach_date,
                    b.data_classes.join(", ")
                ),
                120,
            ),
            sample_sender: format!("hibp:{}", escape_untrusted(&b.name, 60)),
            card: None,
            auth: None,
        };
        self.record(context, &found, "hibp", report)
    }

    /// The domain search for one of the owner's domains: one request, then each breach it
    /// names for an enrolled alias (details read once and kept).
    async fn domain_search(
        &mut self,
        hibp: &Hibp,
        domain: &str,
        contexts: &[Context],
        run: &mut Run,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let key = CHECKED.key(format!("domainsearch:{domain}"));
        if !self.due(&key)? || run.lookups >= HIBP_PER_SWEEP {
            return Ok(());
        }
        run.lookups += 1;
        let breached = match hibp.breached_domain(domain).await {
            Ok(m) => m,
            Err(e) => {
                run.errors.push(e.to_string());
                return Ok(());
            }
        };
        let mut complete = true;
        for ctx in contexts {
            let Some(email) = alias_on(ctx, domain) else {
                continue;
            };
            let local = email.rsplit_once('@').map_or("", |(l, _)| l);
            for name in breached.get(local).into_iter().flatten() {
                run.fetched += 1;
                match self.breach_details(hibp, name, run).await? {
                    Some(b) => {
                        self.record_breach(&ctx.name, &format!("account:{email}"), &b, report)?
                    }
                    None => complete = false,
                }
            }
        }
        // A breach whose details could not be read yet is read at the next sweep; the
        // fingerprints keep the others from being counted twice.
        if complete {
            self.mark(&key)?;
        }
        Ok(())
    }

    /// A breach's details: kept from an earlier read, else `GET /breach/{name}` within this
    /// sweep's budget. None when they cannot be had now.
    async fn breach_details(
        &mut self,
        hibp: &Hibp,
        name: &str,
        run: &mut Run,
    ) -> Result<Option<Breach>, StoreError> {
        let key = BREACH.key(name);
        if let Some(b) = self.store.records().get_valid(&key)? {
            return Ok(Some(b));
        }
        if run.lookups >= HIBP_PER_SWEEP {
            return Ok(None);
        }
        run.lookups += 1;
        let b = match hibp.breach(name).await {
            Ok(Some(b)) => b,
            Ok(None) => Breach {
                name: name.to_string(),
                title: String::new(),
                domain: String::new(),
                breach_date: String::new(),
                added_date: String::new(),
                data_classes: Vec::new(),
            },
            Err(e) => {
                run.errors.push(e.to_string());
                return Ok(None);
            }
        };
        self.store.records().set(&key, &b)?;
        Ok(Some(b))
    }
}
