//! Typed commands: one file per command, each with its argument parsing and its action.
//!
//! [`Command::parse`] turns an authenticated envelope's `cmd` and `args` into a value whose
//! tool and tier the policy can judge. Each command's file has what it does: fast commands an
//! `apply` that is given exactly the records it reads or writes (the gate calls it), slow
//! ones a `work()` that describes the [`Work`] a worker does beside the gate.

pub mod alias;
pub mod approvals;
pub mod approve;
pub mod audit;
pub mod card;
pub mod check_incidents;
pub mod deny;
pub mod enroll;
pub mod expire;
pub mod grant;
pub mod help;
pub mod incident_ack;
pub mod list;
pub mod lockdown;
pub mod request_status;
pub mod revoke;
pub mod secrets_reload;
pub mod status;
pub mod sweep;
pub mod transactions;
pub mod trust;
pub mod unlock;

use crate::config::CardsConfig;
use crate::context::Contexts;
use crate::policy::tools::{self, ToolSpec};
use crate::redact::truncate;
use crate::reply::{internal, CommandError, ErrorKind};
use serde_json::{Map, Value};

/// A command the agent understands, with its parsed arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `help`
    Help(help::Help),
    /// `list`
    List(list::List),
    /// `status {context}`
    Status(status::Status),
    /// `approvals`
    Approvals(approvals::Approvals),
    /// `approve {code}`
    Approve(approve::Approve),
    /// `deny {code}`
    Deny(deny::Deny),
    /// `audit {since?, limit?, verify?}`
    Audit(audit::Audit),
    /// `grant {tool}`
    Grant(grant::Grant),
    /// `revoke {tool}`
    Revoke(revoke::Revoke),
    /// `lockdown`
    Lockdown(lockdown::Lockdown),
    /// `enroll {url, alias?, card?, identity?, note?}`
    Enroll(enroll::Enroll),
    /// `alias.create`, `alias.deactivate`, `alias.activate` `{context}`
    Alias(alias::AliasCommand),
    /// `card.pause`, `card.fund`, `card.close`
    Card(card::CardCommand),
    /// `transactions {context}`
    Transactions(transactions::Transactions),
    /// `expire {context}`
    Expire(expire::Expire),
    /// `sweep`
    Sweep(sweep::Sweep),
    /// `check-incidents`
    CheckIncidents(check_incidents::CheckIncidents),
    /// `incident.ack {id}`
    IncidentAck(incident_ack::IncidentAck),
    /// `trust`
    Trust(trust::Trust),
    /// `secrets.reload`
    SecretsReload(secrets_reload::SecretsReload),
    /// `unlock`
    Unlock(unlock::Unlock),
    /// `request.status {request_id}` (the MCP key only)
    RequestStatus(request_status::RequestStatus),
}

