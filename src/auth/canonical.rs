//! The canonical form of command arguments that signatures cover.
//!
//! The pane agents note signs `ts + cmd + json.dumps(args, sort_keys=True)`, so the agent must
//! reproduce CPython's `json.dumps` output byte for byte: keys sorted by code point, `", "` and
//! `": "` separators, everything outside printable ASCII escaped as lowercase `\uXXXX` (with
//! surrogate pairs above U+FFFF), and floats written the way Python's `repr(float)` writes
//! them. The vectors in `tests/vectors/` were made by CPython and pin this down.

use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// Writes `value` exactly as CPython's `json.dumps(value, sort_keys=True)` would.
pub fn python_dumps(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    // Python sorts `str` keys by code point; for UTF-8 strings byte order is code point order.
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_unstable();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_string(out, key);
        out.push_str(": ");
        if let Some(v) = map.get(key) {
            write_value(out, v);
        }
    }
    out.push('}');
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        write_python_float(out, f);
    }
}

/// Python's `float.__repr__`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in `-4..16` (always with a fractional part), otherwise as `d.ddde+XX`.
fn write_python_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Python's repr: "1.5e-5".
    let sci = format!("{f:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let digits = break_ties_to_even(f.abs(), digits, exp);
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Where two shortest digit strings are exactly as close to `f`, Python's repr (David Gay's
/// dtoa) takes the one whose last digit is even and Rust's `{:e}` the larger:
/// `1000000000000000.25` is `1000000000000000.2` in Python and `...0.3` in Rust. So when
/// Rust's last digit is odd, the string one lower is used instead if it is exactly as close
/// (the exact value of `f` is it followed by a single 5) and also reads back as `f`.
/// (Found by comparing the writer with CPython on the fuzz corpus, `tests/fuzz_corpus.rs`.)
fn break_ties_to_even(f: f64, digits: String, exp: i32) -> String {
    let Some(&last) = digits.as_bytes().last() else {
        return digits;
    };
    if (last - b'0').is_multiple_of(2) || digits == "1" {
        return digits;
    }
    let Some((exact, exact_exp)) = short_exact_digits(f) else {
        return digits;
    };
    let mut lower = digits[..digits.len() - 1].to_string();
    lower.push(char::from(last - 1));
    let tie = exact_exp == exp && exact.strip_prefix(lower.as_str()) == Some("5");
    let (first, rest) = lower.split_at(1);
    if tie && format!("{first}.{rest}0e{exp}").parse::<f64>() == Ok(f) {
        lower
    } else {
        digits
    }
}

/// The exact decimal digits of `f` (finite), without trailing zeros, and the decimal exponent
/// of the first, when they are few enough for `f` to be a tie between two shortest strings
/// (which have at most 17 digits, so the tie at most 18); None otherwise. Integer arithmetic
/// only, so that hostile input full of floats costs no more than formatting them.
fn short_exact_digits(f: f64) -> Option<(String, i32)> {
    let bits = f.abs().to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mut m, mut e) = match biased {
        0x7ff => return None,
        0 => (fraction, -1074),
        _ => (fraction | (1 << 52), biased - 1075),
    };
    if m == 0 {
        return None;
    }
    let zeros = m.trailing_zeros();
    m >>= zeros;
    e += zeros as i32;
    // f = m * 2^e with m odd.
    let (n, scale) = if e >= 0 {
        // A tie is an odd X (ending in 5) times 10^z = X * 2^z * 5^z: then e = z, and 5^z
        // divides m < 2^53, so z <= 22.
        if e > 22 {
            return None;
        }
        (u128::from(m) << e, 0)
    } else {
        // f = m * 5^k / 10^k, and m * 5^k (odd, so no trailing zeros) has at most 18 digits
        // only if 5^k < 10^18, so k <= 25; then it fits in a u128.
        let k = -e;
        if k > 25 {
            return None;
        }
        (u128::from(m) * 5u128.pow(k as u32), k)
    };
    let text = n.to_string();
    let digits = text.trim_end_matches('0');
    if digits.len() > 18 {
        return None;
    }
    Some((digits.to_string(), text.len() as i32 - 1 - scale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_follow_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123.456, "123.456"),
            (1e100, "1e+100"),
            (2.5e-300, "2.5e-300"),
            // Ties between two shortest strings go to the even digit, as in CPython.
            // (Written as sums: each is exact, and clippy finds the literals over-precise.)
            (1e15 + 0.25, "1000000000000000.2"),
            (1e15 + 0.75, "1000000000000000.8"),
            (1e15 + 1.25, "1000000000000001.2"),
            (-(1e15 + 2.25), "-1000000000000002.2"),
        ];
        for (f, want) in cases {
            let mut s = String::new();
            write_python_float(&mut s, f);
            assert_eq!(s, want, "float {f:?}");
        }
    }

    #[test]
    fn strings_escape_like_ensure_ascii() {
        let v = json!({"b": "é\u{1F600}\u{7f}\"\\\n", "a": [1, true, null]});
        assert_eq!(
            python_dumps(&v),
            r#"{"a": [1, true, null], "b": "\u00e9\ud83d\ude00\u007f\"\\\n"}"#
        );
    }
}
