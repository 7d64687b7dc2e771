//! Known secrets, found in the forms they leak in.
//!
//! A secret the process holds (the command secret, a provider key, the IMAP password) is
//! searched for in *folded* text: separators (whitespace, dashes, underscores, dots,
//! zero-width characters) dropped and ASCII letters lowered. So `p@s%w0r` is also found as
//! `P@S-%W0 R`. Besides the secret itself, its base64 forms (standard and URL-safe, at each of
//! the three alignments it can have inside a longer encoded text, as in HTTP Basic
//! credentials) and URL-encoded forms are searched for the same way. A secret split across
//! the string fields of one object or the strings of one array is found in their folded
//! concatenation ([`KnownSecrets::split_across`]). And text cut short inside a secret, as
//! [`crate::redact::truncate`] cuts a provider's long error message before anything redacts
//! it, still has the secret's start before its `…`: that is found too.

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;

/// Shortest base64 form searched for: shorter ones would also match ordinary words.
const MIN_ENCODED_LEN: usize = 6;

/// What [`crate::redact::truncate`] puts where it cut.
const CUT: char = '…';

/// Shortest start of a secret searched for before a [`CUT`].
const MIN_CUT_LEN: usize = 4;

/// Characters a secret can be split by without changing what a reader makes of it (NUL
/// among them).
pub fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{0}'
                | '-'
                | '_'
                | '.'
                | '\u{00AD}'
                | '\u{2010}'..='\u{2015}'
                | '\u{2212}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'
                | '\u{FEFF}'
        )
}

/// Appends `s` folded: separators dropped, ASCII letters lowered. Every kept character keeps
/// its UTF-8 length, so a folded offset maps back to the original byte for byte.
pub fn fold_into(s: &str, out: &mut String) {
    out.extend(
        s.chars()
            .filter(|c| !is_separator(*c))
            .map(|c| c.to_ascii_lowercase()),
    );
}

/// `s` folded (see [`fold_into`]).
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold_into(s, &mut out);
    out
}

/// `s` folded, with the original byte offset of each folded byte.
fn fold_mapped(s: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(s.len());
    let mut origin = Vec::with_capacity(s.len());
    for (at, c) in s.char_indices() {
        if !is_separator(c) {
            out.push(c.to_ascii_lowercase());
            origin.extend(at..at + c.len_utf8());
        }
    }
    (out, origin)
}

/// How a secret appears in a match, which decides how much around it is redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// The secret itself.
    Plain,
    /// Part of a base64 text: the whole run of base64 characters around it goes.
    Base64,
    /// Percent-encoded.
    Url,
}

/// The folded forms of every known secret, and one search for all of them.
#[derive(Debug)]
pub struct KnownSecrets {
    needles: Needles,
    /// Each secret's starts, each followed by [`CUT`]: searched for only in text that holds
    /// a `…`, so that the many of them cost nothing elsewhere.
    cut: Needles,
}

/// Folded texts to find, and one search for all of them.
#[derive(Debug)]
struct Needles {
    needles: Vec<(String, Form)>,
    /// Leftmost-longest search for `needles`; `None` when there are none, or if it could not
    /// be built (then each needle is searched for in turn).
    search: Option<AhoCorasick>,
}

impl Needles {
    fn new(needles: Vec<(String, Form)>) -> Needles {
        let search = if needles.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(needles.iter().map(|(n, _)| n))
                .ok()
        };
        Needles { needles, search }
    }

    fn is_match(&self, folded: &str) -> bool {
        match &self.search {
            Some(ac) => ac.is_match(folded),
            None => self
                .needles
                .iter()
                .any(|(n, _)| folded.contains(n.as_str())),
        }
    }

    /// Non-overlapping matches in folded text: (start, end, form), leftmost first.
    fn matches(&self, folded: &str) -> Vec<(usize, usize, Form)> {
        if let Some(ac) = &self.search {
            return ac
                .find_iter(folded)
                .map(|m| (m.start(), m.end(), self.needles[m.pattern().as_usize()].1))
                .collect();
        }
        let mut all: Vec<(usize, usize, Form)> = self
            .needles
            .iter()
            .flat_map(|(n, form)| {
                folded
                    .match_indices(n.as_str())
                    .map(move |(at, _)| (at, at + n.len(), *form))
            })
            .collect();
        all.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut chosen: Vec<(usize, usize, Form)> = Vec::new();
        for m in all {
            if chosen.last().is_none_or(|last| m.0 >= last.1) {
                chosen.push(m);
            }
        }
        chosen
    }
}

