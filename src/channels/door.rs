//! The door the channels reach the agent through: while the agent is unsealed, the gate;
//! while it is sealed, nothing but an unseal.
//!
//! The keeper of the seal (`cli::run`) owns the other end: it publishes the gate when it has
//! unsealed the store and withdraws it when it seals again, and it answers the requests that
//! only a process holding the keys can answer for a local client (the control socket's peer
//! of the agent's own uid): signing a command, handing `pane-agent mcp` its key. Each
//! request is a message with a oneshot for the answer (an actor, as `GateHandle` is).

use crate::gate::GateHandle;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use zeroize::Zeroizing;

/// What the keeper answers an unseal with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsealed {
    /// `unsealed`, or `already_unsealed`.
    pub status: &'static str,
    /// The credential files taken into the sealed store (and removed) by this unseal.
    pub imported: Vec<String>,
    /// Wrong passphrases tried since the last unseal.
    pub failed_attempts: u64,
}

/// Why an unseal was refused. Its text is the whole answer: nothing about the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsealRefused {
    /// The passphrase opened nothing.
    #[error("wrong passphrase: nothing was unsealed (the next attempt is accepted in {retry_after_secs} s)")]
    WrongPassphrase {
        /// Seconds until another attempt is accepted.
        retry_after_secs: u64,
    },
    /// Too soon after a wrong passphrase.
    #[error("too soon after a wrong passphrase: try again in {retry_after_secs} s")]
    TooSoon {
        /// Seconds until another attempt is accepted.
        retry_after_secs: u64,
    },
    /// The installation is not sealed (made with `--unsealed`).
    #[error("this installation is not sealed at rest: nothing to unseal")]
    NotSealed,
    /// The key opened, but the agent could not start on it (the reason is in its log).
    #[error("unsealed, but the agent could not start: {0}")]
    Failed(String),
    /// The agent is stopping.
    #[error("the agent is shutting down")]
    Gone,
}

impl UnsealRefused {
    /// The error's kind in a JSON reply.
    pub fn kind(&self) -> &'static str {
        match self {
            UnsealRefused::WrongPassphrase { .. } => "wrong_passphrase",
            UnsealRefused::TooSoon { .. } => "rate_limited",
            UnsealRefused::NotSealed => "not_sealed",
            UnsealRefused::Failed(_) => "internal",
            UnsealRefused::Gone => "unavailable",
        }
    }

    /// The reply's JSON.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({"error": self.to_string(), "kind": self.kind()});
        if let UnsealRefused::WrongPassphrase { retry_after_secs }
        | UnsealRefused::TooSoon { retry_after_secs } = self
        {
            v["retry_after_secs"] = (*retry_after_secs).into();
        }
        v
    }
}

/// A request only the local console may make (a peer of the agent's own uid on the control
/// socket), written as one JSON object with a `local` key.
#[derive(Clone, Deserialize)]
#[serde(tag = "local", rename_all = "snake_case", deny_unknown_fields)]
pub enum Local {
    /// Unseal with this passphrase.
    Unseal {
        /// The passphrase (never logged; zeroed when the request is dropped).
        passphrase: String,
    },
    /// Sign this command with the command secret (which the console cannot read on a sealed
    /// installation) and return the envelope.
    Sign {
        /// The command.
        cmd: String,
        /// Its arguments.
        #[serde(default)]
        args: serde_json::Map<String, Value>,
    },
    /// The MCP key, for `pane-agent mcp` (which signs with it, as before).
    McpKey,
    /// The command secret, for `signer-qr` and `rotate-secret`.
    CommandSecret,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Local({})", self.name())
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Local::Unseal { passphrase } = self {
            zeroize::Zeroize::zeroize(passphrase);
        }
    }
}

impl Local {
    /// The request's name, for the log (no argument).
    pub fn name(&self) -> &'static str {
        match self {
            Local::Unseal { .. } => "unseal",
            Local::Sign { .. } => "sign",
            Local::McpKey => "mcp_key",
            Local::CommandSecret => "command_secret",
        }
    }
}

/// The keeper's inbox.
pub enum DoorRequest {
    /// Unseal (from the console or the onion endpoint).
    Unseal {
        /// The passphrase.
        passphrase: Zeroizing<String>,
        /// From the console (a peer of the agent's own uid), which could read the key file
        /// and guess offline anyway: the delay after wrong passphrases, which slows guessing
        /// over the network, does not lock the owner out there.
        from_console: bool,
        /// The answer.
        reply: oneshot::Sender<Result<Unsealed, UnsealRefused>>,
    },
    /// A console request other than unseal; the answer is the reply's JSON.
    Local {
        /// What.
        request: Local,
        /// The answer.
        reply: oneshot::Sender<Value>,
    },
}

/// The channels' side of the door. Clones share it.
#[derive(Clone)]
pub struct Door {
    gate: watch::Receiver<Option<GateHandle>>,
    keeper: mpsc::Sender<DoorRequest>,
}

/// The keeper's side: publishes the gate, takes the requests.
pub struct Keeper {
    /// Sets the gate (Some while unsealed).
    pub gate: watch::Sender<Option<GateHandle>>,
    /// The requests.
    pub requests: mpsc::Receiver<DoorRequest>,
}

impl Door {
    /// A door and its keeper's side, sealed (no gate yet).
    pub fn new() -> (Door, Keeper) {
        let (gate_tx, gate_rx) = watch::channel(None);
        let (tx, rx) = mpsc::channel(64);
        (
            Door {
                gate: gate_rx,
                keeper: tx,
            },
            Keeper {
                gate: gate_tx,
                requests: rx,
            },
        )
    }

    /// The gate, while the agent is unsealed.
    pub fn gate(&self) -> Option<GateHandle> {
        self.gate.borrow().clone()
    }

    /// True while sealed.
    pub fn is_sealed(&self) -> bool {
        self.gate.borrow().is_none()
    }

    /// Asks the keeper to unseal with `passphrase`, from the network (the onion endpoint).
    pub async fn unseal(&self, passphrase: Zeroizing<String>) -> Result<Unsealed, UnsealRefused> {
        self.unseal_from(passphrase, false).await
    }

    async fn unseal_from(
        &self,
        passphrase: Zeroizing<String>,
        from_console: bool,
    ) -> Result<Unsealed, UnsealRefused> {
        let (reply, rx) = oneshot::channel();
        self.keeper
            .send(DoorRequest::Unseal {
                passphrase,
                from_console,
                reply,
            })
            .await
            .map_err(|_| UnsealRefused::Gone)?;
        rx.await.unwrap_or(Err(UnsealRefused::Gone))
    }

    /// Asks the keeper a console request; its reply's JSON.
    pub async fn local(&self, request: Local) -> Value {
        if let Local::Unseal { passphrase } = &request {
            let passphrase = Zeroizing::new(passphrase.clone());
            drop(request);
            return match self.unseal_from(passphrase, true).await {
                Ok(u) => serde_json::to_value(u).unwrap_or(Value::Null),
                Err(e) => e.to_json(),
            };
        }
        let (reply, rx) = oneshot::channel();
        let gone =
            serde_json::json!({"error": "the agent is shutting down", "kind": "unavailable"});
        if self
            .keeper
            .send(DoorRequest::Local { request, reply })
            .await
            .is_err()
        {
            return gone;
        }
        rx.await.unwrap_or(gone)
    }
}

/// The reply to anything but an unseal while sealed.
pub fn sealed_reply() -> Value {
    serde_json::json!({
        "error": "sealed: the agent holds no key until its owner unseals it (`pane-agent unseal`, or Unseal on the signer page)",
        "kind": "sealed",
    })
}
