//! An HTML mail body turned into plain text, its links and its images counted, without a
//! parser that could fetch anything: a single pass over the bytes.
//!
//! Block elements (`p`, `div`, `br`, `tr`, `li`, headings, …) become line breaks, runs of
//! white space one space; `head`, `style`, `script`, `template` and comments are dropped;
//! entities are decoded (mail-parser's table). Each `<a href>` is collected with its text, and
//! each `<img>` only counted: nothing is loaded, ever. Input is untrusted and may be cut off
//! anywhere (the fetch has a byte cap): an unterminated tag or attribute simply ends the text.

/// A link found in the HTML, as written (entities decoded), with the text it was shown as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The `href`, entities decoded, trimmed.
    pub href: String,
    /// What the reader saw (white space collapsed).
    pub text: String,
}

/// The text of an HTML body and what it points to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlText {
    /// The text, lines separated by `\n`, at most one empty line in a row.
    pub text: String,
    /// Every `<a href>`, in order.
    pub anchors: Vec<Anchor>,
    /// How many `<img>` tags (remote or not): counted, never loaded.
    pub images: usize,
}

/// Tags whose start or end is a line break.
const BLOCK: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Tags whose content is never text.
const HIDDEN: &[&str] = &["head", "style", "script", "template", "title", "noscript"];

/// Converts `html` to text, its anchors and its image count.
pub fn to_text(html: &str) -> HtmlText {
    let mut out = Builder::default();
    let bytes = html.as_bytes();
    let mut pos = 0;
    let mut hidden: Option<String> = None;
    let mut anchor: Option<(String, usize)> = None;
    while pos < bytes.len() {
        if bytes[pos] != b'<' {
            let end = find(bytes, pos, b'<').unwrap_or(bytes.len());
            if hidden.is_none() {
                out.text(&html[pos..end]);
            }
            pos = end;
            continue;
        }
        if bytes[pos..].starts_with(b"<!--") {
            pos = match find_seq(bytes, pos + 4, b"-->") {
                Some(end) => end + 3,
                None => bytes.len(),
            };
            continue;
        }
        let Some(tag) = Tag::read(html, pos) else {
            // A `<` that starts no tag is text.
            if hidden.is_none() {
                out.text("<");
            }
            pos += 1;
            continue;
        };
        pos = tag.end;
        if let Some(h) = &hidden {
            if tag.closing && &tag.name == h {
                hidden = None;
            }
            continue;
        }
        let name = tag.name.as_str();
        if HIDDEN.contains(&name) && !tag.closing && !tag.self_closing {
            hidden = Some(tag.name.clone());
        } else if BLOCK.contains(&name) {
            out.line_break();
        } else if name == "img" && !tag.closing {
            out.images += 1;
        } else if name == "a" {
            if tag.closing {
                if let Some((href, start)) = anchor.take() {
                    out.anchor(href, start);
                }
            } else if let Some(href) = tag.attr(html, "href") {
                if let Some((prev, start)) = anchor.take() {
                    out.anchor(prev, start);
                }
                anchor = Some((href, out.text.len()));
            }
        }
    }
    if let Some((href, start)) = anchor.take() {
        out.anchor(href, start);
    }
    out.finish()
}

#[derive(Default)]
struct Builder {
    text: String,
    anchors: Vec<Anchor>,
    images: usize,
    /// A space is owed before the next word.
    space: bool,
    /// Line breaks owed before the next word (at most 2).
    breaks: usize,
}

impl Builder {
    fn text(&mut self, raw: &str) {
        let decoded = decode_entities(raw);
        for (i, word) in decoded.split(is_html_space).enumerate() {
            if i > 0 {
                self.space = true;
            }
            if word.is_empty() {
                continue;
            }
            if !self.text.is_empty() {
                if self.breaks > 0 {
                    for _ in 0..self.breaks.min(2) {
                        self.text.push('\n');
                    }
                } else if self.space {
                    self.text.push(' ');
                }
            }
            self.breaks = 0;
            self.space = false;
            self.text.push_str(word);
        }
    }

    fn line_break(&mut self) {
        self.breaks += 1;
        self.space = false;
    }

    fn anchor(&mut self, href: String, start: usize) {
        let text = self.text.get(start..).unwrap_or("").trim().to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        self.anchors.push(Anchor { href, text });
    }

    fn finish(self) -> HtmlText {
        HtmlText {
            text: self.text,
            anchors: self.anchors,
            images: self.images,
        }
    }
}

fn is_html_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}')
}

fn find(bytes: &[u8], from: usize, b: u8) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|x| *x == b)
        .map(|p| p + from)
}

fn find_seq(bytes: &[u8], from: usize, seq: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(seq.len())
        .position(|w| w == seq)
        .map(|p| p + from)
}

/// One tag: its lowercase name, where its attributes are, and where it ends.
struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    /// Byte range of the attributes in the input.
    attrs: (usize, usize),
    /// The byte after `>`.
    end: usize,
}

