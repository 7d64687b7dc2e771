//! `pane.toml`: every setting, its default, and the commented template that `init` writes.
//!
//! Unknown keys are an error, so a typo in a security setting is reported instead of being
//! silently ignored. The template is tested to parse to exactly [`Config::default`].

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

mod alerts;
mod breach;
mod mcp;
pub use alerts::AlertsConfig;
mod network;
pub use network::{NetworkConfig, ProxyUrl};
mod providers;
pub use mcp::{McpConfig, McpRateLimits, McpScope};
pub use providers::{
    AliasProviderKind, AliasesConfig, CardProviderKind, CardsConfig, IdentityConfig,
};
mod template;

pub use breach::BreachConfig;

/// A configuration problem, reported before the daemon starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the documented shape.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's explanation (line and key).
        message: String,
    },
    /// A value parses but is not allowed.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Command authentication.
    pub auth: AuthConfig,
    /// The optional HTTP endpoint (for a Tor onion service in front of it).
    pub http: HttpConfig,
    /// Owner approvals for external and destructive actions.
    pub approvals: ApprovalsConfig,
    /// Grants.
    pub policy: PolicyConfig,
    /// Per-tool sliding-window rate limits.
    pub rate_limits: RateLimitsConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// The alias provider.
    pub aliases: AliasesConfig,
    /// The card provider.
    pub cards: CardsConfig,
    /// Placeholder identities.
    pub identity: IdentityConfig,
    /// The breach monitor.
    pub breach: BreachConfig,
    /// Scheduled jobs.
    pub schedule: ScheduleConfig,
    /// The Signal channel.
    pub signal: SignalConfig,
    /// Slow work.
    pub jobs: JobsConfig,
    /// What the MCP key may do.
    pub mcp: McpConfig,
    /// Sealing at rest.
    pub seal: SealConfig,
    /// When the Signal link counts as unusable, and the second way to warn.
    pub alerts: AlertsConfig,
    /// How the agent's own connections leave the host (the Tor proxy).
    pub network: NetworkConfig,
}

/// `[seal]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SealConfig {
    /// Seal (forget every key) when no command from the owner arrived for this many hours
    /// (fractions allowed: 0.5 is half an hour); 0 (the default) never seals by itself.
    pub after_idle_hours: f64,
}

/// `[signal]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalConfig {
    /// The owner's ACI (a UUID). Messages from anyone else get no reply and no action.
    pub owner: String,
    /// The agent is linked to the owner's own account and commands are typed into Note to
    /// Self. Off: the agent has its own number (recommended).
    pub note_to_self: bool,
}

/// `[breach.imap]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImapConfig {
    /// Server host; empty means the IMAP source is off.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// `tls` (implicit TLS), `starttls`, or `none` (loopback only).
    pub tls: ImapTls,
    /// Login name; the password is `PANE_IMAP_PASSWORD`.
    pub user: String,
    /// The mailbox to read.
    pub mailbox: String,
    /// Wait for new mail with IMAP IDLE between sweeps and sweep as soon as it arrives.
    pub idle: bool,
    /// A PEM file of CA certificates to trust besides the public ones, for a self-hosted
    /// server whose certificate comes from a private CA; empty = the public roots only.
    pub ca_file: String,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            host: String::new(),
            port: 993,
            tls: ImapTls::Tls,
            user: String::new(),
            mailbox: "INBOX".into(),
            idle: true,
            ca_file: String::new(),
        }
    }
}

/// `[schedule]`: cron expressions (seconds minutes hours day-of-month month day-of-week).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// When the breach monitor sweeps every source.
    pub breach_sweep: String,
    /// When the weekly digest goes to the owner.
    pub weekly_digest: String,
    /// When the owner is reminded to rotate the command secret.
    pub secret_rotation_reminder: String,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            breach_sweep: "0 0 * * * *".into(),
            weekly_digest: "0 0 9 * * Mon".into(),
            secret_rotation_reminder: "0 0 9 1 1,4,7,10 *".into(),
        }
    }
}

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    Tls,
    /// Plain, upgraded with STARTTLS before login.
    Starttls,
    /// No TLS: loopback hosts only.
    None,
}

