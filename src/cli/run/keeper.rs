//! The keeper of the seal: the one task that holds the data key while the agent is unsealed,
//! and the only one that starts and stops the [`Session`] that uses it.
//!
//! Its inbox takes the door's requests (unseal from the console or the onion endpoint, the
//! console's local requests) and the gate's `seal` switch, in one `select!` loop, so unseal,
//! seal and stop never race. A wrong passphrase costs the KDF's second (one attempt at a
//! time) and, over the network, a delay that doubles with each failure (the count kept on
//! disk across restarts, no secret in it); it is audited, and told to the owner, at the next
//! unseal. The console is not delayed: its peer could read the key file and guess offline
//! anyway, and someone guessing over the onion endpoint must not lock the owner out.

use super::session::{Grounds, Session};
use crate::auth::{Envelope, SecretSet};
use crate::channels::door::{sealed_reply, DoorRequest, Keeper, Local, UnsealRefused, Unsealed};
use crate::gate::SealSwitch;
use crate::seal::{keyring, KeyFile, SealError, WrapperKind};
use crate::shutdown::Shutdown;
use crate::store::{DataKey, Sealer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The file that counts wrong passphrases while sealed (a count and two times, nothing else).
pub const FAILURES_FILE: &str = "unseal-failures.json";
/// The longest wait imposed after wrong passphrases.
const MAX_DELAY: Duration = Duration::from_secs(300);
/// How often `[seal] after_idle_hours` is checked.
const IDLE_CHECK: Duration = Duration::from_secs(60);
/// How long a `seal` waits for its own reply to leave through the gateway.
const SEAL_DRAIN: Duration = Duration::from_secs(5);

/// Wrong passphrases since the last unseal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Failures {
    count: u64,
    first: Option<chrono::DateTime<chrono::Utc>>,
    last: Option<chrono::DateTime<chrono::Utc>>,
}

/// The keeper's state.
pub struct SealKeeper {
    grounds: Grounds,
    keyfile: Option<KeyFile>,
    door: Keeper,
    session: Option<Session>,
    key: Option<DataKey>,
    failures: Failures,
    not_before: Instant,
    switch: SealSwitch,
    switch_rx: mpsc::Receiver<()>,
}

