//! Who sent a message to which alias, and whether that sender belongs to the site.
//!
//! Forwarders put the original sender in their own headers: addy.io in
//! `X-AnonAddy-Original-Sender` (the alias stays in `To:`), SimpleLogin in
//! `X-SimpleLogin-Original-From` and `X-SimpleLogin-Envelope-To`; mail sent straight to an
//! alias on the owner's own domain has the sender in `From` and the alias in `Delivered-To`
//! (else `To`). Domains are compared by registrable domain (public suffix list), never by
//! substring: `mail.notion.so` belongs to `notion.so`; `evilnotion.so`,
//! `notion.so.evil.example` and `notion-so.com` do not. Header text is untrusted: it is only
//! ever shown escaped and truncated.

use mail_parser::{HeaderValue, MessageParser};

/// What one message says about where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The alias it was sent to (lowercase).
    pub alias: String,
    /// The original sender's address (lowercase).
    pub sender: String,
    /// The sender's registrable domain.
    pub sender_domain: String,
    /// The subject, escaped and truncated, for the incident sample.
    pub subject: String,
    /// A stable fingerprint of the message, so a rescan never counts it twice.
    pub fingerprint: String,
    /// The values of the result headers that describe the original sender, topmost first:
    /// `X-AnonAddy-Authentication-Results` for addy.io mail, else `Authentication-Results`
    /// ([`super::authres`] says which to believe).
    pub auth_results: Vec<String>,
}

/// The registrable domain of `host` ("mail.notion.so" -> "notion.so"), lowercase. None for
/// anything that is not a host name, including one with an empty label (`x..co.uk`,
/// `.notion.so`): the public suffix list would otherwise make `.co.uk` of it.
pub fn registrable(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty()
        || host.split('.').any(str::is_empty)
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return None;
    }
    psl::domain_str(&host).map(str::to_string)
}

/// True when mail from `sender_domain` is expected for a context enrolled on `site_domain`,
/// or from one of the context's extra sender domains.
pub fn belongs(sender_domain: &str, site_domain: &str, extra: &[String]) -> bool {
    let Some(sender) = registrable(sender_domain) else {
        return false;
    };
    registrable(site_domain).as_deref() == Some(sender.as_str())
        || extra
            .iter()
            .any(|d| registrable(d).as_deref() == Some(sender.as_str()))
}

/// Pulls the bare address out of header text such as `"Name" <a@b.c>` or `a@b.c`.
pub fn address_in(text: &str) -> Option<String> {
    let candidate = match (text.rfind('<'), text.rfind('>')) {
        (Some(l), Some(r)) if l < r => &text[l + 1..r],
        _ => text,
    };
    let addr = candidate
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .find(|t| t.contains('@'))?
        .trim_matches(|c| c == '"' || c == '\'' || c == '<' || c == '>');
    let (local, domain) = addr.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some(addr.to_ascii_lowercase())
}

/// Escapes untrusted text for a one-line field of an incident or alert: line and paragraph
/// separators, zero-width, bidirectional and other control characters are shown as
/// `\u{..}` ([`crate::text`]), and the result is cut to `max` characters.
pub fn escape_untrusted(text: &str, max: usize) -> String {
    crate::text::escape_cut(text, crate::text::Lines::Single, max)
}

fn header_text(value: &HeaderValue<'_>) -> Option<String> {
    match value {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(l) => Some(l.join(", ")),
        HeaderValue::Address(a) => a
            .first()
            .and_then(|addr| addr.address())
            .map(str::to_string),
        _ => None,
    }
}

/// An observation from a provider's activity log, where sender and alias are given apart;
/// `fingerprint` must identify the log entry.
pub fn observe_sender(alias: &str, sender: &str, fingerprint: String) -> Option<Observation> {
    let sender = address_in(sender)?;
    let alias = address_in(alias)?;
    let sender_domain = registrable(sender.rsplit_once('@')?.1)?;
    Some(Observation {
        alias,
        sender,
        sender_domain,
        subject: String::new(),
        fingerprint,
        auth_results: Vec::new(),
    })
}

