//! [`PresageDevice`]: the [`Device`] the relay drives, backed by a presage linked device.
//!
//! presage's message stream is `!Send` and borrows its manager, so `connect` starts a local
//! task (`spawn_local`, inside the gateway's `LocalSet`) that owns a clone of the manager and
//! the stream, maps each item to [`DeviceEvent`]s ([`crate::mapping`]) and hands them over a
//! channel: `next_event` only reads that channel, so the relay may cancel it (it does, in
//! `select!`) without losing a message.
//!
//! Retention: presage saves every message, receipt and sync transcript it handles. The
//! gateway needs none of them (what the core has not acknowledged is in the journal), so
//! after each item is mapped, and after each send, it clears presage's messages.

use crate::identities::KnownIdentities;
use crate::mapping::{self, LongText, Mapped};
use crate::relay::{Delivered, Device, DeviceEvent, Outgoing, SendFailure};
use pane_protocol::device::DeviceError;
use presage::libsignal_service::content::Content;
use presage::libsignal_service::protocol::{Aci, IdentityKeyStore, ServiceId};
use presage::libsignal_service::push_service::DEFAULT_DEVICE_ID;
use presage::manager::Registered;
use presage::model::messages::Received;
use presage::proto::AttachmentPointer;
use presage::store::{ContentsStore, Store};
use presage::Manager;
use presage_store_sqlite::{SqliteStore, SqliteStoreError};
use std::cell::RefCell;
use std::rc::Rc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

#[path = "device_errors.rs"]
mod errors;
use errors::{connect_error, send_error};

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

    /// Compares `aci`'s identity key in presage's store with the record; true when it is a
    /// change not reported before.
    async fn identity_changed(&self, aci: Aci) -> bool {
        identity_changed(self.manager.store(), &self.identities, aci).await
    }
}

impl Drop for PresageDevice {
    fn drop(&mut self) {
        self.stop_receiving();
    }
}

