//! The relay: carries a [`Device`]'s messages to the core over `gateway.sock` and the core's
//! sends to the device (`docs/gateway-protocol.md`).
//!
//! - Every `received` and `reaction` is journaled (synced) before it is relayed, and relayed
//!   again after every reconnect or restart until the core answers `ack` ([`Journal`]).
//! - A send goes out with the timestamp the core chose, so a retry is the same Signal
//!   message; an id already sent is answered `sent` at once (the sent-id log, synced before
//!   `sent` is written). Sends wait until Signal's queue for the device is drained.
//! - Fail-secure: nothing is sent to a contact whose identity key changed until the core has
//!   read the `identity_changed` line (it acknowledged a message written after it); such a
//!   send is answered `send_failed` with `"error":"identity_changed"`.
//! - The websocket or the core may drop: each is reconnected with backoff.
//! - Keying ([`Keying`]): with a passphrase of its own (environment or credential) the
//!   gateway opens its store at once, as it always did. On a sealed installation it has none:
//!   it connects to the core and waits for `store_key`, opens the store with it ([`Opener`]),
//!   and on `seal` drops the device, the store, the journal and every key, and waits again.
//!   Every connection to the core then begins with `store_key`; nothing is relayed to a core
//!   that has not handed it over.

use crate::core_link::{wait_for_key, Backoff, CoreLink, Halt, KeyGuard, MAX_BACKOFF};
use crate::health::Health;
use crate::journal::Journal;
use crate::lines::Read;
pub use crate::linked::{Delivered, Device, DeviceEvent, Outgoing, SendFailure};
use crate::sealing::StateKeys;
use crate::sent_ids::SentIds;
use crate::shutdown::Shutdown;
use crate::systemd;
use pane_protocol::device::DeviceError;
use pane_protocol::messages::{
    decode_line, CoreCommand, GatewayEvent, Passphrase, Registration, IDENTITY_CHANGED,
};
use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use tokio::net::UnixStream;
use zeroize::Zeroizing;

/// Where the relay connects and keeps its state.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The core's `gateway.sock`.
    pub socket: PathBuf,
    /// The gateway's private directory (journal, sent-id log).
    pub state_dir: PathBuf,
    /// The proxy its connections to Signal go through (`[network] proxy`, set in the
    /// environment by `egress::route`), for the health line; none: they leave directly.
    pub proxy: Option<String>,
}

/// Where the store passphrase comes from.
pub enum Keying {
    /// Given to the process (environment or systemd credential): the store opens at once and
    /// stays open; the core's `store_key` and `seal` change nothing.
    Own(Zeroizing<String>),
    /// A sealed installation: from the core's `store_key`, given up on its `seal`.
    FromCore,
}

/// Opens the device once the passphrase is known: presage's store and registration, or a
/// test double.
pub trait Opener {
    /// The device it opens.
    type Device: Device;
    /// Opens the store with `passphrase`; `keys` are derived from it (the identity record's
    /// among them). Dropping the device closes the store.
    fn open(
        &mut self,
        passphrase: &str,
        keys: &StateKeys,
    ) -> impl Future<Output = Result<Self::Device, RelayError>>;
}

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The device must be linked again.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The journal or the sent-id log could not be used.
    #[error("gateway state: {0}")]
    State(#[from] std::io::Error),
    /// The store or the registration could not be opened.
    #[error("{0:#}")]
    Open(anyhow::Error),
    /// The gateway has no passphrase of its own and the core wrote something else before any
    /// `store_key`: the installation is not sealed.
    #[error(
        "the core at {0} is not sealed (it sent no store key before its first line): give \
         pane-signal the store passphrase (PANE_SIGNAL_PASSPHRASE or the systemd credential \
         signal-passphrase)"
    )]
    NotSealed(PathBuf),
}

/// How one open store ended.
enum Ended {
    Shutdown,
    Sealed,
    /// Another key came on this connection: open the store again with it.
    NewKey(Box<CoreLink>, Passphrase),
}

/// The relay's state while the store is open.
struct Relay<D> {
    device: D,
    journal: Journal,
    sent: SentIds,
    guard: KeyGuard,
    waiting: VecDeque<(String, Outgoing)>,
    queue_empty: bool,
    device_backoff: Backoff,
    health: Health,
    /// The first attempt to reach Signal failed: serving the core tries again after this.
    retry_in: Option<std::time::Duration>,
}

