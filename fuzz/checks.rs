//! The properties the fuzz targets check: one public function per target, taking the raw
//! input bytes and panicking when a property is violated (libFuzzer records a panic as a
//! crash). Every function must also never panic on a correct program, whatever the bytes.
//!
//! This file is shared: each `fuzz/fuzz_targets/<target>.rs` includes it with `#[path]`,
//! and so does `tests/fuzz_corpus.rs`, which runs every committed corpus file through the
//! same function under plain `cargo test` on stable. So it uses only what the root crate
//! already depends on (`pane_agent`, `serde_json`, `chrono`) and std.
#![allow(dead_code)]

use pane_agent::auth::canonical::python_dumps;
use pane_agent::auth::{Envelope, Secret, SecretSet, MAX_ENVELOPE_BYTES, WINDOW_SECS};
use pane_agent::breach::authres::{self, judge, Verdict};
use pane_agent::breach::matching::{
    address_in, belongs, escape_untrusted, observe, observe_sender, registrable, Observation,
};
use pane_agent::commands::Command;
use pane_agent::config::{Config, ConfigError, ImapTls};
use pane_agent::gateway::protocol::{
    decode_line, encode_line, CoreCommand, GatewayEvent, Passphrase, MAX_LINE_BYTES,
};
use pane_agent::reply::ErrorKind;
use pane_agent::store::{DataKey, Sealer};
use serde_json::{Map, Number, Value};

/// A target's check: the raw input bytes in, a panic out when a property fails.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name, with their check functions (the corpus test walks this list).
pub const TARGETS: [(&str, Check); 8] = [
    ("envelope", envelope),
    ("canonical", canonical),
    ("gateway_protocol", gateway_protocol),
    ("mail_headers", mail_headers),
    ("sender_matching", sender_matching),
    ("config", config),
    ("sealed_record", sealed_record),
    ("mail_body", mail_body),
];

// ---------------------------------------------------------------------------------------
// envelope: parsing and verification
// ---------------------------------------------------------------------------------------

/// The two secrets of `tests/vectors/envelopes.json` (made by `gen_vectors.py`), so that the
/// envelopes seeded from those vectors verify and the fuzzer mutates verifying envelopes.
pub const VECTOR_SECRETS: [&str; 2] = [
    "6f1c0d6b1c5e4b7a9e2d3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8",
    "p\u{e4}ssw\u{f6}rd-with-unicode-and-more-than-32-bytes!",
];

/// A secret that signed nothing in the corpus.
const OTHER_SECRET: &str = "an-unrelated-secret-that-signed-nothing-0123456789abcdef";

fn set_of(current: &str, previous: &[&str]) -> SecretSet {
    SecretSet {
        current: Secret::new(current),
        previous: previous.iter().map(|s| Secret::new(s)).collect(),
    }
}