impl Tag {
    /// The tag starting at `start` (a `<`); None when no tag name follows (`< 3`, `<=`).
    fn read(html: &str, start: usize) -> Option<Tag> {
        let bytes = html.as_bytes();
        let mut pos = start + 1;
        let closing = bytes.get(pos) == Some(&b'/');
        if closing {
            pos += 1;
        }
        let name_start = pos;
        while pos < bytes.len() && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'!') {
            pos += 1;
        }
        if pos == name_start {
            return None;
        }
        let name = html[name_start..pos].to_ascii_lowercase();
        // Attributes run to the first `>` outside quotes.
        let attrs_start = pos;
        let mut quote: Option<u8> = None;
        while pos < bytes.len() {
            let b = bytes[pos];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if b == b'>' => break,
                None => {}
            }
            pos += 1;
        }
        let attrs_end = pos.min(bytes.len());
        let self_closing = attrs_end > attrs_start && bytes[attrs_end - 1] == b'/';
        Some(Tag {
            name,
            closing,
            self_closing,
            attrs: (attrs_start, attrs_end),
            end: (pos + 1).min(bytes.len()),
        })
    }

    /// The value of attribute `want` (entities decoded), if present.
    fn attr(&self, html: &str, want: &str) -> Option<String> {
        let s = html.get(self.attrs.0..self.attrs.1)?;
        let b = s.as_bytes();
        let mut pos = 0;
        while pos < b.len() {
            while pos < b.len() && (b[pos].is_ascii_whitespace() || b[pos] == b'/') {
                pos += 1;
            }
            let name_start = pos;
            while pos < b.len() && !b[pos].is_ascii_whitespace() && b[pos] != b'=' && b[pos] != b'/'
            {
                pos += 1;
            }
            let name = &s[name_start..pos];
            while pos < b.len() && b[pos].is_ascii_whitespace() {
                pos += 1;
            }
            let mut value = None;
            if b.get(pos) == Some(&b'=') {
                pos += 1;
                while pos < b.len() && b[pos].is_ascii_whitespace() {
                    pos += 1;
                }
                let (v_start, v_end, next) = match b.get(pos) {
                    Some(q @ (b'"' | b'\'')) => {
                        let end = find(b, pos + 1, *q).unwrap_or(b.len());
                        (pos + 1, end, end + 1)
                    }
                    _ => {
                        let mut end = pos;
                        while end < b.len() && !b[end].is_ascii_whitespace() {
                            end += 1;
                        }
                        (pos, end, end)
                    }
                };
                value = s.get(v_start..v_end);
                pos = next;
            }
            if name.eq_ignore_ascii_case(want) {
                return value.map(|v| decode_entities(v).trim().to_string());
            }
            if pos == name_start {
                pos += 1;
            }
        }
        None
    }
}

/// `text` with its character references (`&amp;`, `&#233;`, `&#x2F;`) decoded; a `&` that
/// starts none is kept as it is.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest
            .char_indices()
            .take(34)
            .find(|(_, c)| *c == ';' || c.is_whitespace())
            .filter(|(_, c)| *c == ';')
            .map(|(i, _)| i);
        match end {
            Some(end) if end > 1 => {
                let token = &rest[..=end];
                let mut decoded = String::new();
                mail_parser::decoders::html::add_html_token(&mut decoded, token.as_bytes(), false);
                out.push_str(&decoded);
                rest = &rest[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_links_and_hidden_parts() {
        let html = r#"<html><head><title>T</title><style>p{color:red}</style></head>
<body><div>Hello&nbsp;<b>Ann</b>,</div><p>Click <a href="https://notion.so/confirm?t=1&amp;u=2">Confirm
 your email</a> now.</p><script>alert(1)</script><!-- <a href="https://hidden.example"> -->
<img src="https://track.example/p.gif"><table><tr><td>Code</td><td>483920</td></tr></table>
<a href='https://x.example/a'>x</a><a href=https://y.example/b>y</a></body></html>"#;
        let out = to_text(html);
        assert_eq!(
            out.text,
            "Hello\u{a0}Ann,\n\nClick Confirm your email now.\n\nCode\n\n483920\n\nxy"
        );
        assert_eq!(out.images, 1);
        let hrefs: Vec<&str> = out.anchors.iter().map(|a| a.href.as_str()).collect();
        assert_eq!(
            hrefs,
            [
                "https://notion.so/confirm?t=1&u=2",
                "https://x.example/a",
                "https://y.example/b"
            ]
        );
        assert_eq!(out.anchors[0].text, "Confirm your email");
    }

    #[test]
    fn cut_off_input_ends_the_text() {
        for cut in [
            "<p>Hi <a href=\"https://a.example/",
            "<p>Hi <a",
            "<p>Hi <!-- never closed",
            "<p>Hi &am",
            "<p>Hi <",
            "a < b and c <= d",
        ] {
            let out = to_text(cut);
            assert!(
                out.text.starts_with("Hi") || out.text.starts_with('a'),
                "{cut:?}: {out:?}"
            );
        }
        assert_eq!(to_text("a < b").text, "a < b");
        assert_eq!(
            decode_entities("&lt;&#233;&#x41;&bogus; & x"),
            "<éA&bogus; & x"
        );
    }
}
