//! The owner's phone, simulated: the relay protocol of `docs/gateway-protocol.md` spoken over
//! the agent's real `gateway.sock`, standing in for `pane-signal` and the phone behind it.
//!
//! [`Wire`] is the protocol itself (connect, write an event, read what the core sends), which
//! the tests' gateway builds on; [`Phone`] is the owner holding the phone, as `pane-agent
//! demo` plays it: every message the agent sends is shown (in the words Signal carries),
//! acknowledged as sent, and can be answered with a text, a signed envelope or a reaction.

use crate::gateway::protocol::{decode_line, encode_line, CoreCommand, GatewayEvent};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one read waits before [`Wire::read`] reports that nothing came.
const READ_SLICE: Duration = Duration::from_millis(100);

/// One connection to the core's gateway socket, as pane-signal holds it.
pub struct Wire {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    /// A line read in part when a read timed out: kept, so no line is ever cut in two.
    partial: Vec<u8>,
}

impl Wire {
    /// Connects to the gateway socket at `socket` (`<data-dir>/gateway.sock`).
    pub fn connect(socket: &Path) -> io::Result<Wire> {
        let s = UnixStream::connect(socket)?;
        s.set_read_timeout(Some(READ_SLICE))?;
        Ok(Wire {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            partial: Vec::new(),
        })
    }

    /// Writes bytes as they are (a burst of lines, a broken line: what a test needs to send
    /// that no well-behaved gateway would).
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Writes one event line.
    pub fn event(&mut self, e: &GatewayEvent) -> io::Result<()> {
        let line = encode_line(e).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.writer.write_all(line.as_bytes())
    }

    /// The next line the core wrote, if one came within a short wait (`Ok(None)` when none
    /// did). A closed socket is `UnexpectedEof`; a line outside the protocol is `InvalidData`.
    pub fn read(&mut self) -> io::Result<Option<CoreCommand>> {
        match self.reader.read_until(b'\n', &mut self.partial) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the agent closed the gateway socket",
            )),
            Ok(_) if self.partial.ends_with(b"\n") => {
                let line = std::mem::take(&mut self.partial);
                let text = String::from_utf8_lossy(&line);
                decode_line(&text)
                    .map(Some)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            }
            Ok(_) => Ok(None),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// A message the agent sent to the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The outbox id it was sent under.
    pub id: String,
    /// Its Signal timestamp: what a reaction to it names.
    pub timestamp: u64,
    /// The text, as the phone shows it.
    pub body: String,
}

/// The owner with the phone: a [`Wire`] that shows every message the agent sends, tells the
/// agent each one went out, and answers as the owner does.
pub struct Phone {
    wire: Wire,
    owner: String,
    /// Every message shown so far, in order.
    pub shown: Vec<Shown>,
    /// Messages read but not yet handed out by [`Phone::wait_for`].
    unread: std::collections::VecDeque<Shown>,
    show: Box<dyn FnMut(&Shown) + Send>,
    /// Numbers the owner's own messages (their Signal timestamps).
    clock: u64,
}

impl Phone {
    /// The phone of `owner` (an ACI), on the agent's gateway socket; `show` is called with
    /// each message as it arrives (the demo prints it).
    pub fn connect(
        socket: &Path,
        owner: &str,
        show: impl FnMut(&Shown) + Send + 'static,
    ) -> io::Result<Phone> {
        Ok(Phone {
            wire: Wire::connect(socket)?,
            owner: owner.to_string(),
            shown: Vec::new(),
            unread: Default::default(),
            show: Box::new(show),
            clock: chrono::Utc::now().timestamp_millis().max(0) as u64,
        })
    }

    fn next_id(&mut self) -> (String, u64) {
        self.clock += 1;
        (format!("{}.1.{}", self.owner, self.clock), self.clock)
    }

    /// The owner sends `body` (a signed envelope, or `approve CODE`).
    pub fn say(&mut self, body: &str) -> io::Result<()> {
        let (id, timestamp) = self.next_id();
        self.wire.event(&GatewayEvent::Received {
            id: Some(id),
            sender: self.owner.clone(),
            device: 1,
            timestamp,
            body: body.to_string(),
            sealed: true,
            expire_timer: 0,
        })
    }

    /// The owner reacts with `emoji` to a message the phone showed.
    pub fn react(&mut self, emoji: &str, to: &Shown) -> io::Result<()> {
        let (id, _) = self.next_id();
        self.wire.event(&GatewayEvent::Reaction {
            id,
            sender: self.owner.clone(),
            emoji: emoji.to_string(),
            target_timestamp: to.timestamp,
            remove: false,
        })
    }

    /// Reads what the agent sent for up to `wait`: each new message is shown and
    /// acknowledged as sent (a message sent again under the same id is shown once).
    pub fn pump(&mut self, wait: Duration) -> io::Result<()> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let Some(CoreCommand::Send {
                id,
                recipient,
                body,
                timestamp,
                ..
            }) = self.wire.read()?
            else {
                continue;
            };
            self.wire.event(&GatewayEvent::Sent {
                id: id.clone(),
                timestamp: Some(timestamp),
            })?;
            if recipient != self.owner || self.shown.iter().any(|s| s.id == id) {
                continue;
            }
            let shown = Shown {
                id,
                timestamp,
                body,
            };
            (self.show)(&shown);
            self.shown.push(shown.clone());
            self.unread.push_back(shown);
        }
        Ok(())
    }

    /// The first message not handed out yet for which `want` holds, waiting up to `within`
    /// for it; messages before it are passed over (they were shown). `TimedOut` when none
    /// came.
    pub fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        want: impl Fn(&str) -> bool,
    ) -> io::Result<Shown> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(m) = self.unread.pop_front() {
                if want(&m.body) {
                    return Ok(m);
                }
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the phone did not show {what} within {within:?}"),
                ));
            }
            self.pump(READ_SLICE)?;
        }
    }
}