/// `Envelope::parse` on any bytes: never panics, refuses with `too_large` exactly when the
/// input is over the limit and `malformed` otherwise. What parses re-serialises to itself, and
/// its command parses (or is refused with a command error) without panicking. What verifies
/// under the vector secrets is re-signed to the same bytes by one of them, and does not verify
/// under another secret, nor once its ts, cmd, args or sig is changed. Every parsed envelope is
/// also re-signed, and the same holds for it, including rotation (a previous secret verifies)
/// and the time window.
pub fn envelope(data: &[u8]) {
    let env = match Envelope::parse(data) {
        Ok(env) => env,
        Err(e) => {
            let want = if data.len() > MAX_ENVELOPE_BYTES {
                ErrorKind::TooLarge
            } else {
                ErrorKind::Malformed
            };
            assert_eq!(e.kind, want, "parse error {e:?}");
            return;
        }
    };
    assert!(data.len() <= MAX_ENVELOPE_BYTES);
    assert!(env.ts.len() <= 64 && env.cmd.len() <= 64, "{env:?}");
    reserialises(&env);

    // The typed command: a name that parses maps back to itself; refusals are command errors.
    match Command::parse(&env.cmd, &env.args) {
        Ok(command) => assert_eq!(command.name(), env.cmd),
        Err(e) => assert!(
            matches!(
                e.kind,
                ErrorKind::UnknownCommand | ErrorKind::InvalidArgs | ErrorKind::NotFound
            ),
            "command error {e:?}"
        ),
    }

    let vectors = set_of(VECTOR_SECRETS[0], &VECTOR_SECRETS[1..]);
    let timestamp = env.timestamp().ok();
    if env.signature_valid(&vectors) {
        // Anything that verifies was made by one of the secrets, over exactly these fields.
        let resigned = VECTOR_SECRETS.iter().any(|s| {
            Envelope::sign_with_ts(&Secret::new(s), env.ts.clone(), &env.cmd, env.args.clone())
                == env
        });
        assert!(resigned, "verifies but no secret re-signs it: {env:?}");
        assert!(!env.signature_valid(&set_of(OTHER_SECRET, &[])));
        tampering_fails(&env, &vectors);
        if let Some(t) = timestamp {
            assert_eq!(env.authenticate(&vectors, t).map_err(|e| e.kind), Ok(t));
        }
    } else if let Some(t) = timestamp {
        assert_eq!(
            env.authenticate(&vectors, t).map_err(|e| e.kind),
            Err(ErrorKind::BadSignature)
        );
    }

    // Re-signed with a known secret, every parsed envelope must behave.
    let secret = Secret::new(VECTOR_SECRETS[0]);
    let signed = Envelope::sign_with_ts(&secret, env.ts.clone(), &env.cmd, env.args.clone());
    let own = set_of(VECTOR_SECRETS[0], &[]);
    assert!(signed.signature_valid(&own));
    assert!(signed.signature_valid(&set_of(OTHER_SECRET, &[VECTOR_SECRETS[0]])));
    assert!(!signed.signature_valid(&set_of(OTHER_SECRET, &[VECTOR_SECRETS[1]])));
    if let Some(reparsed) = reserialises(&signed) {
        assert!(reparsed.signature_valid(&own));
    }
    tampering_fails(&signed, &own);
    resplits_are_refused(&signed, &own);
    if let Some(t) = timestamp {
        assert_eq!(signed.authenticate(&own, t).map_err(|e| e.kind), Ok(t));
        assert_eq!(
            signed
                .authenticate(&set_of(OTHER_SECRET, &[]), t)
                .map_err(|e| e.kind),
            Err(ErrorKind::BadSignature)
        );
        for secs in [WINDOW_SECS, -WINDOW_SECS] {
            let edge = t.checked_add_signed(chrono::TimeDelta::seconds(secs));
            if let Some(edge) = edge {
                assert!(
                    signed.authenticate(&own, edge).is_ok(),
                    "at the window's edge"
                );
            }
            let beyond = t.checked_add_signed(chrono::TimeDelta::seconds(secs + secs.signum()));
            if let Some(beyond) = beyond {
                assert_eq!(
                    signed.authenticate(&own, beyond).map_err(|e| e.kind),
                    Err(ErrorKind::Expired)
                );
            }
        }
    }
}

/// `to_json` parses back to the same envelope (or, when the re-serialised text has grown past
/// the limit — `1e5` is written `100000.0` — is refused as too large).
fn reserialises(env: &Envelope) -> Option<Envelope> {
    let text = env.to_json();
    match Envelope::parse(text.as_bytes()) {
        Ok(back) => {
            assert_eq!(&back, env, "to_json does not parse back: {text}");
            Some(back)
        }
        Err(e) => {
            assert!(
                text.len() > MAX_ENVELOPE_BYTES && e.kind == ErrorKind::TooLarge,
                "to_json is refused ({e:?}): {text}"
            );
            None
        }
    }
}

/// A verifying envelope stops verifying when any signed field or the signature changes.
fn tampering_fails(env: &Envelope, secrets: &SecretSet) {
    assert!(env.signature_valid(secrets));
    let mut t = env.clone();
    t.cmd.push('x');
    assert!(!t.signature_valid(secrets), "cmd+x verifies: {env:?}");
    if !env.cmd.is_empty() {
        let mut t = env.clone();
        t.cmd.pop();
        assert!(!t.signature_valid(secrets), "cmd-1 verifies: {env:?}");
    }
    let mut t = env.clone();
    t.ts.push('0');
    assert!(!t.signature_valid(secrets), "ts+0 verifies: {env:?}");
    let mut t = env.clone();
    t.sig[31] ^= 1;
    assert!(!t.signature_valid(secrets), "flipped sig verifies: {env:?}");
    for args in mutated_args(&env.args) {
        // The canonical form must tell the two apart, or a signature would cover both.
        assert_ne!(
            python_dumps(&Value::Object(args.clone())),
            python_dumps(&Value::Object(env.args.clone())),
            "two different args, one canonical form: {args:?} / {:?}",
            env.args
        );
        let mut t = env.clone();
        t.args = args;
        assert!(!t.signature_valid(secrets), "changed args verify: {t:?}");
    }
}

