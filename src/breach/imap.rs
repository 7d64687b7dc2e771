//! The IMAP source: the mailbox the aliases forward to, read incrementally.
//!
//! The cursor is (UIDVALIDITY, last UID seen). A sweep selects the mailbox and, when
//! `UIDNEXT` shows nothing new, fetches nothing at all; otherwise it fetches only the headers
//! (`BODY.PEEK[HEADER]`, which leaves messages unread) of UIDs after the cursor. A changed
//! UIDVALIDITY means the old UIDs mean nothing: the mailbox is read again from the start, and
//! the incident store's fingerprints keep a message from being counted twice.

use crate::config::{ImapConfig, ImapTls};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How far the mailbox has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The mailbox's UIDVALIDITY when it was read.
    pub uid_validity: u32,
    /// The highest UID read.
    pub last_uid: u32,
}

/// One new message's headers.
#[derive(Debug, Clone)]
pub struct Headers {
    /// Its UID.
    pub uid: u32,
    /// The raw header block.
    pub raw: Vec<u8>,
    /// When the server received it (`INTERNALDATE`), RFC 3339.
    pub received: Option<String>,
}

/// What one read returned.
#[derive(Debug, Default)]
pub struct Batch {
    /// Each new message's headers.
    pub messages: Vec<Headers>,
    /// The cursor to store once the messages are recorded.
    pub cursor: Option<Cursor>,
    /// True when UIDVALIDITY changed and the mailbox was read from the start.
    pub rescanned: bool,
}

/// Why the source could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImapError {
    /// Not configured or no password.
    #[error("IMAP is not configured: {0}")]
    NotConfigured(String),
    /// Connecting, TLS, login or a command failed.
    #[error("IMAP {0}")]
    Failed(String),
}

pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Stream for T {}

pub(super) type Session = async_imap::Session<Box<dyn Stream>>;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The IMAP source.
#[derive(Clone)]
pub struct ImapSource {
    config: ImapConfig,
    password: String,
    /// The certificates of `ca_file`, read once at start.
    extra_roots: Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
    /// The way out (`[network] proxy`).
    egress: crate::egress::Egress,
}

impl std::fmt::Debug for ImapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ImapSource({}@{}:{})",
            self.config.user, self.config.host, self.config.port
        )
    }
}

/// The certificates in `[breach.imap] ca_file` (none when it is empty). A file that cannot
/// be read, or holds no certificate, turns the source off with the reason, rather than
/// falling back to the public roots alone, which would only fail later and less clearly.
fn read_ca_file(
    path: &str,
) -> Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>, ImapError> {
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer};
    if path.trim().is_empty() {
        return Ok(Vec::new());
    }
    let bad =
        |why: String| ImapError::NotConfigured(format!("[breach.imap] ca_file {path:?}: {why}"));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM certificates ({e})")))?;
    if certs.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(certs)
}

/// An IMAP failure; its text can quote the server's own words (NO / BAD responses), which
/// reach the sweep's reply, so layout characters are escaped ([`crate::text`]).
pub(super) fn failed(what: &str, e: impl std::fmt::Display) -> ImapError {
    ImapError::Failed(format!(
        "{what}: {}",
        crate::text::escape_cut(&e.to_string(), crate::text::Lines::Single, 200)
    ))
}

impl ImapSource {
    /// The source from the config, with the password from `PANE_IMAP_PASSWORD`, connecting
    /// through `egress`; None when no host is configured (the source is off).
    pub fn from_config(
        config: &ImapConfig,
        egress: &crate::egress::Egress,
    ) -> Option<Result<ImapSource, ImapError>> {
        if config.host.trim().is_empty() {
            return None;
        }
        if egress.proxy().is_some() && crate::egress::is_local(&config.host) {
            return Some(Err(ImapError::NotConfigured(format!(
                "[breach.imap] host {:?} is a local address: with [network] proxy set the mailbox is reached through the proxy, which cannot reach it (nothing goes around it)",
                config.host
            ))));
        }
        let Some(password) = crate::systemd::env_or_credential("PANE_IMAP_PASSWORD") else {
            return Some(Err(ImapError::NotConfigured(
                "set PANE_IMAP_PASSWORD".into(),
            )));
        };
        let extra_roots = match read_ca_file(&config.ca_file) {
            Ok(roots) => roots,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(ImapSource {
            config: config.clone(),
            password,
            extra_roots,
            egress: egress.clone(),
        }))
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, ImapError> {
        // Through `[network] proxy` when set (the proxy resolves the host), else directly.
        let tcp = self
            .egress
            .connect("imap", &self.config.host, self.config.port, TIMEOUT)
            .await
            .map_err(|e| failed("connect", e))?;
        match self.config.tls {
            ImapTls::Tls => Ok(Box::new(self.tls(tcp).await?)),
            ImapTls::Starttls => {
                let mut client = async_imap::Client::new(tcp);
                client
                    .read_response()
                    .await
                    .map_err(|e| failed("greeting", e))?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| failed("STARTTLS", e))?;
                let tcp = client.into_inner();
                Ok(Box::new(self.tls(tcp).await?))
            }
            ImapTls::None => Ok(Box::new(tcp)),
        }
    }

