//! What runs while the agent is unsealed: the store opened with the data key (or in clear on
//! an `--unsealed` installation), the credentials from its vault, the core (gate and
//! workers), the gateway socket, the timers. Started by the keeper of the seal when the
//! owner unseals; stopped, every task and every key with it, when they seal again or the
//! daemon stops.

use super::SECRET_ENV_VARS;
use crate::assembly::{Assembly, Core, Providers};
use crate::auth::SecretSet;
use crate::config::Config;
use crate::gate::{GateHandle, SealSwitch};
use crate::redact::Redactor;
use crate::seal::vault::{Imported, Vault};
use crate::shutdown::Trigger;
use crate::store::{Disk, Sealer};
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What every session is started from: fixed for the daemon's life.
pub struct Grounds {
    /// The data dir.
    pub data_dir: PathBuf,
    /// The config, read at start.
    pub config: Config,
    /// The store's files, open and locked.
    pub disk: Disk,
}

/// A running unsealed agent.
pub struct Session {
    trigger: Trigger,
    done_rx: mpsc::Receiver<()>,
    core: Core,
    /// The gate, which the keeper publishes to the channels.
    pub gate: GateHandle,
    /// The credentials taken in when it started.
    pub imported: Vec<Imported>,
    sealed: bool,
}

impl Session {
    /// Opens the store with `sealer` (None: in clear), takes in the credentials, and starts
    /// the core and the channels that live only while unsealed.
    pub async fn start(
        grounds: &Grounds,
        sealer: Option<Arc<Sealer>>,
        seal: Option<SealSwitch>,
    ) -> anyhow::Result<Session> {
        let sealed = sealer.is_some();
        let was_empty = grounds.disk.is_empty()?;
        let store = grounds.disk.store(sealer)?;
        let data_dir = grounds.data_dir.as_path();
        let mut imported = Vec::new();
        let mut signal_passphrase = None;
        if sealed {
            let vault = Vault::new(&store)?;
            vault.check_canary(was_empty)?;
            imported = vault.import(&store, data_dir).await?;
            signal_passphrase = vault.signal_passphrase(data_dir)?;
            store.flush().await?;
            crate::systemd::set_unsealed_credentials(Some(vault.all()?));
        }
        let started = Session::start_core(grounds, store, seal, signal_passphrase).await;
        match started {
            Ok((trigger, done_rx, core)) => Ok(Session {
                gate: core.gate.clone(),
                trigger,
                done_rx,
                core,
                imported,
                sealed,
            }),
            Err(e) => {
                if sealed {
                    crate::systemd::set_unsealed_credentials(None);
                }
                Err(e)
            }
        }
    }

    async fn start_core(
        grounds: &Grounds,
        store: crate::store::Store,
        seal: Option<SealSwitch>,
        signal_passphrase: Option<zeroize::Zeroizing<String>>,
    ) -> anyhow::Result<(Trigger, mpsc::Receiver<()>, Core)> {
        let data_dir = grounds.data_dir.as_path();
        let config = grounds.config.clone();
        let secrets = SecretSet::load(data_dir, &config.auth.previous_secrets)?;
        let mcp_key = crate::auth::mcp_key::load(data_dir)?;
        if let Some(key) = &mcp_key {
            if secrets.all().any(|s| s.as_bytes() == key.as_bytes()) {
                bail!(
                    "{} is the same as a command secret: the MCP key must be a credential of its own (delete it and run `pane-agent mcp-key`)",
                    crate::auth::mcp_key::path(data_dir).display()
                );
            }
        }
        let mut known: Vec<String> = secrets
            .all()
            .chain(mcp_key.iter())
            .map(|s| s.as_text())
            .collect();
        known.extend(crate::systemd::secret_values(SECRET_ENV_VARS));
        if let Some(p) = &signal_passphrase {
            known.push(p.to_string());
        }
        let redactor = Redactor::new(known);
        crate::logging::set_redactor(redactor.clone());
        let egress = crate::egress::Egress::open(&config.network, &store)?;
        if let Some(url) = config.alerts.fallback() {
            crate::workers::alerts::check_url(url, &egress).map_err(anyhow::Error::msg)?;
        }
        let providers = Providers::from_config(&config, &egress);
        let idle_source = match &providers.imap {
            Some(Ok(source)) if config.breach.imap.idle => Some(source.clone()),
            _ => None,
        };
        let jobs = crate::schedule::jobs(&config.schedule);
        let owner = Some(config.signal.owner.trim().to_string()).filter(|o| !o.is_empty());
        let core = Assembly {
            store: store.clone(),
            config,
            secrets,
            redactor,
            mcp_key,
            data_dir: data_dir.to_path_buf(),
            providers,
            seal,
        }
        .start();
        let gate = core.gate.clone();
        let trigger = Trigger::new();
        let (done_tx, done_rx) = mpsc::channel(1);
        let gateway_path = data_dir.join(crate::gateway::protocol::SOCKET_FILE);
        let gateway = crate::channels::signal::GatewaySocket {
            listener: crate::channels::signal::bind(&gateway_path)
                .with_context(|| format!("cannot listen on {}", gateway_path.display()))?,
            path: gateway_path,
            gate: gate.clone(),
            outbox: core.outbox.clone(),
            owner,
            tally: core.tally.clone(),
            signal: core.signal.clone(),
            mailbox: core.mailbox.clone(),
            // A sealed installation's gateway gets its store's passphrase over this socket,
            // first on every connection, and gives it up with `seal` when the session ends.
            store_key: signal_passphrase.map(Arc::new),
        };
        tokio::spawn(gateway.run(trigger.clone(), done_tx.clone()));
        {
            let shutdown = trigger.subscribe();
            let gate = gate.clone();
            let last_runs = crate::schedule::LastRuns::new(&store);
            let done = done_tx.clone();
            tokio::spawn(async move {
                crate::channels::timers::run(jobs, last_runs, gate, shutdown).await;
                drop(done);
            });
        }
        if egress.proxy().is_some() {
            let shutdown = trigger.subscribe();
            let gate = gate.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                crate::channels::outage::watch(egress, gate, shutdown).await;
                drop(done);
            });
        }
        if let Some(source) = idle_source {
            let shutdown = trigger.subscribe();
            let gate = gate.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                crate::channels::idle::watch(source, gate, shutdown).await;
                drop(done);
            });
        }
        drop(done_tx);
        Ok((trigger, done_rx, core))
    }

    /// How many messages the core's outbox holds for the gateway.
    pub fn outbox_len(&self) -> usize {
        self.core.outbox.len()
    }

    /// Stops every task of the session, lets the gate finish its queue, flushes the store,
    /// and drops every key it held.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.trigger.fire();
        let _ = self.done_rx.recv().await;
        drop(self.gate);
        let flushed = self.core.stop().await.context("final store flush failed");
        if self.sealed {
            crate::systemd::set_unsealed_credentials(None);
        }
        flushed
    }
}
