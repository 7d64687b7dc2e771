//! `pane-agent run`: the daemon. It checks the data dir and config before anything else and
//! refuses to start, with the reason, when one of them is unsafe; then it opens the store's
//! files and binds the control socket and the HTTP endpoint, and hands the rest to the
//! keeper of the seal ([`keeper`]): on a sealed installation nothing more starts until the
//! owner unseals (or the kernel keyring still holds the key after a crash); then the
//! [`session`] runs the core ([`crate::assembly`]: the gate and the workers over the
//! configured providers), the gateway socket and the timers. It runs until SIGTERM or
//! SIGINT, when every task stops and the store is flushed.

pub mod keeper;
pub mod session;

use super::DataDirArg;
use crate::channels::control_socket::{self, ControlSocket};
use crate::channels::door::Door;
use crate::channels::http;
use crate::config::Config;
use crate::seal::KeyFile;
use crate::shutdown::Trigger;
use crate::store::Disk;
use crate::unix;
use anyhow::{bail, Context};
use keeper::SealKeeper;
use session::Grounds;
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
    crate::workers::alerts::TOKEN_VAR,
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
    keeper: JoinHandle<()>,
    disk: Disk,
    http_task: Option<JoinHandle<std::io::Result<()>>>,
    /// Where the control socket listens.
    pub socket: PathBuf,
    /// The door to the gate (for the watchdog's liveness check).
    pub door: Door,
    /// Where the HTTP endpoint listens, when on.
    pub http_addr: Option<SocketAddr>,
}

/// Checks everything `run` depends on and returns the config, or the reason the agent must
/// not start. (The secrets are read when the store is open: on a sealed installation they
/// live in it.)
pub fn preflight(data_dir: &Path, config_path: Option<&Path>) -> anyhow::Result<Config> {
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
    Ok(config)
}

impl Daemon {
    /// Starts everything; returns once the control socket (and HTTP, when on) accept.
    pub async fn start(data_dir: &Path, config_path: Option<&Path>) -> anyhow::Result<Daemon> {
        let config = preflight(data_dir, config_path)?;
        // Keys are held in memory from the first unseal: never in a core dump.
        if let Err(e) = unix::forbid_core_dumps() {
            tracing::warn!(error = %e, "cannot turn core dumps off");
        }
        if crate::cli::seal_init::interrupted(data_dir) {
            bail!(
                "a `pane-agent seal-init` on {} was cut off: run it again to finish it before starting",
                data_dir.display()
            );
        }
        let keyfile = KeyFile::load(data_dir)?;
        // What is in the environment is redacted from the first log line on.
        crate::logging::set_redactor(crate::redact::Redactor::new(crate::systemd::secret_values(
            SECRET_ENV_VARS,
        )));
        let http_listen = config.http.listen_addr()?;
        if http_listen.is_some() {
            http::check_descriptors(config.http.max_connections)?;
        }
        let http_config = config.http.clone();
        let disk = Disk::open(&data_dir.join("store")).context("cannot open the store")?;
        if keyfile.is_none() && !disk.is_empty()? {
            check_not_half_sealed(data_dir)?;
        }
        let (door, keeper_side) = Door::new();
        let mut keeper = SealKeeper::new(
            Grounds {
                data_dir: data_dir.to_path_buf(),
                config,
                disk: disk.clone(),
            },
            keyfile,
            keeper_side,
        );
        keeper.open_without_owner().await?;

        let notify_shutdown = Trigger::new();
        let (done_tx, done_rx) = mpsc::channel(1);
        let mut http_addr = None;
        let http_task = match http_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on http {addr}"))?;
                http_addr = Some(listener.local_addr()?);
                let shutdown = notify_shutdown.subscribe();
                let door = door.clone();
                let done = done_tx.clone();
                Some(tokio::spawn(async move {
                    let r = http::serve(listener, door, &http_config, shutdown).await;
                    drop(done);
                    r
                }))
            }
            None => None,
        };
        // The control socket last: a client (or a supervisor) that finds it answering finds
        // the HTTP endpoint listening too.
        let socket = data_dir.join("agent.sock");
        let listener = control_socket::bind(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        let control = ControlSocket {
            listener,
            path: socket.clone(),
            door: door.clone(),
        };
        tokio::spawn(control.run(notify_shutdown.clone(), done_tx.clone()));
        drop(done_tx);
        let keeper = tokio::spawn(keeper.run(notify_shutdown.subscribe()));
        tracing::info!(
            socket = %socket.display(),
            http = ?http_addr,
            sealed = door.is_sealed(),
            "pane-agent ready"
        );
        Ok(Daemon {
            notify_shutdown,
            done_rx,
            keeper,
            disk,
            http_task,
            socket,
            http_addr,
            door,
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
        // The channels dropped their gate handles; the keeper stops the session: the gate
        // finishes its queue, gives jobs in flight a moment, and ends; the store is flushed.
        drop(self.door);
        let _ = self.keeper.await;
        self.disk.flush().context("final store flush failed")?;
        tracing::info!("pane-agent stopped; store flushed");
        Ok(())
    }
}

/// Refuses to start in clear on a store that was sealed (its key file gone): that would
/// write records in clear beside sealed ones.
fn check_not_half_sealed(data_dir: &Path) -> anyhow::Result<()> {
    let marker = data_dir.join(crate::seal::keyfile::SEALED_MARKER);
    if marker.exists() {
        bail!(
            "the store in {} is sealed but {} is missing: restore it from your backup (the store cannot be read without it)",
            data_dir.display(),
            crate::seal::SEAL_FILE
        );
    }
    Ok(())
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
        let door = daemon.door.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                // Only a gate that answers earns the watchdog ping; it answers in
                // milliseconds whatever the workers are waiting for. A sealed agent has no
                // gate: it is alive as long as this loop runs.
                let alive = match door.gate() {
                    Some(gate) => tokio::time::timeout(every, gate.ping())
                        .await
                        .is_ok_and(|answered| answered),
                    None => true,
                };
                if alive {
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