/// `[jobs]`: slow work (provider calls, sweeps) runs beside the command path.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Seconds a job may run in all before it ends with an error (its intent stays for
    /// reconciliation).
    pub deadline_secs: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig { deadline_secs: 120 }
    }
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Secrets that were current before a rotation and are still accepted (never used to sign).
    pub previous_secrets: Vec<String>,
    /// Days a secret replaced by `rotate-secret` is still accepted; the expiry is checked at
    /// every verification. 0: the old secret is refused at once (it is known to be stolen).
    pub rotation_grace_days: u64,
    /// Days after which `doctor` says the secret is due for rotation.
    pub rotation_days: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            previous_secrets: Vec::new(),
            rotation_grace_days: 7,
            rotation_days: 90,
        }
    }
}

/// `[http]`: the endpoint and the bounds that keep one client (or a flood of half-open
/// connections) from holding it, or the daemon's file descriptors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to serve `POST /command` and `GET /healthz` on; empty means off.
    pub listen: String,
    /// Seconds for a request's line and headers to arrive, from the connection's start or
    /// the end of its previous response (so it also bounds a kept-alive connection's wait).
    pub header_timeout_secs: u64,
    /// Seconds for a request's whole body to arrive once its headers are in; a body that
    /// stops short of its `Content-Length` is dropped with its connection.
    pub body_timeout_secs: u64,
    /// Seconds a connection may move no byte either way while the agent is not working on
    /// one of its requests (a client that stops reading its reply) before it is closed.
    pub idle_timeout_secs: u64,
    /// Connections served at once; further ones wait in the listen queue until one ends.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: String::new(),
            header_timeout_secs: 10,
            body_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 256,
        }
    }
}

impl HttpConfig {
    /// The header timeout.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    /// The body timeout.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        for (key, secs) in [
            ("header_timeout_secs", self.header_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if secs == 0 || secs > 3600 {
                return Err(ConfigError::Invalid(format!(
                    "[http] {key} must be between 1 and 3600"
                )));
            }
        }
        if self.max_connections == 0 || self.max_connections > 65_536 {
            return Err(ConfigError::Invalid(
                "[http] max_connections must be between 1 and 65536".into(),
            ));
        }
        Ok(())
    }

    /// The address to listen on, if the endpoint is on. Only loopback addresses are accepted:
    /// the endpoint is meant to sit behind a Tor onion service on the same host.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.listen.trim().is_empty() {
            return Ok(None);
        }
        let addr: SocketAddr = self.listen.trim().parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "[http] listen = {:?} is not an address like \"127.0.0.1:8080\"",
                self.listen
            ))
        })?;
        if !addr.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "[http] listen = {:?} is not a loopback address; put a Tor onion service (or an SSH tunnel) in front of 127.0.0.1 instead",
                self.listen
            )));
        }
        Ok(Some(addr))
    }
}

/// `[approvals]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Seconds before a pending approval is denied automatically.
    pub timeout_secs: u64,
    /// With `[signal] owner` set (and by default), approval codes go only to the owner over
    /// Signal: no reply, `approvals`, audit entry, incident or error on any other channel
    /// holds one, so that a stolen command secret alone cannot approve anything (the phone
    /// is a second factor). Without an owner there is no phone, and codes are shown.
    pub codes_over_signal_only: bool,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            timeout_secs: 300,
            codes_over_signal_only: true,
        }
    }
}

/// `[policy]`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Tools that start without a grant; the owner grants them with `grant` when needed.
    pub revoked_by_default: Vec<String>,
}

/// One sliding-window limit: at most `max` commands in any `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Commands allowed in the window.
    pub max: u32,
    /// The window's length in seconds.
    pub window_secs: u64,
}

/// `[rate_limits]`: a limit per tier, and per-tool overrides.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// For each read tool.
    pub read: Limit,
    /// For each write tool.
    pub write: Limit,
    /// For each external or destructive tool.
    pub external: Limit,
    /// Envelopes that pass authentication, per channel, before anything of them is written:
    /// the budget a holder of the secret cannot fill the audit log past.
    pub envelopes: Limit,
    /// Overrides by tool name.
    pub tools: BTreeMap<String, Limit>,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        RateLimitsConfig {
            read: Limit {
                max: 120,
                window_secs: 60,
            },
            write: Limit {
                max: 30,
                window_secs: 60,
            },
            external: Limit {
                max: 10,
                window_secs: 60,
            },
            envelopes: Limit {
                max: 600,
                window_secs: 60,
            },
            tools: BTreeMap::new(),
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries older than this many days are pruned (the rest stays verifiable); 0 keeps all.
    pub retention_days: u64,
    /// The store's size budget in MiB: at 90 % the owner is alerted; past it, only reads,
    /// `lockdown`, `approve`/`deny`, `revoke` and `unlock` are carried out.
    pub store_budget_mb: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: 400,
            store_budget_mb: 1024,
        }
    }
}

