//! `[breach]`: the breach monitor's settings (its IMAP mailbox is `[breach.imap]`, in the
//! parent module with the other connection settings).

use super::ImapConfig;
use serde::Deserialize;

/// `[breach]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreachConfig {
    /// Burn a context as soon as an incident is found, without asking. Off by default: the
    /// burn is queued as an approval.
    pub auto_burn: bool,
    /// Pause a context's card at once (a write, audited, through the card manager) when it
    /// is charged by a merchant that is not the site (`card.merchant`). On by default: a
    /// card number in a stranger's hands should stop working before the owner reads the
    /// alert.
    pub auto_pause: bool,
    /// The authserv-ids (RFC 8601) whose `Authentication-Results` the agent believes when it
    /// judges whether mail claiming the site's domain is really from it. Empty means the
    /// mailbox's own IMAP host (`[breach.imap] host`). Headers from any other authserv-id
    /// are never believed: a sender can write them too.
    pub trusted_authserv_ids: Vec<String>,
    /// The domains the owner's aliases sit on that are verified with Have I Been Pwned's
    /// domain search (a subscription): one `breacheddomain` request per domain covers every
    /// alias on it. Empty means `[aliases] addy_domain` when that is the owner's own domain
    /// (not one of addy.io's shared domains).
    pub hibp_domains: Vec<String>,
    /// The IMAP mailbox the aliases forward to.
    pub imap: ImapConfig,
    /// Have I Been Pwned base URL; empty means the real service (`HIBP_BASE_URL` overrides).
    /// The source is on when `HIBP_API_KEY` is set.
    pub hibp_base_url: String,
}

impl Default for BreachConfig {
    fn default() -> Self {
        BreachConfig {
            auto_burn: false,
            auto_pause: true,
            trusted_authserv_ids: Vec::new(),
            hibp_domains: Vec::new(),
            imap: ImapConfig::default(),
            hibp_base_url: String::new(),
        }
    }
}

/// addy.io's shared alias domains (`sharedDomains` of `GET /api/v1/domain-options`,
/// docs/providers.md §1) and their username subdomains: HIBP's domain search needs a domain
/// the owner has verified, which these never are.
const ADDY_SHARED: &[&str] = &["anonaddy.me", "anonaddy.com", "addy.io", "addymail.com"];

impl BreachConfig {
    /// The authserv-ids to believe: the configured ones, else the IMAP host; lowercase.
    pub fn trusted_ids(&self) -> Vec<String> {
        let configured: Vec<String> = self
            .trusted_authserv_ids
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if !configured.is_empty() {
            return configured;
        }
        let host = self.imap.host.trim().to_ascii_lowercase();
        if host.is_empty() {
            Vec::new()
        } else {
            vec![host]
        }
    }

    /// The owner's own alias domains for HIBP's domain search: `hibp_domains`, else
    /// `addy_domain` when it is not a shared addy.io domain or a username subdomain of one.
    pub fn own_alias_domains(&self, addy_domain: &str) -> Vec<String> {
        let configured: Vec<String> = self
            .hibp_domains
            .iter()
            .map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if !configured.is_empty() {
            return configured;
        }
        let d = addy_domain
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let shared = ADDY_SHARED
            .iter()
            .any(|s| d == *s || d.ends_with(&format!(".{s}")));
        if d.is_empty() || shared {
            Vec::new()
        } else {
            vec![d]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_ids_default_to_the_imap_host() {
        let mut c = BreachConfig::default();
        assert!(c.auto_pause);
        assert!(c.trusted_ids().is_empty());
        c.imap.host = "Mail.Example.ORG".into();
        assert_eq!(c.trusted_ids(), vec!["mail.example.org"]);
        c.trusted_authserv_ids = vec!["mx.owner.example".into(), " ".into()];
        assert_eq!(c.trusted_ids(), vec!["mx.owner.example"]);
    }

    #[test]
    fn own_domains_are_never_shared_ones() {
        let c = BreachConfig::default();
        assert!(c.own_alias_domains("anonaddy.me").is_empty());
        assert!(c.own_alias_domains("johndoe.anonaddy.com").is_empty());
        assert_eq!(c.own_alias_domains("Me.Example"), vec!["me.example"]);
        let c = BreachConfig {
            hibp_domains: vec!["mail.me.example".into()],
            ..BreachConfig::default()
        };
        assert_eq!(c.own_alias_domains("anonaddy.me"), vec!["mail.me.example"]);
    }
}