impl Command {
    /// Parses `cmd` with `args`. Unknown commands and bad arguments are refused here,
    /// before the policy sees them.
    pub fn parse(cmd: &str, args: &Map<String, Value>) -> Result<Command, CommandError> {
        // The keys each command takes are declared once, in its tool entry.
        if let Some(tool) = tools::find(cmd) {
            crate::policy::args::check(tool.args, args).map_err(invalid)?;
        }
        let a = Args(args);
        Ok(match cmd {
            "help" => Command::Help(help::Help::parse(&a)?),
            "list" => Command::List(list::List::parse(&a)?),
            "status" => Command::Status(status::Status::parse(&a)?),
            "approvals" => Command::Approvals(approvals::Approvals::parse(&a)?),
            "approve" => Command::Approve(approve::Approve::parse(&a)?),
            "deny" => Command::Deny(deny::Deny::parse(&a)?),
            "audit" => Command::Audit(audit::Audit::parse(&a)?),
            "grant" => Command::Grant(grant::Grant::parse(&a)?),
            "revoke" => Command::Revoke(revoke::Revoke::parse(&a)?),
            "lockdown" => Command::Lockdown(lockdown::Lockdown::parse(&a)?),
            "enroll" => Command::Enroll(enroll::Enroll::parse(&a)?),
            "alias.create" => {
                Command::Alias(alias::AliasCommand::parse(&a, alias::AliasAction::Create)?)
            }
            "alias.deactivate" => Command::Alias(alias::AliasCommand::parse(
                &a,
                alias::AliasAction::Deactivate,
            )?),
            "alias.activate" => Command::Alias(alias::AliasCommand::parse(
                &a,
                alias::AliasAction::Activate,
            )?),
            "card.pause" => Command::Card(card::CardCommand::parse(&a, false, false)?),
            "card.fund" => Command::Card(card::CardCommand::parse(&a, true, false)?),
            "card.close" => Command::Card(card::CardCommand::parse(&a, false, true)?),
            "transactions" => Command::Transactions(transactions::Transactions::parse(&a)?),
            "expire" => Command::Expire(expire::Expire::parse(&a)?),
            "sweep" => Command::Sweep(sweep::Sweep::parse(&a)?),
            "check-incidents" => {
                Command::CheckIncidents(check_incidents::CheckIncidents::parse(&a)?)
            }
            "incident.ack" => Command::IncidentAck(incident_ack::IncidentAck::parse(&a)?),
            "trust" => Command::Trust(trust::Trust::parse(&a)?),
            "secrets.reload" => Command::SecretsReload(secrets_reload::SecretsReload::parse(&a)?),
            "unlock" => Command::Unlock(unlock::Unlock::parse(&a)?),
            "request.status" => Command::RequestStatus(request_status::RequestStatus::parse(&a)?),
            other => {
                return Err(CommandError::new(
                    ErrorKind::UnknownCommand,
                    format!("unknown command: {} (send `help`)", truncate(other, 40)),
                ))
            }
        })
    }

    /// The command's name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help(_) => "help",
            Command::List(_) => "list",
            Command::Status(_) => "status",
            Command::Approvals(_) => "approvals",
            Command::Approve(_) => "approve",
            Command::Deny(_) => "deny",
            Command::Audit(_) => "audit",
            Command::Grant(_) => "grant",
            Command::Revoke(_) => "revoke",
            Command::Lockdown(_) => "lockdown",
            Command::Enroll(_) => "enroll",
            Command::Alias(c) => match c.action {
                alias::AliasAction::Create => "alias.create",
                alias::AliasAction::Deactivate => "alias.deactivate",
                alias::AliasAction::Activate => "alias.activate",
            },
            Command::Card(c) => match c.action {
                card::CardAction::Pause => "card.pause",
                card::CardAction::Fund(_) => "card.fund",
                card::CardAction::Close => "card.close",
            },
            Command::Transactions(_) => "transactions",
            Command::Expire(_) => "expire",
            Command::Sweep(_) => "sweep",
            Command::CheckIncidents(_) => "check-incidents",
            Command::IncidentAck(_) => "incident.ack",
            Command::Trust(_) => "trust",
            Command::SecretsReload(_) => "secrets.reload",
            Command::Unlock(_) => "unlock",
            Command::RequestStatus(_) => "request.status",
        }
    }

    /// The tool it runs, which carries its tier. A command missing from the tool table is
    /// refused (fail closed), never run under some other tool's tier.
    pub fn tool(&self) -> Result<&'static ToolSpec, CommandError> {
        tools::find(self.name()).ok_or_else(|| {
            internal(format!(
                "command {} has no entry in the tool table; refused",
                self.name()
            ))
        })
    }

    /// What running it will do, in words, for an approval prompt.
    pub fn describe(&self, contexts: &Contexts) -> String {
        match self {
            Command::Grant(g) => g.describe(),
            Command::Card(c) => c.describe(contexts),
            Command::Expire(e) => e.describe(contexts),
            Command::Unlock(_) => {
                "end the lockdown: grant and approve work again (tools stay revoked until granted)"
                    .into()
            }
            other => format!("run `{}`", other.name()),
        }
    }

    /// The work a worker does for it, for the commands whose work is slow (provider calls,
    /// sweeps); the command itself back for those the gate answers from its own records.
    pub fn into_work(self) -> Result<Work, Box<Command>> {
        Ok(match self {
            Command::Enroll(c) => Work::Enroll(c.request),
            Command::Alias(c) => c.work(),
            Command::Card(c) => c.work(),
            Command::Transactions(c) => c.work(),
            Command::Expire(c) => c.work(),
            Command::Sweep(_) => Work::Sweep,
            Command::List(c) if c.refresh => Work::Refresh { after: c.after },
            other => return Err(Box::new(other)),
        })
    }

    /// Checks, before the owner is asked to approve it, that the command can happen at all
    /// (the context exists and is in a state that allows it).
    pub fn precheck(&self, contexts: &Contexts, cards: &CardsConfig) -> Result<(), CommandError> {
        let context = match self {
            Command::Card(c) => &c.context,
            Command::Expire(e) => &e.context,
            _ => return Ok(()),
        };
        let ctx = contexts.get(context).map_err(internal)?.ok_or_else(|| {
            CommandError::new(ErrorKind::NotFound, format!("context not found: {context}"))
        })?;
        let conflict = |m: String| Err(CommandError::new(ErrorKind::Conflict, m));
        if ctx.state == crate::context::ContextState::Expired {
            return conflict(format!("context {context} is expired"));
        }
        if let Command::Card(c) = self {
            match &ctx.card {
                None => return conflict(format!("context {context} has no card")),
                Some(card) if card.state == crate::providers::CardState::Closed => {
                    return conflict(format!("the card of {context} is closed; closing is final"))
                }
                Some(_) => {}
            }
            if let card::CardAction::Fund(cents) = c.action {
                card::check_limit(cents, cards)?;
            }
        }
        Ok(())
    }
}