impl KnownSecrets {
    /// The forms of `secrets` (empty ones, or ones made only of separators, are left out).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> KnownSecrets {
        let mut needles: Vec<(String, Form)> = Vec::new();
        let mut add = |needle: String, form: Form| {
            if !needle.is_empty() && !needles.iter().any(|(n, _)| *n == needle) {
                needles.push((needle, form));
            }
        };
        for secret in secrets {
            add(fold(secret), Form::Plain);
            for encoded in base64_forms(secret.as_bytes()) {
                if encoded.len() >= MIN_ENCODED_LEN {
                    add(fold(&encoded), Form::Base64);
                }
            }
            for encoded in url_forms(secret.as_bytes()) {
                add(fold(&encoded), Form::Url);
            }
        }
        let mut cut = Vec::new();
        for (needle, form) in &needles {
            if *form != Form::Plain {
                continue;
            }
            let starts = needle.char_indices().map(|(at, _)| at).skip(MIN_CUT_LEN);
            for end in starts {
                cut.push((format!("{}{CUT}", &needle[..end]), Form::Plain));
            }
        }
        KnownSecrets {
            needles: Needles::new(needles),
            cut: Needles::new(cut),
        }
    }

    /// True when there is nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.needles.needles.is_empty()
    }

    /// True when folded text holds a form of a known secret.
    pub fn is_match_folded(&self, folded: &str) -> bool {
        self.needles.is_match(folded) || (folded.contains(CUT) && self.cut.is_match(folded))
    }

    /// The matches of both searches, by start.
    fn matches_folded(&self, folded: &str) -> Vec<(usize, usize, Form)> {
        let mut all = self.needles.matches(folded);
        if folded.contains(CUT) {
            all.extend(self.cut.matches(folded));
            all.sort_by_key(|&(start, end, _)| (start, end));
        }
        all
    }

    /// True when `text` holds a form of a known secret.
    pub fn is_match(&self, text: &str) -> bool {
        !self.is_empty() && self.is_match_folded(&fold(text))
    }

    /// The byte ranges of `text` to redact, sorted and disjoint: each match from its first to
    /// its last character, a base64 match widened to the whole base64 run it is part of.
    pub fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
        if !self.is_match(text) {
            return Vec::new();
        }
        let (folded, origin) = fold_mapped(text);
        let bytes = text.as_bytes();
        let is_b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for (start, end, form) in self.matches_folded(&folded) {
            let (mut from, mut to) = (origin[start], origin[end - 1] + 1);
            if form == Form::Base64 {
                while from > 0 && is_b64(bytes[from - 1]) {
                    from -= 1;
                }
                while to < bytes.len() && (is_b64(bytes[to]) || bytes[to] == b'=') {
                    to += 1;
                }
            }
            match ranges.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => ranges.push((from, to)),
            }
        }
        ranges
    }

    /// Which of `strings` (the string children of one object or array, in order) a known
    /// secret runs across: their folded concatenation holds a form of one that starts in one
    /// of them and ends in another. Each such string is to be redacted whole.
    pub fn split_across(&self, strings: &[&str]) -> Vec<usize> {
        if self.is_empty() || strings.len() < 2 {
            return Vec::new();
        }
        let mut joined = String::new();
        let mut bounds = Vec::with_capacity(strings.len());
        for s in strings {
            let start = joined.len();
            fold_into(s, &mut joined);
            bounds.push((start, joined.len()));
        }
        if !self.is_match_folded(&joined) {
            return Vec::new();
        }
        let mut hit = Vec::new();
        for (start, end, _) in self.matches_folded(&joined) {
            let touched: Vec<usize> = bounds
                .iter()
                .enumerate()
                .filter(|(_, &(s, e))| s < e && s < end && start < e)
                .map(|(i, _)| i)
                .collect();
            if touched.len() > 1 {
                hit.extend(touched);
            }
        }
        hit.sort_unstable();
        hit.dedup();
        hit
    }
}

