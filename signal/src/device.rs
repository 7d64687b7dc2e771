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
use pane_protocol::messages::{Challenge, Registration};
use presage::libsignal_service::content::Content;
use presage::libsignal_service::prelude::MessageSenderError;
use presage::libsignal_service::protocol::{Aci, IdentityKeyStore, ServiceId};
use presage::libsignal_service::push_service::{ServiceError, DEFAULT_DEVICE_ID};
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

/// The HTTP status a refused websocket upgrade carried, found in the error's chain
/// (reqwest-websocket's `HandshakeError::UnexpectedStatusCode`, which libsignal-service wraps
/// as `ServiceError::WsError` rather than reading it as `Unauthorized`).
fn refused_upgrade(e: &(dyn std::error::Error + 'static)) -> Option<u16> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(rest) = err.to_string().strip_prefix("unexpected status code: ") {
            return rest.get(..3).and_then(|code| code.parse().ok());
        }
        cur = err.source();
    }
    None
}

/// Why the receiving websocket could not be opened.
fn connect_error(e: PresageError) -> DeviceError {
    // libsignal-service's `WsError` shows its cause in its text but is not its `source`: the
    // chain is read from the websocket error itself.
    let status = match &e {
        PresageError::ServiceError(ServiceError::WsError(ws)) => refused_upgrade(ws.as_ref()),
        other => refused_upgrade(other),
    };
    match status {
        Some(401 | 403) => return DeviceError::Unlinked(CREDENTIALS_REFUSED.into()),
        Some(499) => return DeviceError::Outdated(TOO_OLD.into()),
        _ => {}
    }
    match e {
        PresageError::NotYetRegisteredError | PresageError::RelinkNecessary => {
            DeviceError::Unlinked(e.to_string())
        }
        PresageError::ServiceError(ServiceError::Unauthorized) => {
            DeviceError::Unlinked(CREDENTIALS_REFUSED.into())
        }
        PresageError::ServiceError(ServiceError::UnhandledResponseCode { http_code: 499 }) => {
            DeviceError::Outdated(TOO_OLD.into())
        }
        other => DeviceError::Disconnected(other.to_string()),
    }
}

/// What the gateway says when Signal refuses the device's credentials (HTTP 401 or 403, which
/// libsignal-service does not tell apart).
const CREDENTIALS_REFUSED: &str = "Signal refused this device's credentials (HTTP 401/403): it was unlinked from the phone, or the account was unregistered";
/// What it says when Signal refuses the client as too old.
const TOO_OLD: &str = "Signal refused this client as too old (HTTP 499): update pane-signal";

