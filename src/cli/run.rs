//! `pane-agent run`: the daemon. It checks the data dir, config and secret before anything
//! else and refuses to start, with the reason, when one of them is unsafe; then it opens the
//! store, starts the core ([`crate::assembly`]: the gate and the workers over the configured
//! providers), binds the channels around it, and runs until SIGTERM or SIGINT, when every
//! task stops and the store is flushed.

use super::DataDirArg;
use crate::assembly::{Assembly, Core, Providers};
use crate::auth::SecretSet;
use crate::channels::control_socket::{self, ControlSocket};
use crate::channels::http;
use crate::config::Config;
use crate::gate::GateHandle;
use crate::redact::Redactor;
use crate::shutdown::Trigger;
use crate::store::Store;
use crate::unix;
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Environment variables that hold provider keys: the redactor removes their values
/// wherever they would appear.
pub const SECRET_ENV_VARS: &[&str] = &[
    "AGENT_SECRET",
    "AGENT_SECRET_PREVIOUS",
    "ADDY_API_KEY",
    "SIMPLELOGIN_API_KEY",
    "PRIVACY_API_KEY",
    "LITHIC_API_KEY",
    "HIBP_API_KEY",
    "PANE_IMAP_PASSWORD",
];

/// `run [--data-dir DIR] [--config FILE]`
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    /// The data directory.
    pub data_dir: DataDirArg,
    /// The config file (default: `<data-dir>/pane.toml` if it exists, else built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// A started daemon: its tasks and the means to stop it.
pub struct Daemon {
    notify_shutdown: Trigger,
    done_rx: mpsc::Receiver<()>,
    core: Core,
    http_task: Option<JoinHandle<std::io::Result<()>>>,
    /// Where the control socket listens.
    pub socket: PathBuf,
    /// The gate (for the watchdog's liveness check).
    pub gate: GateHandle,
    /// Where the HTTP endpoint listens, when on.
    pub http_addr: Option<SocketAddr>,
}