/// Reads the headers of one message (the raw header block is enough) into an observation.
/// None when it names no alias or no sender.
pub fn observe(raw_headers: &[u8]) -> Option<Observation> {
    let msg = MessageParser::default().parse_headers(raw_headers)?;
    let get = |name: &str| -> Option<String> {
        msg.headers()
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .and_then(|h| header_text(h.value()))
    };
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string);
    let to = msg
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string);
    let addy = get("X-AnonAddy-Original-Sender");
    let results_header = if addy.is_some() {
        "X-AnonAddy-Authentication-Results"
    } else {
        "Authentication-Results"
    };
    let auth_results: Vec<String> = msg
        .headers()
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(results_header))
        .filter_map(|h| header_text(h.value()))
        .take(20)
        .collect();
    let (sender, alias) = if let Some(s) = addy {
        (address_in(&s), to)
    } else if let Some(s) = get("X-SimpleLogin-Original-From") {
        (address_in(&s), get("X-SimpleLogin-Envelope-To").or(to))
    } else {
        (from, get("Delivered-To").or(to))
    };
    let sender = address_in(&sender?)?;
    let alias = address_in(&alias?)?;
    let sender_domain = registrable(sender.rsplit_once('@')?.1)?;
    let subject = escape_untrusted(msg.subject().unwrap_or(""), 120);
    let message_id = msg.message_id().unwrap_or("");
    let date = msg.date().map(|d| d.to_rfc3339()).unwrap_or_default();
    let fingerprint = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for part in [message_id, &date, &sender, &alias, &subject] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..16])
    };
    Some(Observation {
        alias,
        sender,
        sender_domain,
        subject,
        fingerprint,
        auth_results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains_not_substrings() {
        assert!(belongs("mail.notion.so", "notion.so", &[]));
        assert!(belongs("notion.so", "www.notion.so", &[]));
        for bad in [
            "evilnotion.so",
            "notion.so.evil.example",
            "notion-so.com",
            "notion.so.com",
        ] {
            assert!(!belongs(bad, "notion.so", &[]), "{bad}");
        }
        assert!(belongs(
            "mailgun.net",
            "notion.so",
            &["mailgun.net".to_string()]
        ));
        assert!(belongs("a.b.example.co.uk", "shop.example.co.uk", &[]));
        assert!(!belongs("other.co.uk", "example.co.uk", &[]));
    }

    #[test]
    fn empty_labels_are_not_host_names() {
        // Found by the sender_matching fuzz target: psl made ".co.uk" of "oteahr..co.uk".
        for bad in [
            "oteahr..co.uk",
            "email.shoou..pk",
            ".notion.so",
            "a..b",
            ".",
        ] {
            assert_eq!(registrable(bad), None, "{bad}");
        }
        assert_eq!(registrable("Mail.Notion.SO.").as_deref(), Some("notion.so"));
        let mail = b"From: Shop <news@email.shoou..pk>\r\nTo: alias@me.example\r\n\r\n";
        assert!(observe(mail).is_none());
    }

    #[test]
    fn headers_of_each_forwarder() {
        let addy = b"From: \"Notion via addy\" <x@anonaddy.me>\r\nTo: notion.x7k@anonaddy.me\r\nX-AnonAddy-Original-Sender: spam@evil.example\r\nSubject: Hi\r\n\r\n";
        let o = observe(addy).unwrap();
        assert_eq!(
            (o.alias.as_str(), o.sender_domain.as_str()),
            ("notion.x7k@anonaddy.me", "evil.example")
        );
        let sl = b"From: \"Evil - at evil.example\" <reply@sl.local>\r\nTo: me@real.example\r\nX-SimpleLogin-Original-From: Evil <news@mail.evil.example>\r\nX-SimpleLogin-Envelope-To: notion@slmail.me\r\nSubject: x\r\n\r\n";
        let o = observe(sl).unwrap();
        assert_eq!(
            (o.alias.as_str(), o.sender_domain.as_str()),
            ("notion@slmail.me", "evil.example")
        );
        let direct = b"From: Notion <team@mail.notion.so>\r\nDelivered-To: notion@me.example\r\nTo: someone@else.example\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n\r\n";
        let o = observe(direct).unwrap();
        assert_eq!(
            (o.alias.as_str(), o.sender_domain.as_str()),
            ("notion@me.example", "notion.so")
        );
        assert_eq!(o.subject, "Café");
        assert!(o.auth_results.is_empty());
        let signed = b"Authentication-Results: mx.me.example;\r\n dmarc=fail header.from=notion.so\r\nAuthentication-Results: evil.example; dmarc=pass\r\nX-AnonAddy-Authentication-Results: addy.example; dmarc=pass\r\nFrom: <a@notion.so>\r\nDelivered-To: notion@me.example\r\n\r\n";
        let o = observe(signed).unwrap();
        assert_eq!(o.auth_results.len(), 2, "{:?}", o.auth_results);
        assert!(o.auth_results[0].starts_with("mx.me.example;"));
        let mut via_addy =
            b"X-AnonAddy-Original-Sender: a@notion.so\r\nTo: n@anonaddy.me\r\n".to_vec();
        via_addy.extend_from_slice(signed);
        let o = observe(&via_addy).unwrap();
        assert_eq!(o.auth_results, vec!["addy.example; dmarc=pass".to_string()]);
        assert!(observe(b"Subject: no addresses\r\n\r\n").is_none());
    }

    #[test]
    fn untrusted_text_is_escaped() {
        let s = escape_untrusted("a\u{202e}b\nc", 50);
        assert!(!s.contains('\u{202e}') && !s.contains('\n'), "{s}");
        assert_eq!(escape_untrusted(&"x".repeat(10), 3), "xxx…");
    }
}
