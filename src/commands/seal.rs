//! `seal`: the agent forgets its keys now. The data key and every credential held in memory
//! are dropped (and zeroed), the kernel keyring's copy is removed, the Signal gateway closes
//! its store, and from then the box reveals nothing until the owner unseals it again (from
//! the console, or the signer page on the onion endpoint). Like `lockdown`, it never needs
//! an approval and a lockdown does not stop it: forgetting keys only ever takes power away.

use super::{Args, Cmd, Fast, GateAction, Run, Spec};
use crate::policy::tools::Tier;
use crate::reply::{CommandError, Words};
use serde::Serialize;

/// `seal` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Seal;

/// What `seal` answers: what the agent is about to forget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sealing {
    /// `sealing`.
    pub status: &'static str,
    /// What is forgotten, in words.
    pub forgets: Vec<&'static str>,
    /// How to unseal again.
    pub unseal_with: &'static str,
}

impl Sealing {
    /// The answer of every `seal`.
    pub fn now() -> Sealing {
        Sealing {
            status: "sealing",
            forgets: vec![
                "the data key",
                "the command secret, the MCP key, the provider keys and the IMAP password",
                "the Signal store's passphrase (the gateway closes its store)",
                "the kernel keyring's copy (a restart needs the passphrase)",
            ],
            unseal_with: "`pane-agent unseal` at the console, or Unseal on the signer page",
        }
    }
}

impl Words for Sealing {
    fn words(&self, _cmd: &str) -> String {
        format!(
            "🔒 Sealing now. Forgetting: {}. Nothing more is answered until you unseal: {}.",
            self.forgets.join("; "),
            self.unseal_with
        )
    }
}

impl Cmd for Seal {
    const SPECS: &'static [Spec] = &[Spec::new(
        "seal",
        Tier::Write,
        false,
        &[],
        "forget every key now: nothing is readable until the owner unseals",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<Seal, CommandError> {
        Ok(Seal)
    }

    /// The gate holds the switch to the keeper of the seal.
    fn run(self, _fast: &Fast<'_>) -> Result<Run, CommandError> {
        Ok(Run::Gate(GateAction::Seal))
    }
}
