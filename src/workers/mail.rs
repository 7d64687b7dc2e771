//! The mail reader: an actor that answers `inbox` and `mail` by fetching bodies from the
//! mailbox the breach monitor reads, over one IMAP session it keeps open while it is used
//! (closed after a minute unused, opened again on the next request, and once more when the
//! server dropped it). Requests are served one at a time, so a burst of them costs one
//! connection, not one each. The gate never waits for it: each request is a job whose result
//! comes back into the gate's loop.
//!
//! Bodies are fetched with `BODY.PEEK` (the message stays unread) and a byte cap, searched,
//! rendered, and dropped when the reply is made: nothing of them is stored or logged.

use crate::breach::imap::{ImapError, ImapSource};
use crate::breach::imap_bodies::{Body, MailSession};
use crate::commands::inbox::{Inbox, InboxItem, InboxOutput};
use crate::commands::mail::{document, Mail, MailOutput, PAGE_BYTES};
use crate::context::{Context, Contexts};
use crate::inbox::extract::{extract, Found, Site};
use crate::inbox::index::{MailEntry, MailIndex};
use crate::inbox::render::{name_of, render, Attachment, Rendered};
use crate::reply::{internal, CommandError, ErrorKind};
use crate::store::Store;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The most bytes of a message fetched for `inbox` (codes and links are near the top).
pub const INBOX_CAP: u32 = 256 * 1024;
/// The most bytes of a message fetched for `mail`.
pub const MAIL_CAP: u32 = 4 * 1024 * 1024;
/// How long an unused session stays open.
const IDLE_CLOSE: Duration = Duration::from_secs(60);

enum Request {
    Inbox(Inbox, oneshot::Sender<Result<InboxOutput, CommandError>>),
    Mail(Mail, oneshot::Sender<Result<MailOutput, CommandError>>),
}

/// The handle: clones share the reader.
#[derive(Clone, Debug)]
pub struct MailHandle {
    sender: mpsc::UnboundedSender<Request>,
}

struct MailReader {
    source: Option<Result<ImapSource, ImapError>>,
    session: Option<MailSession>,
    index: MailIndex,
    contexts: Contexts,
    receiver: mpsc::UnboundedReceiver<Request>,
}

impl MailHandle {
    /// Starts the reader over the breach monitor's mailbox (`source`, None when none is
    /// configured) and its index in `store`.
    pub fn start(
        store: &Store,
        contexts: Contexts,
        source: Option<Result<ImapSource, ImapError>>,
    ) -> MailHandle {
        let (sender, receiver) = mpsc::unbounded_channel();
        let reader = MailReader {
            source,
            session: None,
            index: MailIndex::new(store),
            contexts,
            receiver,
        };
        tokio::spawn(reader.run());
        MailHandle { sender }
    }

    /// Asks for a page of a context's mail; the receiver gets the answer.
    pub fn inbox(&self, query: Inbox) -> oneshot::Receiver<Result<InboxOutput, CommandError>> {
        let (tx, rx) = oneshot::channel();
        // A reader that stopped drops the reply, which its receiver reports.
        let _ = self.sender.send(Request::Inbox(query, tx));
        rx
    }

    /// Asks for one message; the receiver gets the answer.
    pub fn mail(&self, query: Mail) -> oneshot::Receiver<Result<MailOutput, CommandError>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.sender.send(Request::Mail(query, tx));
        rx
    }
}

fn unavailable(e: impl std::fmt::Display) -> CommandError {
    CommandError::new(ErrorKind::Unavailable, e.to_string())
}

