//! What a person needs from a mail, pulled out: one-time codes, confirmation and sign-in
//! links, booking references.
//!
//! - **Codes** are 4–8 digits (`483920`, `483 920`, `483-920`), a short letter prefix and
//!   digits (`G-123456`), or 6–8 capitals and digits, two digits at least (`X7K9PQ`), on a line that
//!   says it is a code (`code`, `passcode`, `OTP`, `PIN`, `verification`, `one-time`, …) or
//!   on the short line right after one (a code set apart in a box). Numbers that are part of a
//!   link, an amount, a time, a date or a phone number are not codes.
//! - **References** are the same shapes (letters and digits, 5–10 long, or 6–12 digits) on a
//!   line that names a booking (`booking reference`, `PNR`, `reservation`, `confirmation
//!   number`, `record locator`, `order number`).
//! - **Links** are every http(s) link of the message (HTML `href`s and bare URLs in text),
//!   each with its registrable domain and a kind read from the link and its text: confirm
//!   (`confirm`, `verify`, `activate`, `validate`), sign-in (`login`, `signin`, `magic`,
//!   `auth`), reset (`reset`), unsubscribe, or other. A link whose registrable domain is not
//!   the site's, nor one of the context's `senders`, is marked `foreign`: the phishing sign.
//!
//! Nothing here follows a link: a link is text.

use super::html::Anchor;
use crate::breach::matching::{belongs, registrable};
use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Confirms an address or an account.
    Confirm,
    /// Signs in (a magic link).
    SignIn,
    /// Resets a password.
    Reset,
    /// Unsubscribes or manages mail preferences.
    Unsubscribe,
    /// Anything else.
    Other,
}

impl LinkKind {
    /// True for the links a person acts on to finish a signup or a sign-in.
    pub fn is_action(self) -> bool {
        matches!(self, LinkKind::Confirm | LinkKind::SignIn | LinkKind::Reset)
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Confirm => "confirm",
            LinkKind::SignIn => "sign_in",
            LinkKind::Reset => "reset",
            LinkKind::Unsubscribe => "unsubscribe",
            LinkKind::Other => "other",
        }
    }
}

/// One link of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// The URL as the mail has it (tracking parameters and all), escaped for display.
    pub url: String,
    /// Its registrable domain (the host itself when it has none, such as an IP address).
    pub domain: String,
    /// What it is for.
    pub kind: LinkKind,
    /// True when its domain is neither the site's nor one of the context's senders.
    pub foreign: bool,
}

/// What was found in one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Found {
    /// One-time codes, in order of appearance, each once.
    pub codes: Vec<String>,
    /// Booking references, in order, each once.
    pub references: Vec<String>,
    /// Every http(s) link, in order, each once.
    pub links: Vec<Link>,
}

impl Found {
    /// The links a person acts on (confirm, sign in, reset).
    pub fn action_links(&self) -> impl Iterator<Item = &Link> {
        self.links.iter().filter(|l| l.kind.is_action())
    }
}

/// Where the site lives, to judge links by.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The site's domain (the context's).
    pub domain: &'a str,
    /// The context's extra sender domains.
    pub senders: &'a [String],
}

static URL: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"(?i)\bhttps?://[^\s<>"'`\[\]{}|\\^]+"#).ok());

/// The token shapes, each matched on whole words.
static TOKEN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\b(?:[A-Z]{1,3}-\d{4,8}|\d{3}[ -]\d{3}|[A-Z0-9]{4,12})\b").ok());

const CODE_WORDS: &[&str] = &[
    "code",
    "passcode",
    "otp",
    "one-time",
    "one time",
    "pin",
    "verification",
    "verify",
    "security number",
    "2fa",
    "código",
    "codice",
];

const REFERENCE_WORDS: &[&str] = &[
    "booking reference",
    "booking ref",
    "booking number",
    "booking code",
    "reservation",
    "pnr",
    "confirmation number",
    "record locator",
    "order number",
    "ticket number",
    "reference number",
];