impl SealKeeper {
    /// A keeper over `grounds`; `keyfile` is None on an installation in clear.
    pub fn new(grounds: Grounds, keyfile: Option<KeyFile>, door: Keeper) -> SealKeeper {
        let failures = std::fs::read(grounds.data_dir.join(FAILURES_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let (switch, switch_rx) = SealSwitch::new();
        let mut keeper = SealKeeper {
            grounds,
            keyfile,
            door,
            session: None,
            key: None,
            failures,
            not_before: Instant::now(),
            switch,
            switch_rx,
        };
        keeper.not_before = Instant::now() + keeper.delay();
        keeper
    }

    /// Starts at once what needs no owner: the session of an installation in clear, or of a
    /// sealed one whose key the kernel keyring still holds (a crash-restart). Errors of an
    /// installation in clear stop the daemon (as before sealing existed).
    pub async fn open_without_owner(&mut self) -> anyhow::Result<()> {
        let Some(file) = &self.keyfile else {
            let session = Session::start(&self.grounds, None, None).await?;
            let _ = self.door.gate.send_replace(Some(session.gate.clone()));
            self.session = Some(session);
            return Ok(());
        };
        let Some(key) = keyring::fetch(&file.installation) else {
            tracing::info!("sealed: waiting for the owner to unseal");
            crate::systemd::notify("STATUS=sealed: waiting for the owner's unseal");
            return Ok(());
        };
        match self.open(key, "keyring").await {
            Ok(_) => tracing::info!("unsealed from the kernel keyring after a restart"),
            Err(e) => {
                tracing::warn!(error = %e, "the keyring's key did not unseal; waiting for the owner")
            }
        }
        Ok(())
    }

    /// Serves the door and the `seal` switch until shutdown, then stops the session.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let mut renew = tokio::time::interval(keyring::RENEW_EVERY);
        renew.tick().await;
        let hours = self.grounds.config.seal.after_idle_hours;
        let every = if hours > 0.0 {
            Duration::from_secs_f64((hours * 3600.0 / 4.0).clamp(0.05, IDLE_CHECK.as_secs_f64()))
        } else {
            IDLE_CHECK
        };
        let mut idle_check = tokio::time::interval(every);
        idle_check.tick().await;
        loop {
            tokio::select! {
                request = self.door.requests.recv() => match request {
                    Some(r) => self.handle(r).await,
                    None => break,
                },
                Some(()) = self.switch_rx.recv() => self.seal().await,
                _ = renew.tick() => self.renew(),
                _ = idle_check.tick() => {
                    if self.idle_too_long() {
                        tracing::info!("no word from the owner for [seal] after_idle_hours: sealing");
                        if let Some(s) = &self.session {
                            s.gate
                                .notice_internal(
                                    "seal.idle",
                                    json!({"after_idle_hours": self.grounds.config.seal.after_idle_hours}),
                                    None,
                                )
                                .await;
                        }
                        self.seal().await;
                    }
                }
                _ = shutdown.recv() => break,
            }
        }
        let _ = self.door.gate.send_replace(None);
        if let Some(session) = self.session.take() {
            if let Err(e) = session.stop().await {
                tracing::error!(error = %e, "the session did not stop cleanly");
            }
        }
        self.key = None;
    }

    async fn handle(&mut self, request: DoorRequest) {
        match request {
            DoorRequest::Unseal {
                passphrase,
                from_console,
                reply,
            } => {
                let answer = self.unseal(passphrase, from_console).await;
                let _ = reply.send(answer);
            }
            DoorRequest::Local { request, reply } => {
                let _ = reply.send(self.local(&request));
            }
        }
    }

    fn delay(&self) -> Duration {
        match self.failures.count {
            0 => Duration::ZERO,
            n => Duration::from_secs(1u64 << (n - 1).min(16)).min(MAX_DELAY),
        }
    }

    async fn unseal(
        &mut self,
        passphrase: zeroize::Zeroizing<String>,
        from_console: bool,
    ) -> Result<Unsealed, UnsealRefused> {
        let Some(file) = self.keyfile.clone() else {
            return Err(UnsealRefused::NotSealed);
        };
        if self.session.is_some() {
            return Ok(Unsealed {
                status: "already_unsealed",
                imported: Vec::new(),
                failed_attempts: 0,
            });
        }
        let now = Instant::now();
        if now < self.not_before && !from_console {
            return Err(UnsealRefused::TooSoon {
                // Rounded up: a client that waits as told is not refused again.
                retry_after_secs: (self.not_before - now).as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let opened = tokio::task::spawn_blocking(move || file.unwrap_key(&passphrase)).await;
        match opened {
            Ok(Ok((key, kind))) => {
                let how = match kind {
                    WrapperKind::Passphrase => "passphrase",
                    WrapperKind::Recovery => "recovery passphrase",
                };
                self.open(key, how).await
            }
            Ok(Err(SealError::WrongPassphrase)) => {
                let now = chrono::Utc::now();
                self.failures.count += 1;
                self.failures.first.get_or_insert(now);
                self.failures.last = Some(now);
                self.save_failures();
                let delay = self.delay();
                self.not_before = Instant::now() + delay;
                tracing::warn!(failures = self.failures.count, "unseal: wrong passphrase");
                Err(UnsealRefused::WrongPassphrase {
                    retry_after_secs: delay.as_secs(),
                })
            }
            Ok(Err(e)) => Err(UnsealRefused::Failed(e.to_string())),
            Err(_) => Err(UnsealRefused::Failed("the key derivation stopped".into())),
        }
    }

    /// Starts the session on `key`, publishes its gate, holds the key in the keyring, and
    /// audits the unseal (with the wrong passphrases tried before it).
    async fn open(&mut self, key: DataKey, how: &str) -> Result<Unsealed, UnsealRefused> {
        let sealer = Sealer::new(&key).map_err(|e| UnsealRefused::Failed(e.to_string()))?;
        let session = Session::start(
            &self.grounds,
            Some(Arc::new(sealer)),
            Some(self.switch.clone()),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "unsealed, but the agent could not start");
            UnsealRefused::Failed(e.to_string())
        })?;
        if let Some(file) = &self.keyfile {
            if let Err(e) = keyring::hold(&file.installation, &key) {
                tracing::warn!(error = %e, "the key is not held in the kernel keyring: a restart will need the owner");
            }
        }
        let imported: Vec<String> = session
            .imported
            .iter()
            .map(|i| {
                format!(
                    "{} from {}{}",
                    i.credential.name(),
                    i.from.display(),
                    if i.removed { " (file removed)" } else { "" }
                )
            })
            .collect();
        let failures = std::mem::take(&mut self.failures);
        let _ = std::fs::remove_file(self.grounds.data_dir.join(FAILURES_FILE));
        self.not_before = Instant::now();
        let alert = (failures.count > 0).then(|| {
            format!(
                "⚠️ {} wrong unseal passphrase(s) were tried while the agent was sealed (first {}, last {}).",
                failures.count,
                failures.first.map(|t| t.to_rfc3339()).unwrap_or_default(),
                failures.last.map(|t| t.to_rfc3339()).unwrap_or_default()
            )
        });
        session
            .gate
            .notice_internal(
                "seal.unsealed",
                json!({
                    "how": how,
                    "imported": imported.iter().map(|i| i.split(' ').next().unwrap_or_default()).collect::<Vec<_>>(),
                    "failed_attempts": failures.count,
                    "first_failure": failures.first,
                    "last_failure": failures.last,
                }),
                alert,
            )
            .await;
        let _ = self.door.gate.send_replace(Some(session.gate.clone()));
        // The status line is the gate's from here: `unsealed; Signal link ok` (or what is
        // wrong with it), written as the link's verdict changes.
        tracing::info!(how, "unsealed");
        // The unseal is the owner's word too.
        self.switch.owner_seen(chrono::Utc::now().timestamp());
        self.session = Some(session);
        self.key = Some(key);
        Ok(Unsealed {
            status: "unsealed",
            imported,
            failed_attempts: failures.count,
        })
    }

    /// `seal`: the channels lose the gate and the keyring its copy at once; the reply to
    /// `seal` is given a moment to leave; then the session stops and every key goes.
    async fn seal(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let _ = self.door.gate.send_replace(None);
        // The keyring's copy goes first: a crash from here on must not come back unsealed.
        if let Some(file) = &self.keyfile {
            keyring::forget(&file.installation);
        }
        // While it goes out: the outbox shrinks. One that does not move for half a second
        // has no gateway to go to, and the seal does not wait for it.
        let deadline = Instant::now() + SEAL_DRAIN;
        let mut last = (session.outbox_len(), Instant::now());
        while session.outbox_len() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = session.outbox_len();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > Duration::from_millis(500) {
                break;
            }
        }
        if let Err(e) = session.stop().await {
            tracing::error!(error = %e, "the session did not stop cleanly while sealing");
        }
        self.key = None;
        crate::systemd::notify("STATUS=sealed: waiting for the owner's unseal");
        tracing::info!("sealed: every key forgotten");
    }

    /// True when `[seal] after_idle_hours` is set, the agent is unsealed on a sealed
    /// installation, and the owner was not heard from for that long.
    fn idle_too_long(&self) -> bool {
        let hours = self.grounds.config.seal.after_idle_hours;
        if hours <= 0.0 || self.keyfile.is_none() || self.session.is_none() {
            return false;
        }
        let idle = (chrono::Utc::now().timestamp() - self.switch.last_owner()) as f64;
        idle >= hours * 3600.0
    }

    fn renew(&self) {
        if let (Some(file), Some(key)) = (&self.keyfile, &self.key) {
            if let Err(e) = keyring::hold(&file.installation, key) {
                tracing::warn!(error = %e, "renewing the key in the kernel keyring failed");
            }
        }
    }

    fn save_failures(&self) {
        if let Ok(bytes) = serde_json::to_vec(&self.failures) {
            let path = self.grounds.data_dir.join(FAILURES_FILE);
            if let Err(e) = crate::unix::write_private_atomically(&path, &bytes) {
                tracing::warn!(error = %e, "cannot record the failed unseal");
            }
        }
    }

    /// A console request other than unseal (see `channels::door::Local`).
    fn local(&self, request: &Local) -> Value {
        if self.session.is_none() {
            return sealed_reply();
        }
        let data_dir = &self.grounds.data_dir;
        match request {
            Local::Unseal { .. } => json!({"status": "already_unsealed"}),
            Local::Sign { cmd, args } => match SecretSet::load(data_dir, &[]) {
                Ok(secrets) => {
                    let envelope =
                        Envelope::sign(&secrets.current, chrono::Utc::now(), cmd, args.clone());
                    json!({"envelope": envelope.to_json()})
                }
                Err(e) => json!({"error": e.to_string(), "kind": "internal"}),
            },
            Local::McpKey => match crate::auth::mcp_key::load(data_dir) {
                Ok(Some(key)) => json!({"mcp_key": key.as_text()}),
                Ok(None) => {
                    json!({"error": "no MCP key: run `pane-agent mcp-key` first", "kind": "not_found"})
                }
                Err(e) => json!({"error": e.to_string(), "kind": "internal"}),
            },
            Local::CommandSecret => match SecretSet::load(data_dir, &[]) {
                Ok(secrets) => json!({"secret": secrets.current.as_text()}),
                Err(e) => json!({"error": e.to_string(), "kind": "internal"}),
            },
        }
    }
}
