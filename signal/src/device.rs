//! [`PresageDevice`]: the [`SignalDevice`] the relay drives, backed by a presage linked device.
//!
//! presage's message stream is `!Send` and borrows its manager, so `connect` starts a local
//! task (`spawn_local`, inside the gateway's `LocalSet`) that owns a clone of the manager and
//! the stream, maps each item to a [`DeviceEvent`] and hands it over a channel: `next_event`
//! only reads that channel, so the relay may cancel it (it does, in `select!`) without losing
//! a message.

use crate::identities::KnownIdentities;
use pane_agent::gateway::device::{DeviceError, DeviceEvent, Incoming, SendError, SignalDevice};
use presage::libsignal_service::content::{Content, ContentBody};
use presage::libsignal_service::prelude::MessageSenderError;
use presage::libsignal_service::protocol::{Aci, IdentityKeyStore, ServiceId};
use presage::libsignal_service::push_service::ServiceError;
use presage::manager::Registered;
use presage::model::messages::Received;
use presage::proto::{sync_message, DataMessage, SyncMessage};
use presage::store::Store;
use presage::Manager;
use presage_store_sqlite::{SqliteStore, SqliteStoreError};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The presage manager of a linked (registered) device on the sqlite store.
pub type RegisteredManager = Manager<SqliteStore, Registered>;
type PresageError = presage::Error<SqliteStoreError>;
type EventResult = Result<DeviceEvent, DeviceError>;

/// Events mapped but not yet read by the relay (the stream waits when this is full).
const EVENT_BUFFER: usize = 64;

/// A presage linked device.
pub struct PresageDevice {
    manager: RegisteredManager,
    own_aci: Aci,
    identities: Rc<RefCell<KnownIdentities>>,
    events: Option<mpsc::Receiver<EventResult>>,
    receiver: Option<JoinHandle<()>>,
}

impl PresageDevice {
    /// Wraps a loaded registration; `identities` is the record of contacts' identity keys.
    pub fn new(manager: RegisteredManager, identities: KnownIdentities) -> PresageDevice {
        let own_aci = manager.registration_data().service_ids.aci();
        PresageDevice {
            manager,
            own_aci,
            identities: Rc::new(RefCell::new(identities)),
            events: None,
            receiver: None,
        }
    }

    fn stop_receiving(&mut self) {
        self.events = None;
        if let Some(task) = self.receiver.take() {
            task.abort();
        }
    }
}

impl Drop for PresageDevice {
    fn drop(&mut self) {
        self.stop_receiving();
    }
}

impl SignalDevice for PresageDevice {
    async fn connect(&mut self) -> Result<(), DeviceError> {
        self.stop_receiving();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let mapper = Mapper {
            store: self.manager.store().clone(),
            own_aci: self.own_aci,
            identities: self.identities.clone(),
        };
        let mut manager = self.manager.clone();
        let task = tokio::task::spawn_local(async move {
            let stream = match manager.receive_messages().await {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = ready_tx.send(Err(connect_error(e)));
                    return;
                }
            };
            if ready_tx.send(Ok(())).is_err() {
                return;
            }
            futures::pin_mut!(stream);
            while let Some(received) = futures::StreamExt::next(&mut stream).await {
                for event in mapper.map(received).await {
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
            let _ = tx
                .send(Err(DeviceError::Disconnected(
                    "the Signal message stream ended".into(),
                )))
                .await;
        });
        // Kept before waiting, so a cancelled `connect` leaves no task behind.
        self.receiver = Some(task);
        match ready_rx.await {
            Ok(Ok(())) => {
                self.events = Some(rx);
                Ok(())
            }
            Ok(Err(e)) => {
                self.stop_receiving();
                Err(e)
            }
            Err(_) => {
                self.stop_receiving();
                Err(DeviceError::Disconnected(
                    "the receiving task stopped".into(),
                ))
            }
        }
    }

    async fn next_event(&mut self) -> Result<DeviceEvent, DeviceError> {
        let Some(events) = self.events.as_mut() else {
            return Err(DeviceError::Disconnected("not connected".into()));
        };
        match events.recv().await {
            Some(event) => event,
            None => {
                self.stop_receiving();
                Err(DeviceError::Disconnected(
                    "the receiving task stopped".into(),
                ))
            }
        }
    }

    async fn send(&mut self, recipient: &str, body: &str) -> Result<(), SendError> {
        let aci = Aci::parse_from_service_id_string(recipient).ok_or_else(|| SendError {
            message: "the recipient is not an ACI (a UUID)".into(),
            retryable: false,
        })?;
        let timestamp = now_millis();
        let message = DataMessage {
            body: Some(body.to_string()),
            timestamp: Some(timestamp),
            ..Default::default()
        };
        self.manager
            .send_message(aci, message, timestamp)
            .await
            .map_err(send_error)
    }
}

/// Turns presage's items into device events (runs in the receiving task).
struct Mapper {
    store: SqliteStore,
    own_aci: Aci,
    identities: Rc<RefCell<KnownIdentities>>,
}

impl Mapper {
    async fn map(&self, received: Received) -> Vec<DeviceEvent> {
        match received {
            Received::QueueEmpty => vec![DeviceEvent::QueueEmpty],
            Received::Contacts => Vec::new(),
            Received::Content(content) => self.map_content(&content).await,
        }
    }