/// The codes, references and links in a message: its subject, its text, and the anchors of
/// its HTML part. `text_links` says whether URLs written in the text are links: true for a
/// text part; false for text made from HTML, where a URL in the text is only what an anchor
/// shows (`<a href="http://elsewhere">https://www.notion.so/verify</a>`), and the anchor's
/// own `href` is the link.
pub fn extract(
    subject: &str,
    text: &str,
    anchors: &[Anchor],
    site: Site<'_>,
    text_links: bool,
) -> Found {
    let mut found = Found::default();
    for anchor in anchors {
        add_link(&mut found, &anchor.href, &anchor.text, site);
    }
    if let Some(url) = URL.as_ref().filter(|_| text_links) {
        for m in url.find_iter(text) {
            let u = m
                .as_str()
                .trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
            add_link(&mut found, u, "", site);
        }
    }
    let lines: Vec<String> = std::iter::once(subject.to_string())
        .chain(text.lines().map(str::to_string))
        .map(|l| match URL.as_ref() {
            Some(url) => url.replace_all(&l, " ").into_owned(),
            None => l,
        })
        .collect();
    // A line that names a code or a reference but holds none passes the word on to the
    // next non-empty line, when that line is short (a code set apart).
    let mut carried: Option<Label> = None;
    for line in &lines {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let label = label_of(trimmed);
        let use_label = match (label, carried.take()) {
            (Some(l), _) => Some(l),
            (None, Some(c)) if trimmed.chars().count() <= 24 => Some(c),
            _ => None,
        };
        let Some(kind) = use_label else {
            continue;
        };
        let tokens = tokens_in(trimmed, kind);
        if tokens.is_empty() && label.is_some() {
            carried = label;
        }
        for t in tokens {
            let list = match kind {
                Label::Code => &mut found.codes,
                Label::Reference => &mut found.references,
            };
            if !list.contains(&t) {
                list.push(t);
            }
        }
    }
    found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Code,
    Reference,
}

fn label_of(line: &str) -> Option<Label> {
    let lower = line.to_lowercase();
    let has = |words: &[&str]| {
        words.iter().any(|w| {
            lower.match_indices(w).any(|(i, _)| {
                let before = lower[..i].chars().next_back();
                let after = lower[i + w.len()..].chars().next();
                !before.is_some_and(char::is_alphanumeric)
                    && !after.is_some_and(|c| c.is_alphanumeric() && c != 's')
            })
        })
    };
    if has(REFERENCE_WORDS) {
        Some(Label::Reference)
    } else if has(CODE_WORDS) {
        Some(Label::Code)
    } else {
        None
    }
}

/// The tokens of `kind`'s shapes in `line`, leaving out the numbers that are something else.
fn tokens_in(line: &str, kind: Label) -> Vec<String> {
    // On a line in capitals, a word in capitals is a word, not a reference.
    let shouting = !line.chars().any(|c| c.is_lowercase());
    let Some(re) = TOKEN.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in re.find_iter(line) {
        let token = m.as_str();
        let before = line[..m.start()].chars().next_back();
        let after = line[m.end()..].chars().next();
        let after2 = line[m.end()..].chars().nth(1);
        // Amounts, times, dates, decimals, phone numbers, parts of words.
        let rest = line[m.end()..].trim_start();
        let rest_upper = rest.to_ascii_uppercase();
        let money = before.is_some_and(|c| "$€£¥#+".contains(c))
            || rest.starts_with(['€', '%', '$'])
            || ["USD", "EUR", "GBP"]
                .iter()
                .any(|c| rest_upper.starts_with(c));
        let joined = before.is_some_and(|c| matches!(c, ':' | '/' | '.' | ',' | '-' | '_' | '@'))
            || (matches!(after, Some(':' | '/' | '-' | '_' | '@'))
                && after2.is_some_and(|c| c.is_ascii_alphanumeric()))
            || (matches!(after, Some('.' | ',')) && after2.is_some_and(|c| c.is_ascii_digit()));
        if money || joined {
            continue;
        }
        let compact: String = token.chars().filter(|c| *c != ' ').collect();
        let digits = compact.chars().filter(char::is_ascii_digit).count();
        let letters = compact.chars().filter(char::is_ascii_uppercase).count();
        let len = compact.chars().count();
        let shaped = match kind {
            Label::Code => {
                if compact.contains('-') && letters > 0 {
                    // G-123456
                    true
                } else {
                    let plain: String = compact.chars().filter(|c| *c != '-').collect();
                    let n = plain.chars().count();
                    (letters == 0 && (4..=8).contains(&n))
                        || (letters > 0 && digits >= 2 && (6..=8).contains(&n))
                }
            }
            Label::Reference => {
                !compact.contains('-')
                    && ((letters > 0 && digits > 0 && (5..=10).contains(&len))
                        || (letters == 0 && (6..=12).contains(&len))
                        || (letters == len && len == 6 && !shouting))
            }
        };
        if !shaped || is_year(&compact) {
            continue;
        }
        let value = if letters == 0 {
            compact.replace('-', "")
        } else {
            compact
        };
        out.push(value);
    }
    out
}

