//! What `pane-agent demo` sets up and takes down: a data dir made by `pane-agent init`, the
//! simulated SimpleLogin and Privacy.com ([`crate::sim::providers`], the servers the tests
//! use), a real `pane-agent run` pointed at them, and the owner's phone on its gateway socket
//! ([`crate::sim::phone`]). Everything is on loopback and in a temporary dir; dropping the
//! [`World`] stops the agent and the servers and removes the dir.

use crate::auth::{Envelope, Secret};
use crate::sim::phone::{Phone, Shown};
use crate::sim::providers::{self, MockServer};
use anyhow::{bail, Context};
use serde_json::{Map, Value};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The owner's Signal ACI in the demo (any UUID: the phone is simulated).
pub const OWNER: &str = "0d3e5f6a-7b8c-4d9e-8f01-2a3b4c5d6e7f";

/// How long the agent may take to answer on its socket after it was started.
const START_WITHIN: Duration = Duration::from_secs(20);

/// The agent, its simulated providers and the owner's phone. Dropped, in the order of its
/// fields: the phone hangs up, the agent stops, the servers stop, the data dir is removed.
pub struct World {
    /// The owner's phone.
    pub phone: Phone,
    agent: Agent,
    /// The simulated SimpleLogin.
    pub aliases: MockServer,
    /// The simulated Privacy.com.
    pub cards: MockServer,
    /// The `pane-agent` binary the demo runs (itself).
    pub exe: PathBuf,
    secret: Secret,
    /// The data dir.
    pub dir: DemoDir,
}

/// The demo's data dir, removed when dropped.
pub struct DemoDir(PathBuf);

impl std::ops::Deref for DemoDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.0) {
            Ok(()) => {}
            // Init never made it: nothing to remove.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("demo: could not remove {}: {e}", self.0.display()),
        }
    }
}

/// The running `pane-agent run`, stopped (SIGTERM, then SIGKILL after a while) when dropped.
struct Agent(Child);

impl Agent {
    /// SIGTERM, then the exit; SIGKILL when it has not stopped within `STOP_WITHIN`.
    fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(status) = self.0.try_wait()? {
            return Ok(status);
        }
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: a signal to the child this process started and has not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_WITHIN;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.0.kill()?;
                return Ok(self.0.wait()?);
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("demo: could not stop the agent: {e}");
        }
    }
}

/// How long a stopping agent is given before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// The interval of the demo's bounded waits (for the socket, for the agent to exit).
const POLL: Duration = Duration::from_millis(20);

/// The agent's config: the embedded defaults with the simulated providers' addresses, the
/// demo's owner, and no schedule (the story runs its sweep itself).
fn config(aliases: &MockServer, cards: &MockServer) -> String {
    crate::config::TEMPLATE
        .replace("provider = \"addy\"", "provider = \"simplelogin\"")
        .replace(
            "simplelogin_base_url = \"\"",
            &format!("simplelogin_base_url = \"{}\"", aliases.base),
        )
        .replace(
            "privacy_base_url = \"\"",
            &format!("privacy_base_url = \"{}\"", cards.base),
        )
        .replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
        .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\"")
        .replace("weekly_digest = \"0 0 9 * * Mon\"", "weekly_digest = \"\"")
        .replace(
            "secret_rotation_reminder = \"0 0 9 1 1,4,7,10 *\"",
            "secret_rotation_reminder = \"\"",
        )
}

/// A `pane-agent` command that sees nothing of the caller's environment but `PATH`, `HOME`
/// and (when `verbose`) `RUST_LOG`: no secret, key or base URL of a real installation reaches
/// the demo's agent.
fn pane(exe: &Path, dir: &Path, verbose: bool) -> Command {
    let mut c = Command::new(exe);
    c.env_clear();
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            c.env(var, v);
        }
    }
    if verbose {
        if let Some(v) = std::env::var_os("RUST_LOG") {
            c.env("RUST_LOG", v);
        }
    }
    c.env("PANE_DATA_DIR", dir);
    c
}