impl Device for PresageDevice {
    async fn connect(&mut self) -> Result<(), DeviceError> {
        self.stop_receiving();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let mapper = Mapper {
            manager: self.manager.clone(),
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

    async fn send(&mut self, out: &Outgoing) -> Result<Delivered, SendFailure> {
        let aci = Aci::parse_from_service_id_string(&out.recipient).ok_or_else(|| {
            SendFailure::Failed {
                message: "the recipient is not an ACI (a UUID)".into(),
                retryable: false,
            }
        })?;
        let to_self = aci == self.own_aci;
        // Fail-secure: a changed key the core has not heard of stops the send here.
        if !to_self
            && (self.identities.borrow().is_pending(&out.recipient)
                || self.identity_changed(aci).await)
        {
            return Err(SendFailure::IdentityChanged);
        }
        let message = mapping::outgoing(out);
        let result = self
            .manager
            .send_message(aci, message, out.timestamp)
            .await
            .map_err(|e| send_error(e, self.own_aci));
        // Sent messages are not kept (see the module docs).
        if let Err(e) = self.manager.store().clone().clear_messages().await {
            tracing::warn!(error = %e, "cannot clear presage's copy of a sent message");
        }
        result?;
        let identity_changed = !to_self && self.identity_changed(aci).await;
        Ok(Delivered { identity_changed })
    }

    fn pending_identities(&self) -> Vec<String> {
        self.identities.borrow().pending()
    }

    fn confirm_identity(&mut self, aci: &str) -> std::io::Result<()> {
        self.identities.borrow_mut().confirm(aci)
    }

    async fn submit_challenge(&mut self, token: &str, captcha: &str) -> Result<(), String> {
        self.manager
            .submit_recaptcha_challenge(token, captcha)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Compares `aci`'s identity key in `store` with the record (see [`KnownIdentities`]).
async fn identity_changed(
    store: &SqliteStore,
    identities: &RefCell<KnownIdentities>,
    aci: Aci,
) -> bool {
    // The store keys identities by account, not device: any device id finds it.
    let address = ServiceId::from(aci).to_protocol_address(*DEFAULT_DEVICE_ID);
    let key = match store.aci_protocol_store().get_identity(&address).await {
        Ok(Some(key)) => key,
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a contact's identity key");
            return false;
        }
    };
    let observed = identities
        .borrow_mut()
        .observe(&aci.service_id_string(), &key.serialize());
    match observed {
        Ok(changed) => changed,
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a contact's identity key");
            false
        }
    }
}

/// Turns presage's items into device events (runs in the receiving task).
struct Mapper {
    manager: RegisteredManager,
    own_aci: Aci,
    identities: Rc<RefCell<KnownIdentities>>,
}

impl LongText for RegisteredManager {
    async fn fetch(&self, pointer: &AttachmentPointer) -> Result<Vec<u8>, String> {
        self.get_attachment(pointer)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Mapper {
    async fn map(&self, received: Received) -> Vec<DeviceEvent> {
        let events = match received {
            Received::QueueEmpty => return vec![DeviceEvent::QueueEmpty],
            Received::Contacts => return Vec::new(),
            Received::Content(content) => self.map_content(&content).await,
        };
        // presage saved the message before handing it over; the journal has what matters.
        if let Err(e) = self.manager.store().clone().clear_messages().await {
            tracing::warn!(error = %e, "cannot clear presage's copy of received messages");
        }
        events
    }

    async fn map_content(&self, content: &Content) -> Vec<DeviceEvent> {
        let meta = &content.metadata;
        let ServiceId::Aci(sender) = meta.sender else {
            return Vec::new();
        };
        let mut events = Vec::new();
        // Any message type can carry a new identity: check them all.
        if sender != self.own_aci
            && identity_changed(self.manager.store(), &self.identities, sender).await
        {
            tracing::warn!(sender = %sender.service_id_string(), "a contact's safety number changed");
            events.push(DeviceEvent::IdentityChanged {
                sender: sender.service_id_string(),
            });
        }
        match mapping::map(content, self.own_aci, &self.manager).await {
            Mapped::Event(event) => {
                // The sender's ACI is what `[signal] owner` wants; the body is not logged.
                tracing::info!(
                    sender = %sender.service_id_string(),
                    device = u32::from(meta.sender_device),
                    sealed = meta.unidentified_sender,
                    kind = mapping::kind(&event),
                    "message received"
                );
                events.push(DeviceEvent::Relay(event));
            }
            Mapped::Ignored => {}
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presage::libsignal_service::protocol::{DeviceId, IdentityKey};
    use presage_store_sqlite::{OnNewIdentity, SqliteConnectOptions};

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

    async fn store() -> (SqliteStore, RefCell<KnownIdentities>, TempDir) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pane-signal-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.join("store.db3"))
            .create_if_missing(true);
        let store = SqliteStore::open_with_options(options, OnNewIdentity::Trust)
            .await
            .unwrap();
        let key = crate::sealing::StateKeys::derive("device test").identities;
        let known =
            RefCell::new(KnownIdentities::load(&dir.join("known-identities"), key).unwrap());
        (store, known, TempDir(dir))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_changed_identity_key_is_reported_once_and_stays_pending() {
        let (store, known, _dir) = store().await;
        let address =
            ServiceId::from(aci(OTHER)).to_protocol_address(DeviceId::try_from(3u32).unwrap());
        let key = |b: u8| IdentityKey::decode(&[[5u8].as_slice(), &[b; 32]].concat()).unwrap();
        let mut protocol = store.aci_protocol_store();
        assert!(
            !identity_changed(&store, &known, aci(OTHER)).await,
            "no key yet"
        );
        protocol.save_identity(&address, &key(1)).await.unwrap();
        assert!(
            !identity_changed(&store, &known, aci(OTHER)).await,
            "first key: trusted"
        );
        assert!(!known.borrow().is_pending(OTHER));
        protocol.save_identity(&address, &key(2)).await.unwrap();
        assert!(
            identity_changed(&store, &known, aci(OTHER)).await,
            "a new key is a change"
        );
        assert!(known.borrow().is_pending(OTHER), "and sends to it wait");
        assert!(
            !identity_changed(&store, &known, aci(OTHER)).await,
            "reported once"
        );
        known.borrow_mut().confirm(OTHER).unwrap();
        assert!(!known.borrow().is_pending(OTHER));
        assert!(!identity_changed(&store, &known, aci(OTHER)).await);
    }
}
