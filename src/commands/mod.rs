//! Typed commands: one file per command, and one registry line each (below).
//!
//! Each file declares its command: name, tier, whether grants apply, summary and arguments
//! ([`Spec`], from which parsing, `help` and the MCP JSON Schema come), how it parses, how it
//! runs ([`Cmd::run`]: a fast answer from the records in [`Fast`], the [`Work`] a worker does
//! beside the gate, or one of the few [`GateAction`]s only the gate can carry out), and its
//! typed output, which is `Serialize` (the socket, HTTP, MCP and audit JSON) and words itself
//! for the phone ([`crate::reply::Words`]). Adding a command is its file and its line in
//! [`commands!`].

pub mod args;

pub use args::{invalid, parse_cents, validate_context_name, Args};

use crate::audit::AuditLog;
use crate::breach::incidents::Incidents;
use crate::config::CardsConfig;
use crate::context::Contexts;
use crate::origin::Invocation;
use crate::policy::approvals::{Approval, Approvals};
use crate::policy::grants::Grants;
use crate::policy::tools::ToolSpec;
use crate::redact::truncate;
use crate::reply::{internal, CommandError, ErrorKind, Output};
use args::Arg;
use serde_json::{Map, Value};

/// A command's declaration: what the policy judges it by, the arguments it takes and what it
/// does, in words for `help` and the MCP tool list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Its name, tier and whether grants apply.
    pub tool: ToolSpec,
    /// The arguments it takes: the parser, `help` and the MCP schemas all read them.
    pub args: &'static [Arg],
    /// What it does, for `help`.
    pub summary: &'static str,
}

impl Spec {
    /// A declaration (for the `const` in each command's file).
    pub const fn new(
        name: &'static str,
        tier: crate::policy::tools::Tier,
        grantable: bool,
        args: &'static [Arg],
        summary: &'static str,
    ) -> Spec {
        Spec {
            tool: ToolSpec {
                name,
                tier,
                grantable,
            },
            args,
            summary,
        }
    }

    /// The command's name.
    pub fn name(&self) -> &'static str {
        self.tool.name
    }

    /// The arguments as `help` shows them (`{context, limit}`).
    pub fn usage(&self) -> String {
        args::usage(self.args)
    }
}

/// What the gate lends a fast command: the records it may read or write, and who asked. The
/// same for every command, so that a new one needs nothing from the gate.
pub struct Fast<'a> {
    /// Who asked, over which channel, and when.
    pub inv: &'a Invocation,
    /// The contexts.
    pub contexts: &'a Contexts,
    /// The breach incidents.
    pub incidents: &'a Incidents,
    /// The grants.
    pub grants: &'a Grants,
    /// The approvals.
    pub approvals: &'a Approvals,
    /// The audit log.
    pub audit: &'a AuditLog,
    /// The store's typed records (MCP request ids).
    pub records: &'a crate::store::Records,
    /// The Signal channel's records (the identity block).
    pub signal: &'a crate::store::signal::SignalState,
    /// The Signal link's records, the thresholds they are judged by, and the mailbox to the
    /// gateway (`health`, `signal.challenge`).
    pub link: &'a crate::health::Link,
    /// The gate's decision whether this caller may see an approval's code in clear (only
    /// when codes are not phone-only); None leaves it out.
    pub code_shown: &'a dyn Fn(&Approval) -> Option<String>,
}

/// How a command runs.
#[derive(Debug)]
pub enum Run {
    /// Answered at once, from the records.
    Done(Box<dyn Output>),
    /// Slow work (provider calls, sweeps) handed to a worker; the gate goes on meanwhile.
    Work(Work),
    /// Something only the gate can do, because it holds what it touches (the lockdown
    /// switch, the secrets, the jobs in flight).
    Gate(GateAction),
}

impl Run {
    /// Answered at once with `output`.
    pub fn done(output: impl Output + 'static) -> Result<Run, CommandError> {
        Ok(Run::Done(Box::new(output)))
    }
}

/// The gate's own powers that a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAction {
    /// Revoke every non-read grant, deny every pending approval, stop the jobs in flight.
    Lockdown,
    /// End a lockdown.
    Unlock,
    /// Read the command secrets again.
    ReloadSecrets,
    /// Forget every key (the keeper of the seal does it once the reply is out).
    Seal,
}

