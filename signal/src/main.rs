//! `pane-signal`: pane-agent's Signal gateway, a thin presage linked device.
//!
//! It holds the Signal keys (and, until the core acknowledges them, the messages it relays):
//! it relays received messages to the core over `<data-dir>/gateway.sock` and sends the
//! core's replies (`relay`, with the protocol in `protocol`, the journal in `journal` and the
//! message mapping in `mapping`, all tested without presage). presage's futures are not
//! `Send`, so presage runs on its own thread, on a current-thread runtime inside a
//! `LocalSet`; the main thread only waits for SIGTERM/SIGINT and then asks the relay to stop.
//! On a sealed installation the store passphrase comes from the core (`relay::Keying`), and
//! what the gateway writes beside its store is sealed with keys derived from it (`sealing`).
//! See `docs/signal-gateway.md`.

mod core_link;
mod device;
mod egress;
mod health;
mod identities;
mod journal;
mod lines;
mod link;
mod linked;
mod mapping;
mod relay;
mod sealing;
mod sent_ids;
mod shutdown;
mod store;
mod systemd;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use device::PresageDevice;
use identities::KnownIdentities;
use pane_protocol::device::DeviceError;
use pane_protocol::messages::SOCKET_FILE;
use presage::Manager;
use relay::{Keying, Opener, RelayConfig, RelayError};
use sealing::StateKeys;
use shutdown::Shutdown;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread::JoinHandle;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::broadcast;

/// Log filter when `RUST_LOG` is not set: the gateway's own news, presage's warnings.
const DEFAULT_LOG: &str = "warn,pane_signal=info,pane_protocol=info";

/// The presage thread's stack. presage's receive future is large: a debug build overflowed
/// the default 2 MiB on its first message. 32 MiB leaves room in debug and release alike
/// (only what is touched is ever mapped).
const PRESAGE_STACK_BYTES: usize = 32 * 1024 * 1024;

/// pane-agent's Signal gateway (a presage linked device).
///
/// The store passphrase is read from PANE_SIGNAL_PASSPHRASE or from the systemd credential
/// `signal-passphrase` ($CREDENTIALS_DIRECTORY), never from the command line. Without
/// either, the installation is sealed: the core hands the passphrase over on its socket
/// once the owner has unsealed it (`pane-agent unseal`).
#[derive(Debug, Parser)]
#[command(name = "pane-signal", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Link as a secondary device of a Signal account (shows a QR code to scan).
    Link(LinkArgs),
    /// Run the gateway: relay messages between Signal and the core until SIGTERM/SIGINT.
    Run(RunArgs),
}

/// Arguments of `pane-signal link`.
#[derive(Debug, clap::Args)]
struct LinkArgs {
    /// The name the phone shows for this linked device.
    #[arg(long, default_value = "pane-agent")]
    device_name: String,
    /// Replace an existing registration (the old link stops working).
    #[arg(long, visible_alias = "replace")]
    force: bool,
    #[command(flatten)]
    data: DataDirArg,
    #[command(flatten)]
    config: ConfigArg,
}

/// Arguments of `pane-signal run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    data: DataDirArg,
    #[command(flatten)]
    config: ConfigArg,
}

