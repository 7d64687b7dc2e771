//! Whether mail that claims a site's own domain really comes from it, as recorded in the
//! `Authentication-Results` headers (RFC 8601) of servers the owner trusts.
//!
//! RFC 8601: `Authentication-Results: authserv-id [version] ; method=result [reason=...]
//! ptype.property=value ... ; ...` (or `; none`), comments in parentheses. The header names the
//! server that made the checks (the authserv-id); a receiving server adds its own at the top
//! and must delete copies carrying its own id that arrived with the message (§5). Anyone can
//! write such a header into a message, so only headers whose authserv-id is trusted
//! (`[breach] trusted_authserv_ids`, default the mailbox's own IMAP host) are read, and of
//! those the topmost that judges this message decides.
//!
//! Forwarders: addy.io's rspamd writes its checks of the original sender as
//! `X-AnonAddy-Authentication-Results` (same syntax; the `authentication-results` routine of
//! `milter_headers.conf` in anonaddy's SELF-HOSTING.md) and `app/Mail/ForwardEmail.php` copies
//! the first one onto the forwarded message; the plain `Authentication-Results` of such mail
//! describe addy.io's own hop, so for addy.io mail only the X-AnonAddy header is read.
//! SimpleLogin writes no result header of its own: it reads its rspamd's `X-Spamd-Result`
//! (`app/handler/dmarc.py`, `app/email/headers.py`), quarantines DMARC `reject`/`quarantine`
//! failures and bannerises soft failures; the original message's headers, including the
//! `Authentication-Results` of SimpleLogin's MX, travel with it, so those are read (with
//! SimpleLogin's authserv-id trusted).
//!
//! Alignment (relaxed, RFC 7489 §3.1): a `dmarc=pass` or `dmarc=fail` about the claimed
//! domain decides; without one, a `dkim=pass` whose `header.d` (or `header.i`) or an
//! `spf=pass` whose `smtp.mailfrom` has the claimed registrable domain is aligned, and
//! anything else is not. A header whose DMARC result names another `header.from` judged a
//! different hop (a forwarder's) and is passed over.

use super::matching::registrable;

/// One `method=result` with its properties (`ptype.property` lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// `dmarc`, `dkim`, `spf`, ... (lowercase, without a version).
    pub method: String,
    /// `pass`, `fail`, `none`, ... (lowercase).
    pub result: String,
    /// `(ptype.property, value)`, e.g. `("header.from", "notion.so")`.
    pub props: Vec<(String, String)>,
}

/// One parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// The server that made the checks (lowercase).
    pub authserv_id: String,
    /// Its results (empty for `none`).
    pub results: Vec<MethodResult>,
}

/// What the trusted headers say about mail claiming a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Aligned: the site sent it.
    Pass,
    /// Not aligned; what the trusted server recorded (for the incident).
    Fail(String),
    /// No trusted server judged it.
    Unknown,
}

/// Removes comments (nested parentheses, outside quoted strings) and splits on `;` outside
/// quoted strings.
fn clauses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                cur.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                cur.push(' ');
            }
            ';' if !quoted && depth == 0 => out.push(std::mem::take(&mut cur)),
            c if depth == 0 => cur.push(if c.is_whitespace() { ' ' } else { c }),
            _ => {}
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('"').to_string()
}