/// A failed send, and whether trying again may help.
fn send_error(e: PresageError, own_aci: Aci) -> SendFailure {
    let refused = |registration: Registration, message: &str, challenge: Option<Challenge>| {
        SendFailure::Refused {
            message: message.to_string(),
            registration,
            challenge,
        }
    };
    let service = match &e {
        PresageError::ServiceError(s) => Some(s),
        PresageError::MessageSenderError(s) => match s.as_ref() {
            MessageSenderError::ServiceError(s) => Some(s),
            MessageSenderError::ProofRequired { token, options } => {
                return refused(
                    Registration::ProofRequired,
                    "Signal wants a challenge solved before it takes more messages (HTTP 428)",
                    Some(Challenge {
                        token: token.clone(),
                        options: options.clone(),
                    }),
                )
            }
            MessageSenderError::NotFound { service_id } if *service_id == ServiceId::from(own_aci) => {
                return refused(
                    Registration::Unregistered,
                    "Signal says this account is not registered any more (HTTP 404 for its own number)",
                    None,
                )
            }
            _ => None,
        },
        _ => None,
    };
    match service {
        Some(ServiceError::Unauthorized) => {
            return refused(Registration::Unlinked, CREDENTIALS_REFUSED, None)
        }
        Some(ServiceError::UnhandledResponseCode { http_code: 499 }) => {
            return refused(Registration::Outdated, TOO_OLD, None)
        }
        Some(ServiceError::ProofRequiredError(p)) => {
            return refused(
                Registration::ProofRequired,
                "Signal wants a challenge solved before it takes more messages (HTTP 428)",
                Some(Challenge {
                    token: p.token.clone(),
                    options: p.options.clone(),
                }),
            )
        }
        _ => {}
    }
    let retryable = match &e {
        PresageError::ServiceError(s) => service_retryable(s),
        PresageError::MessageSenderError(s) => match s.as_ref() {
            MessageSenderError::UntrustedIdentity { .. } => return SendFailure::IdentityChanged,
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
    SendFailure::Failed {
        message: e.to_string(),
        retryable,
    }
}

/// Network trouble and rate limits are worth retrying; refusals (unknown recipient, bad
/// credentials, a challenge to solve) are not.
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
    use presage::libsignal_service::protocol::{DeviceId, IdentityKey};
    use presage_store_sqlite::{OnNewIdentity, SqliteConnectOptions};

    const OTHER: &str = "5d1f7c2a-9b3e-4f60-8a21-3c4d5e6f7a8b";
    const SELF: &str = "7e2a9c41-3b5d-4f68-9a10-2c3d4e5f6a7b";

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

    /// An error that wraps another, as reqwest-websocket's `Error::Handshake` wraps its
    /// `HandshakeError`.
    #[derive(Debug)]
    struct Wrapping(&'static str, Option<Box<Wrapping>>);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn a_refused_websocket_upgrade_is_read_from_the_error_chain() {
        let chain = |code: &'static str| {
            Wrapping(
                "Websocket error",
                Some(Box::new(Wrapping(
                    "websocket upgrade failed",
                    Some(Box::new(Wrapping(code, None))),
                ))),
            )
        };
        assert_eq!(
            refused_upgrade(&chain("unexpected status code: 401 Unauthorized")),
            Some(401)
        );
        assert_eq!(
            refused_upgrade(&chain("unexpected status code: 499 <unknown status code>")),
            Some(499)
        );
        assert_eq!(refused_upgrade(&chain("connection reset")), None);
    }

    #[test]
    fn classifies_send_errors() {
        let retryable = |f: SendFailure| match f {
            SendFailure::Failed { retryable, .. } => Some(retryable),
            SendFailure::IdentityChanged | SendFailure::Refused { .. } => None,
        };
        let refusal = |f: SendFailure| match f {
            SendFailure::Refused {
                registration,
                challenge,
                ..
            } => Some((registration, challenge.map(|c| c.token))),
            _ => None,
        };
        let network = send_error(
            PresageError::ServiceError(ServiceError::Timeout { reason: "test" }),
            aci(SELF),
        );
        assert_eq!(retryable(network), Some(true));
        let unknown = send_error(
            PresageError::MessageSenderError(Box::new(MessageSenderError::NotFound {
                service_id: aci(OTHER).into(),
            })),
            aci(SELF),
        );
        assert_eq!(retryable(unknown), Some(false));
        assert_eq!(
            retryable(send_error(PresageError::UnknownRecipient, aci(SELF))),
            Some(false)
        );
        let untrusted = send_error(
            PresageError::MessageSenderError(Box::new(MessageSenderError::UntrustedIdentity {
                address: aci(OTHER).into(),
            })),
            aci(SELF),
        );
        assert_eq!(untrusted, SendFailure::IdentityChanged);
        // What Signal says of the registration goes to the link's health.
        let proof = send_error(
            PresageError::MessageSenderError(Box::new(MessageSenderError::ProofRequired {
                token: "tok".into(),
                options: vec!["captcha".into()],
            })),
            aci(SELF),
        );
        assert_eq!(
            refusal(proof),
            Some((Registration::ProofRequired, Some("tok".to_string())))
        );
        let gone = send_error(
            PresageError::MessageSenderError(Box::new(MessageSenderError::NotFound {
                service_id: aci(SELF).into(),
            })),
            aci(SELF),
        );
        assert_eq!(refusal(gone), Some((Registration::Unregistered, None)));
        let refused = send_error(
            PresageError::ServiceError(ServiceError::Unauthorized),
            aci(SELF),
        );
        assert_eq!(refusal(refused), Some((Registration::Unlinked, None)));
        let old = send_error(
            PresageError::ServiceError(ServiceError::UnhandledResponseCode { http_code: 499 }),
            aci(SELF),
        );
        assert_eq!(refusal(old), Some((Registration::Outdated, None)));
        assert!(matches!(
            connect_error(PresageError::ServiceError(
                ServiceError::UnhandledResponseCode { http_code: 499 }
            )),
            DeviceError::Outdated(_)
        ));
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
