//! Shared harness for the integration tests: a real `pane-agent` binary on a real data dir,
//! driven through its control socket (and HTTP endpoint when configured).
#![allow(dead_code)]

use pane_agent::auth::{Envelope, Secret};
use serde_json::{Map, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pane-agent")
}

/// A `pane-agent` command with a clean environment (no secrets leaking in from the host).
pub fn cmd(data_dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", data_dir.parent().unwrap_or(data_dir))
        .env("PANE_DATA_DIR", data_dir)
        .env("RUST_LOG", "debug");
    c
}

/// Runs the CLI against `data_dir` with `input` as one line on stdin.
pub fn stdin_cmd(data_dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = cmd(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{input}").unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// A data dir initialised by `pane-agent init`, and a daemon on it.
pub struct Agent {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
}

/// The unseal passphrase of the sealed installations the tests make.
pub const PASSPHRASE: &str = "correct horse battery staple 42";

/// Where a sealed test installation keeps a copy of its command secret: the owner's phone
/// holds it (outside the data dir), and so does the test, to sign as the phone does.
fn phone_copy(dir: &Path) -> PathBuf {
    dir.parent().unwrap_or(dir).join("phone.secret")
}

impl Agent {
    /// Runs `init --unsealed` in a fresh temporary dir (the daemon is not started).
    pub fn init() -> Agent {
        Agent::init_with(&["init", "--unsealed"], "")
    }

    /// `init` of a sealed installation with [`PASSPHRASE`] (a cheap KDF: the tests unseal
    /// often); the daemon is not started.
    pub fn init_sealed() -> Agent {
        Agent::init_with(&["init", "--kdf-ms", "100"], PASSPHRASE)
    }

    fn init_with(args: &[&str], input: &str) -> Agent {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pane");
        let out = stdin_cmd(&dir, args, input);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = tmp.path().join("agent.log");
        Agent {
            tmp,
            dir,
            child: None,
            log,
            env: Vec::new(),
        }
    }

    /// `init_sealed`, `run`, `unseal` (which keeps a copy of the command secret for
    /// [`Agent::secret`]).
    pub fn start_sealed() -> Agent {
        let mut a = Agent::init_sealed();
        a.spawn();
        let r = a.unseal(PASSPHRASE);
        assert_eq!(r["status"], "unsealed", "{r}");
        a
    }

    /// `pane-agent unseal` with `passphrase` on stdin; its reply. After a first unseal the
    /// command secret is copied to where the test's "phone" keeps it.
    pub fn unseal(&self, passphrase: &str) -> Value {
        let out = stdin_cmd(&self.dir, &["unseal"], passphrase);
        let reply: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("unseal: {}", String::from_utf8_lossy(&out.stderr)));
        if reply["status"] == "unsealed" && !phone_copy(&self.dir).exists() {
            let r = self.raw(br#"{"local": "command_secret"}"#);
            let secret = r["secret"].as_str().unwrap_or_else(|| panic!("{r}"));
            std::fs::write(phone_copy(&self.dir), secret).unwrap();
        }
        reply
    }

    /// The store, opened as the daemon opens it (with the data key, unwrapped with
    /// [`PASSPHRASE`], on a sealed installation); the daemon must be stopped.
    pub fn open_store(&self) -> pane_agent::store::Store {
        let disk = pane_agent::store::Disk::open(&self.dir.join("store")).unwrap();
        let sealer = pane_agent::seal::KeyFile::load(&self.dir)
            .unwrap()
            .map(|file| {
                let (key, _) = file.unwrap_key(PASSPHRASE).unwrap();
                std::sync::Arc::new(pane_agent::store::Sealer::new(&key).unwrap())
            });
        disk.store(sealer).unwrap()
    }

    /// True when the installation is sealed at rest.
    pub fn is_sealed(&self) -> bool {
        self.dir.join("seal.json").exists()
    }

    /// `init`, then `run`.
    pub fn start() -> Agent {
        let mut a = Agent::init();
        a.spawn();
        a
    }

    /// Appends TOML to the data dir's pane.toml.
    pub fn configure(&self, toml: &str) {
        let path = self.dir.join("pane.toml");
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        writeln!(f, "{toml}").unwrap();
    }

    /// Replaces pane.toml entirely.
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.dir.join("pane.toml"), toml).unwrap();
    }

    /// The current secret from agent.secret (on a sealed installation, the copy taken at
    /// its first unseal).
    pub fn secret(&self) -> Secret {
        let path = if self.is_sealed() {
            phone_copy(&self.dir)
        } else {
            self.dir.join("agent.secret")
        };
        Secret::new(&std::fs::read_to_string(path).unwrap())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    /// Starts `pane-agent run` and waits until the socket answers.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut c = cmd(&self.dir);
        c.arg("run").stdout(Stdio::null()).stderr(log);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let child = c.spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.socket().exists() && UnixStream::connect(self.socket()).is_ok() {
                break;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("agent exited early ({status}): {}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "agent did not become ready: {}",
                self.logs()
            );
            // The poll interval of this bounded wait for the socket.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait; asserts a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "agent did not stop cleanly: {status}: {}",
                self.logs()
            );
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The daemon's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends raw bytes over the control socket and parses the reply.
    pub fn raw(&self, bytes: &[u8]) -> Value {
        raw_at(&self.socket(), bytes)
    }

    /// Signs `cmd` with `args` (a JSON object) now, with the agent's secret.
    pub fn envelope(&self, cmd: &str, args: Value) -> Envelope {
        let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
        Envelope::sign(&self.secret(), chrono::Utc::now(), cmd, args)
    }

    /// Signs and sends.
    pub fn send(&self, cmd: &str, args: Value) -> Value {
        self.raw(self.envelope(cmd, args).to_json().as_bytes())
    }

    /// Runs the CLI with extra arguments against this data dir.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut c = cmd(&self.dir);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.args(args).output().unwrap()
    }

    /// Every audit entry (asks the daemon; the limit is the maximum).
    pub fn audit(&self) -> Vec<Value> {
        let r = self.send("audit", serde_json::json!({"limit": 1000}));
        r["entries"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("audit failed: {r}"))
    }

    /// Events of the audit entries, in order.
    pub fn audit_events(&self) -> Vec<String> {
        self.audit()
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends raw bytes over the control socket at `socket` and parses the reply (from another
/// thread than the one holding the [`Agent`], for a command that waits).
pub fn raw_at(socket: &Path, bytes: &[u8]) -> Value {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The agent may answer (too large) before reading everything; a broken pipe is fine.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("reply {out:?} is not JSON: {e}"))
}

/// Asserts that no file under the data dir's store holds `needle` (`what` names it in the
/// failure): replies and `audit` are redacted, so a leak has to be looked for in the files.
#[allow(dead_code)]
pub fn assert_not_in_store(data_dir: &Path, needle: &str, what: &str) {
    let mut files = vec![data_dir.join("store")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{what} is stored in {}",
                path.display()
            );
        }
    }
}