    async fn tls(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
        use tokio_rustls::rustls;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for ca in &self.extra_roots {
            roots.add(ca.clone()).map_err(|e| failed("ca_file", e))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| failed("TLS", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(self.config.host.clone())
            .map_err(|e| failed("TLS name", e))?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| failed("TLS", e))
    }

    /// Reads the headers of every message after `cursor`.
    pub async fn read_new(&self, cursor: Option<Cursor>) -> Result<Batch, ImapError> {
        tokio::time::timeout(TIMEOUT * 4, self.read_new_inner(cursor))
            .await
            .map_err(|_| failed("sweep", "timed out"))?
    }

    pub(super) async fn open(&self) -> Result<(Session, async_imap::types::Mailbox), ImapError> {
        let stream = self.connect().await?;
        let mut client = async_imap::Client::new(stream);
        if self.config.tls != ImapTls::Starttls {
            client
                .read_response()
                .await
                .map_err(|e| failed("greeting", e))?;
        }
        let mut session = client
            .login(&self.config.user, &self.password)
            .await
            .map_err(|(e, _)| failed("login", e))?;
        let mailbox = session
            .select(&self.config.mailbox)
            .await
            .map_err(|e| failed("select", e))?;
        Ok((session, mailbox))
    }

    /// Waits, in IMAP IDLE, until the mailbox changes (true), or returns false after
    /// `max_wait` (servers drop idle clients after 30 minutes). Errors when the server has no
    /// IDLE or the connection fails.
    pub async fn wait_for_mail(&self, max_wait: Duration) -> Result<bool, ImapError> {
        let (mut session, _) = self.open().await?;
        let caps = session
            .capabilities()
            .await
            .map_err(|e| failed("capabilities", e))?;
        if !caps.has_str("IDLE") {
            return Err(ImapError::NotConfigured(
                "the server does not support IDLE".into(),
            ));
        }
        let mut idle = session.idle();
        idle.init().await.map_err(|e| failed("idle", e))?;
        let (wait, _stop) = idle.wait_with_timeout(max_wait);
        let changed = matches!(
            wait.await.map_err(|e| failed("idle", e))?,
            async_imap::extensions::idle::IdleResponse::NewData(_)
        );
        if let Ok(mut session) = idle.done().await {
            let _ = session.logout().await;
        }
        Ok(changed)
    }

    async fn read_new_inner(&self, cursor: Option<Cursor>) -> Result<Batch, ImapError> {
        let (mut session, mailbox) = self.open().await?;
        let uid_validity = mailbox
            .uid_validity
            .ok_or_else(|| failed("select", "the server sent no UIDVALIDITY"))?;
        let (start, rescanned) = match cursor {
            Some(c) if c.uid_validity == uid_validity => (c.last_uid.saturating_add(1), false),
            Some(_) => (1, true),
            None => (1, false),
        };
        let mut batch = Batch {
            messages: Vec::new(),
            cursor: Some(Cursor {
                uid_validity,
                last_uid: start.saturating_sub(1),
            }),
            rescanned,
        };
        let nothing_new = mailbox.uid_next.is_some_and(|next| next <= start) || mailbox.exists == 0;
        if !nothing_new {
            let mut fetches = session
                .uid_fetch(format!("{start}:*"), "(UID INTERNALDATE BODY.PEEK[HEADER])")
                .await
                .map_err(|e| failed("fetch", e))?;
            while let Some(item) = fetches.next().await {
                let fetch = item.map_err(|e| failed("fetch", e))?;
                // `N:*` also returns the last message when N is past the end: skip it.
                let Some(uid) = fetch.uid.filter(|u| *u >= start) else {
                    continue;
                };
                if let Some(header) = fetch.header() {
                    batch.messages.push(Headers {
                        uid,
                        raw: header.to_vec(),
                        received: fetch.internal_date().map(|d| {
                            d.with_timezone(&chrono::Utc)
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        }),
                    });
                }
                if let Some(c) = batch.cursor.as_mut() {
                    c.last_uid = c.last_uid.max(uid);
                }
            }
        }
        let _ = session.logout().await;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        assert!(read_ca_file("").is_ok_and(|c| c.is_empty()));
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = read_ca_file(&empty.display().to_string())
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err}");
        let missing = read_ca_file("/nonexistent/ca.pem").map(|_| ()).unwrap_err();
        assert!(missing.to_string().contains("ca_file"), "{missing}");
    }
}