    async fn map_content(&self, content: &Content) -> Vec<DeviceEvent> {
        let meta = &content.metadata;
        let ServiceId::Aci(sender) = meta.sender else {
            return Vec::new();
        };
        let (body, timestamp) = match &content.body {
            // A direct message (group messages are not commands: replies go to one person).
            ContentBody::DataMessage(DataMessage {
                body: Some(body),
                group_v2: None,
                timestamp,
                ..
            }) => (body, timestamp.unwrap_or(meta.timestamp)),
            // Note to Self: the owner's own message, synced from their phone.
            ContentBody::SynchronizeMessage(SyncMessage {
                sent:
                    Some(
                        sent @ sync_message::Sent {
                            message:
                                Some(DataMessage {
                                    body: Some(body),
                                    group_v2: None,
                                    ..
                                }),
                            ..
                        },
                    ),
                ..
            }) if sender == self.own_aci && self.is_to_self(sent) => {
                (body, sent.timestamp.unwrap_or(meta.timestamp))
            }
            _ => return Vec::new(),
        };
        let mut events = Vec::new();
        if sender != self.own_aci && self.identity_changed(content).await {
            tracing::warn!(sender = %sender.service_id_string(), "a contact's safety number changed");
            events.push(DeviceEvent::IdentityChanged {
                sender: sender.service_id_string(),
            });
        }
        // The sender's ACI is what `[signal] owner` wants; the body is not logged.
        tracing::info!(
            sender = %sender.service_id_string(),
            device = u32::from(meta.sender_device),
            sealed = meta.unidentified_sender,
            "message received"
        );
        events.push(DeviceEvent::Message(Incoming {
            sender: sender.service_id_string(),
            device: u32::from(meta.sender_device),
            timestamp,
            body: body.clone(),
            sealed: meta.unidentified_sender,
        }));
        events
    }

    fn is_to_self(&self, sent: &sync_message::Sent) -> bool {
        let by_string = sent
            .destination_service_id
            .as_deref()
            .and_then(ServiceId::parse_from_service_id_string);
        let by_binary = sent
            .destination_service_id_binary
            .as_deref()
            .and_then(ServiceId::parse_from_service_id_binary);
        by_string.or(by_binary) == Some(ServiceId::Aci(self.own_aci))
    }

