//! `[alerts]`: when the Signal link counts as unusable, and the second way to warn the owner
//! when it is (an ntfy-compatible URL), since a dead link cannot carry its own alarm.

use super::ConfigError;
use serde::Deserialize;
use std::time::Duration;

/// `[alerts]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// An ntfy-compatible endpoint (`https://ntfy.sh/<topic>`, or your own server): the
    /// message is POSTed as the body. Empty (the default): no second way, the owner hears
    /// only over Signal once it works again.
    pub fallback_url: String,
    /// Minutes Signal must have been unusable before the fallback is called (fractions
    /// allowed).
    pub fallback_after_mins: f64,
    /// Seconds the gateway may be disconnected from Signal, or no gateway connected to the
    /// agent, before the link counts as unusable (a restart or a network blip is not an
    /// outage).
    pub unusable_after_secs: u64,
    /// Days without any activity on the link (nothing received from Signal, nothing sent)
    /// after which the owner is warned once: Signal unlinks a linked device after about 30
    /// days of inactivity. 0: never warn.
    pub inactive_warn_days: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            fallback_url: String::new(),
            fallback_after_mins: 15.0,
            unusable_after_secs: 300,
            inactive_warn_days: 21,
        }
    }
}

impl AlertsConfig {
    /// The fallback URL when one is set.
    pub fn fallback(&self) -> Option<&str> {
        Some(self.fallback_url.trim()).filter(|u| !u.is_empty())
    }

    /// How long Signal must have been unusable before the fallback is called.
    pub fn fallback_after(&self) -> Duration {
        Duration::from_secs_f64(self.fallback_after_mins * 60.0)
    }

    /// How long a disconnection lasts before it is an outage.
    pub fn unusable_after(&self) -> Duration {
        Duration::from_secs(self.unusable_after_secs)
    }

    /// How long without activity before the owner is warned; None: never.
    pub fn inactive_warn(&self) -> Option<Duration> {
        (self.inactive_warn_days > 0).then(|| Duration::from_secs(self.inactive_warn_days * 86_400))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let mins = self.fallback_after_mins;
        if !mins.is_finite() || mins <= 0.0 || mins > 10_080.0 {
            return Err(ConfigError::Invalid(
                "[alerts] fallback_after_mins must be more than 0 and at most 10080 (a week)"
                    .into(),
            ));
        }
        if self.unusable_after_secs == 0 || self.unusable_after_secs > 86_400 {
            return Err(ConfigError::Invalid(
                "[alerts] unusable_after_secs must be between 1 and 86400".into(),
            ));
        }
        if self.inactive_warn_days > 29 {
            return Err(ConfigError::Invalid(
                "[alerts] inactive_warn_days must be at most 29 (Signal unlinks an inactive device after about 30 days); 0 turns the warning off".into(),
            ));
        }
        if let Some(url) = self.fallback() {
            check_fallback_url(url).map_err(|why| {
                ConfigError::Invalid(format!("[alerts] fallback_url = {url:?}: {why}"))
            })?;
        }
        Ok(())
    }
}

/// A URL, http or https, with no credentials in it. Which hosts plain http may reach
/// depends on `[network] proxy`: `run` checks that before it starts, by the providers' rule.
fn check_fallback_url(text: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(text).map_err(|_| "not a URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "put no credentials in the URL (a protected ntfy topic takes PANE_ALERTS_TOKEN)",
        );
    }
    match url.scheme() {
        "https" | "http" => Ok(()),
        _ => Err("only https (or http to a loopback or onion host) is allowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_urls_and_thresholds_are_checked() {
        let with = |url: &str| AlertsConfig {
            fallback_url: url.into(),
            ..AlertsConfig::default()
        };
        for good in [
            "",
            "https://ntfy.sh/pane-alerts",
            "http://127.0.0.1:8080/t",
            "http://localhost/t",
        ] {
            assert!(with(good).validate().is_ok(), "{good}");
        }
        for bad in [
            "ntfy.sh/topic",
            "ftp://127.0.0.1/t",
            "https://user:pw@ntfy.sh/t",
        ] {
            assert!(with(bad).validate().is_err(), "{bad}");
        }
        let mut c = AlertsConfig {
            fallback_after_mins: 0.0,
            ..AlertsConfig::default()
        };
        assert!(c.validate().is_err());
        c.fallback_after_mins = 0.02;
        assert!(c.validate().is_ok());
        assert_eq!(c.fallback_after(), Duration::from_secs_f64(1.2));
        c.inactive_warn_days = 30;
        assert!(c.validate().is_err());
        c.inactive_warn_days = 0;
        assert_eq!(c.inactive_warn(), None);
    }
}
