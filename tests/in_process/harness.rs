//! One agent core in process: a real sled store in a temporary dir, the memory providers,
//! and the gate that envelopes signed with the agent's secret are submitted to directly.

use chrono::{DateTime, Utc};
use pane_agent::assembly::{Assembly, Core, Providers};
use pane_agent::auth::{Envelope, Secret, SecretSet};
use pane_agent::config::Config;
use pane_agent::gate::GateHandle;
use pane_agent::origin::Channel;
use pane_agent::providers::configured::{AnyAlias, AnyCard};
use pane_agent::providers::memory::{MemoryAliases, MemoryCards};
use pane_agent::redact::Redactor;
use pane_agent::store::Store;
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The secret every envelope is signed with.
const SECRET: &str = "in-process-test-secret-0123456789abcdef";

/// A running core and the providers it calls.
pub struct World {
    core: Core,
    pub aliases: MemoryAliases,
    pub cards: MemoryCards,
    signer: Signer,
    _dir: tempfile::TempDir,
}

/// Signs envelopes with strictly increasing timestamps: the same command sent twice within a
/// millisecond is two envelopes, not a replay.
#[derive(Clone)]
struct Signer(std::sync::Arc<Mutex<DateTime<Utc>>>);

impl Signer {
    fn sign(&self, cmd: &str, args: Value) -> Vec<u8> {
        let mut last = self.0.lock().unwrap();
        let ts = Utc::now().max(*last + chrono::Duration::milliseconds(1));
        *last = ts;
        let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
        Envelope::sign(&Secret::new(SECRET), ts, cmd, args)
            .to_json()
            .into_bytes()
    }
}

/// `config` with rate limits out of the way of tests that send many commands.
pub fn config() -> Config {
    let mut config = Config::default();
    for limit in [
        &mut config.rate_limits.read,
        &mut config.rate_limits.write,
        &mut config.rate_limits.external,
        &mut config.rate_limits.envelopes,
    ] {
        limit.max = 1_000_000;
    }
    config
}

impl World {
    /// A core with the default config (rate limits lifted) over fresh memory providers.
    pub fn start() -> World {
        World::with(config())
    }

    /// A core with `config` over fresh memory providers.
    pub fn with(config: Config) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let aliases = MemoryAliases::new();
        let cards = MemoryCards::new();
        let core = Assembly {
            store,
            config,
            secrets: SecretSet {
                current: Secret::new(SECRET),
                previous: Vec::new(),
            },
            redactor: Redactor::new(vec![SECRET.to_string()]),
            mcp_key: None,
            seal: None,
            data_dir: dir.path().to_path_buf(),
            providers: Providers::only(
                AnyAlias::Memory(aliases.clone()),
                AnyCard::Memory(cards.clone()),
            ),
        }
        .start();
        World {
            core,
            aliases,
            cards,
            signer: Signer(std::sync::Arc::new(Mutex::new(DateTime::<Utc>::MIN_UTC))),
            _dir: dir,
        }
    }

    /// The gate.
    pub fn gate(&self) -> GateHandle {
        self.core.gate.clone()
    }

    /// Signs `cmd` with `args` and waits for the gate's reply, as JSON.
    pub async fn send(&self, cmd: &str, args: Value) -> Value {
        let bytes = self.signer.sign(cmd, args);
        self.core
            .gate
            .submit(bytes, Channel::Socket)
            .await
            .to_json()
    }

    /// Enrolls the context `name` for `https://{name}.example` and asserts it was enrolled.
    pub async fn enroll(&self, name: &str) -> Value {
        let url = format!("https://{name}.example");
        let r = self
            .send("enroll", serde_json::json!({"url": url, "alias": name}))
            .await;
        assert_eq!(r["status"], "enrolled", "{r}");
        r
    }

    /// Signs `cmd` now and sends it from a task of its own: the caller goes on while the
    /// gate (or a job behind it) works.
    pub fn spawn_send(&self, cmd: &str, args: Value) -> JoinHandle<Value> {
        let bytes = self.signer.sign(cmd, args);
        let gate = self.gate();
        tokio::spawn(async move { gate.submit(bytes, Channel::Socket).await.to_json() })
    }

    /// The events of the audit log, in order.
    pub async fn audit_events(&self) -> Vec<String> {
        let r = self.send("audit", serde_json::json!({"limit": 1000})).await;
        r["entries"]
            .as_array()
            .unwrap_or_else(|| panic!("audit failed: {r}"))
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Stops the gate (its jobs get their moment) and flushes the store.
    pub async fn stop(self) {
        self.core.stop().await.unwrap();
    }
}

/// Awaits `event`, failing the test after 10 s of real time (only where the clock runs: a
/// paused clock would reach the limit at the first idle moment).
pub async fn within<T>(what: &str, event: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), event)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Asserts a reply is an error of `kind`.
pub fn assert_error(reply: &Value, kind: &str) {
    assert_eq!(reply["kind"], kind, "expected a {kind} error: {reply}");
}

/// While it lives, a paused clock moves only when the test moves it
/// (`tokio::time::advance`).
///
/// On a paused clock tokio moves time on by itself whenever every task waits, to the next
/// timer. Here tasks wait on something outside the runtime at every store flush (sled's
/// flusher is a thread of its own), so the clock would jump at moments no test chooses, past a
/// job's deadline or a cool-down. A blocking task that is running keeps tokio from doing that
/// (`tokio::time::pause`, "Preventing auto-advance"): this one runs, waiting for nothing but
/// the guard's drop.
pub struct ManualClock(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

/// Stops the paused clock from moving by itself until the guard is dropped.
pub fn manual_clock() -> ManualClock {
    let (guard, dropped) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        // Returns when the guard (the only sender) is dropped.
        let _ = dropped.recv();
    });
    ManualClock(guard)
}