/// Runs the relay until shutdown (or until the device is unlinked).
pub async fn run<O: Opener>(
    mut opener: O,
    keying: Keying,
    config: RelayConfig,
    mut shutdown: Shutdown,
) -> Result<(), RelayError> {
    let (from_core, mut next) = match keying {
        // Moved into a Passphrase, not copied.
        Keying::Own(mut own) => (
            false,
            Some((None, Passphrase::new(std::mem::take(&mut *own)))),
        ),
        Keying::FromCore => (true, None),
    };
    loop {
        let (link, passphrase) = match next.take() {
            Some(next) => next,
            None => match wait_for_key(&config, &mut shutdown).await? {
                Some((link, passphrase)) => (Some(link), passphrase),
                None => return Ok(()),
            },
        };
        let ended = session(
            &mut opener,
            passphrase,
            from_core,
            link,
            &config,
            &mut shutdown,
        )
        .await?;
        // The device's receiving task was aborted with it: let it go before going on.
        tokio::task::yield_now().await;
        match ended {
            Ended::Shutdown => return Ok(()),
            Ended::Sealed => tracing::info!(
                "the core sealed: closed the Signal store and forgot every key derived from it"
            ),
            Ended::NewKey(link, passphrase) => {
                tracing::warn!("the core handed over another store key: opening the store with it");
                next = Some((Some(*link), passphrase));
            }
        }
    }
}

/// One open store: opens it, relays until shutdown, `seal` or another key, and closes it
/// (everything of it is dropped on return: the device, the store, the journal, the keys).
async fn session<O: Opener>(
    opener: &mut O,
    passphrase: Passphrase,
    from_core: bool,
    first: Option<CoreLink>,
    config: &RelayConfig,
    shutdown: &mut Shutdown,
) -> Result<Ended, RelayError> {
    let keys = StateKeys::derive(passphrase.expose());
    let device = opener.open(passphrase.expose(), &keys).await?;
    drop(passphrase);
    let mut relay = Relay {
        device,
        journal: Journal::open(&config.state_dir.join("inbox"), keys.journal.clone())?,
        sent: SentIds::open(&config.state_dir, keys.sent_ids.clone())?,
        guard: KeyGuard {
            from_core,
            keys,
            socket: config.socket.clone(),
            warned_other_key: false,
        },
        waiting: VecDeque::new(),
        queue_empty: false,
        device_backoff: Backoff::new(MAX_BACKOFF),
        health: Health::new(crate::health::build(), config.proxy.clone()),
        retry_in: None,
    };
    relay.note_backlog();
    systemd::notify("STATUS=relaying");
    relay.run_links(first, config, shutdown).await
}

impl<D: Device> Relay<D> {
    fn note_backlog(&self) {
        let n = self.journal.pending().len();
        if n > 0 {
            tracing::info!(
                count = n,
                "messages not yet acknowledged by the core: relaying them again"
            );
        }
    }

    /// Connects the device, then serves one connection to the core after another.
    async fn run_links(
        &mut self,
        mut first: Option<CoreLink>,
        config: &RelayConfig,
        shutdown: &mut Shutdown,
    ) -> Result<Ended, RelayError> {
        let mut core_backoff = Backoff::new(MAX_BACKOFF);
        if let Some(link) = first.as_mut() {
            // Taken over from the wait for the key (or from a store opened with another
            // key): nothing was written on it for this store yet.
            link.greeted = false;
            link.positions.clear();
            link.reported.clear();
        }
        // One attempt before the core is served, whatever Signal answers: a registration
        // refused at start (unlinked while the gateway was down) or Signal out of reach must
        // reach the core as the link's health, not keep the gateway from the core for good;
        // serving tries again (`retry_in`).
        let mut halt = self.first_connect(first.as_mut(), shutdown).await.err();
        loop {
            let mut link = match first.take() {
                Some(link) => link,
                None if halt.is_some() => break,
                None => match self.connect_core(config, &mut core_backoff, shutdown).await {
                    Ok(link) => link,
                    Err(h) => {
                        halt = Some(h);
                        break;
                    }
                },
            };
            let h = match halt.take() {
                Some(h) => h,
                None => {
                    tracing::info!("connected to the core");
                    self.serve(&mut link, shutdown).await
                }
            };
            match h {
                Halt::Lost => tracing::info!("lost the core; reconnecting"),
                Halt::NewKey(passphrase) => return Ok(Ended::NewKey(Box::new(link), passphrase)),
                other => {
                    halt = Some(other);
                    break;
                }
            }
            // The core sends everything unsent again when it is back.
            self.waiting.clear();
        }
        match halt {
            Some(Halt::Sealed) => Ok(Ended::Sealed),
            Some(Halt::Failed(e)) => Err(e),
            // A new key with no connection to take it from cannot be: each comes on one.
            Some(Halt::Shutdown | Halt::Lost | Halt::NewKey(_)) | None => Ok(Ended::Shutdown),
        }
    }

