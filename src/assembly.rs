//! The agent without its channels: the gate and the workers (alias and card managers, the job
//! runner, the breach monitor) assembled over an open store and the providers, in one place.
//!
//! `pane-agent run` ([`crate::cli::run`]) builds the providers from the config and the
//! environment ([`Providers::from_config`]), starts the core here, and binds its sockets and
//! timers around [`Core::gate`]. In-process tests start the very same core over providers they
//! built in code (the memory providers of [`crate::providers::memory`]) and submit envelopes to
//! the gate directly, so the logic of the gate and the workers is tested without a process,
//! a socket or a network, and on tokio's paused clock when time matters.

use crate::auth::{Secret, SecretSet};
use crate::breach::imap::{ImapError, ImapSource};
use crate::breach::incidents::Incidents;
use crate::config::Config;
use crate::context::Contexts;
use crate::egress::Egress;
use crate::gate::{Gate, GateHandle, SignalTally, Subsystems};
use crate::health::{GatewayMailbox, Link, Thresholds};
use crate::outbox::Outbox;
use crate::providers::configured::{AnyAlias, AnyCard};
use crate::providers::hibp::Hibp;
use crate::providers::{ProviderError, RetryPolicy};
use crate::redact::Redactor;
use crate::store::signal::SignalState;
use crate::store::{Store, StoreError};
use crate::workers::alerts::FallbackHandle;
use crate::workers::alias::AliasHandle;
use crate::workers::breach::{BreachHandle, BreachSettings};
use crate::workers::card::CardHandle;
use crate::workers::jobs::JobsHandle;
use crate::workers::mail::MailHandle;
use crate::workers::ticket::LockdownSwitch;
use std::path::PathBuf;
use tokio::task::JoinHandle;

/// The outside services the core calls, each built already (or the reason it is not there,
/// which every request that needs it is answered with).
pub struct Providers {
    /// The alias provider.
    pub aliases: Result<AnyAlias, ProviderError>,
    /// The card provider.
    pub cards: Result<AnyCard, ProviderError>,
    /// Have I Been Pwned, when configured.
    pub hibp: Option<Result<Hibp, ProviderError>>,
    /// The breach mailbox, when configured.
    pub imap: Option<Result<ImapSource, ImapError>>,
    /// The way out every one of them connects through (`[network] proxy`); `expire` moves
    /// its circuits on.
    pub egress: Egress,
}

impl Providers {
    /// The providers `config` names, with their keys from the environment, each connecting
    /// through `egress`: what `run` uses.
    pub fn from_config(config: &Config, egress: &Egress) -> Providers {
        let policy = RetryPolicy::default();
        Providers {
            aliases: AnyAlias::from_config(&config.aliases, policy, egress),
            cards: AnyCard::from_config(&config.cards, policy, egress),
            hibp: Hibp::from_env(&config.breach.hibp_base_url, policy, egress),
            imap: ImapSource::from_config(&config.breach.imap, egress),
            egress: egress.clone(),
        }
    }

    /// `aliases` and `cards`, and no breach sources (no HIBP, no mailbox): what an in-process
    /// test of commands needs.
    pub fn only(aliases: AnyAlias, cards: AnyCard) -> Providers {
        Providers {
            aliases: Ok(aliases),
            cards: Ok(cards),
            hibp: None,
            imap: None,
            egress: Egress::direct(),
        }
    }
}

/// Everything the core is made of. The data dir holds what lives beside the store (the
/// rollback mark); the store must be open already (it is the caller's to flush last).
pub struct Assembly {
    /// The open store.
    pub store: Store,
    /// The whole config (the core reads its limits, jobs, approvals and policy sections).
    pub config: Config,
    /// The command secrets accepted now.
    pub secrets: SecretSet,
    /// Removes every known secret from replies, logs and the audit log.
    pub redactor: Redactor,
    /// The MCP key, when one was made (`pane-agent mcp-key`).
    pub mcp_key: Option<Secret>,
    /// The data dir.
    pub data_dir: PathBuf,
    /// The providers.
    pub providers: Providers,
    /// The switch `seal` pulls, on a sealed installation.
    pub seal: Option<crate::gate::SealSwitch>,
}

/// A started core: the gate's handle and task, and the records the channels share with it.
pub struct Core {
    /// The gate: every channel submits to it.
    pub gate: GateHandle,
    /// The gate's task: it ends once every [`GateHandle`] is dropped and the gate has
    /// finished its queue and given its jobs a moment.
    pub task: JoinHandle<()>,
    /// The outbox (the Signal channel delivers it).
    pub outbox: Outbox,
    /// What the Signal channel dropped, counted (the gate audits the counts).
    pub tally: SignalTally,
    /// The Signal channel's records.
    pub signal: SignalState,
    /// What the gate leaves for the gateway besides the outbox (a captcha's answer).
    pub mailbox: GatewayMailbox,
    store: Store,
}

impl Assembly {
    /// Starts the workers and the gate. Nothing listens yet: the caller binds channels
    /// around [`Core::gate`] (or, in a test, submits to it directly).
    pub fn start(self) -> Core {
        let Assembly {
            store,
            config,
            secrets,
            redactor,
            mcp_key,
            data_dir,
            providers,
            seal,
        } = self;
        let aliases = AliasHandle::start(providers.aliases, config.aliases.concurrency);
        let cards = CardHandle::start(providers.cards, config.cards.concurrency);
        // One of each, shared: every clone sees every write (views, the outbox's bell).
        let contexts = Contexts::new(&store);
        let outbox = Outbox::new(&store);
        let tally = SignalTally::default();
        let mailbox = GatewayMailbox::default();
        let owner_set = !config.signal.owner.trim().is_empty();
        let link = Link::new(
            &store,
            Thresholds::new(&config.alerts, owner_set),
            mailbox.clone(),
        );
        let fallback = FallbackHandle::start(config.alerts.fallback(), &providers.egress);
        // The mail reader reads the breach monitor's mailbox, with the same source.
        let mail = MailHandle::start(&store, contexts.clone(), providers.imap.clone());
        let breach = BreachHandle::start(
            store.clone(),
            contexts.clone(),
            providers.imap,
            aliases.clone(),
            cards.clone(),
            providers.hibp,
            BreachSettings::from_config(&config),
        );
        let subsystems = Subsystems {
            runner: JobsHandle::start(
                store.clone(),
                contexts.clone(),
                aliases,
                cards,
                config.identity.forwarding_address.clone(),
                providers.egress,
            ),
            contexts,
            breach,
            mail,
            incidents: Incidents::new(&store),
            outbox: outbox.clone(),
            lockdown: LockdownSwitch::default(),
            tally: tally.clone(),
            link,
            fallback,
        };
        let gate = Gate::new(
            store.clone(),
            secrets,
            config,
            redactor,
            subsystems,
            data_dir,
        )
        .with_mcp_key(mcp_key)
        .with_seal_switch(seal);
        let (gate, task) = GateHandle::start(gate);
        Core {
            gate,
            task,
            outbox,
            tally,
            signal: SignalState::new(&store),
            mailbox,
            store,
        }
    }
}

impl Core {
    /// Stops the core once the channels are gone: drops this gate handle, waits for the gate
    /// to finish its queue and its jobs' moment, and flushes the store. Any other clone of
    /// [`Core::gate`] still held keeps the gate running, and this waits for it.
    pub async fn stop(self) -> Result<(), StoreError> {
        let Core {
            gate, task, store, ..
        } = self;
        drop(gate);
        let _ = task.await;
        store.flush().await
    }
}