/// The signed message is `ts + cmd + J(args)` with no separator (the pane agents note's
/// format), so moving characters between the end of `ts` and the start of `cmd` keeps the
/// signature valid. Such a re-split must never make an envelope whose timestamp and command
/// both parse out of one where they did: accepted timestamps end in a digit or `Z`, no
/// command name starts with one, and no timestamp parses with letters appended.
fn resplits_are_refused(env: &Envelope, secrets: &SecretSet) {
    let accepted = |e: &Envelope| e.timestamp().is_ok() && Command::parse(&e.cmd, &e.args).is_ok();
    if !accepted(env) {
        return;
    }
    let whole = format!("{}{}", env.ts, env.cmd);
    for at in whole.char_indices().map(|(i, _)| i).chain([whole.len()]) {
        if at == env.ts.len() || at.abs_diff(env.ts.len()) > 8 {
            continue;
        }
        let shifted = Envelope {
            ts: whole[..at].to_string(),
            cmd: whole[at..].to_string(),
            args: env.args.clone(),
            sig: env.sig,
        };
        assert!(shifted.signature_valid(secrets));
        assert!(
            !accepted(&shifted),
            "{:?} + {:?} re-split as {:?} + {:?} is accepted too",
            env.ts,
            env.cmd,
            shifted.ts,
            shifted.cmd
        );
    }
}

/// Variations of `args` that differ from it: a key added, the first key removed, the first
/// and the last value changed (a string grows, a number changes, anything else flips).
fn mutated_args(args: &Map<String, Value>) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    let mut added = args.clone();
    let mut key = String::from("fuzz\u{0}");
    while added.contains_key(&key) {
        key.push('+');
    }
    added.insert(key, Value::Null);
    out.push(added);
    let keys: Vec<String> = args.keys().cloned().collect();
    if let Some(first) = keys.first() {
        let mut removed = args.clone();
        removed.remove(first);
        out.push(removed);
    }
    for key in [keys.first(), keys.last()].into_iter().flatten() {
        let mut changed = args.clone();
        if let Some(v) = changed.get_mut(key) {
            *v = different(v);
        }
        out.push(changed);
    }
    out
}

fn different(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(format!("{s}x")),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u ^ 1),
            (_, Some(i), _) => Value::from(i ^ 1),
            (_, _, Some(f)) if f != 0.0 => Value::from(-f),
            _ => Value::from(1),
        },
        Value::Bool(b) => Value::Bool(!b),
        Value::Null => Value::Bool(false),
        Value::Array(items) => {
            let mut items = items.clone();
            items.push(Value::Null);
            Value::Array(items)
        }
        Value::Object(m) => {
            let mut m = m.clone();
            if m.remove("").is_none() {
                m.insert(String::new(), Value::Null);
            }
            Value::Object(m)
        }
    }
}

// ---------------------------------------------------------------------------------------
// canonical: the writer that reproduces CPython's json.dumps(args, sort_keys=True)
// ---------------------------------------------------------------------------------------

/// For any JSON text serde_json accepts, `python_dumps` writes printable ASCII only, which
/// parses back to an equal value and is a fixed point (writing what it parsed back gives the
/// same text). Separately, every 8-byte window of the input read as an f64 bit pattern is
/// written the way Python's `repr(float)` writes it: it parses back to the same bits, in fixed
/// notation exactly when `1e-4 <= |f| < 1e16` (or f is zero), with a `.` or an exponent, and a
/// two-digit-or-more signed exponent. (`tests/fuzz_corpus.rs` also compares the output with
/// CPython's byte for byte.)
pub fn canonical(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let text = python_dumps(&value);
        assert!(
            text.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "not printable ASCII: {text:?}"
        );
        let back: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => panic!("python_dumps wrote invalid JSON ({e}): {text}"),
        };
        assert_eq!(back, value, "python_dumps does not parse back: {text}");
        assert_eq!(
            python_dumps(&back),
            text,
            "python_dumps is not a fixed point"
        );
        // The sign of zero survives too (`==` on numbers does not see it).
        same_float_bits(&value, &back);
    }
    for window in data.windows(8).step_by(8).take(16) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(window);
        python_float_repr(f64::from_le_bytes(bytes));
    }
}