/// Points the agent at local addy.io and Privacy.com servers and a Dovecot: their keys, base
/// URLs and the IMAP password, in the daemon's environment.
pub fn use_local_services(
    agent: &mut Agent,
    aliases: &providers::MockServer,
    cards: &providers::MockServer,
    imap: &dovecot::Dovecot,
) {
    for (k, v) in [
        ("ADDY_API_KEY", aliases.key()),
        ("ADDY_BASE_URL", aliases.base.clone()),
        ("PRIVACY_API_KEY", cards.key()),
        ("PRIVACY_BASE_URL", cards.base.clone()),
        ("PANE_IMAP_PASSWORD", imap.password.clone()),
    ] {
        agent.env.push((k.into(), v));
    }
}

/// An initialised agent pointed at fresh local addy.io and Privacy.com servers (keys
/// `addy-test-key-0001`, `privacy-test-key-0001`), with `extra_env` and `config`, started.
pub fn agent_with_providers(
    extra_env: &[(&str, String)],
    config: &str,
) -> (Agent, providers::MockServer, providers::MockServer) {
    agent_with_providers_on(Agent::init(), extra_env, config)
}

/// [`agent_with_providers`] on a sealed installation, unsealed once started.
pub fn sealed_agent_with_providers(
    extra_env: &[(&str, String)],
    config: &str,
) -> (Agent, providers::MockServer, providers::MockServer) {
    let (agent, aliases, cards) = agent_with_providers_on(Agent::init_sealed(), extra_env, config);
    let r = agent.unseal(PASSPHRASE);
    assert_eq!(r["status"], "unsealed", "{r}");
    (agent, aliases, cards)
}