/// One command: its declaration, parsing and running. Each file in `src/commands/`
/// implements it for its command's type.
pub trait Cmd: Sized {
    /// What it declares: one spec for most commands (the three `alias.*` and the three
    /// `card.*` commands share a type, and list three).
    const SPECS: &'static [Spec];

    /// Parses the arguments of the command called `name` (one of [`Cmd::SPECS`]), already
    /// checked against its declared keys.
    fn parse(name: &str, args: &Args<'_>) -> Result<Self, CommandError>;

    /// The declaration of this command.
    fn spec(&self) -> &'static Spec {
        &Self::SPECS[0]
    }

    /// Runs it (see [`Run`]).
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError>;

    /// What running it will do, in words, for an approval prompt.
    fn describe(&self, _contexts: &Contexts) -> String {
        format!("run `{}`", self.spec().name())
    }

    /// Checks, before the owner is asked to approve it, that it can happen at all.
    fn precheck(&self, _contexts: &Contexts, _cards: &CardsConfig) -> Result<(), CommandError> {
        Ok(())
    }
}

/// The registry: one line per command type, in the order `help` lists them: the variant of
/// [`Command`] and the command's `module::Type`. It declares the module and makes the enum
/// and what dispatches on it.
macro_rules! commands {
    ($($(#[$doc:meta])* $variant:ident($module:ident::$name:ident),)*) => {
        $(pub mod $module;)*

        /// A command the agent understands, with its parsed arguments.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Command {
            $($(#[$doc])* $variant($module::$name),)*
        }

        /// Every command's declaration, in the order `help` lists them.
        pub fn specs() -> impl Iterator<Item = &'static Spec> {
            [$(<$module::$name as Cmd>::SPECS),*].into_iter().flatten()
        }

        impl Command {
            fn parse_as(spec: &Spec, args: &Args<'_>) -> Result<Command, CommandError> {
                let name = spec.name();
                $(if <$module::$name as Cmd>::SPECS.iter().any(|s| s.name() == name) {
                    return <$module::$name as Cmd>::parse(name, args).map(Command::$variant);
                })*
                Err(internal(format!("{name} is declared by no command")))
            }

            /// Its declaration.
            pub fn spec(&self) -> &'static Spec {
                match self {
                    $(Command::$variant(c) => c.spec(),)*
                }
            }

            /// Runs it (see [`Run`]).
            pub fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
                match self {
                    $(Command::$variant(c) => c.run(fast),)*
                }
            }

            /// What running it will do, in words, for an approval prompt.
            pub fn describe(&self, contexts: &Contexts) -> String {
                match self {
                    $(Command::$variant(c) => c.describe(contexts),)*
                }
            }

            /// Checks, before the owner is asked to approve it, that the command can happen
            /// at all (the context exists and is in a state that allows it).
            pub fn precheck(
                &self,
                contexts: &Contexts,
                cards: &CardsConfig,
            ) -> Result<(), CommandError> {
                match self {
                    $(Command::$variant(c) => c.precheck(contexts, cards),)*
                }
            }
        }
    };
}

commands! {
    /// `help`
    Help(help::Help),
    /// `list {refresh?, after?}`
    List(list::List),
    /// `status {context}`
    Status(status::Status),
    /// `approvals`
    Approvals(approvals::Approvals),
    /// `approve {code}`
    Approve(approve::Approve),
    /// `deny {code}`
    Deny(deny::Deny),
    /// `audit {since?, limit?, verify?, head?}`
    Audit(audit::Audit),
    /// `grant {tool}`
    Grant(grant::Grant),
    /// `revoke {tool}`
    Revoke(revoke::Revoke),
    /// `lockdown`
    Lockdown(lockdown::Lockdown),
    /// `seal`
    Seal(seal::Seal),
    /// `enroll {url, alias?, card?, identity?, note?, senders?, merchants?}`
    Enroll(enroll::Enroll),
    /// `alias.create`, `alias.deactivate`, `alias.activate` `{context}`
    Alias(alias::AliasCommand),
    /// `card.pause`, `card.fund`, `card.close`
    Card(card::CardCommand),
    /// `transactions {context}`
    Transactions(transactions::Transactions),
    /// `inbox {context, limit?, after?}`
    Inbox(inbox::Inbox),
    /// `mail {id, page?}`
    Mail(mail::Mail),
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
    /// `health`
    Health(health::Health),
    /// `signal.challenge {captcha}`
    SignalChallenge(signal_challenge::SignalChallenge),
    /// `unlock`
    Unlock(unlock::Unlock),
    /// `secrets.reload`
    SecretsReload(secrets_reload::SecretsReload),
    /// `request.status {request_id}` (the MCP key only)
    RequestStatus(request_status::RequestStatus),
}