/// A random hex string of `n` bytes.
fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

impl World {
    /// Makes the data dir with `pane-agent init --unsealed`, starts the simulated providers
    /// and the agent, and connects the phone; `show` prints what the phone shows. With
    /// `verbose` the agent's log goes to standard error, else to `agent.log` in the data dir.
    pub fn start(
        verbose: bool,
        show: impl FnMut(&Shown) + Send + 'static,
    ) -> anyhow::Result<World> {
        let exe = std::env::current_exe().context("cannot find the pane-agent binary")?;
        let dir = DemoDir(std::env::temp_dir().join(format!("pane-demo-{}", random_hex(6)?)));
        let init = pane(&exe, &dir, false)
            .args(["init", "--unsealed"])
            .stdin(Stdio::null())
            .output()
            .context("cannot run pane-agent init")?;
        if !init.status.success() {
            bail!(
                "pane-agent init failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
        }
        let text = std::fs::read_to_string(dir.join("agent.secret"))
            .context("init wrote no agent.secret")?;
        let secret = Secret::new(&text);
        let aliases = providers::simplelogin(&format!("sim-simplelogin-{}", random_hex(8)?))
            .context("cannot start the simulated SimpleLogin")?;
        let cards = providers::privacy(&format!("sim-privacy-{}", random_hex(8)?))
            .context("cannot start the simulated Privacy.com")?;
        // pane.toml exists (mode 600, from init): replaced in place, so its mode stays.
        std::fs::write(dir.join("pane.toml"), config(&aliases, &cards))?;
        let log = if verbose {
            Stdio::inherit()
        } else {
            Stdio::from(std::fs::File::create(dir.join("agent.log"))?)
        };
        let mut run = pane(&exe, &dir, verbose);
        run.arg("run").stdin(Stdio::null()).stdout(Stdio::null());
        run.stderr(log);
        for (k, v) in aliases.env().into_iter().chain(cards.env()) {
            if k.ends_with("_API_KEY") {
                run.env(k, v);
            }
        }
        let mut agent = Agent(run.spawn().context("cannot start pane-agent run")?);
        wait_ready(&mut agent, &dir)?;
        let phone = Phone::connect(&dir.join("gateway.sock"), OWNER, show)
            .context("cannot connect the phone to the agent's gateway socket")?;
        Ok(World {
            phone,
            agent,
            aliases,
            cards,
            exe,
            secret,
            dir,
        })
    }

    /// Stops the agent and says how it ended (the rest goes when the world is dropped).
    pub fn stop_agent(&mut self) -> anyhow::Result<()> {
        let status = self.agent.stop()?;
        if !status.success() {
            bail!(
                "the agent did not stop cleanly ({status}); its log: {}",
                self.log_hint()
            );
        }
        Ok(())
    }

    /// Where the agent's log is.
    pub fn log_hint(&self) -> String {
        format!("{}", self.dir.join("agent.log").display())
    }

    /// An envelope for `cmd` with `args`, signed now with the agent's secret, as the phone's
    /// signer makes it.
    pub fn sign(&self, cmd: &str, args: Value) -> String {
        let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
        Envelope::sign(&self.secret, chrono::Utc::now(), cmd, args).to_json()
    }
}

/// Waits until the agent answers on its control socket and its gateway socket is there.
fn wait_ready(agent: &mut Agent, dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_WITHIN;
    loop {
        if UnixStream::connect(dir.join("agent.sock")).is_ok() && dir.join("gateway.sock").exists()
        {
            return Ok(());
        }
        if let Some(status) = agent.0.try_wait()? {
            bail!(
                "the agent exited at start ({status}); its log: {}",
                dir.join("agent.log").display()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "the agent did not answer within {START_WITHIN:?}; its log: {}",
                dir.join("agent.log").display()
            );
        }
        std::thread::sleep(POLL);
    }
}