impl MailReader {
    async fn run(mut self) {
        loop {
            let open = self.session.is_some();
            let idle = async move {
                if open {
                    tokio::time::sleep(IDLE_CLOSE).await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                request = self.receiver.recv() => match request {
                    Some(Request::Inbox(q, tx)) => {
                        let _ = tx.send(self.inbox(q).await);
                    }
                    Some(Request::Mail(q, tx)) => {
                        let _ = tx.send(self.mail(q).await);
                    }
                    None => break,
                },
                _ = idle => {
                    if let Some(s) = self.session.take() {
                        s.close().await;
                    }
                }
            }
        }
        if let Some(s) = self.session.take() {
            s.close().await;
        }
    }

    fn context(&self, name: &str) -> Result<Context, CommandError> {
        self.contexts.get(name).map_err(internal)?.ok_or_else(|| {
            CommandError::new(ErrorKind::NotFound, format!("context not found: {name}"))
        })
    }

    /// The bodies of `uids` under `validity`, over the open session (opened, or opened
    /// again once when the server had dropped it).
    async fn fetch(
        &mut self,
        validity: u32,
        uids: &[u32],
        cap: u32,
    ) -> Result<Vec<Body>, CommandError> {
        let source = match &self.source {
            None => {
                return Err(CommandError::new(
                    ErrorKind::Unavailable,
                    "no mailbox is configured ([breach.imap] host)",
                ))
            }
            Some(Err(e)) => return Err(unavailable(e)),
            Some(Ok(s)) => s.clone(),
        };
        for attempt in 0..2 {
            let mut session = match self.session.take() {
                Some(s) => s,
                None => source.session().await.map_err(unavailable)?,
            };
            if session.uid_validity() != validity {
                session.close().await;
                return Err(CommandError::new(
                    ErrorKind::Conflict,
                    "the mailbox was renumbered (its UIDVALIDITY changed): the next sweep reads it again; ask again after it",
                ));
            }
            match session.bodies(uids, cap).await {
                Ok(bodies) => {
                    self.session = Some(session);
                    return Ok(bodies);
                }
                // A session the server dropped while unused: one fresh try.
                Err(_) if attempt == 0 => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(unavailable("IMAP fetch failed"))
    }

    async fn inbox(&mut self, q: Inbox) -> Result<InboxOutput, CommandError> {
        let ctx = self.context(&q.context)?;
        let (page, more) = self
            .index
            .page(&q.context, q.after, q.limit as usize)
            .map_err(internal)?;
        let mut bodies_unavailable = None;
        let mut bodies: Vec<Body> = Vec::new();
        if let Some(validity) = page.first().map(|e| e.uid_validity) {
            let uids: Vec<u32> = page.iter().map(|e| e.header.id).collect();
            match self.fetch(validity, &uids, INBOX_CAP).await {
                Ok(b) => bodies = b,
                Err(e) => bodies_unavailable = Some(e.message),
            }
        }
        let messages = page
            .into_iter()
            .map(|entry| {
                let body = bodies.iter().find(|b| b.uid == entry.header.id);
                let found = body
                    .map(|b| read(&ctx, &entry, b).1)
                    .unwrap_or_else(|| extract(&entry.header.subject, "", &[], site(&ctx), false));
                InboxItem {
                    foreign_links: found.links.iter().filter(|l| l.foreign).count(),
                    links: found.action_links().cloned().collect(),
                    codes: found.codes,
                    references: found.references,
                    header: entry.header,
                }
            })
            .collect::<Vec<_>>();
        Ok(InboxOutput {
            context: ctx.name.clone(),
            site: ctx.domain.clone(),
            count: messages.len(),
            messages,
            more,
            bodies_unavailable,
        })
    }

    async fn mail(&mut self, q: Mail) -> Result<MailOutput, CommandError> {
        let names: Vec<String> = self
            .contexts
            .all()
            .map_err(internal)?
            .into_iter()
            .map(|c| c.name)
            .collect();
        let not_found = || {
            CommandError::new(
                ErrorKind::NotFound,
                format!(
                    "no mail #{} to any of your aliases (send `inbox` with a context for the ids)",
                    q.id
                ),
            )
        };
        let (context, entry) = self
            .index
            .find(names.iter().map(String::as_str), q.id)
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let ctx = self.context(&context)?;
        let bodies = self
            .fetch(entry.uid_validity, &[entry.header.id], MAIL_CAP)
            .await?;
        let body = bodies.into_iter().next().ok_or_else(not_found)?;
        let (rendered, found) = read(&ctx, &entry, &body);
        let attachments = attachments_of(&body, &rendered);
        let doc = document(&rendered.text, &found.links, &attachments, rendered.images);
        let pages = crate::inbox::pages::split(&doc, PAGE_BYTES);
        if q.page > pages.len() {
            return Err(CommandError::new(
                ErrorKind::InvalidArgs,
                format!("mail #{} has {} page(s)", q.id, pages.len()),
            ));
        }
        Ok(MailOutput {
            header: entry.header,
            context,
            page: q.page,
            pages: pages.len(),
            text: pages.into_iter().nth(q.page - 1).unwrap_or_default(),
            codes: found.codes,
            references: found.references,
            links: found.links,
            attachments,
            images: rendered.images,
            size: body.size,
            truncated: body.raw.len() < body.size as usize,
        })
    }
}

fn site(ctx: &Context) -> Site<'_> {
    Site {
        domain: &ctx.domain,
        senders: &ctx.sender_domains,
    }
}

/// A body rendered and searched.
fn read(ctx: &Context, entry: &MailEntry, body: &Body) -> (Rendered, Found) {
    let rendered = render(&body.raw);
    let found = extract(
        &entry.header.subject,
        &rendered.text,
        &rendered.anchors,
        site(ctx),
        !rendered.from_html,
    );
    (rendered, found)
}

/// The attachments as the server describes them (exact even when the fetch was cut short),
/// else as the parsed message has them.
fn attachments_of(body: &Body, rendered: &Rendered) -> Vec<Attachment> {
    if body.parts.is_empty() {
        return rendered.attachments.clone();
    }
    body.parts
        .iter()
        .map(|p| Attachment {
            name: name_of(p.name.as_deref()),
            content_type: crate::text::escape_cut(&p.content_type, crate::text::Lines::Single, 60),
            size: p.size,
        })
        .collect()
}
