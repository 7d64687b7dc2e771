//! What presage's errors say, for the relay: a connection that may be tried again, or a
//! registration Signal refuses (credentials, a client too old), and for a send, whether trying
//! again may help or what Signal wants first (a challenge).

use super::PresageError;
use crate::relay::SendFailure;
use pane_protocol::device::DeviceError;
use pane_protocol::messages::{Challenge, Registration};
use presage::libsignal_service::prelude::MessageSenderError;
use presage::libsignal_service::protocol::{Aci, ServiceId};
use presage::libsignal_service::push_service::ServiceError;

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
pub(super) fn connect_error(e: PresageError) -> DeviceError {
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
pub(super) fn send_error(e: PresageError, own_aci: Aci) -> SendFailure {
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

    const OTHER: &str = "5d1f7c2a-9b3e-4f60-8a21-3c4d5e6f7a8b";
    const SELF: &str = "7e2a9c41-3b5d-4f68-9a10-2c3d4e5f6a7b";

    fn aci(s: &str) -> Aci {
        Aci::parse_from_service_id_string(s).unwrap()
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