/// Parses one header value; None when it names no authserv-id.
pub fn parse(value: &str) -> Option<AuthResults> {
    let parts = clauses(value);
    let authserv_id = unquote(parts.first()?.split_whitespace().next()?).to_ascii_lowercase();
    if authserv_id.is_empty() || authserv_id.contains('=') {
        return None;
    }
    let mut results = Vec::new();
    for part in &parts[1..] {
        let mut words = part.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        let method = method.split('/').next().unwrap_or("").to_ascii_lowercase();
        let props = words
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| k.contains('.'))
            .map(|(k, v)| (k.to_ascii_lowercase(), unquote(v)))
            .collect();
        results.push(MethodResult {
            method,
            result: unquote(result).to_ascii_lowercase(),
            props,
        });
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

impl MethodResult {
    fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The registrable domain of a property that holds a domain or an address.
    fn domain_of(&self, name: &str) -> Option<String> {
        let v = self.prop(name)?;
        registrable(v.rsplit_once('@').map_or(v, |(_, d)| d))
    }

    fn short(&self) -> String {
        let about = ["header.from", "header.d", "smtp.mailfrom"]
            .iter()
            .find_map(|k| self.prop(k).map(|v| format!(" {k}={v}")))
            .unwrap_or_default();
        format!("{}={}{about}", self.method, self.result)
    }
}

/// What one header says about mail claiming `claimed` (a registrable domain): None when it
/// judged another hop.
fn judge_one(header: &AuthResults, claimed: &str) -> Option<Verdict> {
    let mut aligned = false;
    for r in &header.results {
        match r.method.as_str() {
            "dmarc" => {
                if r.prop("header.from").is_some()
                    && r.domain_of("header.from").as_deref() != Some(claimed)
                {
                    return None;
                }
                match r.result.as_str() {
                    "pass" => return Some(Verdict::Pass),
                    "fail" => return Some(Verdict::Fail(r.short())),
                    _ => {}
                }
            }
            "dkim" if r.result == "pass" => {
                let d = r.domain_of("header.d").or_else(|| r.domain_of("header.i"));
                aligned |= d.as_deref() == Some(claimed);
            }
            "spf" if r.result == "pass" => {
                aligned |= r.domain_of("smtp.mailfrom").as_deref() == Some(claimed);
            }
            _ => {}
        }
    }
    if aligned {
        return Some(Verdict::Pass);
    }
    let what: Vec<String> = header.results.iter().map(MethodResult::short).collect();
    Some(Verdict::Fail(if what.is_empty() {
        "no authentication".into()
    } else {
        format!("not aligned: {}", what.join(", "))
    }))
}

/// Judges mail claiming `claimed_domain` from its result header values, topmost first,
/// believing only those whose authserv-id is in `trusted` (lowercase).
pub fn judge(headers: &[String], claimed_domain: &str, trusted: &[String]) -> Verdict {
    let Some(claimed) = registrable(claimed_domain) else {
        return Verdict::Unknown;
    };
    headers
        .iter()
        .filter_map(|h| parse(h))
        .filter(|h| trusted.contains(&h.authserv_id))
        .find_map(|h| judge_one(&h, &claimed))
        .unwrap_or(Verdict::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Vec<String> {
        vec!["mx.owner.example".to_string()]
    }

    #[test]
    fn parses_rfc8601_examples() {
        // RFC 8601 appendix B.4-style, with comments and a version.
        let h = parse(
            "mx.owner.example 1; (a comment; with a semicolon)\r\n\tspf=pass smtp.mailfrom=example.net;\r\n dkim=pass (good signature) header.d=\"example.net\"",
        )
        .unwrap();
        assert_eq!(h.authserv_id, "mx.owner.example");
        assert_eq!(h.results.len(), 2);
        assert_eq!(h.results[1].prop("header.d"), Some("example.net"));
        let none = parse("mx.owner.example; none").unwrap();
        assert!(none.results.iter().all(|r| r.method == "none"));
        assert!(parse("").is_none());
        assert!(parse("dkim=pass header.d=x.example").is_none());
    }

    #[test]
    fn dmarc_decides_and_alignment_otherwise() {
        let fail = vec!["mx.owner.example; dmarc=fail (p=reject) header.from=notion.so".into()];
        assert!(matches!(
            judge(&fail, "notion.so", &t()),
            Verdict::Fail(w) if w.contains("dmarc=fail")
        ));
        let pass = vec![
            "mx.owner.example; dkim=pass header.d=mail.notion.so; dmarc=pass header.from=notion.so"
                .into(),
        ];
        assert_eq!(judge(&pass, "notion.so", &t()), Verdict::Pass);
        let dkim_other = vec![
            "mx.owner.example; dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=bounce@evil.example".into(),
        ];
        assert!(matches!(
            judge(&dkim_other, "notion.so", &t()),
            Verdict::Fail(_)
        ));
        let spf_aligned =
            vec!["mx.owner.example; spf=pass smtp.mailfrom=bounces@em.notion.so".into()];
        assert_eq!(judge(&spf_aligned, "notion.so", &t()), Verdict::Pass);
        let nothing = vec!["mx.owner.example; none".into()];
        assert!(matches!(
            judge(&nothing, "notion.so", &t()),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn untrusted_headers_are_never_believed() {
        // A forged pass on top of the trusted fail changes nothing, and a forged header alone
        // judges nothing.
        let forged = vec![
            "evil.example; dmarc=pass header.from=notion.so".to_string(),
            "mx.owner.example; dmarc=fail header.from=notion.so".to_string(),
        ];
        assert!(matches!(
            judge(&forged, "notion.so", &t()),
            Verdict::Fail(_)
        ));
        assert_eq!(judge(&forged[..1], "notion.so", &t()), Verdict::Unknown);
        assert_eq!(judge(&forged, "notion.so", &[]), Verdict::Unknown);
    }

    #[test]
    fn a_forwarders_hop_is_passed_over() {
        let hops = vec![
            "mx.owner.example; dkim=pass header.d=simplelogin.co; dmarc=pass header.from=simplelogin.co".to_string(),
            "mx1.simplelogin.co; dmarc=fail header.from=notion.so".to_string(),
        ];
        let both = vec![
            "mx.owner.example".to_string(),
            "mx1.simplelogin.co".to_string(),
        ];
        assert!(matches!(judge(&hops, "notion.so", &both), Verdict::Fail(_)));
        assert_eq!(judge(&hops, "notion.so", &t()), Verdict::Unknown);
    }
}