/// Slow work a command hands to a worker: provider calls and sweeps never run on the gate.
/// Work on one context runs in order, one at a time; work on different contexts side by side.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Enroll (or resume enrolling) a context.
    Enroll(enroll::EnrollRequest),
    /// Make an alias for a context that has none.
    CreateAlias(String),
    /// Turn a context's alias on or off.
    SetAliasActive(String, bool),
    /// Pause, fund or close a context's card.
    Card(String, card::CardAction),
    /// A context's card transactions.
    Transactions(String),
    /// Burn a context: alias deactivated and deleted, card closed, context kept as expired.
    Expire(String),
    /// `list {refresh: true}`: read every alias from the provider first, then list those
    /// after `after`.
    Refresh {
        /// As in [`list::List::after`].
        after: Option<String>,
    },
    /// Settle intents left by an interrupted run (at start).
    Reconcile,
    /// Sweep every breach source.
    Sweep,
}

impl Work {
    /// The context it is about, when it is about one.
    pub fn context(&self) -> Option<&str> {
        match self {
            Work::Enroll(r) => Some(&r.name),
            Work::CreateAlias(c)
            | Work::SetAliasActive(c, _)
            | Work::Card(c, _)
            | Work::Transactions(c)
            | Work::Expire(c) => Some(c),
            Work::Refresh { .. } | Work::Reconcile | Work::Sweep => None,
        }
    }
}

/// Typed access to an envelope's `args`, refusing anything unexpected.
pub struct Args<'a>(pub &'a Map<String, Value>);

impl Args<'_> {
    /// Refuses any key not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), CommandError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(invalid(format!(
                "unexpected argument {:?} (takes: {})",
                truncate(k, 40),
                if allowed.is_empty() {
                    "nothing".to_string()
                } else {
                    allowed.join(", ")
                }
            ))),
            None => Ok(()),
        }
    }

    /// A required string.
    pub fn string(&self, key: &str) -> Result<String, CommandError> {
        self.opt_string(key)?
            .ok_or_else(|| invalid(format!("missing argument {key}")))
    }

    /// An optional string.
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, CommandError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{key} must be a string"))),
        }
    }

    /// An optional non-negative integer (a numeric string is accepted, as typed on a phone).
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, CommandError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| invalid(format!("{key} must be a whole number of 0 or more"))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(format!("{key} must be a whole number of 0 or more"))),
            Some(_) => Err(invalid(format!("{key} must be a whole number"))),
        }
    }

    /// An optional boolean (`"true"`/`"false"` strings are accepted).
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, CommandError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(invalid(format!("{key} must be true or false"))),
        }
    }

    /// An optional money amount in whole units with at most two decimals (`25`, `25.5`,
    /// `"25.50"`), returned in cents.
    pub fn opt_amount_cents(&self, key: &str) -> Result<Option<u64>, CommandError> {
        let text = match self.0.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => {
                return Err(invalid(format!(
                    "{key} must be an amount such as 25 or 25.50"
                )))
            }
        };
        parse_cents(&text).map(Some).ok_or_else(|| {
            invalid(format!(
                "{key} must be an amount of 0 or more with at most two decimals, such as 25.50"
            ))
        })
    }

    /// A required context name: lowercase ASCII letters, digits, `.`, `_`, `-`, at most 63,
    /// starting with a letter or digit. Look-alike Unicode names are refused, not folded.
    pub fn context(&self) -> Result<String, CommandError> {
        let name = self.string("context")?;
        validate_context_name(&name)?;
        Ok(name)
    }

    /// A required tool name that grants apply to.
    pub fn grantable_tool(&self) -> Result<&'static ToolSpec, CommandError> {
        let name = self.string("tool")?;
        match tools::find(&name) {
            Some(t) if t.grantable => Ok(t),
            Some(t) => Err(invalid(format!(
                "{} is one of the policy's own controls and always available",
                t.name
            ))),
            None => Err(CommandError::new(
                ErrorKind::NotFound,
                format!("no such tool: {}", truncate(&name, 40)),
            )),
        }
    }
}