fn agent_with_providers_on(
    mut agent: Agent,
    extra_env: &[(&str, String)],
    config: &str,
) -> (Agent, providers::MockServer, providers::MockServer) {
    let aliases = providers::addy("addy-test-key-0001");
    let cards = providers::privacy("privacy-test-key-0001");
    for (k, v) in [
        ("ADDY_API_KEY", aliases.key()),
        ("ADDY_BASE_URL", aliases.base.clone()),
        ("PRIVACY_API_KEY", cards.key()),
        ("PRIVACY_BASE_URL", cards.base.clone()),
    ] {
        agent.env.push((k.into(), v));
    }
    for (k, v) in extra_env {
        agent.env.push((k.to_string(), v.clone()));
    }
    agent.write_config(config);
    agent.spawn();
    (agent, aliases, cards)
}

/// Waits until `mock` has received `n` requests whose line starts with `prefix`.
pub fn wait_for_requests(mock: &providers::MockServer, prefix: &str, n: usize) {
    wait_for(&format!("{n} request(s) {prefix}"), || {
        let seen = mock
            .requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count();
        (seen >= n).then_some(())
    });
}

/// How many requests `mock` has received whose line starts with `prefix`.
pub fn count_requests(mock: &providers::MockServer, prefix: &str) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.starts_with(prefix))
        .count()
}

/// `init` with `owner` as the Signal owner in the config, then `run`.
pub fn agent_with_owner(owner: &str) -> Agent {
    let mut agent = Agent::init();
    agent.write_config(
        &pane_agent::config::TEMPLATE.replace("owner = \"\"", &format!("owner = \"{owner}\"")),
    );
    agent.spawn();
    agent
}

/// A free loopback port for `[http] listen`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `POST /command` with `body` on the loopback HTTP endpoint at `port`; the reply's JSON.
pub fn http_post(port: u16, body: &[u8]) -> Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /command HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (_, json) = out.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(json).unwrap()
}

/// The config with every tier's rate limit out of the way (benches and load tests send far
/// more commands than the defaults allow).
pub fn unlimited_rates(config: &str) -> String {
    config
        .replace(
            "read = { max = 120, window_secs = 60 }",
            "read = { max = 1000000, window_secs = 1 }",
        )
        .replace(
            "write = { max = 30, window_secs = 60 }",
            "write = { max = 1000000, window_secs = 1 }",
        )
        .replace(
            "external = { max = 10, window_secs = 60 }",
            "external = { max = 1000000, window_secs = 1 }",
        )
        .replace(
            "envelopes = { max = 600, window_secs = 60 }",
            "envelopes = { max = 1000000, window_secs = 1 }",
        )
}

/// Asserts a reply is an error of `kind`.
#[track_caller]
pub fn assert_error(reply: &Value, kind: &str) {
    assert_eq!(
        reply["kind"].as_str(),
        Some(kind),
        "expected a {kind} error, got {reply}"
    );
    assert!(reply["error"].is_string(), "{reply}");
}
pub mod canary_world;
pub mod dovecot;
pub mod gateway;
pub mod hibp;
pub mod ntfy;
pub mod providers;
pub mod sealed;
pub mod socks;

/// Polls `check` every 50 ms until it gives a value, for work that finishes beside the
/// command that started it (a job); panics with `what` after 30 s.
#[allow(dead_code)]
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        // The poll interval of this bounded wait.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits ([`wait_for`]) until the audit log holds an entry of `event` whose detail passes
/// `detail`, and returns it.
#[allow(dead_code)]
pub fn wait_for_audit(agent: &Agent, event: &str, detail: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("a `{event}` audit entry"), || {
        agent
            .audit()
            .into_iter()
            .find(|e| e["event"] == event && detail(&e["detail"]))
    })
}

/// `config` with no scheduled job (sweep, digest, reminder): the test runs each itself.
#[allow(dead_code)]
pub fn quiet_schedules(config: &str) -> String {
    config
        .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\"")
        .replace("weekly_digest = \"0 0 9 * * Mon\"", "weekly_digest = \"\"")
        .replace(
            "secret_rotation_reminder = \"0 0 9 1 1,4,7,10 *\"",
            "secret_rotation_reminder = \"\"",
        )
}
