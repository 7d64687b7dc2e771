//! The fuzzers' committed corpora, replayed under plain `cargo test` (see `docs/fuzzing.md`).
//!
//! Every file in `fuzz/corpus/<target>/` goes through the same check function the fuzz target
//! runs (`fuzz/checks.rs`), so a property that a corpus input once exercised is checked on
//! every CI run without a nightly toolchain or libFuzzer. And the canonical writer is compared
//! byte for byte with CPython's `json.dumps(value, sort_keys=True)` (the call the pane agents
//! note signs with, `tests/vectors/gen_vectors.py`) on every corpus input that is JSON.

#[path = "../fuzz/checks.rs"]
mod checks;

use pane_agent::auth::canonical::python_dumps;
use pane_agent::auth::envelope::integer_tokens;
use serde_json::{json, Number, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "{}: only {} files",
        dir.display(),
        files.len()
    );
    files
}

fn replay(target: &str) {
    let check = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .unwrap();
    for (path, bytes) in corpus(target) {
        if let Err(e) = std::panic::catch_unwind(|| check(&bytes)) {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{} fails its check: {why}\nrerun: cd fuzz && cargo +nightly fuzz run {target} {}",
                path.display(),
                path.display()
            );
        }
    }
}

#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = checks::TARGETS.iter().map(|(n, _)| *n).collect();
    let dirs = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"))
        .unwrap()
        .count();
    assert_eq!(
        dirs,
        names.len(),
        "a corpus directory per target: {names:?}"
    );
}

#[test]
fn corpus_envelope() {
    replay("envelope");
}

#[test]
fn corpus_canonical() {
    replay("canonical");
}

#[test]
fn corpus_gateway_protocol() {
    replay("gateway_protocol");
}

#[test]
fn corpus_mail_headers() {
    replay("mail_headers");
}

#[test]
fn corpus_mail_body() {
    replay("mail_body");
}

#[test]
fn corpus_sender_matching() {
    replay("sender_matching");
}

#[test]
fn corpus_config() {
    replay("config");
}

/// Where serde_json (what the agent parses with) and CPython's `json` read the same JSON text
/// as different values, so that comparing the writer with `json.dumps(json.loads(text))` on
/// the raw text would compare two different things. Not divergences: duplicate keys (both
/// keep the last value; `Envelope::parse` refuses them anyway), floats (both round correctly;
/// serde_json has `float_roundtrip`), and escapes (both decode the same code points).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Divergence {
    /// An integer outside i64/u64: serde_json (without `arbitrary_precision`) reads it as an
    /// f64, Python as an exact int. (`Envelope::parse` refuses such envelopes outright.)
    big_int: bool,
    /// The integer `-0`: serde_json reads it as the float -0.0 (written `-0.0`), Python as the
    /// int 0 (written `0`). No signer sends it: Python and JavaScript both serialise -0 as `0`.
    negative_zero_int: bool,
}

/// Looks at the integer tokens outside strings (the text is JSON serde_json accepted).
fn divergence(text: &str) -> Divergence {
    let mut d = Divergence::default();
    for token in integer_tokens(text) {
        if token == "-0" {
            d.negative_zero_int = true;
        } else if token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
            d.big_int = true;
        }
    }
    d
}

/// Why CPython accepts JSON text that serde_json refuses (so the writer never sees it: the
/// agent refuses such an envelope as malformed before any signature work).
fn why_python_only(text: &str, python: &str) -> &'static str {
    if ["NaN", "Infinity"].iter().any(|w| text.contains(w)) {
        // Python's json reads the non-standard NaN, Infinity and -Infinity literals.
        "NaN/Infinity literal"
    } else if python.contains("Infinity") {
        // A number beyond f64 (1e400): Python reads inf, serde_json refuses it.
        "float overflow"
    } else if text.to_ascii_lowercase().contains("\\ud") {
        // A lone UTF-16 surrogate escape: Python makes a str with a lone surrogate,
        // serde_json refuses it (a Rust String cannot hold one).
        "lone surrogate"
    } else if text.bytes().filter(|b| matches!(b, b'[' | b'{')).count() > 128 {
        // serde_json's recursion limit is 128; Python's is its interpreter's (about 1000).
        "deeper than 128"
    } else {
        "unexplained"
    }
}