fn same_float_bits(a: &Value, b: &Value) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(fx), Some(fy)) = (x.as_f64(), y.as_f64()) {
                if x.is_f64() {
                    assert_eq!(fx.to_bits(), fy.to_bits(), "{x} came back as {y}");
                }
            }
        }
        (Value::Array(xs), Value::Array(ys)) => {
            xs.iter().zip(ys).for_each(|(x, y)| same_float_bits(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => xs
            .iter()
            .zip(ys)
            .for_each(|((_, x), (_, y))| same_float_bits(x, y)),
        _ => {}
    }
}

/// Checks how the writer renders one f64 (finite ones only: JSON has no others).
pub fn python_float_repr(f: f64) {
    let Some(n) = Number::from_f64(f) else {
        return;
    };
    let text = python_dumps(&Value::Number(n));
    let back: f64 = match text.parse() {
        Ok(b) => b,
        Err(e) => panic!("{f:?} written as {text:?}, which is not a float ({e})"),
    };
    assert_eq!(back.to_bits(), f.to_bits(), "{f:?} written as {text:?}");
    let a = f.abs();
    let fixed = a == 0.0 || (1e-4..1e16).contains(&a);
    match text.split_once('e') {
        None => {
            assert!(fixed, "{f:?} written in fixed notation: {text}");
            let (int, frac) = text.split_once('.').unwrap_or_else(|| panic!("{text}"));
            assert!(!frac.is_empty() && !int.trim_start_matches('-').is_empty());
            // Shortest: no trailing zero beyond the one `.0` needs.
            assert!(frac == "0" || !frac.ends_with('0'), "{text}");
        }
        Some((mantissa, exp)) => {
            assert!(!fixed, "{f:?} written with an exponent: {text}");
            let digits = exp.strip_prefix(['+', '-']).unwrap_or("");
            assert!(digits.len() >= 2 && digits.bytes().all(|b| b.is_ascii_digit()));
            assert!(
                !mantissa.ends_with('.') && !mantissa.ends_with(".0"),
                "{text}"
            );
            assert!(mantissa.trim_start_matches('-').len() <= 18, "{text}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// gateway_protocol: the newline-delimited JSON between pane-signal and the core
// ---------------------------------------------------------------------------------------

macro_rules! round_trip {
    ($ty:ty, $msg:expr) => {{
        let msg: &$ty = $msg;
        let line = match encode_line(msg) {
            Ok(l) => l,
            Err(e) => panic!("cannot encode {msg:?}: {e}"),
        };
        // One message, one line: the only newline is the last byte.
        assert_eq!(line.find('\n'), Some(line.len() - 1), "{line:?}");
        // The reader (`AsyncBufReadExt::lines`) hands decode_line the line without it.
        let bare = &line[..line.len() - 1];
        let back = decode_line::<$ty>(bare);
        if bare.len() <= MAX_LINE_BYTES {
            assert_eq!(back.as_ref(), Ok(msg), "{line:?}");
        } else {
            assert!(back.is_err());
        }
    }};
}

/// `decode_line` on any text: never panics; what decodes re-encodes as exactly one line that
/// decodes to the same message, and never decodes as both directions' types. Messages built
/// from arbitrary strings (split on NUL) and numbers also round-trip as one line each.
pub fn gateway_protocol(data: &[u8]) {
    if let Ok(line) = std::str::from_utf8(data) {
        let event = decode_line::<GatewayEvent>(line);
        let command = decode_line::<CoreCommand>(line);
        assert!(
            event.is_err() || command.is_err(),
            "both directions: {line:?}"
        );
        if line.len() > MAX_LINE_BYTES {
            assert!(event.is_err() && command.is_err());
        }
        if let Ok(event) = &event {
            round_trip!(GatewayEvent, event);
        }
        if let Ok(command) = &command {
            round_trip!(CoreCommand, command);
        }
    }

    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0').map(str::to_string);
    let mut next = || parts.next().unwrap_or_default();
    let (a, b, c) = (next(), next(), next());
    let mut word = [0u8; 8];
    for (w, d) in word.iter_mut().zip(data.iter().rev()) {
        *w = *d;
    }
    let number = u64::from_le_bytes(word);
    let flag = number & 1 == 1;
    let events = [
        GatewayEvent::Received {
            id: flag.then(|| c.clone()),
            sender: a.clone(),
            device: number as u32,
            timestamp: number,
            body: b.clone(),
            sealed: flag,
            expire_timer: number as u32,
        },
        GatewayEvent::Reaction {
            id: b.clone(),
            sender: a.clone(),
            emoji: c.clone(),
            target_timestamp: number,
            remove: flag,
        },
        GatewayEvent::IdentityChanged { sender: a.clone() },
        GatewayEvent::Sent {
            id: a.clone(),
            timestamp: flag.then_some(number),
        },
        GatewayEvent::SendFailed {
            id: a.clone(),
            error: b.clone(),
            retryable: !flag,
        },
    ];
    for event in &events {
        round_trip!(GatewayEvent, event);
    }
    round_trip!(
        CoreCommand,
        &CoreCommand::Send {
            id: a.clone(),
            recipient: b,
            body: c,
            timestamp: number,
            expire_timer: flag.then_some(number as u32),
        }
    );
    round_trip!(CoreCommand, &CoreCommand::Ack { id: a.clone() });
    round_trip!(CoreCommand, &CoreCommand::Seal {});
    round_trip!(
        CoreCommand,
        &CoreCommand::StoreKey {
            passphrase: Passphrase::new(a),
        }
    );
}

// ---------------------------------------------------------------------------------------
// mail_headers: what a forwarded message's headers say, and whether the sender belongs
// ---------------------------------------------------------------------------------------

/// `observe` on any bytes: never panics, is deterministic, does not depend on the case of
/// header names, and what it returns is consistent (see `check_observation`).
pub fn mail_headers(data: &[u8]) {
    let obs = observe(data);
    assert_eq!(observe(data), obs, "observe is not deterministic");
    if let Some(o) = &obs {
        check_observation(o);
        assert_eq!(o.fingerprint.len(), 32, "{o:?}");
        // Result headers are never believed without a trusted server, and judging them with
        // every server trusted never panics.
        assert_eq!(
            judge(&o.auth_results, &o.sender_domain, &[]),
            Verdict::Unknown,
            "{o:?}"
        );
        let ids: Vec<String> = o
            .auth_results
            .iter()
            .filter_map(|h| authres::parse(h))
            .map(|h| h.authserv_id)
            .collect();
        let _ = judge(&o.auth_results, &o.sender_domain, &ids);
    }
    // Header field names are case-insensitive (RFC 5322 2.2; the forwarders' headers are
    // looked up with eq_ignore_ascii_case): the same block with every name upper- or
    // lower-cased says the same thing.
    for upper in [true, false] {
        let recased = recase_header_names(data, upper);
        let other = observe(&recased);
        assert_eq!(
            other
                .as_ref()
                .map(|o| (&o.alias, &o.sender, &o.sender_domain, &o.auth_results)),
            obs.as_ref()
                .map(|o| (&o.alias, &o.sender, &o.sender_domain, &o.auth_results)),
            "header names recased (upper: {upper}): {:?}",
            String::from_utf8_lossy(&recased)
        );
    }
}

/// The header block with the name of every field (the text before the first `:` of a line
/// that does not start with white space, when it is a plain RFC 5322 field name) recased,
/// up to the first empty line.
fn recase_header_names(data: &[u8], upper: bool) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut start = 0;
    while start < out.len() {
        let end = out[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(out.len(), |p| start + p);
        let line = &out[start..end];
        if line.is_empty() || line == b"\r" {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let is_name = colon > 0 && line[..colon].iter().all(|&b| (b'!'..=b'~').contains(&b));
            if is_name {
                for b in &mut out[start..start + colon] {
                    *b = if upper {
                        b.to_ascii_uppercase()
                    } else {
                        b.to_ascii_lowercase()
                    };
                }
            }
        }
        start = end + 1;
    }
    out
}

/// What every observation promises: the alias and the sender are addresses in lowercase; the
/// sender's domain is the registrable domain of the sender's host; mail from that domain is
/// never unexpected for a context enrolled on it (any case, a trailing dot, any subdomain
/// that shares it) or that lists it as an extra sender domain; the subject is escaped.
pub fn check_observation(o: &Observation) {
    for addr in [&o.alias, &o.sender] {
        assert_eq!(*addr, addr.to_ascii_lowercase(), "{o:?}");
        let (local, domain) = addr.rsplit_once('@').unwrap_or_else(|| panic!("{o:?}"));
        assert!(!local.is_empty() && !domain.is_empty(), "{o:?}");
    }
    let host = o
        .sender
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or_default();
    assert_eq!(registrable(host).as_deref(), Some(o.sender_domain.as_str()));
    check_registrable(host, &o.sender_domain);
    let d = &o.sender_domain;
    for site in [
        host.to_string(),
        d.clone(),
        d.to_ascii_uppercase(),
        format!("{d}."),
        format!(" {} ", host.to_ascii_uppercase()),
    ] {
        assert!(belongs(host, &site, &[]), "{host} unexpected for {site:?}");
        assert!(belongs(d, &site, &[]), "{d} unexpected for {site:?}");
    }
    assert!(belongs(
        host,
        "unrelated.invalid",
        &[host.to_ascii_uppercase()]
    ));
    assert!(!belongs(host, &format!("evil{d}"), &[]), "{d} vs evil{d}");
    let subject_chars = o.subject.chars().count();
    assert!(subject_chars <= 121, "{o:?}");
    assert_eq!(escape_untrusted(&o.subject, 200), o.subject, "{o:?}");
}

/// `registrable(host) == Some(r)`: r is lowercase ASCII, the last labels of the host, its own
/// registrable domain, and not the registrable domain of a look-alike.
fn check_registrable(host: &str, r: &str) {
    assert!(!r.is_empty() && r.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()));
    let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
    assert!(
        h == r || h.ends_with(&format!(".{r}")),
        "{r:?} is not a suffix of {h:?}"
    );
    assert_eq!(
        registrable(r).as_deref(),
        Some(r),
        "registrable is not idempotent"
    );
    assert_ne!(registrable(&format!("evil{r}")).as_deref(), Some(r));
    assert_ne!(registrable(&format!("evil-{r}")).as_deref(), Some(r));
    if r != "attacker-example.com" {
        let tail = registrable(&format!("{r}.attacker-example.com"));
        assert_ne!(tail.as_deref(), Some(r), "{r}.attacker-example.com");
    }
}

// ---------------------------------------------------------------------------------------
// sender_matching: registrable domains, `belongs`, and addresses in header text
// ---------------------------------------------------------------------------------------

/// Lines of the input are a sender host, a site, and extra sender domains; every line is also
/// header text for `address_in`. `belongs` compares registrable domains (never substrings),
/// case-insensitively, ignoring surrounding white space and a trailing dot; it is symmetric
/// without extras; extras only ever add; the sender's own domain always belongs.
pub fn sender_matching(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    let sender = lines.first().copied().unwrap_or_default();
    let site = lines.get(1).copied().unwrap_or_default();
    let extra: Vec<String> = lines
        .iter()
        .skip(2)
        .take(8)
        .map(|s| s.to_string())
        .collect();

    for host in lines.iter().take(10) {
        let r = registrable(host);
        let h = host.trim();
        assert_eq!(registrable(&h.to_ascii_uppercase()), r, "case: {host:?}");
        assert_eq!(registrable(&format!("{h}.")), r, "trailing dot: {host:?}");
        assert_eq!(registrable(&format!(" {h}\t")), r, "white space: {host:?}");
        if let Some(r) = &r {
            check_registrable(host, r);
            assert!(belongs(host, host, &[]));
            assert!(belongs(host, r, &[]));
            assert!(belongs(host, "", &[h.to_ascii_uppercase()]));
        } else {
            assert!(!belongs(host, host, &[]));
            assert!(!belongs(host, "", &[host.to_string()]));
        }
    }

    let plain = belongs(sender, site, &[]);
    let same = registrable(sender).is_some() && registrable(sender) == registrable(site);
    assert_eq!(plain, same, "{sender:?} / {site:?}");
    assert_eq!(plain, belongs(site, sender, &[]), "not symmetric");
    assert_eq!(
        plain,
        belongs(
            &sender.to_ascii_uppercase(),
            &site.to_ascii_lowercase(),
            &[]
        )
    );
    let with_extra = belongs(sender, site, &extra);
    let any_extra = extra.iter().any(|e| belongs(sender, e, &[]));
    assert_eq!(with_extra, plain || any_extra, "extras: {extra:?}");
    let upper_extra: Vec<String> = extra.iter().map(|e| e.to_ascii_uppercase()).collect();
    assert_eq!(belongs(sender, site, &upper_extra), with_extra);

    for line in lines.iter().take(10) {
        check_address(line);
    }
    if let Some(o) = observe_sender(site, sender, "fp".into()) {
        check_observation(&o);
        assert_eq!(o.fingerprint, "fp");
        assert!(o.subject.is_empty());
    }
}

/// `address_in` on any text: an address with a non-empty local part and domain, lowercase,
/// no white space or list separators, the same whatever the case of the text; and for a
/// plain address built from the line, the documented forms (`a@b.c`, `<a@b.c>`,
/// `Name <a@b.c>`, `"Name, Jr." <a@b.c>`) all give it back.
fn check_address(line: &str) {
    let found = address_in(line);
    if let Some(addr) = &found {
        assert_eq!(*addr, addr.to_ascii_lowercase());
        let (local, domain) = addr.rsplit_once('@').unwrap_or_else(|| panic!("{addr:?}"));
        assert!(!local.is_empty() && !domain.is_empty(), "{addr:?}");
        assert!(!addr.contains(|c: char| c.is_whitespace() || c == ',' || c == ';'));
    }
    assert_eq!(
        address_in(&line.to_ascii_uppercase()),
        found,
        "case: {line:?}"
    );

    let simple: String = line
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
        .take(40)
        .collect();
    let (local, domain) = simple.split_at(simple.len() / 2);
    if local.is_empty() || domain.is_empty() {
        return;
    }
    let addr = format!("{local}@{domain}");
    let want = Some(addr.to_ascii_lowercase());
    let name: String = line
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | '"' | '\n'))
        .take(40)
        .collect();
    for form in [
        addr.clone(),
        format!("<{addr}>"),
        format!("{name} <{addr}>"),
        format!("\"{name}, Jr.\" <{addr}>"),
        format!("  {addr}  "),
    ] {
        assert_eq!(address_in(&form), want, "{form:?}");
    }
}

// ---------------------------------------------------------------------------------------
// config: pane.toml
// ---------------------------------------------------------------------------------------

/// `Config::parse` on any text: never panics; an error names the file or says what is
/// invalid; a config it returns passes its own validation and every rule `validate` states
/// (checked here again independently); parsing is deterministic; and an unknown table
/// appended to an accepted file makes it an error (typos are reported, not ignored).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(text, "fuzz.toml") {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            match e {
                ConfigError::Parse { path, .. } => assert_eq!(path, "fuzz.toml"),
                ConfigError::Invalid(why) => assert!(!why.is_empty()),
                ConfigError::Read { .. } => panic!("parse cannot fail to read: {message}"),
            }
            return;
        }
    };
    if let Err(e) = config.validate() {
        panic!("an accepted config fails validation: {e}");
    }
    match config.http.listen_addr() {
        Ok(Some(addr)) => assert!(addr.ip().is_loopback(), "{addr}"),
        Ok(None) => assert!(config.http.listen.trim().is_empty()),
        Err(e) => panic!("accepted with a bad listen address: {e}"),
    }
    // Providers and TLS modes are enums: serde refuses any other value.
    assert!((1..=64).contains(&config.aliases.concurrency));
    assert!((1..=64).contains(&config.cards.concurrency));
    assert!((1..=3600).contains(&config.jobs.deadline_secs));
    assert!((1..=86_400).contains(&config.approvals.timeout_secs));
    let rl = &config.rate_limits;
    for limit in [&rl.read, &rl.write, &rl.external]
        .into_iter()
        .chain(rl.tools.values())
    {
        assert!((1..=86_400).contains(&limit.window_secs), "{limit:?}");
    }
    let imap = &config.breach.imap;
    match imap.tls {
        ImapTls::Tls | ImapTls::Starttls => {}
        ImapTls::None => {
            let host = imap.host.trim();
            let loopback = host.is_empty()
                || host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            assert!(loopback, "tls = none for {host:?}");
        }
    }
    match Config::parse(text, "again.toml") {
        Ok(again) => assert_eq!(again, config, "parse is not deterministic"),
        Err(e) => panic!("parses once, not twice: {e}"),
    }
    let typo = format!("{text}\n[zz_fuzz_unknown_table]\nx = 1\n");
    assert!(
        Config::parse(&typo, "typo.toml").is_err(),
        "an unknown table is accepted"
    );
}

