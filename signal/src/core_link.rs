//! One connection to the core ([`CoreLink`]), and the core's keying lines on it: a sealed
//! gateway waits for `store_key` before anything ([`wait_for_key`]), and `store_key` and
//! `seal` are screened before the relay sees a line ([`KeyGuard`]), also while it is busy
//! reaching Signal ([`watching`]). Kept apart from the relay loop, which uses them.

use crate::journal::event_id;
use crate::lines::{LineReader, Read};
use crate::relay::{RelayConfig, RelayError};
use crate::sealing::StateKeys;
use crate::shutdown::Shutdown;
use crate::systemd;
use pane_protocol::messages::{
    decode_line, encode_line, CoreCommand, GatewayEvent, Passphrase, MAX_LINE_BYTES,
};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use zeroize::Zeroizing;

/// A doubling backoff from 200 ms up to a ceiling.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Backoff {
        Backoff {
            next: Duration::from_millis(200),
            max,
        }
    }
    pub(crate) fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
    pub(crate) fn reset(&mut self) {
        self.next = Duration::from_millis(200);
    }
}

/// The longest wait between two attempts to reach Signal or the core.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait between two attempts to reach the core while waiting for its key: the
/// owner has just unsealed it and is waiting for the gateway.
const MAX_KEY_BACKOFF: Duration = Duration::from_secs(5);

/// One connection to the core: lines read and written, and where each went in the stream.
pub(crate) struct CoreLink {
    pub(crate) reader: LineReader<OwnedReadHalf>,
    pub(crate) writer: OwnedWriteHalf,
    pub(crate) written: u64,
    /// Position of each journaled line written on this connection.
    pub(crate) positions: HashMap<String, u64>,
    /// Position of the `identity_changed` line written for each contact.
    pub(crate) reported: HashMap<String, u64>,
    /// The core has handed over the key this store is open with (always, with a passphrase
    /// of the gateway's own): until then nothing is written to it.
    pub(crate) keyed: bool,
    /// The changes not reported and the journal were written on this connection.
    pub(crate) greeted: bool,
    /// Commands read while the relay was busy (reaching Signal), handled next.
    pub(crate) buffered: VecDeque<CoreCommand>,
    /// The core closed the connection while the relay was busy.
    pub(crate) gone: bool,
}

impl CoreLink {
    pub(crate) fn new(stream: UnixStream, keyed: bool) -> CoreLink {
        let (reader, writer) = stream.into_split();
        CoreLink {
            reader: LineReader::new(reader),
            writer,
            written: 0,
            positions: HashMap::new(),
            reported: HashMap::new(),
            keyed,
            greeted: false,
            buffered: VecDeque::new(),
            gone: false,
        }
    }

    /// Writes one line; [`Halt::Lost`] when the core is gone.
    pub(crate) async fn write(&mut self, ev: &GatewayEvent) -> Result<u64, Halt> {
        let line = Zeroizing::new(encode_line(ev).map_err(std::io::Error::other)?);
        if line.len() > MAX_LINE_BYTES {
            // The mapping keeps bodies inside the limit; never cut a line.
            tracing::warn!("dropped a line over the protocol limit");
            return Ok(self.written);
        }
        if self.writer.write_all(line.as_bytes()).await.is_err() {
            return Err(Halt::Lost);
        }
        self.written += 1;
        if let Some(id) = event_id(ev) {
            self.positions.insert(id.to_string(), self.written);
        }
        if let GatewayEvent::IdentityChanged { sender } = ev {
            self.reported.insert(sender.clone(), self.written);
        }
        Ok(self.written)
    }
}

/// Why serving stopped.
pub(crate) enum Halt {
    /// SIGTERM or SIGINT.
    Shutdown,
    /// The core went away.
    Lost,
    /// The core sealed (a sealed installation).
    Sealed,
    /// The core handed over another passphrase than the one the store is open with.
    NewKey(Passphrase),
    /// The relay cannot go on.
    Failed(RelayError),
}

impl From<RelayError> for Halt {
    fn from(e: RelayError) -> Halt {
        Halt::Failed(e)
    }
}

impl From<std::io::Error> for Halt {
    fn from(e: std::io::Error) -> Halt {
        Halt::Failed(e.into())
    }
}

/// What the core's keying lines mean: they are screened here before anything else sees a
/// line, so that `seal` is obeyed even while the relay is busy reaching Signal.
pub(crate) struct KeyGuard {
    /// A sealed installation.
    pub(crate) from_core: bool,
    /// The keys of the passphrase the store is open with.
    pub(crate) keys: StateKeys,
    /// The core's socket, for the error of a core that is not sealed.
    pub(crate) socket: PathBuf,
    /// Told once that the core's key is not the gateway's own passphrase.
    pub(crate) warned_other_key: bool,
}

