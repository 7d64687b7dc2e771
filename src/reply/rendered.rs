//! JSON text rendered ahead of the reply it goes into.
//!
//! A `list` of many contexts is made of views rendered once per change (see
//! `context::ViewCache`). Putting their text together, and the folded text the redactor's
//! known-secret search reads, used to copy every view twice per `list` (into the array, then
//! into the reply object): on 1,000 contexts that was about 1 ms of fresh memory to fault in
//! and fill. Here a rendered value is a list of shared pieces instead: a container holds its
//! children's pieces (a reference count each) and its own punctuation, and the text is
//! written out once, when the reply leaves the process.

use crate::redact::known::{fold_into, folded_segments, SEGMENT_END};
use crate::redact::Redactor;
use serde_json::{json, Value};
use std::sync::Arc;

/// A piece of rendered text: shared with the value it came from, or JSON punctuation.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Shared(Arc<str>),
    Static(&'static str),
}

impl Piece {
    fn as_str(&self) -> &str {
        match self {
            Piece::Shared(s) => s,
            Piece::Static(s) => s,
        }
    }
}

/// JSON text rendered ahead, with what the redactor needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The text, in order.
    text: Vec<Piece>,
    /// The text's length in bytes.
    len: usize,
    /// Every part passed [`crate::redact::is_plain`] when it was rendered, so only the
    /// known-secret check is left to do, on `folded`.
    plain: bool,
    /// What the known-secret check reads: the value's strings folded
    /// ([`crate::redact::known::folded_segments`]), as segments searched one by one. Each
    /// piece stands where the value's whole folded text has a [`SEGMENT_END`], which no
    /// known secret's folded form holds (the character is a separator), so searching the
    /// pieces one by one finds exactly what searching their concatenation would. Empty when
    /// not plain (the whole redactor runs then).
    folded: Vec<Arc<str>>,
    /// The value is a JSON string (its `folded` is the string folded), which joins the
    /// strings of the container it is put in.
    is_string: bool,
}

impl Rendered {
    /// Redacts rendered JSON text. Text made only of plain parts ([`crate::redact::is_plain`])
    /// that holds no known secret is handed back as it is, without parsing it (the common
    /// case, and the point of rendering ahead); anything else goes through
    /// [`Redactor::json_in_place`] like any other reply.
    pub fn redacted(self, redactor: &Redactor) -> Rendered {
        if self.is_plain()
            && !self
                .folded
                .iter()
                .any(|piece| redactor.holds_known_secret_folded(piece))
        {
            return self;
        }
        let mut value = self.to_value();
        redactor.json_in_place(&mut value);
        Rendered::from_value(&value)
    }

    /// Renders `value` as compact JSON, as `serde_json` writes it.
    pub fn from_value(value: &Value) -> Rendered {
        let plain = crate::redact::is_plain(value);
        let mut folded = Vec::new();
        if plain {
            let mut text = String::new();
            folded_segments(value, &mut text);
            folded.push(Arc::from(text));
        }
        let text = value.to_string();
        Rendered {
            len: text.len(),
            text: vec![Piece::Shared(Arc::from(text))],
            plain,
            folded,
            is_string: value.is_string(),
        }
    }

    /// A rendered array or object: its `text`, and (when `plain`) its folded segments: one
    /// of its own, the `keys` and the strings among its `children` (joined, as a secret split
    /// across the strings of one container must be found), and those of its other children.
    fn container<'a>(
        text: Vec<Piece>,
        plain: bool,
        keys: impl Iterator<Item = &'a str>,
        children: impl Iterator<Item = &'a Rendered>,
    ) -> Rendered {
        let mut folded = Vec::new();
        if plain {
            let mut own = String::new();
            for key in keys {
                fold_into(key, &mut own);
                own.push(SEGMENT_END);
            }
            for child in children {
                if child.is_string {
                    child.folded.iter().for_each(|piece| own.push_str(piece));
                } else {
                    folded.extend(child.folded.iter().cloned());
                }
            }
            own.push(SEGMENT_END);
            folded.push(Arc::from(own));
        }
        Rendered {
            len: text.iter().map(|piece| piece.as_str().len()).sum(),
            text,
            plain,
            folded,
            is_string: false,
        }
    }

    /// `[item,item,...]`.
    pub fn array<'a>(items: impl IntoIterator<Item = &'a Rendered>) -> Rendered {
        let items: Vec<&Rendered> = items.into_iter().collect();
        let mut text =
            Vec::with_capacity(2 + items.iter().map(|i| i.text.len() + 1).sum::<usize>());
        let mut plain = true;
        text.push(Piece::Static("["));
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                text.push(Piece::Static(","));
            }
            text.extend(item.text.iter().cloned());
            plain &= item.plain;
        }
        text.push(Piece::Static("]"));
        Rendered::container(text, plain, std::iter::empty(), items.into_iter())
    }

    /// `{"key":value,...}` with the keys in `serde_json`'s order (sorted), so the text is the
    /// same as serialising the object as a value. A key given twice keeps its last value, as
    /// in a JSON object built by `serde_json`.
    pub fn object(fields: Vec<(&str, Rendered)>) -> Rendered {
        let fields: std::collections::BTreeMap<&str, Rendered> = fields.into_iter().collect();
        let mut text =
            Vec::with_capacity(2 + fields.values().map(|v| v.text.len() + 2).sum::<usize>());
        let mut plain = true;
        text.push(Piece::Static("{"));
        for (i, (key, value)) in fields.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            let key_text = Value::String((*key).to_string()).to_string();
            text.push(Piece::Shared(Arc::from(format!("{comma}{key_text}:"))));
            text.extend(value.text.iter().cloned());
            plain &= value.plain && crate::redact::is_plain(&json!({ *key: null }));
        }
        text.push(Piece::Static("}"));
        Rendered::container(text, plain, fields.keys().copied(), fields.values())
    }

    /// The JSON text's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for no text at all (never for a rendered value; there for `len`'s sake).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when only the known-secret check is left to do (see the field).
    pub fn is_plain(&self) -> bool {
        self.plain
    }

    /// The JSON text, written out (with room for the newline the control socket ends a
    /// reply with, so a large reply is not copied again for it).
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.len + 1);
        for piece in &self.text {
            out.push_str(piece.as_str());
        }
        out
    }

    /// The JSON text's pieces, in order: a writer can send them as they are, without putting
    /// the whole text together first (a `list` of 1,000 contexts is 350 KB).
    pub fn pieces(&self) -> impl Iterator<Item = &str> {
        self.text.iter().map(Piece::as_str)
    }

    /// The JSON text, written out, consuming the value.
    pub fn into_text(self) -> String {
        self.to_text()
    }

    /// The value the text stands for (a copy; for the rare reply that is embedded in
    /// another, such as an approved `list`).
    pub fn to_value(&self) -> Value {
        // The text was written by serde_json (or put together from such texts with JSON
        // punctuation), so it always parses.
        serde_json::from_str(&self.to_text()).unwrap_or(Value::Null)
    }
}