    /// Compares the sender's identity key in presage's store with the one last seen.
    async fn identity_changed(&self, content: &Content) -> bool {
        let meta = &content.metadata;
        let address = meta.sender.to_protocol_address(meta.sender_device);
        let key = match self.store.aci_protocol_store().get_identity(&address).await {
            Ok(Some(key)) => key,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a contact's identity key");
                return false;
            }
        };
        let observed = self
            .identities
            .borrow_mut()
            .observe(&meta.sender.service_id_string(), &key.serialize());
        match observed {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record a contact's identity key");
                false
            }
        }
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Why the receiving websocket could not be opened.
fn connect_error(e: PresageError) -> DeviceError {
    match e {
        PresageError::NotYetRegisteredError | PresageError::RelinkNecessary => {
            DeviceError::Unlinked(e.to_string())
        }
        PresageError::ServiceError(ServiceError::Unauthorized) => DeviceError::Unlinked(
            "Signal refused this device's credentials (was it unlinked from the phone?)".into(),
        ),
        other => DeviceError::Disconnected(other.to_string()),
    }
}

/// A failed send, and whether trying again may help.
fn send_error(e: PresageError) -> SendError {
    let retryable = match &e {
        PresageError::ServiceError(s) => service_retryable(s),
        PresageError::MessageSenderError(s) => match s.as_ref() {
            MessageSenderError::ServiceError(s) => service_retryable(s),
            MessageSenderError::MaximumRetriesLimitExceeded => true,
            _ => false,
        },
        PresageError::IoError(_)
        | PresageError::Timeout(_)
        | PresageError::MessagePipeNotStarted
        | PresageError::MessagePipeInterruptedError => true,
        _ => false,
    };
    SendError {
        message: e.to_string(),
        retryable,
    }
}

/// Network trouble is worth retrying; refusals (unknown recipient, bad credentials) are not.
fn service_retryable(e: &ServiceError) -> bool {
    match e {
        ServiceError::Timeout { .. }
        | ServiceError::SendError { .. }
        | ServiceError::IO(_)
        | ServiceError::WsError(_)
        | ServiceError::WsClosing { .. }
        | ServiceError::RateLimitExceeded { .. } => true,
        ServiceError::UnhandledResponseCode { http_code } => *http_code >= 500,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presage::libsignal_service::content::Metadata;
    use presage::libsignal_service::protocol::DeviceId;
    use presage_store_sqlite::{OnNewIdentity, SqliteConnectOptions};

    const OWN: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";
    const OTHER: &str = "5d1f7c2a-9b3e-4f60-8a21-3c4d5e6f7a8b";

    fn aci(s: &str) -> Aci {
        Aci::parse_from_service_id_string(s).unwrap()
    }

    /// Removes the test's store when dropped.
    struct TempDir(std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn mapper() -> (Mapper, TempDir) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "pane-signal-test-{}-{}-{n}",
            std::process::id(),
            now_millis()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.join("store.db3"))
            .create_if_missing(true);
        let mapper = Mapper {
            store: SqliteStore::open_with_options(options, OnNewIdentity::Trust)
                .await
                .unwrap(),
            own_aci: aci(OWN),
            identities: Rc::new(RefCell::new(
                KnownIdentities::load(&dir.join("known-identities")).unwrap(),
            )),
        };
        (mapper, TempDir(dir))
    }

    fn content(sender: &str, sealed: bool, body: ContentBody) -> Received {
        Received::Content(Box::new(Content {
            metadata: Metadata {
                sender: aci(sender).into(),
                destination: aci(OWN).into(),
                sender_device: DeviceId::try_from(3u32).unwrap(),
                timestamp: 1_000,
                needs_receipt: false,
                unidentified_sender: sealed,
                was_plaintext: false,
                server_guid: None,
            },
            body,
        }))
    }

    fn data(body: &str, timestamp: u64) -> DataMessage {
        DataMessage {
            body: Some(body.into()),
            timestamp: Some(timestamp),
            ..Default::default()
        }
    }

    fn note_to_self(destination: &str, body: &str) -> ContentBody {
        ContentBody::SynchronizeMessage(SyncMessage {
            sent: Some(sync_message::Sent {
                destination_service_id: Some(destination.into()),
                timestamp: Some(2_000),
                message: Some(data(body, 2_000)),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn message(sender: &str, timestamp: u64, body: &str, sealed: bool) -> DeviceEvent {
        DeviceEvent::Message(Incoming {
            sender: sender.into(),
            device: 3,
            timestamp,
            body: body.into(),
            sealed,
        })
    }

    async fn local<F: std::future::Future<Output = ()>>(f: F) {
        tokio::task::LocalSet::new().run_until(f).await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn maps_presage_items_to_device_events() {
        local(async {
            let (m, _dir) = mapper().await;
            assert_eq!(m.map(Received::QueueEmpty).await, [DeviceEvent::QueueEmpty]);
            assert!(m.map(Received::Contacts).await.is_empty());
            // A direct message, with the sealed-sender flag of its envelope.
            let direct = content(OTHER, true, ContentBody::DataMessage(data("status", 1_500)));
            assert_eq!(m.map(direct).await, [message(OTHER, 1_500, "status", true)]);
            // Note to Self: the account's own sync "sent" message to itself.
            let own = content(OWN, false, note_to_self(OWN, "list"));
            assert_eq!(m.map(own).await, [message(OWN, 2_000, "list", false)]);
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn ignores_what_is_not_a_command() {
        local(async {
            let (m, _dir) = mapper().await;
            // The owner talking to someone else from their phone.
            let to_other = content(OWN, false, note_to_self(OTHER, "hi"));
            assert!(m.map(to_other).await.is_empty());
            // Someone else's sync message claiming to be to us.
            let forged = content(OTHER, false, note_to_self(OWN, "expire"));
            assert!(m.map(forged).await.is_empty());
            // A group message.
            let mut group = data("list", 1);
            group.group_v2 = Some(Default::default());
            let group = content(OTHER, true, ContentBody::DataMessage(group));
            assert!(m.map(group).await.is_empty());
            // No body (a reaction, a receipt...).
            let empty = content(
                OTHER,
                true,
                ContentBody::DataMessage(DataMessage::default()),
            );
            assert!(m.map(empty).await.is_empty());
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reports_a_changed_safety_number_before_the_message() {
        use presage::libsignal_service::protocol::IdentityKey;
        local(async {
            let (m, _dir) = mapper().await;
            let address =
                ServiceId::from(aci(OTHER)).to_protocol_address(DeviceId::try_from(3u32).unwrap());
            let key = |b: u8| IdentityKey::decode(&[[5u8].as_slice(), &[b; 32]].concat()).unwrap();
            let msg = || content(OTHER, true, ContentBody::DataMessage(data("status", 1)));
            let mut store = m.store.aci_protocol_store();
            store.save_identity(&address, &key(1)).await.unwrap();
            assert_eq!(m.map(msg()).await.len(), 1, "first key: trusted, no report");
            assert_eq!(m.map(msg()).await.len(), 1);
            store.save_identity(&address, &key(2)).await.unwrap();
            let events = m.map(msg()).await;
            assert_eq!(
                events[0],
                DeviceEvent::IdentityChanged {
                    sender: OTHER.into()
                }
            );
            assert!(matches!(events[1], DeviceEvent::Message(_)));
            assert_eq!(m.map(msg()).await.len(), 1);
        })
        .await
    }

    #[test]
    fn classifies_send_errors() {
        let network = send_error(PresageError::ServiceError(ServiceError::Timeout {
            reason: "test",
        }));
        assert!(network.retryable);
        let unknown = send_error(PresageError::MessageSenderError(Box::new(
            MessageSenderError::NotFound {
                service_id: aci(OTHER).into(),
            },
        )));
        assert!(!unknown.retryable);
        assert!(!send_error(PresageError::UnknownRecipient).retryable);
        assert!(matches!(
            connect_error(PresageError::ServiceError(ServiceError::Unauthorized)),
            DeviceError::Unlinked(_)
        ));
        assert!(matches!(
            connect_error(PresageError::ServiceError(ServiceError::Timeout {
                reason: "t"
            })),
            DeviceError::Disconnected(_)
        ));
    }
}