impl KeyGuard {
    /// Handles `store_key` and `seal`; returns any other command for the relay.
    pub(crate) fn screen(
        &mut self,
        cmd: CoreCommand,
        link: &mut CoreLink,
    ) -> Result<Option<CoreCommand>, Halt> {
        match cmd {
            CoreCommand::StoreKey { passphrase } if self.from_core => {
                if !self.keys.is_from(passphrase.expose()) {
                    return Err(Halt::NewKey(passphrase));
                }
                link.keyed = true;
                Ok(None)
            }
            CoreCommand::StoreKey { passphrase } => {
                if !self.warned_other_key && !self.keys.is_from(passphrase.expose()) {
                    self.warned_other_key = true;
                    tracing::warn!(
                        "the core handed over a store key that is not this gateway's \
                         passphrase; the gateway keeps to its own"
                    );
                }
                Ok(None)
            }
            CoreCommand::Seal {} if self.from_core => Err(Halt::Sealed),
            CoreCommand::Seal {} => {
                tracing::info!(
                    "the core sealed; this gateway's passphrase is its own (environment or \
                     credential), so its store stays open"
                );
                Ok(None)
            }
            _ if !link.keyed => Err(Halt::Failed(RelayError::NotSealed(self.socket.clone()))),
            other => Ok(Some(other)),
        }
    }
}

/// Reads and screens the core's lines (when `link` is there and open) while `fut` runs;
/// other commands are kept for later. Ends early on shutdown, `seal` or another key.
pub(crate) async fn watching<T>(
    fut: impl Future<Output = T>,
    mut link: Option<&mut CoreLink>,
    guard: &mut KeyGuard,
    shutdown: &mut Shutdown,
) -> Result<T, Halt> {
    tokio::pin!(fut);
    loop {
        let read = async {
            match link.as_deref_mut() {
                Some(l) if !l.gone => l.reader.next_line().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            out = &mut fut => return Ok(out),
            _ = shutdown.recv() => return Err(Halt::Shutdown),
            read = read => {
                let Some(link) = link.as_deref_mut() else { continue };
                match read {
                    Read::Line(line) => match decode_line::<CoreCommand>(&line) {
                        Ok(cmd) => {
                            if let Some(cmd) = guard.screen(cmd, link)? {
                                link.buffered.push_back(cmd);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "ignored a line from the core"),
                    },
                    Read::Refused(why) => tracing::warn!(%why, "ignored a line from the core"),
                    Read::End => link.gone = true,
                }
            }
        }
    }
}

/// Connects to the core until a connection begins with `store_key`; None on shutdown.
pub(crate) async fn wait_for_key(
    config: &RelayConfig,
    shutdown: &mut Shutdown,
) -> Result<Option<(CoreLink, Passphrase)>, RelayError> {
    tracing::info!("waiting for the core to be unsealed");
    systemd::notify("STATUS=waiting for the core to be unsealed");
    let mut backoff = Backoff::new(MAX_KEY_BACKOFF);
    loop {
        let stream = tokio::select! {
            s = UnixStream::connect(&config.socket) => s,
            _ = shutdown.recv() => return Ok(None),
        };
        match stream {
            Err(e) => tracing::debug!(error = %e, "core not reachable"),
            Ok(stream) => {
                let mut link = CoreLink::new(stream, false);
                loop {
                    let read = tokio::select! {
                        r = link.reader.next_line() => r,
                        _ = shutdown.recv() => return Ok(None),
                    };
                    match read {
                        Read::Line(line) => match decode_line::<CoreCommand>(&line) {
                            Ok(CoreCommand::StoreKey { passphrase }) => {
                                link.keyed = true;
                                tracing::info!("the core handed over the store key");
                                return Ok(Some((link, passphrase)));
                            }
                            // Sealed already.
                            Ok(CoreCommand::Seal {}) => {}
                            Ok(_) => return Err(RelayError::NotSealed(config.socket.clone())),
                            Err(e) => tracing::warn!(error = %e, "ignored a line from the core"),
                        },
                        Read::Refused(why) => tracing::warn!(%why, "ignored a line from the core"),
                        // Refused (another gateway is connected) or stopped: try again.
                        Read::End => break,
                    }
                }
            }
        }
        let wait = backoff.next();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.recv() => return Ok(None),
        }
    }
}