fn cpython(request: &Value) -> Value {
    const SCRIPT: &str = r#"
import json, struct, sys

def dumps(text):
    # Exactly the pane agents note's call: json.dumps(args, sort_keys=True).
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except (ValueError, RecursionError):
        return None

req = json.load(sys.stdin)
json.dump({
    "raw": [dumps(t) for t in req["raw"]],
    "normalized": [dumps(t) for t in req["normalized"]],
    "floats": [json.dumps(struct.unpack("<d", struct.pack("<Q", b))[0]) for b in req["floats"]],
}, sys.stdout)
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the canonical JSON oracle");
    let mut stdin = child.stdin.take().unwrap();
    let body = request.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(body.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "python3 failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The "Python oracle on a corpus": every canonical corpus input serde_json accepts is written
/// by `python_dumps` and by CPython, and the two must be the same bytes.
///
/// Each input is compared twice. Raw: CPython parses the input text itself; this is the real
/// interoperability question, and it is asked of every input except those where the two
/// parsers read different values (`Divergence`, counted; at most a tenth of the inputs).
/// Normalized: CPython parses serde_json's own re-serialisation of the value the writer was
/// given, so this compares the writers on the same value for every input, divergent or not.
/// Inputs serde_json refuses are not written by the agent at all; CPython's view of them is
/// classified (`why_python_only`) and an unexplained one fails the test. The f64 bit patterns
/// the fuzz check reads from every input are also written by both and compared.
#[test]
fn canonical_writer_matches_cpython_on_the_corpus() {
    let files = corpus("canonical");
    let mut raw = Vec::new();
    let mut ours: Vec<Option<String>> = Vec::new();
    let mut normalized = Vec::new();
    let mut floats: Vec<u64> = Vec::new();
    for (_, bytes) in &files {
        for chunk in bytes.chunks_exact(8).take(16) {
            let f = f64::from_le_bytes(chunk.try_into().unwrap());
            if f.is_finite() {
                floats.push(f.to_bits());
            }
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        raw.push(text.to_string());
        match serde_json::from_str::<Value>(text) {
            Ok(v) => {
                ours.push(Some(python_dumps(&v)));
                normalized.push(serde_json::to_string(&v).unwrap());
            }
            Err(_) => {
                ours.push(None);
                normalized.push(String::new());
            }
        }
    }
    let answer = cpython(&json!({"raw": raw, "normalized": normalized, "floats": floats}));
    let py_raw = answer["raw"].as_array().unwrap();
    let py_norm = answer["normalized"].as_array().unwrap();

    let (mut json_inputs, mut compared_raw, mut big_int, mut neg_zero) = (0, 0, 0, 0);
    let mut python_only: std::collections::BTreeMap<&str, usize> = Default::default();
    for (i, text) in raw.iter().enumerate() {
        let python = py_raw[i].as_str();
        let Some(ours) = &ours[i] else {
            if let Some(python) = python {
                let why = why_python_only(text, python);
                assert_ne!(why, "unexplained", "CPython reads {text:?} as {python}");
                *python_only.entry(why).or_default() += 1;
            }
            continue;
        };
        json_inputs += 1;
        assert_eq!(
            py_norm[i].as_str(),
            Some(ours.as_str()),
            "writer differs from CPython on the value of {text:?}"
        );
        let python =
            python.unwrap_or_else(|| panic!("CPython refuses JSON serde_json reads: {text:?}"));
        let d = divergence(text);
        if d == Divergence::default() {
            assert_eq!(python, ours, "writer differs from CPython on {text:?}");
            compared_raw += 1;
        } else {
            // The two parsers read different values, so the outputs must differ too.
            assert_ne!(python, ours, "{text:?} was classified as divergent: {d:?}");
            big_int += usize::from(d.big_int);
            neg_zero += usize::from(d.negative_zero_int);
        }
    }
    let py_floats = answer["floats"].as_array().unwrap();
    assert_eq!(py_floats.len(), floats.len());
    for (bits, python) in floats.iter().zip(py_floats) {
        let f = f64::from_bits(*bits);
        let ours = python_dumps(&Value::Number(Number::from_f64(f).unwrap()));
        assert_eq!(
            Some(ours.as_str()),
            python.as_str(),
            "float {f:?} ({bits:#x})"
        );
    }
    eprintln!(
        "canonical oracle: {} files, {json_inputs} JSON to serde_json, {compared_raw} compared \
         raw and all {json_inputs} normalized; not compared raw: {big_int} with an integer \
         beyond 64 bits, {neg_zero} with -0; refused by serde_json but read by CPython: \
         {python_only:?}; {} f64 bit patterns compared",
        files.len(),
        floats.len()
    );
    assert!(json_inputs >= 100, "only {json_inputs} JSON inputs");
    assert!(
        compared_raw * 10 >= json_inputs * 9,
        "only {compared_raw} of {json_inputs} compared raw"
    );
    assert!(floats.len() >= 100);
}

#[test]
fn corpus_sealed_record() {
    replay("sealed_record");
}