/// The declaration of the command called `name`.
pub fn find(name: &str) -> Option<&'static Spec> {
    specs().find(|s| s.name() == name)
}

impl Command {
    /// Parses `cmd` with `args`. Unknown commands and bad arguments are refused here,
    /// before the policy sees them.
    pub fn parse(cmd: &str, args: &Map<String, Value>) -> Result<Command, CommandError> {
        let Some(spec) = find(cmd) else {
            return Err(CommandError::new(
                ErrorKind::UnknownCommand,
                format!("unknown command: {} (send `help`)", truncate(cmd, 40)),
            ));
        };
        // The keys each command takes are declared once, in its spec.
        args::check(spec.args, args).map_err(invalid)?;
        Command::parse_as(spec, &Args(args))
    }

    /// The command's name.
    pub fn name(&self) -> &'static str {
        self.spec().name()
    }

    /// The tool it runs, which carries its tier (always there: each command declares its
    /// own; a `Result` for the callers that refuse what has none).
    pub fn tool(&self) -> Result<&'static ToolSpec, CommandError> {
        Ok(&self.spec().tool)
    }
}

/// The context `name`, expired or not (its alias's mail can still be read).
pub fn existing_context(
    contexts: &Contexts,
    name: &str,
) -> Result<crate::context::Context, CommandError> {
    contexts
        .get(name)
        .map_err(internal)?
        .ok_or_else(|| CommandError::new(ErrorKind::NotFound, format!("context not found: {name}")))
}

/// The context `name` when it can still be changed (it exists and is not expired), for the
/// prechecks of the commands that change one.
pub fn live_context(
    contexts: &Contexts,
    name: &str,
) -> Result<crate::context::Context, CommandError> {
    let ctx = existing_context(contexts, name)?;
    if ctx.state == crate::context::ContextState::Expired {
        return Err(CommandError::new(
            ErrorKind::Conflict,
            format!("context {name} is expired"),
        ));
    }
    Ok(ctx)
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
    /// A page of a context's mail, its bodies read (the mail reader's work).
    Inbox(inbox::Inbox),
    /// One message as text (the mail reader's work).
    Mail(mail::Mail),
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
            Work::Inbox(q) => Some(&q.context),
            Work::Refresh { .. } | Work::Reconcile | Work::Sweep | Work::Mail(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's declared arguments, each given its kind's example, parse: the
    /// schema the MCP server hands out and the parser agree.
    #[test]
    fn specs_cover_every_command() {
        for t in specs() {
            let mut args = Map::new();
            for a in t.args {
                args.insert(a.name.into(), a.kind.example());
            }
            let cmd =
                Command::parse(t.name(), &args).unwrap_or_else(|e| panic!("{}: {e:?}", t.name()));
            assert_eq!(cmd.name(), t.name());
            let required: Map<String, Value> = args
                .into_iter()
                .filter(|(k, _)| t.args.iter().any(|a| a.name == k && a.required))
                .collect();
            Command::parse(t.name(), &required).unwrap_or_else(|e| panic!("{}: {e:?}", t.name()));
            let mut extra = required.clone();
            extra.insert("surplus".into(), Value::Bool(true));
            assert_eq!(
                Command::parse(t.name(), &extra).unwrap_err().kind,
                ErrorKind::InvalidArgs
            );
        }
    }

    /// The registry declares every name once, and every command the gate holds to a rule
    /// of its own is there.
    #[test]
    fn every_command_is_declared_once() {
        let names: Vec<&str> = specs().map(Spec::name).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(names.first(), Some(&"help"));
        for name in [
            "approve",
            "deny",
            "grant",
            "revoke",
            "lockdown",
            "unlock",
            "trust",
            "secrets.reload",
            "request.status",
        ] {
            assert!(unique.contains(name), "{name}");
        }
    }
}
