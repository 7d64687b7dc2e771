//! Untrusted text made safe to show: it cannot forge layout.
//!
//! Text from mail headers, providers or the network ends up in alerts and replies the owner
//! reads on a phone. Characters that change how the text around them is laid out, rather than
//! what it says, would let that text pass for something the agent wrote: a line or paragraph
//! break that starts a fake new line (`\n`, `\r`, U+2028, U+2029), a bidirectional control
//! that shows `moc.evil` as `live.com` (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F,
//! U+061C), or a zero-width character that hides inside a domain or a code (U+200B-U+200D,
//! U+2060, U+FEFF). [`escape`] shows each of them, and every other control character, as a
//! visible `\u{...}` escape instead.

/// Whether the field the text goes into may hold several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// One line (a subject, a sender, a name): `\n` and `\r` are escaped too.
    Single,
    /// Several lines (a message body): `\n` is kept, everything else escaped as for
    /// [`Lines::Single`].
    Multi,
}

/// True when `c` changes layout (or is a control character) and must be shown escaped.
pub fn forges_layout(c: char, lines: Lines) -> bool {
    if c == '\n' {
        return lines == Lines::Single;
    }
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{061C}'
                | '\u{FEFF}'
        )
}

/// `text` with every character that [`forges_layout`] shown as `\u{...}`.
pub fn escape(text: &str, lines: Lines) -> String {
    escape_cut(text, lines, usize::MAX)
}

/// [`escape`], cut to at most `max` characters (then marked with `…`) between two
/// characters of the input, so that an escape is never cut in half.
pub fn escape_cut(text: &str, lines: Lines, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut count = 0usize;
    for c in text.chars() {
        let piece = if forges_layout(c, lines) {
            c.escape_unicode().to_string()
        } else {
            c.to_string()
        };
        let len = piece.chars().count();
        if count + len > max {
            out.push('…');
            return out;
        }
        count += len;
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_characters_are_shown_escaped() {
        let cases = [
            ("a\u{2028}b\u{2029}c", "a\\u{2028}b\\u{2029}c"),
            ("evil\u{202E}moc.com", "evil\\u{202e}moc.com"),
            (
                "\u{2066}x\u{2069}\u{200E}\u{200F}\u{061C}",
                "\\u{2066}x\\u{2069}\\u{200e}\\u{200f}\\u{61c}",
            ),
            (
                "pay\u{200B}pal\u{200C}\u{200D}\u{2060}\u{FEFF}",
                "pay\\u{200b}pal\\u{200c}\\u{200d}\\u{2060}\\u{feff}",
            ),
            (
                "one\r\ntwo\tthree\u{7}",
                "one\\u{d}\\u{a}two\\u{9}three\\u{7}",
            ),
            ("Café ☃ — «ok»", "Café ☃ — «ok»"),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input, Lines::Single), want, "{input:?}");
        }
        assert_eq!(
            escape("a\nb\r\u{2028}", Lines::Multi),
            "a\nb\\u{d}\\u{2028}"
        );
        // Escaping what was escaped changes nothing.
        for (input, _) in cases {
            let once = escape(input, Lines::Single);
            assert_eq!(escape(&once, Lines::Single), once);
        }
    }

    #[test]
    fn cutting_never_splits_an_escape() {
        assert_eq!(escape_cut("abcdef", Lines::Single, 3), "abc…");
        assert_eq!(escape_cut("abc", Lines::Single, 3), "abc");
        assert_eq!(escape_cut("ab\u{202E}cd", Lines::Single, 5), "ab…");
        assert_eq!(escape_cut("ab\u{202E}", Lines::Single, 10), "ab\\u{202e}");
        assert_eq!(escape_cut("ééééé", Lines::Single, 3), "ééé…");
    }
}