    /// Connects to the core, with backoff, receiving (and journaling) meanwhile.
    async fn connect_core(
        &mut self,
        config: &RelayConfig,
        backoff: &mut Backoff,
        shutdown: &mut Shutdown,
    ) -> Result<CoreLink, Halt> {
        loop {
            let stream = tokio::select! {
                s = UnixStream::connect(&config.socket) => s,
                _ = shutdown.recv() => return Err(Halt::Shutdown),
            };
            match stream {
                Ok(stream) => {
                    backoff.reset();
                    return Ok(CoreLink::new(stream, !self.guard.from_core));
                }
                Err(e) => {
                    let wait = backoff.next();
                    tracing::info!(error = %e, retry_ms = wait.as_millis() as u64, "core not reachable");
                    // Keep receiving (and journaling) while the core is away.
                    let deadline = tokio::time::sleep(wait);
                    tokio::pin!(deadline);
                    loop {
                        tokio::select! {
                            _ = &mut deadline => break,
                            ev = self.device.next_event() => {
                                self.on_device_event(ev, None, shutdown).await?;
                            }
                            _ = shutdown.recv() => return Err(Halt::Shutdown),
                        }
                    }
                }
            }
        }
    }

    /// Serves one connection to the core until it drops, shutdown, `seal` or another key.
    async fn serve(&mut self, link: &mut CoreLink, shutdown: &mut Shutdown) -> Halt {
        match self.serve_until_halt(link, shutdown).await {
            Ok(never) => match never {},
            Err(halt) => halt,
        }
    }

