//! `docs/signer.html`, the owner's phone signer: its signatures must equal CPython's for
//! every vector in `vectors/envelopes.json` and be accepted by the real agent; it keeps the
//! secret only encrypted (IndexedDB, PBKDF2 + AES-GCM) and unlocked only as a non-extractable
//! key; served by the agent at `/signer/` it posts to `/command` and works offline; and no
//! request ever leaves for another origin.
//!
//! The vectors are signed in headless Chromium (`apt-get install -y chromium`; CI installs
//! it) through the page's automation hash `#secret=...&cmd=...&args=...&ts=...`, with the DOM
//! dumped and the `id="envelope"` element read back. The owner's flows are driven as a phone
//! (360 px viewport, touch, dark mode) over the DevTools protocol (`common/chromium.rs`):
//! taps, typing, reloads, and a read-out of every storage the page can reach and of the
//! browser profile on disk.

#[path = "common/chromium.rs"]
mod chromium;
mod common;

use chromium::{require_chromium, Browser, CHROMIUM};
use common::Agent;
use pane_agent::auth::canonical::python_dumps;
use pane_agent::auth::{Envelope, Secret, SecretSet};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        // The poll interval of this bounded wait for the exit.
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
fn page_sends_nothing_but_the_envelope_and_stores_only_ciphertext() {
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

    // Nothing that loads or sends anything but the one POST, and no storage but IndexedDB.
    let forbidden = [
        (r"XMLHttpRequest", "XMLHttpRequest"),
        (r"WebSocket", "WebSocket"),
        (r"EventSource", "EventSource"),
        (r"sendBeacon", "sendBeacon"),
        (r"RTCPeerConnection", "WebRTC"),
        (
            r"(?m)^\s*import[\s{*]|\bimport\s*\(|@import",
            "import (module, dynamic or CSS @import)",
        ),
        (r"importScripts", "importScripts"),
        (r"\bWorker\b", "workers"),
        (r"(?i)<script\b[^>]*\bsrc\s*=", "an external script"),
        (
            r"(?i)<(?:link|iframe|img|object|embed|frame|audio|video|source|base)\b",
            "an element that loads a resource",
        ),
        (
            r"localStorage|sessionStorage|document\.cookie|caches\b",
            "storage other than IndexedDB",
        ),
        (r"exportKey|wrapKey", "exporting a key"),
        (r"(?i)<form\b", "a form"),
        (r"\bwindow\.open\b|location\.href\s*=", "navigating away"),
    ];
    for (pattern, what) in forbidden {
        let m = re(pattern).find(&page);
        assert!(
            m.is_none(),
            "the page must not use {what}: found {:?}",
            m.map(|m| m.as_str())
        );
    }
    let style = &page[page.find("<style>").unwrap()..page.find("</style>").unwrap()];
    assert!(
        !re(r"(?i)\burl\s*\(").is_match(style),
        "CSS url() in the style"
    );
    // The requests, each to the page's own origin and only when served: the envelope to
    // /command; and for a sealed agent, GET /healthz and the unseal passphrase to /unseal.
    let fetches: Vec<&str> = re(r"\bfetch\b[^\n]*")
        .find_iter(&page)
        .map(|m| m.as_str())
        .collect();
    assert_eq!(
        fetches,
        [
            "fetch(url.href, {",
            "fetch(new URL(path, location.href).href, options);"
        ],
        "{fetches:?}"
    );
    assert!(page.contains(r#"var url = new URL("../command", location.href);"#));
    assert!(page.contains(r#"if (!SERVED || text === "") { return Promise.resolve(); }"#));
    let live: Vec<&str> = re(r#"\blive\([^)]*"#)
        .find_iter(&page)
        .map(|m| m.as_str())
        .collect();
    assert_eq!(
        live,
        [
            "live(path, init",
            r#"live("../healthz""#,
            r#"live("../unseal", { method: "POST", body: body, headers: { "content-type": "application/json" } }"#
        ],
        "{live:?}"
    );
    assert!(page.contains(
        r#"var LIVE_REQUEST = { credentials: "omit", cache: "no-store", redirect: "error", referrerPolicy: "no-referrer" };"#
    ));
    assert!(page.contains(r#"if (!SERVED) { return Promise.resolve(); }"#));
    assert!(
        page.contains(r#"if (!SERVED || $("unseal-btn").disabled) { return Promise.resolve(); }"#)
    );
    // The key: PBKDF2-SHA256 with at least 600,000 iterations, AES-GCM, non-extractable keys.
    let iterations: u64 = re(r"var ITERATIONS = (\d+);").captures(&page).unwrap()[1]
        .parse()
        .unwrap();
    assert!(iterations >= 600_000, "{iterations} PBKDF2 iterations");
    assert!(
        page.contains(r#"{ name: "PBKDF2", salt: salt, iterations: iterations, hash: "SHA-256" }"#)
    );
    assert!(page.contains(r#"{ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]"#));
    assert!(page.contains(r#"{ name: "HMAC", hash: "SHA-256" }, false, ["sign"]"#));
    let min_pass: u64 = re(r"var MIN_PASSPHRASE = (\d+);").captures(&page).unwrap()[1]
        .parse()
        .unwrap();
    assert!(min_pass >= 12, "passphrases of {min_pass} characters");
    // The form fields have no names, so even a submitted form would carry no secret.
    assert!(!re(r#"(?i)<(?:input|select|textarea)\b[^>]*\bname\s*="#).is_match(&page));
    // Secret and passphrases are password fields.
    for id in [
        "import-secret",
        "new-pass",
        "new-pass2",
        "pass",
        "unseal-pass",
    ] {
        assert!(
            page.contains(&format!("<input id=\"{id}\" type=\"password\"")),
            "#{id} must be a password field"
        );
    }
    // The browser enforces all of this too.
    let csp = re(r#"(?i)<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)""#)
        .captures(&page)
        .expect("a Content-Security-Policy meta tag")[1]
        .to_string();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(
        csp.contains("connect-src 'self'") && csp.contains("form-action 'none'"),
        "{csp}"
    );
    assert!(page.contains("id=\"envelope\""));

    // The service worker answers only same-origin GETs of the page's own files and stores
    // nothing else (no /healthz, no /unseal, no /command).
    let sw =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/signer/sw.js"))
            .unwrap();
    assert!(sw.contains(r#"if (request.method !== "GET") { return; }"#));
    assert!(sw.contains("url.origin !== self.location.origin"));
    assert!(sw.contains(r#"var SHELL = ["./", "manifest.webmanifest", "icon.svg"];"#));
    assert!(sw.contains("if (SHELL_PATHS.indexOf(url.pathname) < 0) { return; }"));
    assert!(
        !re(r"https?://").is_match(&sw),
        "no URL in the service worker"
    );
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

// ---------------------------------------------------------------------------------------------
// The owner's flows, as a phone.
// ---------------------------------------------------------------------------------------------

const PASSPHRASE: &str = "correct horse battery staple";

fn page_url() -> String {
    format!("file://{}", page_path().display())
}

/// Every form the secret (or the passphrase) could be stored in: the text, its hex and base64,
/// UTF-16, and (for a hex secret) the raw bytes it spells and their base64.
fn clear_forms(text: &str) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let mut bytes = vec![text.as_bytes().to_vec(), text.to_uppercase().into_bytes()];
    if let Ok(raw) = hex::decode(text) {
        bytes.push(raw);
    }
    let mut forms = Vec::new();
    for b in &bytes {
        forms.push(b.clone());
        forms.push(hex::encode(b).into_bytes());
        forms.push(hex::encode_upper(b).into_bytes());
        forms.push(STANDARD.encode(b).into_bytes());
        forms.push(URL_SAFE_NO_PAD.encode(b).into_bytes());
    }
    forms.push(text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect());
    forms
}

/// A finder for any 16-byte run of any of `forms` (so a secret stored in part is found too).
struct ClearText(std::collections::HashSet<Vec<u8>>);

const RUN: usize = 16;

impl ClearText {
    fn of(texts: &[&str]) -> ClearText {
        let mut runs = std::collections::HashSet::new();
        for text in texts {
            for form in clear_forms(text) {
                for w in form.windows(RUN) {
                    runs.insert(w.to_vec());
                }
            }
        }
        ClearText(runs)
    }

    fn find(&self, haystack: &[u8]) -> Option<usize> {
        haystack.windows(RUN).position(|w| self.0.contains(w))
    }
}

/// Every file under `dir` with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    if let Ok(bytes) = std::fs::read(&path) {
                        out.push((path, bytes));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Reads out every storage the page's origin has: each IndexedDB database (every record,
/// binary as hex), localStorage, sessionStorage, cookies, Cache Storage (every body).
const STORAGE_DUMP: &str = r#"(async function () {
  function enc(v) {
    if (v instanceof ArrayBuffer) { v = new Uint8Array(v); }
    if (ArrayBuffer.isView(v)) {
      var b = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      return { hex: Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("") };
    }
    if (Array.isArray(v)) { return v.map(enc); }
    if (v && typeof v === "object") { var o = {}; Object.keys(v).forEach(function (k) { o[k] = enc(v[k]); }); return o; }
    return v;
  }
  function req(r) { return new Promise(function (ok, no) { r.onsuccess = function () { ok(r.result); }; r.onerror = function () { no(r.error); }; }); }
  var out = { indexedDB: {}, localStorage: {}, sessionStorage: {}, cookie: document.cookie, caches: {} };
  var dbs = await indexedDB.databases();
  for (var i = 0; i < dbs.length; i++) {
    var db = await req(indexedDB.open(dbs[i].name));
    var stores = {};
    var names = Array.from(db.objectStoreNames);
    for (var j = 0; j < names.length; j++) {
      var st = db.transaction(names[j]).objectStore(names[j]);
      var keys = await req(st.getAllKeys());
      var vals = await req(st.getAll());
      stores[names[j]] = keys.map(function (k, n) { return [enc(k), enc(vals[n])]; });
    }
    db.close();
    out.indexedDB[dbs[i].name] = stores;
  }
  [["localStorage", localStorage], ["sessionStorage", sessionStorage]].forEach(function (p) {
    for (var n = 0; n < p[1].length; n++) { var k = p[1].key(n); out[p[0]][k] = p[1].getItem(k); }
  });
  try {
    var cacheNames = await caches.keys();
    for (var c = 0; c < cacheNames.length; c++) {
      var cache = await caches.open(cacheNames[c]);
      var reqs = await cache.keys();
      out.caches[cacheNames[c]] = {};
      for (var r = 0; r < reqs.length; r++) {
        out.caches[cacheNames[c]][reqs[r].url] = await (await cache.match(reqs[r])).text();
      }
    }
  } catch (e) { out.caches = "unavailable: " + e.name; }
  return JSON.stringify(out);
})()"#;

/// The storage read-out, parsed; also asks the browser for every cookie it holds.
fn storage(b: &mut Browser) -> (Value, String) {
    let text = b.eval(STORAGE_DUMP).as_str().unwrap().to_string();
    let cookies = b.call(None, "Storage.getCookies", serde_json::json!({}));
    (
        serde_json::from_str(&text).unwrap(),
        format!("{text}{cookies}"),
    )
}

/// The records of the signer's store, by key.
fn signer_records(dump: &Value) -> std::collections::BTreeMap<String, Value> {
    dump["indexedDB"]["pane-signer"]["kv"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| (r[0].as_str().unwrap_or_default().to_string(), r[1].clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Imports the secret through the setup form (pasted, as from a scanned code).
fn import(b: &mut Browser, secret: &str, passphrase: &str) {
    assert_eq!(b.state(), "setup");
    b.type_into("#import-secret", secret);
    b.type_into("#new-pass", passphrase);
    b.type_into("#new-pass2", passphrase);
    b.tap("#import");
}

fn unlock(b: &mut Browser, passphrase: &str) {
    b.type_into("#pass", passphrase);
    b.tap("#unlock-btn");
}

/// Taps `selector` and returns the envelope the page then shows.
fn tap_and_sign(b: &mut Browser, selector: &str) -> String {
    b.eval("document.getElementById('envelope').value = ''");
    b.tap(selector);
    b.wait_for("document.getElementById('envelope').value !== ''");
    b.text("#envelope")
}

fn assert_verifies(envelope: &str, secret: &str, cmd: &str) -> Value {
    let parsed: Value = serde_json::from_str(envelope).unwrap();
    assert_eq!(parsed["cmd"], cmd, "{envelope}");
    let env = Envelope::parse(envelope.as_bytes())
        .unwrap_or_else(|e| panic!("agent refuses the page's envelope {envelope}: {e:?}"));
    let set = SecretSet {
        current: Secret::new(secret),
        previous: vec![],
    };
    assert!(env.signature_valid(&set), "bad signature on {envelope}");
    parsed
}

/// The requests of the page and its workers that `allowed` refuses (the first 20, cut).
fn foreign_requests(b: &mut Browser, allowed: impl Fn(&str) -> bool) -> Vec<String> {
    b.drain_events();
    b.requests
        .iter()
        .filter(|u| !allowed(u))
        .take(20)
        .map(|u| u.chars().take(200).collect())
        .collect()
}

/// Writes a screenshot to `$SIGNER_SCREENSHOTS` (for docs/), when set.
/// True when the reply's JSON can be seen (its "details" open): a closed `<details>` keeps
/// its content laid out but not rendered, which `checkVisibility` tells.
fn json_shown(b: &mut Browser) -> bool {
    b.eval("document.getElementById('reply-json').checkVisibility()") == serde_json::json!(true)
}

/// The agent's reply as JSON, from behind the page's "details" toggle.
fn reply_json(b: &mut Browser) -> Value {
    let text = b.text("#reply-json");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn keep_screenshot(name: &str, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    if let Some(dir) = std::env::var_os("SIGNER_SCREENSHOTS") {
        std::fs::write(Path::new(&dir).join(name), png).unwrap();
    }
}

#[test]
fn the_key_is_imported_once_kept_encrypted_and_signs_list_with_one_tap() {
    require_chromium();
    let agent = Agent::start();
    let secret = agent.secret().as_text();
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("profile");
    let mut b = Browser::launch(&profile);
    b.open(&page_url());
    assert_eq!(b.state(), "setup");
    keep_screenshot("signer-setup.png", &b.screenshot(false));

    // A secret shorter than the agent's minimum is refused.
    import(&mut b, "0123456789abcdef", PASSPHRASE);
    b.wait_for("document.getElementById('status').textContent.includes('at least 32')");
    assert_eq!(b.state(), "setup");
    // A short passphrase is refused and nothing is kept.
    b.eval("document.getElementById('import-secret').value = ''");
    import(&mut b, &secret, "too short");
    b.wait_for("document.getElementById('status').textContent.includes('12 characters')");
    assert_eq!(b.state(), "setup");
    assert!(!signer_records(&storage(&mut b).0).contains_key("vault"));

    // Imported once: unlocked at once, the fields emptied.
    b.type_into("#new-pass", PASSPHRASE);
    b.type_into("#new-pass2", PASSPHRASE);
    b.tap("#import");
    b.wait_for("document.body.dataset.state === 'unlocked'");
    for field in ["#import-secret", "#new-pass", "#new-pass2"] {
        assert_eq!(b.text(field), "", "{field} still holds its text");
    }

    // A reload forgets the unlocked key; the stored one needs the passphrase.
    b.reload();
    assert_eq!(b.state(), "locked");
    assert!(!b.visible("button[data-cmd=list]"));
    unlock(&mut b, "not the passphrase at all");
    b.wait_for("document.getElementById('status').textContent.includes('Wrong passphrase')");
    assert_eq!(b.state(), "locked", "a wrong passphrase unlocks nothing");
    assert!(!b.visible("button[data-cmd=list]"));
    assert_eq!(b.text("#envelope"), "");
    unlock(&mut b, PASSPHRASE);
    b.wait_for("document.body.dataset.state === 'unlocked'");
    assert_eq!(b.text("#pass"), "");
    keep_screenshot("signer-unlocked.png", &b.screenshot(false));

    // One tap: `list`, and the live agent accepts it.
    let list = tap_and_sign(&mut b, "button[data-cmd=list]");
    assert_verifies(&list, &secret, "list");
    let reply = agent.raw(list.as_bytes());
    assert_eq!(reply["count"], 0, "{reply}");
    // Opened as a file there is nothing to post to; Copy puts the envelope on the clipboard.
    assert!(!b.visible("#post"));
    b.call(
        None,
        "Browser.grantPermissions",
        serde_json::json!({"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
    );
    b.tap("#copy");
    b.wait_for("document.getElementById('status').textContent.startsWith('Copied')");
    assert_eq!(
        b.eval("navigator.clipboard.readText()"),
        Value::String(list.clone())
    );

    // Where the browser has the Web Share API (headless Chromium on Linux has not: a stand-in
    // records what the page hands to the share sheet), "Send with Signal" shares the envelope.
    assert!(!b.visible("#share"), "no share sheet, no share button");
    b.eval("navigator.share = function (data) { window.sharedText = data.text; return Promise.resolve(); }");
    let shared = tap_and_sign(&mut b, "button[data-cmd=approvals]");
    b.tap("#share");
    b.wait_for("window.sharedText !== undefined");
    assert_eq!(b.eval("window.sharedText"), Value::String(shared));
    keep_screenshot("signer-signed.png", &b.screenshot(false));

    // A context typed once is remembered (encrypted) and offered as a chip after a reload.
    b.type_into("#context", "notion");
    let status = tap_and_sign(&mut b, "button[data-ctx-cmd=status]");
    assert_eq!(
        assert_verifies(&status, &secret, "status")["args"]["context"],
        "notion"
    );
    assert_eq!(
        agent.raw(status.as_bytes())["error"],
        "context not found: notion"
    );
    // Beside it, the context's inbox.
    let inbox = tap_and_sign(&mut b, "button[data-ctx-cmd=inbox]");
    assert_eq!(
        assert_verifies(&inbox, &secret, "inbox")["args"],
        json!({"context": "notion"})
    );
    assert_eq!(
        agent.raw(inbox.as_bytes())["error"],
        "context not found: notion"
    );
    b.type_into("#context", "Not A Name");
    b.tap("button[data-ctx-cmd=expire]");
    b.wait_for("document.getElementById('status').textContent.includes('lowercase letters')");
    assert_eq!(b.text("#envelope"), "", "a bad context name signs nothing");
    b.type_into("#context", "notion");
    b.type_into("#fund-limit", "25.50");
    let fund = tap_and_sign(&mut b, "button[data-ctx-cmd='card.fund']");
    let args = &assert_verifies(&fund, &secret, "card.fund")["args"];
    assert_eq!(
        args,
        &serde_json::json!({"context": "notion", "limit": "25.50"})
    );
    b.reload();
    unlock(&mut b, PASSPHRASE);
    b.wait_for("document.body.dataset.state === 'unlocked'");
    b.tap("#context-chips button[data-context=notion]");
    assert_eq!(b.text("#context"), "notion");
    let expire = tap_and_sign(&mut b, "button[data-ctx-cmd=expire]");
    assert_eq!(
        assert_verifies(&expire, &secret, "expire")["args"]["context"],
        "notion"
    );

    // enroll: URL, alias and limit.
    b.tap("#enroll-box summary");
    b.type_into("#enroll-url", "https://shop.example.com/signup");
    b.type_into("#enroll-alias", "shop");
    b.type_into("#enroll-limit", "10");
    let enroll = tap_and_sign(&mut b, "#enroll");
    assert_eq!(
        assert_verifies(&enroll, &secret, "enroll")["args"],
        serde_json::json!({"url": "https://shop.example.com/signup", "alias": "shop", "card": {"limit": "10"}})
    );
    keep_screenshot("signer-enroll.png", &b.screenshot(true));

    // The free form, for everything else.
    b.tap("#other-box summary");
    b.eval("var c = document.getElementById('cmd'); c.value = 'audit'; c.dispatchEvent(new Event('change'))");
    b.type_into("#args", "limit=2\nverify=true");
    let audit = tap_and_sign(&mut b, "#sign");
    assert_eq!(
        assert_verifies(&audit, &secret, "audit")["args"],
        serde_json::json!({"limit": 2, "verify": true})
    );
    let reply = agent.raw(audit.as_bytes());
    assert!(reply.get("error").is_none(), "{reply}");

    // Lock now: the key and the envelope are gone until the passphrase again.
    b.tap("#lock");
    assert_eq!(b.state(), "locked");
    assert_eq!(b.text("#envelope"), "");
    assert!(!b.visible("button[data-cmd=list]"));
    unlock(&mut b, PASSPHRASE);
    b.wait_for("document.body.dataset.state === 'unlocked'");

    // Storage: the vault is ciphertext under PBKDF2-SHA256 (>= 600,000) and AES-GCM; nothing
    // anywhere holds the secret, the passphrase or a context name in clear.
    let (dump, everything) = storage(&mut b);
    let records = signer_records(&dump);
    let keys: Vec<&String> = records.keys().collect();
    assert_eq!(keys, ["names", "settings", "vault"], "{dump}");
    let vault = &records["vault"];
    assert_eq!(vault["kdf"], "PBKDF2-SHA256");
    assert!(vault["iterations"].as_u64().unwrap() >= 600_000, "{vault}");
    assert_eq!(
        vault["salt"]["hex"].as_str().unwrap().len(),
        32,
        "16-byte salt"
    );
    assert_eq!(vault["iv"]["hex"].as_str().unwrap().len(), 24, "12-byte IV");
    let ciphertext = hex::decode(vault["ct"]["hex"].as_str().unwrap()).unwrap();
    assert_eq!(
        ciphertext.len(),
        secret.len() + 16,
        "the secret and a GCM tag"
    );
    let clear = ClearText::of(&[&secret, PASSPHRASE]);
    assert!(
        ClearText::of(&[&secret]).find(secret.as_bytes()).is_some(),
        "the finder finds"
    );
    assert_eq!(
        clear.find(everything.as_bytes()),
        None,
        "clear text in storage: {everything}"
    );
    assert!(
        !everything.contains("notion"),
        "a context name in clear: {everything}"
    );
    assert_eq!(dump["localStorage"], serde_json::json!({}));
    assert_eq!(dump["sessionStorage"], serde_json::json!({}));
    assert_eq!(dump["cookie"], "");

    // Locks itself when idle (the idle time made short; nothing about time is asserted).
    b.type_into("#idle", "0.05");
    b.eval("document.getElementById('idle').dispatchEvent(new Event('change'))");
    b.wait_for("document.body.dataset.state === 'locked'");
    assert!(b.text("#status").contains("idle"), "{}", b.text("#status"));
    assert_eq!(b.text("#envelope"), "");
    keep_screenshot("signer-locked.png", &b.screenshot(false));

    // Opened as a file, the page sent nothing anywhere.
    let foreign = foreign_requests(&mut b, |u| u.starts_with("file://") || u == "about:blank");
    assert!(
        foreign.is_empty(),
        "requests from the file page: {foreign:?}"
    );
    assert!(
        b.requests.iter().any(|u| u.starts_with("file://")),
        "requests are seen"
    );
    b.close();

    // On disk, the whole browser profile: the ciphertext is there, no clear text is.
    let files = files_under(&profile);
    assert!(
        files
            .iter()
            .any(|(_, bytes)| bytes.windows(ciphertext.len()).any(|w| w == ciphertext)),
        "the vault's ciphertext is not in the profile: the scan would see nothing"
    );
    for (path, bytes) in &files {
        if let Some(at) = clear.find(bytes) {
            panic!("clear text in {} at byte {at}", path.display());
        }
    }

    // A new browser on the same profile (the phone restarted): locked; Forget erases it all.
    let mut b = Browser::launch(&profile);
    b.open(&page_url());
    assert_eq!(b.state(), "locked");
    assert_eq!(b.text("#idle"), "0.05", "the idle setting is kept");
    b.tap("#forget");
    assert_eq!(b.state(), "locked", "Forget asks first");
    b.tap("#forget-yes");
    b.wait_for("document.body.dataset.state === 'setup'");
    let (dump, _) = storage(&mut b);
    assert!(dump["indexedDB"].get("pane-signer").is_none(), "{dump}");
    b.reload();
    assert_eq!(b.state(), "setup");
}

/// An agent with the HTTP endpoint on a free loopback port, and its base URL.
fn agent_with_http() -> (Agent, String) {
    let mut agent = Agent::init();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\"")),
    );
    agent.spawn();
    (agent, format!("http://127.0.0.1:{port}"))
}

/// One GET's status, headers and body.
struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

/// GETs `url` without following redirects.
fn get(url: &str) -> Got {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = client.get(url).send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        Got {
            status,
            headers,
            body: r.text().await.unwrap(),
        }
    })
}

/// `'sha256-...'` of the page's inline element `<tag>`, as the browser computes it.
fn inline_hash(page: &str, tag: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let open = format!("<{tag}>");
    let start = page.find(&open).unwrap() + open.len();
    let end = start + page[start..].find(&format!("</{tag}>")).unwrap();
    let digest = sha2::Sha256::digest(&page.as_bytes()[start..end]);
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[test]
fn the_onion_endpoint_serves_the_signer_which_posts_to_command_and_works_offline() {
    require_chromium();
    let (mut agent, base) = agent_with_http();
    let secret = agent.secret().as_text();
    // The files and their headers: a strict, hash-based policy for the page.
    let page = get(&format!("{base}/signer/"));
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    let csp = page.header("content-security-policy");
    let text = page.body.clone();
    assert_eq!(text, page_text(), "the binary serves docs/signer.html");
    assert!(csp.starts_with("default-src 'none'; "), "{csp}");
    assert!(
        csp.contains(&format!("script-src {};", inline_hash(&text, "script"))),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("style-src {};", inline_hash(&text, "style"))),
        "{csp}"
    );
    for part in [
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let redirect = get(&format!("{base}/signer"));
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location"), "/signer/");
    for (path, content_type) in [
        ("sw.js", "text/javascript; charset=utf-8"),
        ("manifest.webmanifest", "application/manifest+json"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let r = get(&format!("{base}/signer/{path}"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), content_type, "{path}");
        assert!(r
            .header("content-security-policy")
            .starts_with("default-src 'none'"));
        let on_disk = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs/signer")
                .join(path),
        )
        .unwrap();
        assert_eq!(r.body, on_disk, "{path}");
    }
    let manifest: Value =
        serde_json::from_str(&get(&format!("{base}/signer/manifest.webmanifest")).body).unwrap();
    assert_eq!(manifest["start_url"], "./");

    // As a phone: import, one tap for `list`, one to send; the agent's reply is shown.
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("profile");
    let mut b = Browser::launch(&profile);
    b.open(&format!("{base}/signer/"));
    // An agent in clear says `ok` at /healthz: no Unseal form.
    b.wait_for("document.body.dataset.agent === 'ok'");
    assert!(
        !b.visible("#unseal"),
        "an unsealed agent needs no Unseal form"
    );
    import(&mut b, &secret, PASSPHRASE);
    b.wait_for("document.body.dataset.state === 'unlocked'");
    tap_and_sign(&mut b, "button[data-cmd=list]");
    assert!(b.visible("#post"), "served, the page sends itself");
    b.tap("#post");
    b.wait_for("!document.getElementById('reply').hidden");
    // The reply in the words the phone gets on Signal; its JSON only behind "details".
    assert_eq!(b.text("#reply-words"), "No contexts yet: `enroll` one.");
    assert!(b.visible("#reply-words"));
    assert!(!json_shown(&mut b), "the JSON is behind the toggle");
    let reply = reply_json(&mut b);
    assert_eq!(reply["count"], 0, "{reply}");
    assert!(
        b.text("#status").contains("HTTP 200"),
        "{}",
        b.text("#status")
    );

    // The red button asks once, then its envelope reaches the agent.
    b.tap("#lockdown");
    assert!(b.visible("#lockdown-confirm"));
    assert!(
        !b.text("#envelope").contains("lockdown"),
        "nothing signed before the confirmation"
    );
    let lockdown = tap_and_sign(&mut b, "#lockdown-yes");
    assert_verifies(&lockdown, &secret, "lockdown");
    b.tap("#post");
    b.wait_for("!document.getElementById('reply').hidden");
    let words = b.text("#reply-words");
    assert!(words.starts_with("✓ lockdown"), "{words}");
    assert!(
        serde_json::from_str::<Value>(&words).is_err(),
        "JSON: {words}"
    );
    assert!(!json_shown(&mut b), "the JSON is behind the toggle");
    keep_screenshot("signer-served-reply.png", &b.screenshot(false));
    b.tap("#reply-details summary");
    assert!(json_shown(&mut b), "details opens the JSON");
    let reply = reply_json(&mut b);
    assert_eq!(reply["status"], "locked_down", "{reply}");
    keep_screenshot("signer-served-details.png", &b.screenshot(false));
    let audit = agent.audit();
    assert!(
        audit
            .iter()
            .any(|e| e["channel"] == "http" && e.to_string().contains("lockdown")),
        "no lockdown over http in the audit: {audit:?}"
    );

    // Installed for offline use: with the agent gone, the page still opens and signs.
    b.wait_for("navigator.serviceWorker.controller !== null");
    // Installable as an app: Chromium finds the manifest and no installability error.
    let manifest = b.page("Page.getAppManifest", serde_json::json!({}));
    assert_eq!(
        manifest["url"],
        format!("{base}/signer/manifest.webmanifest"),
        "{manifest}"
    );
    assert_eq!(manifest["errors"], serde_json::json!([]), "{manifest}");
    let installability = b.page("Page.getInstallabilityErrors", serde_json::json!({}));
    assert_eq!(
        installability["installabilityErrors"],
        serde_json::json!([]),
        "{installability}"
    );
    let cached = "caches.open('pane-signer-v1').then(function (c) { return c.keys(); }).then(function (k) { return k.length; })";
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.eval(cached) != serde_json::json!(3) {
        assert!(
            Instant::now() < deadline,
            "the service worker never cached the page"
        );
        // The poll interval of this bounded wait.
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.kill();
    b.reload();
    assert_eq!(
        b.state(),
        "locked",
        "the page came from the service worker's cache"
    );
    unlock(&mut b, PASSPHRASE);
    b.wait_for("document.body.dataset.state === 'unlocked'");
    let offline = tap_and_sign(&mut b, "button[data-cmd=approvals]");
    assert_verifies(&offline, &secret, "approvals");
    b.tap("#post");
    b.wait_for(
        "document.getElementById('status').textContent.includes('Could not reach the agent')",
    );

    // Everything the page and its service worker asked for was on the agent's origin.
    let origin = format!("{base}/");
    let foreign = foreign_requests(&mut b, |u| u.starts_with(&origin));
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    for seen in [
        "/signer/",
        "/command",
        "/signer/sw.js",
        "/signer/manifest.webmanifest",
    ] {
        assert!(
            b.requests.iter().any(|u| *u == format!("{base}{seen}")),
            "{seen} never requested: {:?}",
            b.requests
        );
    }
    // And the policy is enforced: a request to another origin, tried from inside the page, is
    // refused by the browser before it is sent.
    let violation = b.eval(
        "new Promise(function (done) {
           document.addEventListener('securitypolicyviolation', function (e) {
             done(e.violatedDirective + ' ' + e.blockedURI);
           }, { once: true });
           fetch('http://127.0.0.2:9/leak').catch(function () {});
         })",
    );
    assert_eq!(violation, "connect-src http://127.0.0.2:9/leak");
    // Storage of the served page: ciphertext and cached files only.
    let (_, everything) = storage(&mut b);
    let clear = ClearText::of(&[&secret, PASSPHRASE]);
    assert_eq!(clear.find(everything.as_bytes()), None, "{everything}");
    b.close();
    for (path, bytes) in files_under(&profile) {
        if let Some(at) = clear.find(&bytes) {
            panic!("clear text in {} at byte {at}", path.display());
        }
    }
}

/// A sealed installation (`init` with [`common::PASSPHRASE`]) with the HTTP endpoint on a free
/// loopback port, started (sealed), and its base URL.
fn sealed_agent_with_http() -> (Agent, String) {
    let mut agent = Agent::init_sealed();
    let port = common::free_port();
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\"")),
    );
    agent.spawn();
    (agent, format!("http://127.0.0.1:{port}"))
}

/// `/healthz`'s status code and `status`.
fn health(base: &str) -> (u16, String) {
    let r = get(&format!("{base}/healthz"));
    let body: Value = serde_json::from_str(&r.body).unwrap();
    (
        r.status,
        body["status"].as_str().unwrap_or_default().to_string(),
    )
}

/// Records every text `#unseal-answer` shows (it counts down), from now on.
fn watch_unseal_answers(b: &mut Browser) {
    b.eval(
        "window.__answers = [];
         (function () {
           var e = document.getElementById('unseal-answer');
           new MutationObserver(function () { window.__answers.push(e.textContent); })
             .observe(e, { childList: true, characterData: true, subtree: true });
         })()",
    );
}

/// Waits until `#unseal-answer` has shown a text matching the JS regular expression `re`.
fn wait_for_unseal_answer(b: &mut Browser, re: &str) -> String {
    let test = format!("window.__answers.find(function (t) {{ return /{re}/.test(t); }})");
    b.wait_for(&test);
    b.eval(&test).as_str().unwrap_or_default().to_string()
}

/// Types `passphrase` into the Unseal form and taps Unseal once the button takes it.
fn unseal_from_page(b: &mut Browser, passphrase: &str) {
    b.wait_for("!document.getElementById('unseal-btn').disabled");
    // Only the answers to this try count.
    b.eval("window.__answers = []");
    b.type_into("#unseal-pass", passphrase);
    b.tap("#unseal-btn");
    assert_eq!(b.text("#unseal-pass"), "", "the field is emptied at once");
}

/// [`unseal_from_page`] until the agent is unsealed: the agent's `retry_after_secs` is whole
/// seconds rounded down, so the page's first try after its wait may still be too soon.
fn unseal_from_page_until_done(b: &mut Browser, passphrase: &str) {
    for _ in 0..5 {
        unseal_from_page(b, passphrase);
        b.wait_for(
            "document.body.dataset.agent === 'ok' || \
             window.__answers.some(function (t) { return /^Too soon .* in \\d+ s$/.test(t); })",
        );
        if b.eval("document.body.dataset.agent") == "ok" {
            return;
        }
    }
    panic!("still too soon after five tries");
}

#[test]
fn a_sealed_agent_is_unsealed_from_the_signer_page_which_keeps_no_passphrase() {
    require_chromium();
    let (agent, base) = sealed_agent_with_http();
    // (Words the page itself shows, such as "the unseal passphrase", would be found in its
    // cached copy: the wrong ones are made of none.)
    let wrong = "wrong guess 7Q2f kestrel otter";
    let wrong_elsewhere = "second wrong guess 9xK3 heron";
    assert_eq!(health(&base), (503, "sealed".into()));

    // The page asks /healthz on load: sealed, the Unseal form first, no commands.
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("profile");
    let mut b = Browser::launch(&profile);
    b.open(&format!("{base}/signer/"));
    b.wait_for("document.body.dataset.agent === 'sealed'");
    assert!(b.visible("#unseal"), "a sealed agent: the Unseal form");
    assert!(b.visible("#unseal-pass") && b.visible("#unseal-btn"));
    assert_eq!(
        b.eval("document.getElementById('unseal-pass').type"),
        "password"
    );
    assert_eq!(
        b.eval(
            "document.getElementById('unseal').getBoundingClientRect().top < \
             document.getElementById('setup').getBoundingClientRect().top"
        ),
        Value::Bool(true),
        "the Unseal form comes first"
    );
    assert!(!b.visible("#commands"));

    // A wrong passphrase: the words, the agent still sealed, the field emptied.
    watch_unseal_answers(&mut b);
    unseal_from_page(&mut b, wrong);
    let said = wait_for_unseal_answer(&mut b, "^Wrong passphrase \u{2014} try again in \\d+ s$");
    assert_eq!(said, "Wrong passphrase \u{2014} try again in 1 s");
    keep_screenshot("signer-sealed.png", &b.screenshot(false));
    assert_eq!(health(&base), (503, "sealed".into()));
    assert_eq!(b.eval("document.body.dataset.agent"), "sealed");
    // The button waits out the agent's delay; meanwhile another client tries a wrong one
    // (it gets the agent's next attempt), so the page's next try is too soon: the right
    // passphrase is refused unopened.
    b.wait_for("!document.getElementById('unseal-btn').disabled");
    let r = reqwest_unseal(&base, wrong_elsewhere);
    assert_eq!(r.0, 403, "{}", r.1);
    unseal_from_page(&mut b, common::PASSPHRASE);
    let said = wait_for_unseal_answer(&mut b, "^Too soon \u{2014} try again in \\d+ s$");
    assert!(
        said.starts_with("Too soon \u{2014} try again in "),
        "{said}"
    );
    assert_eq!(health(&base), (503, "sealed".into()));

    // After the delay, the right one: unsealed, and the wrong tries are told.
    unseal_from_page_until_done(&mut b, common::PASSPHRASE);
    let status = b.text("#status");
    assert!(status.starts_with("Unsealed."), "{status}");
    assert!(
        status.contains("2 wrong passphrases were tried"),
        "{status}"
    );
    assert!(!b.visible("#unseal"), "unsealed: the form is gone");
    assert_eq!(health(&base), (200, "ok".into()));

    // The phone's key (from signer-qr at the console): the command UI, and `list` reaches the
    // unsealed agent.
    let secret = agent.raw(br#"{"local": "command_secret"}"#)["secret"]
        .as_str()
        .unwrap()
        .to_string();
    import(&mut b, &secret, PASSPHRASE);
    b.wait_for("document.body.dataset.state === 'unlocked'");
    assert!(b.visible("button[data-cmd=list]"));
    tap_and_sign(&mut b, "button[data-cmd=list]");
    b.tap("#post");
    b.wait_for("!document.getElementById('reply').hidden");
    assert_eq!(b.text("#reply-words"), "No contexts yet: `enroll` one.");
    let reply = reply_json(&mut b);
    assert_eq!(reply["count"], 0, "{reply}");

    // `seal` from the page: the agent forgets its keys, and the page asks for the unseal
    // again, the commands hidden although this phone's key is still unlocked.
    b.tap("#other-box summary");
    b.eval("var c = document.getElementById('cmd'); c.value = ''; c.dispatchEvent(new Event('change'))");
    b.type_into("#cmd-other", "seal");
    assert_verifies(&tap_and_sign(&mut b, "#sign"), &secret, "seal");
    b.tap("#post");
    b.wait_for("document.body.dataset.agent === 'sealed'");
    assert_eq!(b.state(), "unlocked");
    assert!(b.visible("#unseal"));
    assert!(
        !b.visible("button[data-cmd=list]"),
        "no commands while sealed"
    );
    assert!(!b.visible("#out"), "no envelope to send while sealed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while health(&base).0 != 503 {
        assert!(Instant::now() < deadline, "the agent never sealed");
        // The poll interval of this bounded wait for the seal.
        std::thread::sleep(Duration::from_millis(50));
    }
    // A reload finds it sealed too; unlocking this phone's key shows no command until then.
    b.reload();
    b.wait_for("document.body.dataset.agent === 'sealed'");
    unlock(&mut b, PASSPHRASE);
    b.wait_for("document.body.dataset.state === 'unlocked'");
    assert!(
        !b.visible("button[data-cmd=list]"),
        "no commands while sealed"
    );
    unseal_from_page(&mut b, common::PASSPHRASE);
    b.wait_for("document.body.dataset.agent === 'ok'");
    assert_eq!(b.text("#status"), "Unsealed.");
    assert!(b.visible("button[data-cmd=list]"), "unsealed: the commands");
    tap_and_sign(&mut b, "button[data-cmd=list]");
    b.tap("#post");
    b.wait_for("!document.getElementById('reply').hidden");
    assert!(
        b.text("#status").contains("HTTP 200"),
        "{}",
        b.text("#status")
    );
    assert_eq!(health(&base), (200, "ok".into()));

    // The agent counted the wrong ones, and the page sent nothing elsewhere.
    let audit = agent.raw(
        Envelope::sign(
            &Secret::new(&secret),
            chrono::Utc::now(),
            "audit",
            serde_json::json!({"limit": 1000})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .to_json()
        .as_bytes(),
    );
    let unsealed: Vec<Value> = audit["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"))
        .iter()
        .filter(|e| e["event"] == "seal.unsealed")
        .cloned()
        .collect();
    assert_eq!(unsealed.len(), 2, "{audit}");
    assert_eq!(unsealed[0]["detail"]["failed_attempts"], 2, "{audit}");
    let origin = format!("{base}/");
    let foreign = foreign_requests(&mut b, |u| u.starts_with(&origin));
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    for seen in ["/healthz", "/unseal"] {
        assert!(
            b.requests.iter().any(|u| *u == format!("{base}{seen}")),
            "{seen} never requested: {:?}",
            b.requests
        );
    }

    // Nothing of any passphrase typed into the Unseal form is kept: not in IndexedDB,
    // localStorage, sessionStorage, cookies or the service worker's cache (which holds the
    // page's own files only), not in the browser profile on disk, not in the agent's log.
    b.wait_for("navigator.serviceWorker.controller !== null");
    let (dump, everything) = storage(&mut b);
    let typed = [common::PASSPHRASE, wrong, wrong_elsewhere];
    let clear = ClearText::of(&typed);
    assert_eq!(clear.find(everything.as_bytes()), None, "{everything}");
    assert_eq!(dump["localStorage"], serde_json::json!({}));
    assert_eq!(dump["sessionStorage"], serde_json::json!({}));
    let records = signer_records(&dump);
    let keys: Vec<&String> = records.keys().collect();
    assert_eq!(keys, ["names", "settings", "vault"], "{dump}");
    let cached: Vec<String> = dump["caches"]
        .as_object()
        .unwrap_or_else(|| panic!("{dump}"))
        .values()
        .flat_map(|c| c.as_object().unwrap().keys().cloned().collect::<Vec<_>>())
        .collect();
    for url in &cached {
        assert!(
            url.starts_with(&format!("{base}/signer/")),
            "the service worker cached {url}"
        );
    }
    b.close();
    for (path, bytes) in files_under(&profile) {
        if let Some(at) = clear.find(&bytes) {
            panic!("an unseal passphrase in {} at byte {at}", path.display());
        }
    }
    let logs = agent.logs();
    for text in typed {
        assert!(!logs.contains(text), "{text:?} is in the agent's log");
    }
}

/// `POST /unseal` from another client than the page; its status and reply.
fn reqwest_unseal(base: &str, passphrase: &str) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{base}/unseal"))
            .json(&serde_json::json!({ "passphrase": passphrase }))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    })
}

/// The modules (true = dark) of a QR code as qr2term draws it: each character is two modules
/// one above the other, the upper one the background colour, the lower one the foreground
/// colour for `▄` (the background again for a space); colour 0 is black.
fn terminal_qr_modules(drawn: &str) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in drawn.lines() {
        let (mut upper, mut lower) = (Vec::new(), Vec::new());
        let (mut bg, mut fg) = (None, None);
        let mut chars = line.chars();
        while let Some(ch) = chars.next() {
            if ch == '\x1b' {
                // An SGR sequence: `ESC [ codes m`.
                let sgr: String = chars.by_ref().take_while(|c| *c != 'm').collect();
                match sgr.trim_start_matches('[').split(';').collect::<Vec<_>>()[..] {
                    ["48", "5", n] => bg = n.parse::<u8>().ok(),
                    ["38", "5", n] => fg = n.parse::<u8>().ok(),
                    ["49"] => bg = None,
                    ["39"] => fg = None,
                    _ => panic!("unexpected escape {sgr:?}"),
                }
                continue;
            }
            let (b, f) = (
                bg.expect("a background colour"),
                fg.expect("a foreground colour"),
            );
            upper.push(b == 0);
            lower.push(if ch == '\u{2584}' { f == 0 } else { b == 0 });
        }
        if !upper.is_empty() {
            rows.push(upper);
            rows.push(lower);
        }
    }
    rows
}

#[test]
fn signer_qr_shows_the_secret_as_a_qr_code_then_clears_the_screen() {
    let agent = Agent::init();
    // stdin is closed (output() gives the child none): the end of stdin stands for Enter.
    let out = agent.cli(&["signer-qr"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let secret = agent.secret().as_text();
    assert!(stderr.contains("the command secret itself"), "{stderr}");
    assert!(!stderr.contains(&secret), "the secret in clear on stderr");
    assert!(!stdout.contains(&secret), "the secret in clear on stdout");
    // The code, then (after Enter, here the end of stdin) the screen and scrollback cleared.
    let drawn = stdout
        .strip_suffix("\x1b[H\x1b[2J\x1b[3J")
        .expect("the screen is cleared at the end");
    let modules = terminal_qr_modules(drawn);
    let (scale, border) = (6, 24);
    let side = modules.len().max(modules[0].len()) * scale + 2 * border;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
        let (mx, my) = (
            x.wrapping_sub(border) / scale,
            y.wrapping_sub(border) / scale,
        );
        match modules.get(my).and_then(|row| row.get(mx)) {
            Some(true) => 0,
            _ => 255,
        }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the output");
    let (_, content) = grids[0].decode().expect("the QR code decodes");
    assert_eq!(
        content, secret,
        "the QR code holds the secret the page imports"
    );
}
