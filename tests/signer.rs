//! `docs/signer.html`, the owner's offline phone signer: it must make no requests, its
//! signatures must equal CPython's for every vector in `vectors/envelopes.json`, and the
//! envelopes it makes must be accepted by the real agent.
//!
//! The page is driven in headless Chromium (`apt-get install -y chromium`; CI installs it)
//! through its automation hash `#secret=...&cmd=...&args=...&ts=...`, with the DOM dumped
//! and the `id="envelope"` element read back.

mod common;

use common::Agent;
use pane_agent::auth::canonical::python_dumps;
use pane_agent::auth::{Envelope, Secret, SecretSet};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Pages are signed this many at a time.
const PARALLEL: usize = 4;
/// How long one Chromium run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn page_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/signer.html")
}

fn page_text() -> String {
    std::fs::read_to_string(page_path()).expect("docs/signer.html must exist")
}

fn vectors() -> Vec<Value> {
    serde_json::from_str(include_str!("vectors/envelopes.json")).unwrap()
}

/// Fails (never skips) when Chromium is missing.
fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the signer page tests need headless Chromium. \
         Install it with `apt-get install -y chromium` (CI installs it)."
    );
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes the HTML serializer's text escaping.
fn unescape_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The text content of the first element with `id="{id}"` in a dumped DOM.
fn element_text(dom: &str, id: &str) -> Option<String> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let open_end = at + dom[at..].find('>')? + 1;
    let close = open_end + dom[open_end..].find("</")?;
    Some(unescape_html(&dom[open_end..close]))
}

fn title(dom: &str) -> String {
    let start = dom.find("<title>").map(|i| i + "<title>".len());
    let end = dom.find("</title>");
    match (start, end) {
        (Some(s), Some(e)) if s <= e => unescape_html(&dom[s..e]),
        _ => String::new(),
    }
}

/// What the page showed after loading with an automation hash.
#[derive(Debug)]
struct PageResult {
    title: String,
    envelope: String,
    error: String,
}

