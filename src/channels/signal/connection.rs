//! One gateway connection: lines in (events, each dispatched to the owner's side or to
//! delivery, and acknowledged once recorded), sends out (the outbox, as it fills). On a
//! sealed installation it begins with `store_key` and, when the core seals or stops, ends
//! with `seal`.

use super::delivery::Delivery;
use super::owner::OwnerSide;
use crate::gate::{GateHandle, LinkEvent, SignalTally};
use crate::gateway::protocol::{
    decode_line, encode_line, encode_store_key, CoreCommand, GatewayEvent, MAX_LINE_BYTES,
};
use crate::health::GatewayMailbox;
use crate::outbox::Outbox;
use crate::shutdown::Shutdown;
use crate::store::signal::SignalState;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use zeroize::Zeroizing;

/// How often the outbox is read anyway, for messages whose retry time came.
const SWEEP: Duration = Duration::from_secs(1);

/// What one gateway connection works with.
pub(super) struct Connection {
    gate: GateHandle,
    owner: OwnerSide,
    delivery: Delivery,
    outbox: Outbox,
    /// The Signal store's passphrase (a sealed installation): handed over first, taken back
    /// on shutdown.
    store_key: Option<Arc<Zeroizing<String>>>,
    /// A captcha's answer the gate left for the gateway.
    mailbox: GatewayMailbox,
}

impl Connection {
    /// A connection's state: the owner's side (filter, block, timer, reactions) and the
    /// delivery of the outbox to the owner (nothing when no owner is configured).
    pub(super) fn new(
        gate: GateHandle,
        outbox: Outbox,
        owner: Option<String>,
        tally: SignalTally,
        signal: SignalState,
        store_key: Option<Arc<Zeroizing<String>>>,
        mailbox: GatewayMailbox,
    ) -> Connection {
        Connection {
            owner: OwnerSide::new(gate.clone(), owner.clone(), tally, signal.clone()),
            delivery: Delivery::new(gate.clone(), outbox.clone(), owner, signal),
            gate,
            outbox,
            store_key,
            mailbox,
        }
    }

    pub(super) async fn serve(mut self, stream: UnixStream, mut shutdown: Shutdown) {
        tracing::info!("Signal gateway connected");
        let (reader, mut writer) = stream.into_split();
        if let Some(key) = &self.store_key {
            // First, before anything of the owner's: the gateway opens its store with it.
            if !write_store_key(&mut writer, key).await {
                tracing::info!("Signal gateway disconnected");
                return;
            }
        }
        // An answer left while no gateway was connected goes first.
        if !self.write_mailbox(&mut writer).await {
            tracing::info!("Signal gateway disconnected");
            return;
        }
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                read = read_line(&mut reader, &mut buf) => {
                    let line = match read {
                        Ok(Some(l)) => l,
                        Ok(None) => break,
                        Err(why) => {
                            // Refused as soon as it passes the limit: nothing more is buffered.
                            tracing::warn!(%why, "gateway socket: line refused; disconnecting");
                            self.gate
                                .notice("gateway.line_refused", serde_json::json!({"reason": why}), None)
                                .await;
                            return;
                        }
                    };
                    let event: GatewayEvent = match decode_line(&line) {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::warn!(error = %e, "ignored a line from the gateway");
                            continue;
                        }
                    };
                    let ack = match event {
                        GatewayEvent::Sent { id, .. } => {
                            self.delivery.sent(&id).await;
                            None
                        }
                        GatewayEvent::SendFailed { id, error, retryable } => {
                            self.delivery.failed(&id, &error, retryable).await;
                            None
                        }
                        GatewayEvent::Health(health) => {
                            tracing::info!(
                                connected = health.connected,
                                registration = health.registration.as_str(),
                                "Signal link health"
                            );
                            let resumed = self.delivery.registration(health.registration);
                            self.gate.link(LinkEvent::Health(health)).await;
                            if resumed && !self.delivery.send_pending(&mut writer).await {
                                return;
                            }
                            None
                        }
                        event => self.owner.event(event).await,
                    };
                    if let Some(id) = ack {
                        // Recorded (flushed): the gateway may forget it.
                        if !write_ack(&mut writer, id).await {
                            return;
                        }
                    }
                }
                _ = self.outbox.queued() => {
                    if !self.delivery.send_pending(&mut writer).await {
                        return;
                    }
                }
                _ = self.mailbox.rung() => {
                    if !self.write_mailbox(&mut writer).await {
                        tracing::info!("Signal gateway disconnected");
                        return;
                    }
                }
                _ = sweep.tick() => {
                    if !self.delivery.send_pending(&mut writer).await {
                        return;
                    }
                }
                _ = shutdown.recv() => {
                    if self.store_key.is_some() {
                        // Sealing or stopping: the gateway closes its store and forgets the key.
                        if write(&mut writer, &CoreCommand::Seal {}).await {
                            tracing::info!("told the Signal gateway to seal");
                        }
                    }
                    return;
                }
            }
        }
        tracing::info!("Signal gateway disconnected");
    }
}

impl Connection {
    /// Writes what the gate left in the mailbox, if anything; false when the gateway is
    /// gone (the answer is lost with it: a captcha is good for minutes, and `health` shows
    /// the challenge still pending).
    async fn write_mailbox(&mut self, writer: &mut OwnedWriteHalf) -> bool {
        match self.mailbox.take() {
            Some(cmd) => {
                tracing::info!("handing the Signal gateway a captcha's answer");
                write(writer, &cmd).await
            }
            None => true,
        }
    }
}

/// Writes the `store_key` line; false when the gateway is gone. The line is built in a
/// buffer that is wiped once written.
async fn write_store_key(writer: &mut OwnedWriteHalf, key: &Zeroizing<String>) -> bool {
    match encode_store_key(key) {
        Ok(line) => writer.write_all(&line).await.is_ok(),
        Err(_) => false,
    }
}

/// Writes a line to the gateway; false when it is gone.
pub(super) async fn write(writer: &mut OwnedWriteHalf, cmd: &CoreCommand) -> bool {
    match encode_line(cmd) {
        Ok(line) => writer.write_all(line.as_bytes()).await.is_ok(),
        Err(_) => true,
    }
}

/// Writes an `ack`; false when the gateway is gone.
async fn write_ack(writer: &mut OwnedWriteHalf, id: String) -> bool {
    write(writer, &CoreCommand::Ack { id }).await
}

/// Reads one line of at most [`MAX_LINE_BYTES`]: None at the end of the stream, an error as
/// soon as the line passes the limit (the rest is never read) or is not UTF-8.
async fn read_line(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    buf: &mut Vec<u8>,
) -> Result<Option<String>, String> {
    buf.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    let n = (&mut *reader)
        .take(limit)
        .read_until(b'\n', buf)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() as u64 >= limit {
            return Err(format!("a line longer than {MAX_LINE_BYTES} bytes"));
        }
        // The stream ended in the middle of a line.
        return Ok(None);
    }
    buf.pop();
    String::from_utf8(std::mem::take(buf))
        .map(Some)
        .map_err(|_| "a line that is not UTF-8".to_string())
}
