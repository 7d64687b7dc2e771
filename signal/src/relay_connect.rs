//! Reaching Signal: the first attempt (whose failure the core hears of before anything
//! else), reconnecting with backoff, and what a failure says of the link's health. Never a
//! relink or a wipe: a refused registration is reported and tried again slowly.

use super::{Device, Relay};
use crate::core_link::{watching, CoreLink, Halt};
use crate::shutdown::Shutdown;
use crate::systemd;
use pane_protocol::device::DeviceError;
use pane_protocol::messages::Registration;

impl<D: Device> Relay<D> {
    /// The first attempt to reach Signal, while the core's keying lines are heeded: on a
    /// failure the health says why and `retry_in` when to try again.
    pub(super) async fn first_connect(
        &mut self,
        mut link: Option<&mut CoreLink>,
        shutdown: &mut Shutdown,
    ) -> Result<(), Halt> {
        self.retry_in = self.attempt(link.as_deref_mut(), shutdown).await?;
        self.tell_health(link).await
    }

    /// Connects the device, retrying with backoff, while the core's keying lines are heeded.
    pub(super) async fn connect_device(
        &mut self,
        mut link: Option<&mut CoreLink>,
        shutdown: &mut Shutdown,
    ) -> Result<(), Halt> {
        while let Some(wait) = self.attempt(link.as_deref_mut(), shutdown).await? {
            self.tell_health(link.as_deref_mut()).await?;
            self.pause(wait, link.as_deref_mut(), shutdown).await?;
        }
        self.tell_health(link).await
    }

    /// One attempt to reach Signal, while the core's keying lines are heeded, recorded in the
    /// health: None when connected, else how long to wait before the next.
    async fn attempt(
        &mut self,
        link: Option<&mut CoreLink>,
        shutdown: &mut Shutdown,
    ) -> Result<Option<std::time::Duration>, Halt> {
        let attempt = watching(self.device.connect(), link, &mut self.guard, shutdown).await?;
        Ok(match attempt {
            Ok(()) => {
                self.health.connected();
                systemd::notify("STATUS=relaying");
                None
            }
            Err(e) => Some(self.connect_failed(e)),
        })
    }

    /// A failed attempt to reach Signal: recorded in the health and logged; returns how long
    /// to wait before the next.
    fn connect_failed(&mut self, e: DeviceError) -> std::time::Duration {
        self.device_failed(&e);
        match e {
            // Never relinked or wiped here: reported, and tried again slowly (a refusal that
            // was transient heals itself).
            DeviceError::Unlinked(why) | DeviceError::Outdated(why) => {
                let wait = refused_retry();
                tracing::error!(%why, retry_s = wait.as_secs(), "Signal refuses this device; relink with `pane-signal link --replace` (or update pane-signal)");
                systemd::notify(&format!("STATUS={why}"));
                wait
            }
            DeviceError::Disconnected(why) => {
                let wait = self.device_backoff.next();
                tracing::warn!(%why, retry_ms = wait.as_millis() as u64, "cannot reach Signal");
                wait
            }
        }
    }

    /// Waits `wait` before trying Signal again, while the core's keying lines are heeded.
    pub(super) async fn pause(
        &mut self,
        wait: std::time::Duration,
        link: Option<&mut CoreLink>,
        shutdown: &mut Shutdown,
    ) -> Result<(), Halt> {
        watching(tokio::time::sleep(wait), link, &mut self.guard, shutdown).await
    }

    /// Records in the health why the device failed.
    pub(super) fn device_failed(&mut self, e: &DeviceError) {
        match e {
            DeviceError::Disconnected(why) => self.health.disconnected(why),
            DeviceError::Unlinked(why) => {
                self.health
                    .refused(Registration::Unlinked, why.clone(), None)
            }
            DeviceError::Outdated(why) => {
                self.health
                    .refused(Registration::Outdated, why.clone(), None)
            }
        }
    }
}

/// How long the gateway waits before trying a refused registration again (5 minutes;
/// `PANE_SIGNAL_REFUSED_RETRY_SECS` sets another, for the end-to-end tests).
fn refused_retry() -> std::time::Duration {
    let secs = std::env::var("PANE_SIGNAL_REFUSED_RETRY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    std::time::Duration::from_secs(secs)
}
