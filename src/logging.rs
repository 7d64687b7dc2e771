//! The log's way out: standard error, through the redactor.
//!
//! Log lines carry text from outside the process (a provider's error message, an IMAP
//! server's answer) that can quote a secret back, as a provider refusing a request may
//! repeat the key it was given. So every line goes through the same redactor as replies and
//! the audit log before it is written. The daemon installs its redactor ([`set_redactor`])
//! once it has loaded its secrets, and again when `secrets.reload` adds some; until then
//! (and in the short-lived client commands) the redactor without known secrets still removes
//! secret-shaped strings. It is process-wide because the log itself is.

use crate::redact::Redactor;
use std::io::Write;
use std::sync::RwLock;

static REDACTOR: RwLock<Option<Redactor>> = RwLock::new(None);

/// Makes `redactor` the one every later log line goes through.
pub fn set_redactor(redactor: Redactor) {
    let mut slot = match REDACTOR.write() {
        Ok(slot) => slot,
        Err(poisoned) => poisoned.into_inner(),
    };
    *slot = Some(redactor);
}

fn redact(line: &str) -> String {
    let slot = match REDACTOR.read() {
        Ok(slot) => slot,
        Err(poisoned) => poisoned.into_inner(),
    };
    match slot.as_ref() {
        Some(redactor) => redactor.text(line),
        None => Redactor::default().text(line),
    }
}

/// The writer to give `tracing_subscriber::fmt().with_writer(..)`: standard error, each
/// line redacted.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> RedactedLine {
        RedactedLine
    }
}

/// One log event on its way to standard error. The fmt layer formats a whole event and
/// hands it over in one `write_all`; this takes all of it in one `write`, so a secret is
/// never split across two calls.
#[derive(Debug)]
pub struct RedactedLine;

impl Write for RedactedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = redact(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_redacted_with_the_installed_redactor() {
        // Before any redactor is installed, secret shapes still go.
        assert_eq!(
            redact("card 4111 1111 1111 1111 refused"),
            "card [redacted] refused"
        );
        set_redactor(Redactor::new(["hunter2hunter2".to_string()]));
        assert_eq!(
            redact("provider said: bad key hunter2hunter2\n"),
            "provider said: bad key [redacted]\n"
        );
        let mut w = RedactedLine;
        assert_eq!(w.write(b"abc").ok(), Some(3), "the whole buffer is taken");
    }
}