// ---------------------------------------------------------------------------------------
// sealed_record: the format of a record sealed at rest (issue #23, docs/sealing.md)
// ---------------------------------------------------------------------------------------

/// The first byte picks what the rest is. `0`: a record to seal (`key length ‖ key ‖ value`
/// split at the second byte): it opens back to itself, only under its own tree and key on
/// disk, not after any one bit of it is flipped, and never under another data key. Anything
/// else: bytes read from disk as a sealed record: opening them never panics, and whatever
/// opens (here only what was sealed with the fixed key) seals and opens again to the same.
pub fn sealed_record(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let Some(key) = DataKey::from_bytes(&[0x5a; 32]) else {
        panic!("a 32-byte key is a key");
    };
    let Ok(sealer) = Sealer::new(&key) else {
        panic!("a sealer is made from any key");
    };
    if *mode == 0 {
        let split = rest
            .first()
            .map_or(0, |b| *b as usize)
            .min(rest.len().saturating_sub(1));
        let body = rest.get(1..).unwrap_or_default();
        let (k, v) = body.split_at(split.min(body.len()));
        let disk_key = sealer.hash_key("contexts", k);
        let Ok(sealed) = sealer.seal("contexts", &disk_key, k, v) else {
            panic!("sealing failed");
        };
        match sealer.open("contexts", &disk_key, &sealed) {
            Ok((k2, v2)) => assert!(k2 == k && v2 == v, "a record opens to something else"),
            Err(e) => panic!("a record does not open: {e}"),
        }
        assert!(sealer.open("intents", &disk_key, &sealed).is_err());
        assert!(sealer.open("contexts", b"elsewhere", &sealed).is_err());
        let bit = (k.len() + v.len()) * 8 % (sealed.len() * 8);
        let mut flipped = sealed.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            sealer.open("contexts", &disk_key, &flipped).is_err(),
            "a flipped bit opens"
        );
        let Some(other) = DataKey::from_bytes(&[0xa5; 32]) else {
            panic!("a 32-byte key is a key");
        };
        let Ok(other) = Sealer::new(&other) else {
            panic!("a sealer is made from any key");
        };
        assert!(other.open("contexts", &disk_key, &sealed).is_err());
        return;
    }
    let disk_key = sealer.hash_key("meta", rest.get(..4).unwrap_or_default());
    if let Ok((k, v)) = sealer.open("meta", &disk_key, rest) {
        let Ok(again) = sealer.seal("meta", &disk_key, &k, &v) else {
            panic!("sealing failed");
        };
        match sealer.open("meta", &disk_key, &again) {
            Ok(pair) => assert!(pair == (k, v), "a resealed record opens to something else"),
            Err(e) => panic!("a resealed record does not open: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// mail_body: a message body to text, its links and codes, and its pages
// ---------------------------------------------------------------------------------------

/// A whole message (or any prefix of one: the fetch is capped) renders without panicking,
/// the same way twice; its text and every link can forge no layout; every link is http(s)
/// with a domain, `foreign` exactly when the domain is not the site's; every code and
/// reference has one of the shapes; the HTML scanner alone never panics either; and the
/// pages a phone gets are each within the page size and lose nothing but the breaks they
/// were cut at.
pub fn mail_body(data: &[u8]) {
    use pane_agent::commands::mail::{document, PAGE_BYTES};
    use pane_agent::inbox::extract::{extract, Site};
    use pane_agent::inbox::{html, pages, render};
    use pane_agent::text::{forges_layout, Lines};

    let senders = vec!["mailgun.net".to_string()];
    let site = Site {
        domain: "www.notion.so",
        senders: &senders,
    };
    for cut in [data.len(), data.len() / 2, data.len() / 3] {
        let data = &data[..cut];
        let r = render::render(data);
        assert_eq!(render::render(data), r, "render is not deterministic");
        for (what, text, lines) in [
            ("text", &r.text, Lines::Multi),
            ("subject", &r.subject, Lines::Single),
        ] {
            if let Some(c) = text.chars().find(|c| forges_layout(*c, lines)) {
                panic!("the {what} holds {c:?}: {text:?}");
            }
        }
        let found = extract(&r.subject, &r.text, &r.anchors, site, !r.from_html);
        for link in &found.links {
            let lower = link.url.trim_start().to_ascii_lowercase();
            assert!(
                lower.starts_with("http:") || lower.starts_with("https:"),
                "{link:?}"
            );
            assert!(!link.domain.is_empty(), "{link:?}");
            assert!(
                !link.url.chars().any(|c| forges_layout(c, Lines::Single)),
                "{link:?}"
            );
            assert_eq!(
                link.foreign,
                !belongs(&link.domain, site.domain, site.senders),
                "{link:?}"
            );
        }
        for code in &found.codes {
            let digits = code.chars().filter(char::is_ascii_digit).count();
            assert!(digits >= 2 && code.len() <= 12, "code {code:?}");
            assert!(
                code.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'),
                "code {code:?}"
            );
        }
        for reference in &found.references {
            assert!(
                (5..=12).contains(&reference.len()),
                "reference {reference:?}"
            );
        }
        let doc = document(&r.text, &found.links, &r.attachments, r.images);
        let split = pages::split(&doc, PAGE_BYTES);
        assert!(
            split.iter().all(|p| p.len() <= PAGE_BYTES),
            "a page is too long"
        );
        let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        assert_eq!(squash(&split.concat()), squash(&doc), "paging lost text");
    }
    let text = String::from_utf8_lossy(data);
    let h = html::to_text(&text);
    assert_eq!(html::to_text(&text), h, "to_text is not deterministic");
    assert!(
        h.text.len() <= text.len() * 4 + 16,
        "the text grew: {}",
        h.text.len()
    );
}
