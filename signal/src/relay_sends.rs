//! The relay's sends: each goes out once (the sent-id log answers a repeat), and its outcome
//! goes to the core, with what Signal's answer says of the link's health.

use super::{Device, Relay, SendFailure};
use crate::core_link::{CoreLink, Halt};
use crate::linked::Outgoing;
use pane_protocol::messages::{GatewayEvent, IDENTITY_CHANGED, ID_CONFLICT};
use pane_protocol::sent_log::Seen;

impl<D: Device> Relay<D> {
    /// The answer to a send whose id the sent log holds, None for a new id: `sent` for the
    /// same message (the core asks again), an `id_conflict` refusal for another message
    /// under a used id, which must never be taken for sent.
    pub(super) fn answer_from_log(&self, id: &str, out: &Outgoing) -> Option<GatewayEvent> {
        match self.sent.check(id, out) {
            Seen::New => None,
            Seen::Sent => Some(GatewayEvent::Sent {
                id: id.to_string(),
                timestamp: Some(out.timestamp),
            }),
            Seen::Conflict => {
                tracing::error!(%id, "the core sent a new message under an id already sent with other content: refused (id_conflict), not sent");
                Some(GatewayEvent::SendFailed {
                    id: id.to_string(),
                    error: ID_CONFLICT.into(),
                    retryable: false,
                })
            }
        }
    }

    /// Sends one message and writes the outcome.
    pub(super) async fn send_once(
        &mut self,
        link: &mut CoreLink,
        id: &str,
        out: &Outgoing,
    ) -> Result<(), Halt> {
        if let Some(answer) = self.answer_from_log(id, out) {
            link.write(&answer).await?;
            return Ok(());
        }
        tracing::info!(%id, timestamp = out.timestamp, "sending");
        match self.device.send(out).await {
            Ok(delivered) => {
                self.health.sent();
                self.sent.record(id, out)?;
                let sent = GatewayEvent::Sent {
                    id: id.to_string(),
                    timestamp: Some(out.timestamp),
                };
                link.write(&sent).await?;
                if delivered.identity_changed {
                    tracing::warn!(recipient = %out.recipient, "the recipient's identity key changed during a send");
                    let ev = GatewayEvent::IdentityChanged {
                        sender: out.recipient.clone(),
                    };
                    link.write(&ev).await?;
                }
            }
            Err(SendFailure::IdentityChanged) => {
                if !link.reported.contains_key(&out.recipient) {
                    let ev = GatewayEvent::IdentityChanged {
                        sender: out.recipient.clone(),
                    };
                    link.write(&ev).await?;
                }
                let failed = GatewayEvent::SendFailed {
                    id: id.to_string(),
                    error: IDENTITY_CHANGED.into(),
                    retryable: false,
                };
                link.write(&failed).await?;
            }
            Err(SendFailure::Refused {
                message,
                registration,
                challenge,
            }) => {
                tracing::warn!(%id, registration = registration.as_str(), %message, "Signal refused a send");
                self.health
                    .refused(registration, message.clone(), challenge);
                let failed = GatewayEvent::SendFailed {
                    id: id.to_string(),
                    error: message,
                    retryable: false,
                };
                link.write(&failed).await?;
            }
            Err(SendFailure::Failed { message, retryable }) => {
                tracing::warn!(%id, %message, retryable, "a send failed");
                let failed = GatewayEvent::SendFailed {
                    id: id.to_string(),
                    error: message,
                    retryable,
                };
                link.write(&failed).await?;
            }
        }
        self.tell_health(Some(link)).await
    }
}
