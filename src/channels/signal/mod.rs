//! The core's Signal channel: `<data-dir>/gateway.sock` (mode 0600, peer uid checked), one
//! gateway at a time.
//!
//! It is the one owner of everything Signal: who the owner is (strangers are dropped here and
//! only counted), the owner's identity block and disappearing timer, which prompt a reaction
//! answers, and delivery of the outbox (each message until the gateway acknowledges it,
//! failed ones again after a pause, a refused id re-issued). It hands the gate only the
//! owner's messages and answers ([`crate::gate::OwnerInput`]); what it sees that belongs in
//! the audit log it reports as a notice. Reading never waits for a command to be carried out.
//!
//! On a sealed installation the gateway holds no key of its own: the core hands it the Signal
//! store's passphrase (`store_key`) as the first line of every connection, and takes it back
//! (`seal`) when the connection ends because the core is sealing or stopping.

mod connection;
mod delivery;
mod owner;

use crate::gate::{GateHandle, LinkEvent, SignalTally};
use crate::health::GatewayMailbox;
use crate::outbox::Outbox;
use crate::shutdown::Trigger;
use crate::store::signal::SignalState;
use crate::unix;
use connection::Connection;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// How long a stop waits for the gateway connection to write `seal` and close, before it
/// cuts the connection off.
const SEAL_GRACE: Duration = Duration::from_secs(2);

/// The listening gateway socket.
pub struct GatewaySocket {
    /// The bound listener.
    pub listener: UnixListener,
    /// Its path, removed on shutdown.
    pub path: PathBuf,
    /// The gate.
    pub gate: GateHandle,
    /// The outbox, read directly: queued messages ring its bell.
    pub outbox: Outbox,
    /// The owner's ACI; None when not configured (then nothing is sent and nobody heard).
    pub owner: Option<String>,
    /// Strangers dropped here and reactions ignored, which the gate audits as counts.
    pub tally: SignalTally,
    /// The Signal records: whether the owner's identity is confirmed, and their
    /// disappearing-message timer.
    pub signal: SignalState,
    /// The Signal store's passphrase on a sealed installation (unsealed now): written as
    /// `store_key`, the first line of every connection, and taken back with `seal` when the
    /// connection ends on the shutdown trigger. None on an unsealed installation, where the
    /// gateway has its own passphrase and neither line is written.
    pub store_key: Option<Arc<Zeroizing<String>>>,
    /// What the gate leaves for the gateway besides the outbox (a captcha's answer),
    /// written as soon as it is left or when the next gateway connects.
    pub mailbox: GatewayMailbox,
}

impl GatewaySocket {
    /// Serves gateways until shutdown; a new connection replaces the previous one.
    pub async fn run(self, notify: Trigger, done: mpsc::Sender<()>) {
        let mut shutdown = notify.subscribe();
        let mut current: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = shutdown.recv() => break,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let peer_ok = stream
                .peer_cred()
                .map(|c| c.uid() == unix::euid())
                .unwrap_or(false);
            if !peer_ok {
                tracing::warn!("gateway socket: refused a peer with another uid");
                continue;
            }
            if let Some(live) = current.as_mut() {
                // A gateway that just went away may not have been noticed yet: give its
                // connection a moment to end before calling this one a second gateway.
                let _ = tokio::time::timeout(Duration::from_secs(1), live).await;
            }
            if current.as_ref().is_some_and(|c| !c.is_finished()) {
                // One gateway at a time: a second one is refused, never a silent takeover.
                tracing::warn!("gateway socket: refused a second gateway while one is connected");
                drop(stream);
                self.gate
                    .notice(
                        "gateway.refused_second",
                        serde_json::json!({"reason": "a gateway is already connected"}),
                        Some("A second Signal gateway tried to connect to the agent while yours is connected; it was refused. If you did not start one, someone with access to the agent's account on the server did.".into()),
                    )
                    .await;
                continue;
            }
            let conn = Connection::new(
                self.gate.clone(),
                self.outbox.clone(),
                self.owner.clone(),
                self.tally.clone(),
                self.signal.clone(),
                self.store_key.clone(),
                self.mailbox.clone(),
            );
            let conn_shutdown = notify.subscribe();
            let done = done.clone();
            let state_file = self.path.with_file_name("gateway.state");
            let gate = self.gate.clone();
            current = Some(tokio::spawn(async move {
                record_state(&state_file, true);
                // The link's health knows whether a gateway is there at all: a gateway
                // process that died is an outage too.
                gate.link(LinkEvent::GatewayConnected).await;
                conn.serve(stream, conn_shutdown).await;
                gate.link(LinkEvent::GatewayGone).await;
                record_state(&state_file, false);
                drop(done);
            }));
        }
        if let Some(mut old) = current.take() {
            // The connection saw the trigger too: give it the moment it needs to write
            // `seal` (on a sealed installation) and close, so the gateway forgets its key.
            if tokio::time::timeout(SEAL_GRACE, &mut old).await.is_err() {
                tracing::warn!("the gateway connection did not close in time; cut off");
                old.abort();
            }
        }
        record_state(&self.path.with_file_name("gateway.state"), false);
        let _ = std::fs::remove_file(&self.path);
        drop(done);
    }
}

/// Records whether a gateway is connected, for `pane-agent doctor` (which cannot open the
/// store while the daemon holds it): `<data-dir>/gateway.state`.
fn record_state(state_file: &std::path::Path, connected: bool) {
    let line = format!(
        "{} {}\n",
        if connected {
            "connected"
        } else {
            "disconnected"
        },
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    if let Err(e) = std::fs::write(state_file, line) {
        tracing::warn!(error = %e, "cannot record the gateway state");
    }
}

/// Binds `path` with mode 0600 (replacing a stale socket).
pub fn bind(path: &std::path::Path) -> std::io::Result<UnixListener> {
    crate::channels::control_socket::bind(path)
}