/// Loads the page once in headless Chromium and dumps its DOM. `Err` for a browser that
/// failed (crashed, timed out, dumped nothing), as opposed to a page that answered.
fn run_page_once(hash: &str) -> Result<PageResult, String> {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("profile");
    let out_path = tmp.path().join("dom.html");
    let err_path = tmp.path().join("stderr.txt");
    let url = format!("file://{}#{hash}", page_path().display());
    let mut child = Command::new(CHROMIUM)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join("config"))
        .env("XDG_CACHE_HOME", tmp.path().join("cache"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--virtual-time-budget=5000")
        .arg("--dump-dom")
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        // Its own process group, so a hung browser and all its helpers can be killed.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {CHROMIUM}: {e}"))?;
    let pgid = child.id() as i32;
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            return Err(format!("chromium timed out after {RUN_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Helpers left behind in the group (there should be none) must not outlive the test.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let dom = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let tail: String = stderr
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    if !status.success() {
        return Err(format!(
            "chromium exited with {status}; stderr tail:\n{tail}"
        ));
    }
    let result = PageResult {
        title: title(&dom),
        envelope: element_text(&dom, "envelope").unwrap_or_default(),
        error: element_text(&dom, "error").unwrap_or_default(),
    };
    if result.title != "signed" && result.title != "error" {
        return Err(format!(
            "the page did not finish (title {:?}, {} bytes of DOM); stderr tail:\n{tail}",
            result.title,
            dom.len()
        ));
    }
    Ok(result)
}

/// Loads the page, retrying once if the browser itself failed.
fn run_page(secret: &str, cmd: &str, args_json: &str, ts: Option<&str>) -> PageResult {
    let mut hash = format!(
        "secret={}&cmd={}&args={}",
        encode(secret),
        encode(cmd),
        encode(args_json)
    );
    if let Some(ts) = ts {
        hash.push_str(&format!("&ts={}", encode(ts)));
    }
    let mut failures = Vec::new();
    for _ in 0..2 {
        match run_page_once(&hash) {
            Ok(r) => return r,
            Err(e) => failures.push(e),
        }
    }
    panic!(
        "chromium could not run the signer page for {cmd} {args_json}:\n{}",
        failures.join("\n---\n")
    );
}

/// Signs with the page; panics with the page's reason when it refuses.
fn sign_with_page(secret: &str, cmd: &str, args_json: &str, ts: Option<&str>) -> String {
    let r = run_page(secret, cmd, args_json, ts);
    assert_eq!(
        r.title, "signed",
        "the page refused {cmd} {args_json}: {:?}",
        r.error
    );
    assert!(!r.envelope.is_empty(), "no envelope for {cmd} {args_json}");
    r.envelope
}

/// Runs `f` over `items`, `PARALLEL` at a time, results in order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(PARALLEL) {
        let results: Vec<R> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|item| s.spawn(|| f(item))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        out.extend(results);
    }
    out
}

/// The `"args": ...` text of an envelope made by the page (it writes the canonical text).
fn args_text(envelope: &str) -> &str {
    let start = envelope.find("\"args\": ").expect("args in envelope") + "\"args\": ".len();
    let end = envelope.rfind(", \"sig\": ").expect("sig in envelope");
    &envelope[start..end]
}

#[test]
fn page_makes_no_requests_and_stores_nothing() {
    let page = page_text();
    let re = |p: &str| regex::Regex::new(p).unwrap();

    // No remote URL in any URL-bearing attribute (protocol-relative `//host` included).
    let remote_attr = re(
        r#"(?i)\b(?:src|href|action|formaction|poster|srcset|data|background|manifest)\s*=\s*["']?\s*(?:https?:)?//"#,
    );
    assert!(
        !remote_attr.is_match(&page),
        "remote URL attribute: {:?}",
        remote_attr.find(&page).map(|m| m.as_str())
    );
    let url_attr = re(r#"(?i)\b(?:src|href)\s*=\s*["']?\s*https?://"#);
    assert!(!url_attr.is_match(&page), "http(s) URL in src/href");

    // Nothing that loads or sends anything, and nothing that stores anything.
    let forbidden = [
        (r"\bfetch\b", "fetch"),
        (r"XMLHttpRequest", "XMLHttpRequest"),
        (r"WebSocket", "WebSocket"),
        (r"EventSource", "EventSource"),
        (r"sendBeacon", "sendBeacon"),
        (r"RTCPeerConnection", "WebRTC"),
        (r"\bimport\b", "import (module, dynamic or CSS @import)"),
        (r"importScripts", "importScripts"),
        (r"\bWorker\b", "workers"),
        (r"(?i)<script\b[^>]*\bsrc\s*=", "an external script"),
        (
            r"(?i)<(?:link|iframe|img|object|embed|frame|audio|video|source|base)\b",
            "an element that loads a resource",
        ),
        (r"(?i)\burl\s*\(", "CSS url()"),
        (
            r"localStorage|sessionStorage|indexedDB|document\.cookie|caches\b",
            "storage",
        ),
        (r"(?i)<form\b[^>]*\baction\s*=", "a form action"),
    ];
    for (pattern, what) in forbidden {
        let m = re(pattern).find(&page);
        assert!(
            m.is_none(),
            "the page must not use {what}: found {:?}",
            m.map(|m| m.as_str())
        );
    }
    // The form fields have no names, so even a submitted form would carry no secret.
    assert!(!re(r#"(?i)<(?:input|select|textarea)\b[^>]*\bname\s*="#).is_match(&page));
    // The browser enforces all of this too.
    assert!(
        re(r#"(?i)<meta\s+http-equiv="Content-Security-Policy"\s+content="default-src 'none';"#)
            .is_match(&page),
        "the page must carry a default-src 'none' Content-Security-Policy"
    );
    // The secret field is a password field; the automation hook is there.
    assert!(re(r#"<input id="secret" type="password""#).is_match(&page));
    assert!(page.contains("id=\"envelope\""));
    assert!(page.contains("crypto.subtle"));
}

#[test]
fn page_signatures_equal_python_vectors() {
    require_chromium();
    let vs = vectors();
    assert!(vs.len() >= 10, "vectors missing");
    let results = parallel_map(&vs, |v| {
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        sign_with_page(&s("secret"), &s("cmd"), &s("args_json"), Some(&s("ts")))
    });
    for (v, envelope) in vs.iter().zip(&results) {
        let parsed: Value = serde_json::from_str(envelope)
            .unwrap_or_else(|e| panic!("page envelope {envelope:?} is not JSON: {e}"));
        assert_eq!(parsed["sig"], v["sig"], "signature for vector {v}");
        assert_eq!(parsed["ts"], v["ts"], "ts for vector {v}");
        assert_eq!(parsed["cmd"], v["cmd"], "cmd for vector {v}");
        assert_eq!(
            args_text(envelope),
            v["canonical"].as_str().unwrap(),
            "args of {v}"
        );
        // And the agent accepts the envelope exactly as the page wrote it.
        let env = Envelope::parse(envelope.as_bytes())
            .unwrap_or_else(|e| panic!("agent refuses the page's envelope {envelope}: {e:?}"));
        let set = SecretSet {
            current: Secret::new(v["secret"].as_str().unwrap()),
            previous: vec![],
        };
        assert!(
            env.signature_valid(&set),
            "agent rejects the signature of {envelope}"
        );
    }
}

#[test]
fn page_agrees_with_the_agent_beyond_the_vectors() {
    require_chromium();
    let secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let ts = "2026-11-22T10:00:00.123Z";
    // Floats around Python's repr switch-overs, escapes, code-point key order, whitespace.
    let cases = [
        r#"{"f": [5e-324, 1.7976931348623157e308, 1e-7, 0.0001, 0.00012, 0.001, 1e22, 1e21, 1E5, 2.5E-3, 100.0, -1.5, 9007199254740993.0, 123456789012345678901234.5, 0.30000000000000004]}"#,
        "{\"k\": \"\\u0000\\u001f\\u007f\\u0080\\u00ff\\u2028\\ufeff\\ud83d\\ude00 <&> ' / \\\\ \\\"\", \"a/b\": \"x\", \"B\": [], \"a\": {}, \"\\ud800\\udc00\": 1, \"\\uff61\": 2}",
        "{\n  \"limit\" :\t25 ,\r\n\"context\":\"aa\", \"n\": [ ] , \"o\" : { } }",
        r#"{"i": [-9223372036854775808, 9223372036854775807, 18446744073709551615, 0, -1]}"#,
    ];
    let results = parallel_map(&cases, |args| {
        sign_with_page(secret, "audit", args, Some(ts))
    });
    let set = SecretSet {
        current: Secret::new(secret),
        previous: vec![],
    };
    for (args, envelope) in cases.iter().zip(&results) {
        let expected: Value = serde_json::from_str(args).unwrap();
        assert_eq!(args_text(envelope), python_dumps(&expected), "args {args}");
        let env = Envelope::parse(envelope.as_bytes())
            .unwrap_or_else(|e| panic!("agent refuses the page's envelope {envelope}: {e:?}"));
        assert!(env.signature_valid(&set), "agent rejects {envelope}");
        let ours = Envelope::sign_with_ts(
            &Secret::new(secret),
            ts.to_string(),
            "audit",
            expected.as_object().unwrap().clone(),
        );
        assert_eq!(env.sig_hex(), ours.sig_hex(), "signature for {args}");
    }

    // What the agent would refuse, the page refuses with a reason.
    let refusals = [
        (r#"{"a": 1, "a": 2}"#, "duplicate key"),
        (r#"{"a": 18446744073709551616}"#, "out of range"),
        (r#"{"a": 1e999}"#, "out of range"),
        (r#"["not", "an", "object"]"#, "object"),
        (r#"{"a": NaN}"#, "unexpected"),
    ];
    let results = parallel_map(&refusals, |(args, _)| {
        run_page(secret, "audit", args, Some(ts))
    });
    for ((args, why), r) in refusals.iter().zip(&results) {
        assert_eq!(r.title, "error", "the page must refuse {args}: {r:?}");
        assert!(
            r.error.contains(why),
            "refusal of {args} should say {why:?}: {r:?}"
        );
        assert!(r.envelope.is_empty(), "no envelope for {args}: {r:?}");
    }
}

#[test]
fn page_envelopes_work_against_the_live_agent() {
    require_chromium();
    let agent = Agent::start();
    let secret = agent.secret().as_text();
    let ts_format = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
    let calls = [("list", "{}"), ("status", r#"{"context": "notion"}"#)];
    let envelopes = parallel_map(&calls, |(cmd, args)| {
        sign_with_page(&secret, cmd, args, None)
    });
    for envelope in &envelopes {
        let parsed: Value = serde_json::from_str(envelope).unwrap();
        let ts = parsed["ts"].as_str().unwrap();
        assert!(
            ts_format.is_match(ts),
            "ts {ts:?} is not RFC 3339 UTC with milliseconds"
        );
        let when = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
        let skew = (chrono::Utc::now() - when.with_timezone(&chrono::Utc)).num_seconds();
        assert!(skew.abs() < 120, "page ts {ts} is {skew} s from now");
    }

    let list = agent.raw(envelopes[0].as_bytes());
    assert!(list.get("error").is_none(), "list failed: {list}");
    assert_eq!(list["count"], 0, "{list}");

    let status = agent.raw(envelopes[1].as_bytes());
    assert_eq!(status["error"], "context not found: notion", "{status}");

    // The same envelope again is a replay.
    let again = agent.raw(envelopes[0].as_bytes());
    assert!(
        again["error"]
            .as_str()
            .unwrap_or_default()
            .contains("replay"),
        "{again}"
    );
}