/// `--config FILE`: the core's configuration, for `[network] proxy` (egress.rs).
#[derive(Debug, Clone, clap::Args)]
struct ConfigArg {
    /// The core's config file, if it runs with `--config` (default: `<data-dir>/pane.toml` if
    /// it exists, else the built-in defaults, as the core finds it). Only `[network] proxy`
    /// is read: with it set, every connection to Signal goes through that proxy.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `--data-dir DIR`, defaulting to `$PANE_DATA_DIR`, else `~/.pane`: the same data dir the
/// core finds (its own `DataDirArg` in `src/cli/mod.rs`, which this copies; the gateway no
/// longer depends on the core crate, and the rule is three lines).
#[derive(Debug, Clone, clap::Args)]
struct DataDirArg {
    /// The data directory (the core's: the gateway's state is in its `signal/`).
    #[arg(long, env = "PANE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

impl DataDirArg {
    /// The directory to use.
    fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        let home = std::env::var_os("HOME")
            .ok_or_else(|| anyhow!("no --data-dir, PANE_DATA_DIR or HOME to find the data dir"))?;
        Ok(PathBuf::from(home).join(".pane"))
    }
}

/// No core dump, and no other process of the same uid reading this one's memory through
/// /proc (`PR_SET_DUMPABLE` 0, core size limit 0): once the core hands over the store's
/// passphrase (a sealed installation), it and the Signal keys are in this process's memory.
fn forbid_core_dumps() -> std::io::Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on this process with valid arguments.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn main() -> ExitCode {
    let dumps_off = forbid_core_dumps();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = dumps_off {
        tracing::warn!(error = %e, "cannot turn core dumps off");
    }
    match run_command(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pane-signal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(command: Command) -> anyhow::Result<()> {
    let (data_dir, config) = match &command {
        Command::Link(args) => (args.data.resolve()?, args.config.config.clone()),
        Command::Run(args) => (args.data.resolve()?, args.config.config.clone()),
    };
    // Before any thread exists, as both change the environment: the proxy variables for
    // libsignal-service's client (egress.rs), and the passphrase, which reading removes.
    let proxy = egress::route(&data_dir, config.as_deref())?;
    match &proxy {
        Some(p) => tracing::info!(
            proxy = %p,
            "Signal traffic goes through [network] proxy, on a circuit of its own"
        ),
        None => tracing::info!(
            "no [network] proxy: Signal traffic leaves directly (docs/signal-gateway.md, \"Through Tor\")"
        ),
    }
    let proxy = proxy.map(|p| p.to_string());
    let passphrase = store::read_passphrase()?;
    match command {
        Command::Link(args) => {
            join(on_presage_thread(move || async move {
                let passphrase = match passphrase {
                    Some(own) => own,
                    // A sealed installation: from the running, unsealed core.
                    None => link::key_from_core(&data_dir.join(SOCKET_FILE)).await?,
                };
                link::link(&data_dir, &passphrase, args.device_name, args.force).await
            })?)
        }
        Command::Run(_) => {
            let keying = match passphrase {
                Some(own) => Keying::Own(own),
                None => Keying::FromCore,
            };
            let (notify, _) = broadcast::channel::<()>(1);
            let shutdown = Shutdown::new(notify.subscribe());
            let presage = on_presage_thread(move || gateway(data_dir, proxy, keying, shutdown))?;
            wait_for_signals(presage, notify)
        }
    }
}

/// Starts `make()`'s future on a new thread with a current-thread runtime and a `LocalSet`.
fn on_presage_thread<F, Fut>(make: F) -> anyhow::Result<JoinHandle<anyhow::Result<()>>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + 'static,
{
    std::thread::Builder::new()
        .name("presage".into())
        .stack_size(PRESAGE_STACK_BYTES)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the presage runtime")?;
            tokio::task::LocalSet::new().block_on(&runtime, make())
        })
        .context("cannot start the presage thread")
}

fn join(thread: JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    thread
        .join()
        .map_err(|_| anyhow!("the presage thread panicked"))?
}

/// Waits for the gateway thread; on SIGTERM or SIGINT tells the relay to stop (by dropping
/// the shutdown sender) and waits again. A second signal stops at once.
fn wait_for_signals(
    presage: JoinHandle<anyhow::Result<()>>,
    notify: broadcast::Sender<()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    let result = runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let mut done = tokio::task::spawn_blocking(move || join(presage));
        let ended = |r: Result<anyhow::Result<()>, tokio::task::JoinError>| {
            r.map_err(|e| anyhow!("the presage thread was lost: {e}"))?
        };
        tokio::select! {
            r = &mut done => return ended(r),
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
        drop(notify);
        tokio::select! {
            r = &mut done => ended(r),
            _ = term.recv() => bail!("second signal: stopped without waiting for the relay"),
            _ = int.recv() => bail!("second signal: stopped without waiting for the relay"),
        }
    });
    // Do not wait for the presage thread if a second signal cut it short.
    runtime.shutdown_background();
    result
}

