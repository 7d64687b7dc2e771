//! The `pane-agent` command line: one file per subcommand; `src/bin/pane-agent.rs` only
//! parses and dispatches.

pub mod check_incidents;
pub mod command;
pub mod demo;
pub mod doctor;
pub mod init;
pub mod mcp;
pub mod rotate_secret;
pub mod run;
pub mod seal_init;
pub mod send;
pub mod sign;
pub mod signer_qr;
pub mod unseal;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// pane-agent: disposable aliases, $0 cards and breach alerts, driven by signed commands.
#[derive(Debug, Parser)]
#[command(name = "pane-agent", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Create the data dir, a commented pane.toml and a sealed store holding a new secret
    /// (the unseal passphrase from the terminal or stdin; Enter generates one).
    Init(init::InitArgs),
    /// Unseal the running daemon (the passphrase from the terminal, or stdin).
    Unseal(DataDirArg),
    /// Seal an installation in clear in place (stop the daemon first); removes the plaintext.
    SealInit(seal_init::SealInitArgs),
    /// Run the daemon.
    Run(run::RunArgs),
    /// Print a signed envelope for CMD.
    Sign(CommandArgs),
    /// Sign CMD, deliver it to the running daemon, print the reply.
    Send(CommandArgs),
    /// Deliver a pre-signed envelope (the CLI-over-SSH channel) and print the reply.
    Command(command::CommandEnvelope),
    /// Check the hosting checklist: pass/warn/fail with the fix for each; non-zero on a failure.
    Doctor(doctor::DoctorArgs),
    /// Make a new command secret; the old one stays accepted for the grace period.
    RotateSecret(rotate_secret::RotateArgs),
    /// Accept the owner's new Signal safety number (after verifying it) and resume commands.
    Trust(DataDirArg),
    /// End a lockdown, at the console (from Signal: `unlock` with an approval).
    Unlock(DataDirArg),
    /// Print the breach incidents, one line each.
    CheckIncidents(DataDirArg),
    /// Show the command secret as a QR code for the phone signer to import; Enter clears it.
    SignerQr(DataDirArg),
    /// Create the MCP key (mcp.key, mode 0600) unless it exists, and print its fingerprint.
    McpKey(DataDirArg),
    /// Serve pane's tools to a model over MCP on stdio, signing with the MCP key.
    Mcp(mcp::McpArgs),
    /// The whole job in a few seconds: a real agent in a temporary dir, simulated providers
    /// and phone, an enroll, a breach, an alert, a burn approved with 👍, the audit verified.
    Demo(demo::DemoArgs),
}

/// `--data-dir DIR`, defaulting to `$PANE_DATA_DIR`, else `~/.pane`.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArg {
    /// The data directory.
    #[arg(long, env = "PANE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataDirArg {
    /// The directory to use.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(d) = &self.data_dir {
            return Ok(d.clone());
        }
        let home = std::env::var_os("HOME").ok_or_else(|| {
            anyhow::anyhow!("no --data-dir, PANE_DATA_DIR or HOME to find the data dir")
        })?;
        Ok(PathBuf::from(home).join(".pane"))
    }
}

/// `CMD [key=value | key:=json ...]`
#[derive(Debug, Clone, clap::Args)]
pub struct CommandArgs {
    #[command(flatten)]
    /// The data directory (for the secret and the socket).
    pub data_dir: DataDirArg,
    /// The command name.
    pub cmd: String,
    /// Arguments: `key=value` for a string, `key:=json` for any JSON value.
    pub args: Vec<String>,
}

/// Parses `key=value` (a string) and `key:=json` (a JSON value) pairs into an args object.
pub fn parse_pairs(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in pairs {
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) if k.ends_with(':') => {
                let k = k.trim_end_matches(':');
                let v: Value = serde_json::from_str(v)
                    .map_err(|e| anyhow::anyhow!("{k}:= takes JSON: {e}"))?;
                (k.to_string(), v)
            }
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => anyhow::bail!("argument {pair:?} is not key=value or key:=json"),
        };
        if key.is_empty() {
            anyhow::bail!("argument {pair:?} has an empty key");
        }
        if map.insert(key.clone(), value).is_some() {
            anyhow::bail!("argument {key} is given twice");
        }
    }
    Ok(map)
}

/// Prints a reply and turns an error reply into exit code 1.
pub fn print_reply(reply: &Value) -> std::process::ExitCode {
    println!(
        "{}",
        serde_json::to_string_pretty(reply).unwrap_or_else(|_| reply.to_string())
    );
    if reply.get("error").is_some() {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let m = parse_pairs(&["a=b=c".into(), "n:=5".into(), "o:={\"x\":[1]}".into()]).unwrap();
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"a": "b=c", "n": 5, "o": {"x": [1]}})
        );
        assert!(parse_pairs(&["x".into()]).is_err());
        assert!(parse_pairs(&["a=1".into(), "a=2".into()]).is_err());
        assert!(parse_pairs(&["n:=nope".into()]).is_err());
    }
}