/// The base64 texts that `secret` makes wherever it sits in an encoded text: for each of the
/// three byte alignments, the characters that depend on the secret's bytes alone, in the
/// standard and URL-safe alphabets; and the whole padded encoding.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut forms = vec![STANDARD.encode(secret)];
    for offset in 0..3usize {
        let mut shifted = vec![0u8; offset];
        shifted.extend_from_slice(secret);
        let bits_from = 8 * offset;
        let bits_to = 8 * (offset + secret.len());
        // Character i holds bits 6i..6i+6: keep those wholly inside the secret's bits.
        let first = bits_from.div_ceil(6);
        let last = bits_to / 6;
        if first >= last {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&shifted);
            if let Some(middle) = encoded.get(first..last) {
                forms.push(middle.to_string());
            }
        }
    }
    forms
}

/// `secret` percent-encoded as a query value (space as `+`), as a path or component (space
/// as `%20`), and with every byte encoded. Forms equal to the secret are left out.
fn url_forms(secret: &[u8]) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(secret).collect();
    let component = form.replace('+', "%20");
    let every: String = secret.iter().map(|b| format!("%{b:02X}")).collect();
    let plain = String::from_utf8_lossy(secret);
    [form, component, every]
        .into_iter()
        .filter(|f| *f != plain)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    fn redact(k: &KnownSecrets, text: &str) -> String {
        let mut out = text.to_string();
        for (from, to) in k.ranges(text).into_iter().rev() {
            out.replace_range(from..to, "#");
        }
        out
    }

    #[test]
    fn folding_finds_case_and_separator_variants() {
        let k = KnownSecrets::new(["p@s%w0r"]);
        for variant in [
            "p@s%w0r",
            "P@S%W0R",
            "p@s-%w0-r",
            "p@s %w0 r",
            "p\u{200b}@s%w\u{2010}0r",
        ] {
            assert_eq!(redact(&k, &format!("x {variant} y")), "x # y", "{variant}");
        }
        assert_eq!(redact(&k, "p@s%w0"), "p@s%w0");
        // Any length: one character too.
        let k = KnownSecrets::new(["Z"]);
        assert_eq!(redact(&k, "a z b"), "a # b");
    }

    #[test]
    fn base64_forms_are_found_at_every_alignment() {
        let k = KnownSecrets::new(["p@s%w0r"]);
        for prefix in ["", "a", "ab", "abc", "owner:"] {
            for suffix in ["", "x", "xy"] {
                let plain = format!("{prefix}p@s%w0r{suffix}");
                for encoded in [STANDARD.encode(&plain), URL_SAFE_NO_PAD.encode(&plain)] {
                    let text = format!("Basic {encoded}, then");
                    assert_eq!(redact(&k, &text), "Basic #, then", "{plain}");
                }
            }
        }
        // Too short to search for in base64 (it would match words): only its own form.
        let k = KnownSecrets::new(["ab"]);
        assert_eq!(redact(&k, "YWI="), "YWI=");
    }

    #[test]
    fn url_encoded_forms_are_found() {
        let k = KnownSecrets::new(["p@s w0r"]);
        for encoded in [
            "p%40s+w0r",
            "p%40s%20w0r",
            "%70%40%73%20%77%30%72",
            "P%40S%20W0R",
        ] {
            assert_eq!(
                redact(&k, &format!("pass={encoded}&x=1")),
                "pass=#&x=1",
                "{encoded}"
            );
        }
    }

    #[test]
    fn the_start_of_a_secret_cut_short_is_found() {
        let k = KnownSecrets::new(["8kd93hf7q2mzp01x"]);
        let cut = crate::redact::truncate("refused key 8kd93hf7q2mzp01x here", 20);
        assert_eq!(cut, "refused key 8kd93hf7…");
        assert_eq!(redact(&k, &cut), "refused key #");
        assert_eq!(redact(&k, "key 8KD9-3…"), "key #");
        // Three characters are too few to tell; without the cut mark nothing is found.
        assert_eq!(redact(&k, "key 8kd…"), "key 8kd…");
        assert_eq!(redact(&k, "key 8kd93hf7"), "key 8kd93hf7");
    }

    #[test]
    fn a_secret_split_across_strings_is_found() {
        let k = KnownSecrets::new(["hunter2"]);
        assert_eq!(
            k.split_across(&["x", "hun", "ter", "2", "y"]),
            vec![1, 2, 3]
        );
        assert_eq!(k.split_across(&["hun-", " TER2"]), vec![0, 1]);
        // Whole in one string: that string's own redaction handles it.
        assert!(k.split_across(&["hunter2", "x"]).is_empty());
        assert!(k.split_across(&["hun", "x", "ter2"]).is_empty());
    }
}