/// Parses "25", "25.5" or "25.50" into cents; None for anything else (negative, three
/// decimals, exponents, over a billion).
pub fn parse_cents(text: &str) -> Option<u64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() || whole.len() > 9 || frac.len() > 2 {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    Some(whole * 100 + frac)
}

/// Checks a context name (see [`Args::context`]).
pub fn validate_context_name(name: &str) -> Result<(), CommandError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid context name {:?}: use lowercase letters, digits, '.', '_' or '-' (at most 63)",
            truncate(name, 40)
        )))
    }
}

/// An `invalid_args` error.
pub fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::new(ErrorKind::InvalidArgs, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tool's declared arguments, each given its kind's example, parse: the schema
    /// the MCP server hands out and the parser agree.
    #[test]
    fn tools_cover_every_command() {
        for t in tools::TOOLS {
            let mut args = Map::new();
            for a in t.args {
                args.insert(a.name.into(), a.kind.example());
            }
            let cmd = Command::parse(t.name, &args).unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
            assert_eq!(cmd.tool().unwrap().name, t.name);
            let required: Map<String, Value> = args
                .into_iter()
                .filter(|(k, _)| t.args.iter().any(|a| a.name == k && a.required))
                .collect();
            Command::parse(t.name, &required).unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
            let mut extra = required.clone();
            extra.insert("surplus".into(), Value::Bool(true));
            assert_eq!(
                Command::parse(t.name, &extra).unwrap_err().kind,
                ErrorKind::InvalidArgs
            );
        }
    }

    /// Every command the parser knows has a tool entry: a missing one is refused at run
    /// time (fail closed), so this catches it before that.
    #[test]
    fn every_command_has_a_tool() {
        let all = [
            "help",
            "list",
            "status",
            "approvals",
            "approve",
            "deny",
            "audit",
            "grant",
            "revoke",
            "lockdown",
            "enroll",
            "alias.create",
            "alias.deactivate",
            "alias.activate",
            "card.pause",
            "card.fund",
            "card.close",
            "transactions",
            "expire",
            "sweep",
            "check-incidents",
            "incident.ack",
            "trust",
            "secrets.reload",
            "unlock",
            "request.status",
        ];
        for name in all {
            let tool = tools::find(name).unwrap_or_else(|| panic!("{name} has no tool"));
            assert_eq!(tool.name, name);
        }
        assert_eq!(all.len(), tools::TOOLS.len());
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_cents("25"), Some(2500));
        assert_eq!(parse_cents("25.5"), Some(2550));
        assert_eq!(parse_cents("0.07"), Some(7));
        for bad in ["-1", "1.234", "1e3", "", ".5", "abc", "1234567890"] {
            assert_eq!(parse_cents(bad), None, "{bad}");
        }
    }

    #[test]
    fn context_names_are_strict() {
        for bad in ["", "Notion", "nоtion", "-x", "a b", "a/b", &"a".repeat(64)] {
            assert!(validate_context_name(bad).is_err(), "{bad:?}");
        }
        for good in ["notion", "travel-aa-2025", "a.b_c"] {
            assert!(validate_context_name(good).is_ok(), "{good}");
        }
    }
}