/// `pane-signal run` on the presage thread: runs the relay, which opens the store with the
/// passphrase (at once, or once the core hands it over).
async fn gateway(
    data_dir: PathBuf,
    proxy: Option<String>,
    keying: Keying,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let build = health::build();
    tracing::info!(
        version = %build.version,
        presage = env!("PANE_PRESAGE_REV"),
        libsignal_service = env!("PANE_LIBSIGNAL_SERVICE_REV"),
        capabilities = %build.capabilities.join(","),
        "pane-signal"
    );
    let dir = store::ensure_signal_dir(&data_dir)?;
    let config = RelayConfig {
        socket: data_dir.join(SOCKET_FILE),
        state_dir: dir.clone(),
        proxy,
    };
    let mut opener = PresageOpener {
        data_dir,
        dir,
        ready: false,
    };
    if matches!(keying, Keying::FromCore) {
        // Waiting for the core's key is what a sealed gateway is there to do: ready now.
        opener.ready();
    }
    match relay::run(opener, keying, config, shutdown).await {
        Ok(()) => Ok(()),
        Err(RelayError::Device(DeviceError::Unlinked(why))) => bail!(
            "Signal no longer accepts this device ({why}): link it again with \
             `pane-signal link --replace`"
        ),
        Err(RelayError::Open(e)) => Err(e),
        Err(e) => Err(e).context("the relay stopped"),
    }
}

/// Opens the presage store and loads the registration, each time the relay has the
/// passphrase.
struct PresageOpener {
    data_dir: PathBuf,
    dir: PathBuf,
    /// systemd has been told the gateway is ready.
    ready: bool,
}

impl PresageOpener {
    /// systemd (Type=notify): ready; the watchdog is fed from this same thread from now on,
    /// so a stuck relay thread stops the pings and systemd restarts it.
    fn ready(&mut self) {
        if std::mem::replace(&mut self.ready, true) {
            return;
        }
        systemd::notify("READY=1");
        if let Some(every) = systemd::watchdog_interval() {
            tokio::task::spawn_local(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    systemd::notify("WATCHDOG=1");
                }
            });
        }
    }

    async fn load(&self, passphrase: &str, keys: &StateKeys) -> anyhow::Result<PresageDevice> {
        let store = store::open(&store::store_path(&self.data_dir), passphrase, false).await?;
        // Never relink or clear anything here: a registration that does not load is reported.
        let manager = match Manager::load_registered(store).await {
            Ok(manager) => manager,
            Err(presage::Error::NotYetRegisteredError) => {
                bail!("this gateway is not linked yet: run `pane-signal link`")
            }
            Err(e) => {
                return Err(anyhow!("{e}")).context(
                    "cannot load the Signal registration (nothing was changed; if the device \
                     must be linked again, run `pane-signal link --replace`)",
                )
            }
        };
        let data = manager.registration_data();
        tracing::info!(
            aci = %data.service_ids.aci().service_id_string(),
            device = data.device_id.unwrap_or_default(),
            "loaded the Signal registration"
        );
        let identities =
            KnownIdentities::load(&self.dir.join("known-identities"), keys.identities.clone())
                .context("cannot read the known identity keys")?;
        Ok(PresageDevice::new(manager, identities))
    }
}

impl Opener for PresageOpener {
    type Device = PresageDevice;

    async fn open(
        &mut self,
        passphrase: &str,
        keys: &StateKeys,
    ) -> Result<PresageDevice, RelayError> {
        let device = self
            .load(passphrase, keys)
            .await
            .map_err(RelayError::Open)?;
        self.ready();
        Ok(device)
    }
}