fn is_year(token: &str) -> bool {
    token.len() == 4
        && token
            .parse::<u32>()
            .is_ok_and(|y| (1900..=2099).contains(&y))
}

/// Adds `raw` when it is an http(s) URL not listed yet.
fn add_link(found: &mut Found, raw: &str, shown_as: &str, site: Site<'_>) {
    let Ok(parsed) = url::Url::parse(raw.trim()) else {
        return;
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return;
    }
    let Some(host) = parsed.host_str().map(str::to_ascii_lowercase) else {
        return;
    };
    let url = crate::text::escape_cut(raw.trim(), crate::text::Lines::Single, 400);
    if found.links.iter().any(|l| l.url == url) {
        return;
    }
    let domain = match parsed.host() {
        Some(url::Host::Domain(_)) => registrable(&host).unwrap_or_else(|| host.clone()),
        // An address is its own domain (the public suffix list would make `0.1` of it).
        _ => host.clone(),
    };
    let foreign = !belongs(&host, site.domain, site.senders);
    let kind = kind_of(&parsed, shown_as);
    found.links.push(Link {
        url,
        domain,
        kind,
        foreign,
    });
}

fn kind_of(url: &url::Url, shown_as: &str) -> LinkKind {
    let mut hay = String::new();
    hay.push_str(url.path());
    hay.push(' ');
    hay.push_str(url.query().unwrap_or(""));
    hay.push(' ');
    hay.push_str(shown_as);
    let hay = hay.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| hay.contains(w));
    if any(&["unsubscribe", "optout", "opt-out", "opt_out", "preferences"]) {
        LinkKind::Unsubscribe
    } else if any(&["confirm", "verify", "verification", "activate", "validate"]) {
        LinkKind::Confirm
    } else if any(&["reset", "recover"]) {
        LinkKind::Reset
    } else if any(&[
        "login", "log-in", "log in", "signin", "sign-in", "sign_in", "sign in", "magic", "/auth",
    ]) {
        LinkKind::SignIn
    } else {
        LinkKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTION: Site<'static> = Site {
        domain: "www.notion.so",
        senders: &[],
    };

    fn codes(text: &str) -> Vec<String> {
        extract("", text, &[], NOTION, true).codes
    }

    #[test]
    fn codes_need_a_word_that_says_so() {
        assert_eq!(codes("Your code is 483920."), ["483920"]);
        assert_eq!(
            codes("G-123456 is your Google verification code"),
            ["G-123456"]
        );
        assert_eq!(codes("Your verification code:\n\n  482 913\n"), ["482913"]);
        assert_eq!(codes("Login code: X7K9PQ"), ["X7K9PQ"]);
        assert!(codes("Order 483920 shipped on 2026-12-07").is_empty());
        assert!(codes("Your code expires at 12:30 on 07/12/2026, call +1 5551234567").is_empty());
        assert!(codes("Use code at checkout for $1500 off, valid in 2026").is_empty());
        assert!(codes("code: https://notion.so/verify/123456").is_empty());
    }

    #[test]
    fn references_and_links() {
        let f = extract(
            "Your booking",
            "Booking reference: X7K9PQ\nManage: https://www.airline.example/manage?ref=X7K9PQ.",
            &[Anchor {
                href: "https://mail.notion.so/confirm?token=abc&utm_source=mail".into(),
                text: "Confirm your email".into(),
            }],
            NOTION,
            true,
        );
        assert_eq!(f.references, ["X7K9PQ"]);
        assert!(f.codes.is_empty());
        assert_eq!(f.links.len(), 2);
        assert_eq!(f.links[0].kind, LinkKind::Confirm);
        assert!(!f.links[0].foreign);
        assert_eq!(f.links[0].domain, "notion.so");
        assert_eq!(f.links[1].domain, "airline.example");
        assert!(f.links[1].foreign);
        assert_eq!(
            f.links[1].url,
            "https://www.airline.example/manage?ref=X7K9PQ"
        );
        // An address is its own domain, and a URL that is only an anchor's text is no link.
        let phish = extract(
            "",
            "https://www.notion.so/verify",
            &[Anchor {
                href: "http://127.0.0.1:8080/notion.so/verify?a=1".into(),
                text: "https://www.notion.so/verify".into(),
            }],
            NOTION,
            false,
        );
        assert_eq!(phish.links.len(), 1);
        assert_eq!(
            (phish.links[0].domain.as_str(), phish.links[0].foreign),
            ("127.0.0.1", true)
        );
    }
}