    async fn serve_until_halt(
        &mut self,
        link: &mut CoreLink,
        shutdown: &mut Shutdown,
    ) -> Result<std::convert::Infallible, Halt> {
        loop {
            while let Some(cmd) = link.buffered.pop_front() {
                self.on_core_command(cmd, link).await?;
            }
            if link.gone {
                return Err(Halt::Lost);
            }
            if link.keyed && !link.greeted {
                self.greet(link).await?;
            }
            // Signal could not be reached at start: the core has heard why (the greeting);
            // now try again, as a lost connection would be.
            if let Some(wait) = self.retry_in {
                self.pause(wait, Some(&mut *link), shutdown).await?;
                self.connect_device(Some(&mut *link), shutdown).await?;
                self.retry_in = None;
                continue;
            }
            if link.keyed && self.queue_empty {
                while let Some((id, out)) = self.waiting.pop_front() {
                    self.send_once(link, &id, &out).await?;
                }
            }
            tokio::select! {
                ev = self.device.next_event() => {
                    self.on_device_event(ev, Some(&mut *link), shutdown).await?;
                }
                read = link.reader.next_line() => match read {
                    Read::Line(line) => match decode_line::<CoreCommand>(&line) {
                        Ok(cmd) => {
                            if let Some(cmd) = self.guard.screen(cmd, link)? {
                                self.on_core_command(cmd, link).await?;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "ignored a line from the core"),
                    },
                    Read::Refused(why) => tracing::warn!(%why, "ignored a line from the core"),
                    Read::End => return Err(Halt::Lost),
                },
                _ = shutdown.recv() => return Err(Halt::Shutdown),
            }
        }
    }

    /// What a new connection hears first, once the core has handed over the key: changes
    /// the core was not told of, then every unacknowledged message.
    async fn greet(&mut self, link: &mut CoreLink) -> Result<(), Halt> {
        link.greeted = true;
        // First the link's health: a new connection hears all of it.
        self.health.new_connection();
        self.tell_health(Some(&mut *link)).await?;
        for sender in self.device.pending_identities() {
            link.write(&GatewayEvent::IdentityChanged { sender })
                .await?;
        }
        let backlog: Vec<GatewayEvent> = self
            .journal
            .pending()
            .iter()
            .map(|e| e.event.clone())
            .collect();
        for ev in &backlog {
            link.write(ev).await?;
        }
        Ok(())
    }

    /// Handles a command from the core (the keying lines are screened before).
    async fn on_core_command(&mut self, cmd: CoreCommand, link: &mut CoreLink) -> Result<(), Halt> {
        match cmd {
            CoreCommand::Ack { id } => {
                if let Some(at) = link.positions.remove(&id) {
                    // The core has read every line before this one: the identity changes
                    // reported before it are known to it now.
                    let known: Vec<String> = link
                        .reported
                        .iter()
                        .filter(|(_, &r)| r < at)
                        .map(|(s, _)| s.clone())
                        .collect();
                    for sender in known {
                        link.reported.remove(&sender);
                        self.device.confirm_identity(&sender)?;
                        tracing::info!(%sender, "the core has the changed identity key");
                    }
                }
                if !self.journal.remove(&id)? {
                    tracing::debug!(%id, "ack of a message not waiting");
                }
            }
            CoreCommand::Send {
                id,
                recipient,
                body,
                timestamp,
                expire_timer,
            } => {
                let out = Outgoing {
                    recipient,
                    body,
                    timestamp,
                    expire_timer,
                };
                match self.answer_from_log(&id, &out) {
                    Some(answer) => {
                        link.write(&answer).await?;
                    }
                    None => self.waiting.push_back((id, out)),
                }
            }
            CoreCommand::SubmitChallenge { token, captcha } => {
                match self.device.submit_challenge(&token, &captcha).await {
                    Ok(()) => {
                        tracing::info!("Signal accepted the challenge's answer");
                        self.health.challenge_answered();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Signal refused the challenge's answer");
                        let challenge = self.health.state().challenge.clone();
                        self.health.refused(
                            Registration::ProofRequired,
                            format!("Signal refused the captcha: {e}"),
                            challenge,
                        );
                    }
                }
                self.tell_health(Some(link)).await?;
            }
            CoreCommand::StoreKey { .. } | CoreCommand::Seal {} => {}
        }
        Ok(())
    }

    /// Writes the link's health when the core should hear of it (see [`Health::news`]).
    pub(crate) async fn tell_health(&mut self, link: Option<&mut CoreLink>) -> Result<(), Halt> {
        let Some(link) = link.filter(|l| l.keyed && l.greeted) else {
            return Ok(());
        };
        if let Some(state) = self.health.news() {
            tracing::info!(
                connected = state.connected,
                registration = state.registration.as_str(),
                "link health reported"
            );
            link.write(&GatewayEvent::Health(Box::new(state))).await?;
        }
        Ok(())
    }

    /// Handles one device event; the core hears of it when `link` is there and has handed
    /// over the key.
    async fn on_device_event(
        &mut self,
        ev: Result<DeviceEvent, DeviceError>,
        mut link: Option<&mut CoreLink>,
        shutdown: &mut Shutdown,
    ) -> Result<(), Halt> {
        let to_core = link.as_deref_mut().filter(|l| l.keyed && l.greeted);
        match ev {
            Ok(DeviceEvent::Relay(event)) => {
                self.device_backoff.reset();
                self.health.received();
                // On disk before the core sees it; a repeat of a waiting message is dropped.
                if let Some(entry) = self.journal.append(event)? {
                    if let Some(link) = to_core {
                        link.write(&entry.event).await?;
                    }
                }
            }
            Ok(DeviceEvent::IdentityChanged { sender }) => {
                // Sends already waiting were asked for before the core knew: refuse them.
                let (refused, kept): (Vec<_>, Vec<_>) = self
                    .waiting
                    .drain(..)
                    .partition(|(_, out)| out.recipient == sender);
                self.waiting = kept.into();
                if let Some(link) = to_core {
                    link.write(&GatewayEvent::IdentityChanged { sender })
                        .await?;
                    for (id, _) in refused {
                        let failed = GatewayEvent::SendFailed {
                            id,
                            error: IDENTITY_CHANGED.into(),
                            retryable: false,
                        };
                        link.write(&failed).await?;
                    }
                }
            }
            Ok(DeviceEvent::QueueEmpty) => {
                self.device_backoff.reset();
                self.health.received();
                self.queue_empty = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Signal connection lost");
                self.queue_empty = false;
                self.device_failed(&e);
                self.tell_health(link.as_deref_mut()).await?;
                // A server that takes the websocket and drops it at once must not be
                // reconnected to in a tight loop: the backoff grows until a message (or the
                // end of the queue) comes through.
                let wait = self.device_backoff.next();
                self.pause(wait, link.as_deref_mut(), shutdown).await?;
                return self.connect_device(link, shutdown).await;
            }
        }
        self.tell_health(link).await
    }
}

#[path = "relay_connect.rs"]
mod connect;

#[path = "relay_sends.rs"]
mod sends;

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