pub use template::TEMPLATE;

impl Config {
    /// Parses configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The file the daemon reads its config from: `explicit` (`--config`) when given, else
    /// `<data_dir>/pane.toml` when it exists, else none (the built-in defaults). Every command
    /// that acts on the daemon's settings (`run`, `rotate-secret`) resolves it the same way.
    pub fn path_for(data_dir: &Path, explicit: Option<&Path>) -> Option<std::path::PathBuf> {
        // The gateway finds `[network] proxy` by the same rule (pane-protocol).
        pane_protocol::network::config_path(data_dir, explicit)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.seal.after_idle_hours.is_finite() || self.seal.after_idle_hours < 0.0 {
            return Err(ConfigError::Invalid(
                "[seal] after_idle_hours must be 0 (off) or a positive number of hours".into(),
            ));
        }
        self.http.validate()?;
        self.alerts.validate()?;
        self.mcp.rate_limits.validate()?;
        if self.jobs.deadline_secs == 0 || self.jobs.deadline_secs > 3600 {
            return Err(ConfigError::Invalid(
                "[jobs] deadline_secs must be between 1 and 3600".into(),
            ));
        }
        for (section, n) in [
            ("aliases", self.aliases.concurrency),
            ("cards", self.cards.concurrency),
        ] {
            if n == 0 || n > 64 {
                return Err(ConfigError::Invalid(format!(
                    "[{section}] concurrency must be between 1 and 64"
                )));
            }
        }
        for (name, expr) in [
            ("breach_sweep", &self.schedule.breach_sweep),
            ("weekly_digest", &self.schedule.weekly_digest),
            (
                "secret_rotation_reminder",
                &self.schedule.secret_rotation_reminder,
            ),
        ] {
            if !expr.trim().is_empty() {
                <cron::Schedule as std::str::FromStr>::from_str(expr).map_err(|e| {
                    ConfigError::Invalid(format!(
                        "[schedule] {name} = {expr:?} is not a cron expression: {e}"
                    ))
                })?;
            }
        }
        match self.breach.imap.tls {
            ImapTls::Tls | ImapTls::Starttls => {}
            ImapTls::None => {
                let host = self.breach.imap.host.trim();
                let loopback = host.is_empty()
                    || host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    return Err(ConfigError::Invalid(format!(
                        "[breach.imap] tls = \"none\" is allowed only for a loopback host, not {host:?}"
                    )));
                }
            }
        }
        if self.approvals.timeout_secs == 0 || self.approvals.timeout_secs > 86_400 {
            return Err(ConfigError::Invalid(
                "[approvals] timeout_secs must be between 1 and 86400".into(),
            ));
        }
        if self.audit.store_budget_mb == 0 {
            return Err(ConfigError::Invalid(
                "[audit] store_budget_mb must be 1 or more".into(),
            ));
        }
        let limits = [
            ("envelopes".to_string(), &self.rate_limits.envelopes),
            ("read".to_string(), &self.rate_limits.read),
            ("write".to_string(), &self.rate_limits.write),
            ("external".to_string(), &self.rate_limits.external),
        ];
        let tools = self.rate_limits.tools.iter().map(|(k, v)| (k.clone(), v));
        for (name, limit) in limits.into_iter().chain(tools) {
            if limit.window_secs == 0 || limit.window_secs > 86_400 {
                return Err(ConfigError::Invalid(format!(
                    "[rate_limits] {name}: window_secs must be between 1 and 86400"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_the_default() {
        assert_eq!(
            Config::parse(TEMPLATE, "template").ok(),
            Some(Config::default())
        );
    }

    #[test]
    fn typos_are_errors() {
        let err = Config::parse("[approvals]\ntimeout_sec = 10\n", "t").unwrap_err();
        assert!(err.to_string().contains("timeout_sec"), "{err}");
    }

    #[test]
    fn http_only_on_loopback() {
        assert!(Config::parse("[http]\nlisten = \"0.0.0.0:8080\"\n", "t").is_err());
        let c = Config::parse("[http]\nlisten = \"127.0.0.1:8080\"\n", "t").unwrap();
        assert!(c.http.listen_addr().unwrap().is_some());
    }
}