/// Checks everything `run` depends on and returns the config and secrets, or the reason
/// the agent must not start.
pub fn preflight(
    data_dir: &Path,
    config_path: Option<&Path>,
) -> anyhow::Result<(Config, SecretSet)> {
    if !data_dir.is_dir() {
        bail!(
            "data dir {} does not exist: run `pane-agent init --data-dir {}` first",
            data_dir.display(),
            data_dir.display()
        );
    }
    let mode = unix::mode_of(data_dir)?;
    if mode & 0o022 != 0 {
        bail!(
            "data dir {} has mode {mode:o}: it must not be writable by group or others (chmod 700 {})",
            data_dir.display(),
            data_dir.display()
        );
    }
    let default_config = data_dir.join("pane.toml");
    let config_path = match config_path {
        Some(p) => Some(p.to_path_buf()),
        None => default_config.exists().then_some(default_config),
    };
    crate::ownership::check_start(data_dir, config_path.as_deref())?;
    let config = match &config_path {
        Some(path) => {
            let mode = unix::mode_of(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            if mode & 0o077 != 0 {
                bail!(
                    "config {} has mode {mode:o}: it must be readable by its owner only (chmod 600 {})",
                    path.display(),
                    path.display()
                );
            }
            Config::load(path)?
        }
        None => Config::default(),
    };
    crate::policy::mcp::check_scope(&config.mcp.tools, |n| crate::commands::find(n).is_some())
        .map_err(anyhow::Error::msg)?;
    let secrets = SecretSet::load(data_dir, &config.auth.previous_secrets)?;
    if let Some(key) = crate::auth::mcp_key::load(data_dir)? {
        if secrets.all().any(|s| s.as_bytes() == key.as_bytes()) {
            bail!(
                "{} is the same as a command secret: the MCP key must be a credential of its own (delete it and run `pane-agent mcp-key`)",
                crate::auth::mcp_key::path(data_dir).display()
            );
        }
    }
    Ok((config, secrets))
}

impl Daemon {
    /// Starts everything; returns once the control socket (and HTTP, when on) accept.
    pub async fn start(data_dir: &Path, config_path: Option<&Path>) -> anyhow::Result<Daemon> {
        let (config, secrets) = preflight(data_dir, config_path)?;
        let mcp_key = crate::auth::mcp_key::load(data_dir)?;
        let mut known: Vec<String> = secrets
            .all()
            .chain(mcp_key.iter())
            .map(|s| s.as_text())
            .collect();
        known.extend(crate::systemd::secret_values(SECRET_ENV_VARS));
        let redactor = Redactor::new(known);
        crate::logging::set_redactor(redactor.clone());
        let http_listen = config.http.listen_addr()?;
        if http_listen.is_some() {
            http::check_descriptors(config.http.max_connections)?;
        }
        let http_config = config.http.clone();
        let store = Store::open(&data_dir.join("store")).context("cannot open the store")?;
        let providers = Providers::from_config(&config);
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
        }
        .start();
        let gate = core.gate.clone();

        let notify_shutdown = Trigger::new();
        let (done_tx, done_rx) = mpsc::channel(1);
        // The gateway socket first: a client that finds the control socket finds it too.
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
        };
        tokio::spawn(gateway.run(notify_shutdown.clone(), done_tx.clone()));
        let socket = data_dir.join("agent.sock");
        let listener = control_socket::bind(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        let control = ControlSocket {
            listener,
            path: socket.clone(),
            gate: gate.clone(),
        };
        tokio::spawn(control.run(notify_shutdown.clone(), done_tx.clone()));

        let mut http_addr = None;
        let http_task = match http_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on http {addr}"))?;
                http_addr = Some(listener.local_addr()?);
                let shutdown = notify_shutdown.subscribe();
                let gate = gate.clone();
                let done = done_tx.clone();
                Some(tokio::spawn(async move {
                    let r = http::serve(listener, gate, &http_config, shutdown).await;
                    drop(done);
                    r
                }))
            }
            None => None,
        };
        {
            let shutdown = notify_shutdown.subscribe();
            let gate = gate.clone();
            let last_runs = crate::schedule::LastRuns::new(&store);
            let done = done_tx.clone();
            tokio::spawn(async move {
                crate::channels::timers::run(jobs, last_runs, gate, shutdown).await;
                drop(done);
            });
        }
        if let Some(source) = idle_source {
            let shutdown = notify_shutdown.subscribe();
            let gate = gate.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                crate::channels::idle::watch(source, gate, shutdown).await;
                drop(done);
            });
        }
        drop(done_tx);
        tracing::info!(
            socket = %socket.display(),
            http = ?http_addr,
            "pane-agent ready"
        );
        Ok(Daemon {
            notify_shutdown,
            done_rx,
            core,
            http_task,
            socket,
            http_addr,
            gate,
        })
    }

    /// Stops every task, waits for them, and flushes the store.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        // Every listener sees it, one that subscribes later included.
        self.notify_shutdown.fire();
        drop(self.notify_shutdown);
        // Every task holds a clone of the done sender; recv returns None once all are gone.
        let _ = self.done_rx.recv().await;
        if let Some(task) = self.http_task {
            if let Ok(Err(e)) = task.await {
                tracing::warn!(error = %e, "http endpoint stopped with an error");
            }
        }
        // The channels dropped their gate handles, and so does this: the gate finishes its
        // queue, gives jobs in flight a moment, and ends.
        drop(self.gate);
        self.core.stop().await.context("final store flush failed")?;
        tracing::info!("pane-agent stopped; store flushed");
        Ok(())
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(args: &RunArgs) -> anyhow::Result<()> {
    // Listening before anything starts: a SIGTERM during the start (the socket may already
    // answer, so a supervisor takes the daemon for started) is kept and acted on once the
    // start is done. A stream sees only signals that come after it exists, and until the first
    // exists the signal's default action kills the process.
    let mut signals = StopSignals::listen()?;
    let data_dir = args.data_dir.resolve()?;
    let daemon = Daemon::start(&data_dir, args.config.as_deref()).await?;
    crate::systemd::notify("READY=1");
    let watchdog = crate::systemd::watchdog_interval().map(|every| {
        let gate = daemon.gate.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                // Only a gate that answers earns the watchdog ping; it answers in
                // milliseconds whatever the workers are waiting for.
                if tokio::time::timeout(every, gate.ping())
                    .await
                    .is_ok_and(|answered| answered)
                {
                    crate::systemd::notify("WATCHDOG=1");
                }
            }
        })
    });
    signals.recv().await;
    crate::systemd::notify("STOPPING=1");
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("shutting down");
    daemon.shutdown().await
}

/// SIGTERM and SIGINT, listened for from the first moment of `run`.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Returns at the first SIGTERM or SIGINT since [`StopSignals::listen`].
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
