//! `cargo bench --bench side_by_side`: pane-agent and the Python prototype from the pane
//! agents note, in one run on one machine, against the same local addy.io server.
//!
//! The prototype is the ```python block under "## Prototype: single agent (no MCP)" of the
//! note (`PANE_PROTOTYPE_NOTE`, default `../shared/seeds/000_852d2c31d66a002a.txt` from the
//! project root). It is
//! extracted into a temporary directory at benchmark time, with one modification: the base URL
//! `https://app.addy.io` becomes the local server's `http://127.0.0.1:PORT`. It is not product
//! code and is not committed.
//!
//! Both sides hold the same 1,000 contexts (the same 1,000 aliases on the local addy.io server),
//! and the same 5,000 messages: in the local server's prototype-only
//! `GET /api/v1/aliases/{id}/emails` (which the prototype's breach monitor reads; the real
//! service has no such route) and in the Dovecot mailbox the aliases forward to (which
//! pane-agent's breach monitor reads over IMAP).
//!
//! Figures:
//! - signed `list` and `status context=...` round trips, interleaved: the prototype's
//!   `python3 pane-agent.py command '<json>'` (one process per command, as over SSH) against
//!   pane-agent's control socket and its `pane-agent command '<json>'` CLI process;
//! - one breach sweep over the 1,000 aliases (time, provider requests from the local server's
//!   request log), then a second one (steady state).
//!
//! Every reply is checked; the bench exits non-zero if one was wrong. The targets (at least
//! 20 times faster per command, at most 1 % of the prototype's provider requests per sweep)
//! are reported, not asserted.

#[path = "../tests/common/mod.rs"]
mod common;

use common::dovecot::{message, Dovecot};
use common::{providers, Agent};
use pane_agent::auth::{Envelope, Secret};
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DEFAULT_NOTE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/seeds/000_852d2c31d66a002a.txt"
);
const PROTOTYPE_HEADING: &str = "## Prototype: single agent (no MCP)";
const ADDY_ORIGIN: &str = "https://app.addy.io";
const KEY: &str = "bench-key";
const CONTEXTS: usize = 1000;
const MAILS_PER_ALIAS: usize = 5;
/// Every LEAK_EVERY-th alias gets one of its messages from a sender outside its site
/// (`PANE_BENCH_LEAK_EVERY` overrides, e.g. 1000 for a sweep with one incident).
const LEAK_EVERY: usize = 10;
const WARM_UP: usize = 5;

/// Wrong replies, reported at the end (the bench then exits non-zero).
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let w = what();
            eprintln!("WRONG: {w}");
            self.0.push(w);
        }
    }
}

/// The prototype's code: the python block under the heading, as it is in the note.
fn extract_prototype(note: &str) -> String {
    let after = note
        .split_once(PROTOTYPE_HEADING)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("the note has no {PROTOTYPE_HEADING:?} section"));
    let start = after
        .find("```python\n")
        .map(|i| i + "```python\n".len())
        .expect("the prototype section has no ```python block");
    let body = &after[start..];
    let end = body
        .find("\n```")
        .expect("the prototype's ```python block is not closed");
    format!("{}\n", &body[..end])
}

/// The interpreter the note's systemd unit uses (`/usr/bin/python3`), else what `python3`
/// resolves to (not a version manager's shim script, whose own start-up would be timed too);
/// `PANE_BENCH_PYTHON` overrides.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PANE_BENCH_PYTHON") {
        return PathBuf::from(p);
    }
    let system = Path::new("/usr/bin/python3");
    if system.exists() {
        return system.to_path_buf();
    }
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed to run the prototype");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Series {
    name: &'static str,
    times: Vec<Duration>,
}

impl Series {
    fn new(name: &'static str) -> Series {
        Series {
            name,
            times: Vec::new(),
        }
    }
    fn p(&self, p: f64) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        percentile(&t, p)
    }
}

/// The prototype in its temporary directory.
struct Prototype {
    python: PathBuf,
    script: PathBuf,
    data: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Prototype {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.python);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(self.script.parent().expect("the script has a directory"));
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// One `python3 pane-agent.py command '<envelope>'` process; its reply.
    fn round_trip(&self, envelope: &str) -> (Duration, Result<Value, String>) {
        let t = Instant::now();
        let out = self
            .command()
            .arg(&self.script)
            .arg("command")
            .arg(envelope)
            .output()
            .expect("run the prototype");
        let elapsed = t.elapsed();
        (elapsed, parse_output("prototype", &out))
    }

    /// `BreachMonitor().check_all()` once; (time of check_all, time of the process, stdout).
    fn sweep(&self) -> (Duration, Duration, String) {
        let code = "import importlib.util, sys, time\n\
                    spec = importlib.util.spec_from_file_location('pane_agent', sys.argv[1])\n\
                    m = importlib.util.module_from_spec(spec)\n\
                    spec.loader.exec_module(m)\n\
                    t = time.perf_counter()\n\
                    m.BreachMonitor().check_all()\n\
                    print('check_all_seconds', time.perf_counter() - t, file=sys.stderr)\n";
        let t = Instant::now();
        let out = self
            .command()
            .args(["-c", code])
            .arg(&self.script)
            .output()
            .expect("run the prototype's sweep");
        let process = t.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the prototype's sweep failed: {stderr}"
        );
        let inner = stderr
            .lines()
            .find_map(|l| l.strip_prefix("check_all_seconds "))
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map(Duration::from_secs_f64)
            .unwrap_or_else(|| panic!("the prototype's sweep printed no time: {stderr}"));
        (
            inner,
            process,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn incident_lines(&self) -> usize {
        std::fs::read_to_string(self.data.join("incidents.jsonl"))
            .map(|s| s.lines().filter(|l| !l.is_empty()).count())
            .unwrap_or(0)
    }
}

fn parse_output(who: &str, out: &std::process::Output) -> Result<Value, String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{who} exited {}: {stdout} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_str(&stdout).map_err(|e| format!("{who} reply is not JSON ({e}): {stdout}"))
}

/// One freshly signed envelope over the control socket (a new connection, as the CLI does).
fn socket_round_trip(sock: &Path, envelope: &str) -> (Duration, Result<Value, String>) {
    let t = Instant::now();
    let mut s = UnixStream::connect(sock).expect("connect to agent.sock");
    s.write_all(envelope.as_bytes())
        .expect("write the envelope");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the reply");
    let elapsed = t.elapsed();
    (
        elapsed,
        serde_json::from_slice(&out).map_err(|e| format!("socket reply is not JSON: {e}")),
    )
}

/// One `pane-agent command '<envelope>'` process (the CLI-over-SSH channel).
fn cli_round_trip(dir: &Path, envelope: &str) -> (Duration, Result<Value, String>) {
    let t = Instant::now();
    let out = Command::new(common::bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["command", "--data-dir"])
        .arg(dir)
        .arg(envelope)
        .output()
        .expect("run pane-agent command");
    let elapsed = t.elapsed();
    (elapsed, parse_output("pane-agent command", &out))
}

/// Signs with the current time. Timestamps have millisecond resolution, and a round trip
/// can now take less than a millisecond, so the same command signed twice in one
/// millisecond would be the same envelope (refused as replayed, correctly): wait for the
/// next millisecond first. The wait is before the timed part.
fn sign(secret: &Secret, cmd: &str, args: Value) -> String {
    static LAST_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
    let mut now = chrono::Utc::now();
    while now.timestamp_millis() <= LAST_MS.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_micros(100));
        now = chrono::Utc::now();
    }
    LAST_MS.store(now.timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
    Envelope::sign(secret, now, cmd, args).to_json()
}

fn main() {
    let started = Instant::now();
    let round_trips: usize = std::env::var("PANE_BENCH_ROUND_TRIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let leak_every: usize = std::env::var("PANE_BENCH_LEAK_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(LEAK_EVERY);
    let mut checks = Checks::default();

    // --- the prototype, extracted ----------------------------------------------------------
    let note_path = std::env::var("PANE_PROTOTYPE_NOTE").unwrap_or_else(|_| DEFAULT_NOTE.into());
    let note = std::fs::read_to_string(&note_path)
        .unwrap_or_else(|e| panic!("read the pane agents note {note_path}: {e}"));
    let original = extract_prototype(&note);
    let original_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(original.as_bytes()))
    };

    // --- the local servers ------------------------------------------------------------------
    let aliases = providers::addy(KEY);
    let cards = providers::privacy(KEY);
    let imap = Dovecot::start();
    let urls = original.matches(ADDY_ORIGIN).count();
    assert_eq!(
        urls, 2,
        "the prototype should name {ADDY_ORIGIN} twice (sweep and expire)"
    );
    let code = original.replace(ADDY_ORIGIN, aliases.origin());

    // --- pane-agent ---------------------------------------------------------------------------
    let mut agent = Agent::init();
    common::use_local_services(&mut agent, &aliases, &cards, &imap);
    // The daemon's default filter (the harness asks for debug).
    agent.env.push(("RUST_LOG".into(), "info".into()));
    // The bench sends far more commands than the default per-tool limits allow.
    let config = common::unlimited_rates(&imap.configure(pane_agent::config::TEMPLATE))
        .replace("idle = true", "idle = false")
        .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\"")
        .replace("weekly_digest = \"0 0 9 * * Mon\"", "weekly_digest = \"\"")
        .replace(
            "secret_rotation_reminder = \"0 0 9 1 1,4,7,10 *\"",
            "secret_rotation_reminder = \"\"",
        );
    agent.write_config(&config);
    agent.spawn();
    let secret = agent.secret();
    let secret_text = std::fs::read_to_string(agent.dir.join("agent.secret"))
        .expect("read agent.secret")
        .trim()
        .to_string();

    // 1,000 contexts: enroll creates each alias on the local addy.io server (no card, no
    // placeholder identity: the prototype's contexts hold an alias and a domain only).
    let t = Instant::now();
    for i in 0..CONTEXTS {
        let r = agent.send(
            "enroll",
            json!({"url": format!("https://www.site{i}.com"), "alias": format!("site{i}"),
                   "card": false, "identity": "none"}),
        );
        checks.check(r["status"] == "enrolled", || format!("enroll site{i}: {r}"));
    }
    let enroll_time = t.elapsed();
    let enroll_requests = aliases.request_count();

    // The same contexts, in the prototype's contexts.json.
    let ids: std::collections::HashMap<String, String> = aliases
        .aliases()
        .iter()
        .map(|a| {
            (
                a["email"].as_str().unwrap_or_default().to_string(),
                a["id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    // The first `list` after start.
    let t = Instant::now();
    let listed = agent.send("list", json!({}));
    let first_list = t.elapsed();
    let views = listed["contexts"].as_array().cloned().unwrap_or_default();
    checks.check(views.len() == CONTEXTS, || {
        format!("pane-agent holds {} contexts", views.len())
    });
    // What redaction costs a `list` of 1,000 contexts, timed here in process: the daemon
    // redacts every reply once, as a value, string by string.
    let list_bytes = listed.to_string().len();
    let redactor = pane_agent::redact::Redactor::new([secret_text.clone(), KEY.to_string()]);
    let median_of_21 = |f: &dyn Fn()| {
        let mut times: Vec<Duration> = (0..21)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect();
        times.sort();
        percentile(&times, 0.5)
    };
    let redact_list = median_of_21(&|| {
        std::hint::black_box(redactor.json(std::hint::black_box(&listed)));
    });
    let mut contexts = Vec::new();
    for v in &views {
        let email = v["alias"]["email"].as_str().unwrap_or_default().to_string();
        let Some(id) = ids.get(&email) else {
            checks.check(false, || format!("no alias {email} on the server"));
            continue;
        };
        contexts.push(
            json!({"name": v["context"], "alias_id": id, "alias_email": email,
                             "enrolled_domain": v["domain"]}),
        );
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = tmp.path().join("pane-agent.py");
    std::fs::write(&script, &code).expect("write pane-agent.py");
    let data = tmp.path().join("pane-data");
    std::fs::create_dir_all(&data).expect("create the prototype's data dir");
    std::fs::write(
        data.join("contexts.json"),
        serde_json::to_string_pretty(&contexts).expect("contexts.json"),
    )
    .expect("write contexts.json");
    let proto = Prototype {
        python: python(),
        script,
        data: data.clone(),
        env: vec![
            ("ADDY_API_KEY", KEY.to_string()),
            ("PRIVACY_API_KEY", KEY.to_string()),
            ("AGENT_SECRET", secret_text),
            ("PANE_DATA_DIR", data.display().to_string()),
        ],
    };
    let python_version = proto
        .command()
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    // The same mail on both sides: the prototype-only emails route, and the mailbox the
    // aliases forward to.
    let mut messages = Vec::new();
    let mut leaks = 0;
    for (i, c) in contexts.iter().enumerate() {
        let email = c["alias_email"].as_str().unwrap_or_default();
        let id = c["alias_id"].as_str().unwrap_or_default();
        let domain = c["enrolled_domain"].as_str().unwrap_or_default();
        for j in 0..MAILS_PER_ALIAS {
            let leaked = i % leak_every == 0 && j == MAILS_PER_ALIAS - 1;
            let sender = if leaked {
                leaks += 1;
                format!("offers@broker{}.net", i % 7)
            } else {
                format!("news{j}@mail.{domain}")
            };
            let subject = format!("Message {j} to {}", c["name"].as_str().unwrap_or_default());
            aliases.add_email(id, &sender, &subject);
            messages.push(message(
                &[
                    ("From", "\"Forwarded\" <noreply@anonaddy.me>"),
                    ("To", email),
                    ("X-AnonAddy-Original-Sender", &sender),
                    ("Subject", &subject),
                    ("Message-ID", &format!("<m{i}.{j}@bench>")),
                ],
                "body",
            ));
        }
    }
    imap.append_many(&messages);
    let setup_time = started.elapsed();

    // --- round trips, interleaved so that load from elsewhere falls on every series ---------
    let sock = agent.socket();
    let mut series = [
        Series::new("prototype list"),
        Series::new("pane-agent list, socket"),
        Series::new("pane-agent list, CLI process"),
        Series::new("prototype status"),
        Series::new("pane-agent status, socket"),
        Series::new("pane-agent status, CLI process"),
    ];
    // What any process-per-command path pays before it does anything (for reading the CLI
    // figures): spawning `true`, and starting the prototype's interpreter with nothing to run.
    let mut floors = [
        Series::new("spawn and wait for `true`"),
        Series::new("`python3 -c pass`"),
    ];
    for i in 0..WARM_UP + round_trips {
        let name = format!("site{}", (i * 7) % CONTEXTS);
        let status_args = json!({"context": name});
        for (k, series) in series.iter_mut().enumerate() {
            // Each envelope is signed just before it is sent, with a fresh timestamp.
            let (elapsed, reply) = match k {
                0 => proto.round_trip(&sign(&secret, "list", json!({}))),
                1 => socket_round_trip(&sock, &sign(&secret, "list", json!({}))),
                2 => cli_round_trip(&agent.dir, &sign(&secret, "list", json!({}))),
                3 => proto.round_trip(&sign(&secret, "status", status_args.clone())),
                4 => socket_round_trip(&sock, &sign(&secret, "status", status_args.clone())),
                _ => cli_round_trip(&agent.dir, &sign(&secret, "status", status_args.clone())),
            };
            let what = series.name;
            match reply {
                Err(e) => checks.check(false, || format!("{what}: {e}")),
                Ok(r) => {
                    let ok = match k {
                        0 => {
                            r.get("error").is_none()
                                && r["contexts"].as_array().map(Vec::len) == Some(CONTEXTS)
                        }
                        1 | 2 => {
                            r.get("error").is_none()
                                && r["count"] == CONTEXTS
                                && r["contexts"].as_array().map(Vec::len) == Some(CONTEXTS)
                        }
                        3 => r.get("error").is_none() && r["name"] == name.as_str(),
                        _ => r.get("error").is_none() && r["context"] == name.as_str(),
                    };
                    checks.check(ok, || {
                        let mut s = r.to_string();
                        s.truncate(300);
                        format!("{what}: unexpected reply {s}")
                    });
                }
            }
            if i >= WARM_UP {
                series.times.push(elapsed);
            }
        }
        for (k, floor) in floors.iter_mut().enumerate() {
            let mut c = if k == 0 {
                Command::new("true")
            } else {
                let mut c = proto.command();
                c.args(["-c", "pass"]);
                c
            };
            let t = Instant::now();
            let out = c.output().expect("spawn a floor process");
            let elapsed = t.elapsed();
            checks.check(out.status.success(), || format!("{}: {out:?}", floor.name));
            if i >= WARM_UP {
                floor.times.push(elapsed);
            }
        }
    }

    // --- sweeps ----------------------------------------------------------------------------
    let sweep_prototype = |checks: &mut Checks, label: &str| {
        let before = proto.incident_lines();
        aliases.clear_requests();
        let (inner, process, stdout) = proto.sweep();
        let requests = aliases.requests();
        let emails_reads = requests
            .iter()
            .filter(|r| r.starts_with("GET /api/v1/aliases/") && r.ends_with("/emails"))
            .count();
        let incidents = proto.incident_lines() - before;
        checks.check(!stdout.contains("check failed"), || {
            let mut s = stdout.clone();
            s.truncate(300);
            format!("prototype {label} sweep: a check failed: {s}")
        });
        checks.check(emails_reads == CONTEXTS, || {
            format!("prototype {label} sweep read {emails_reads} alias mailboxes")
        });
        checks.check(incidents == leaks, || {
            format!("prototype {label} sweep logged {incidents} incidents, {leaks} expected")
        });
        (inner, process, requests.len(), incidents)
    };
    let sweep_pane = |checks: &mut Checks, label: &str, fetched: usize, new: usize| {
        aliases.clear_requests();
        cards.clear_requests();
        let t = Instant::now();
        let r = agent.send("sweep", json!({}));
        let elapsed = t.elapsed();
        let requests = aliases.request_count() + cards.request_count();
        let imap_source = r["sources"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["source"] == "imap"))
            .cloned()
            .unwrap_or(Value::Null);
        let got_new = r["new_incidents"].as_array().map(Vec::len).unwrap_or(0);
        checks.check(
            r.get("error").is_none()
                && imap_source["ok"] == true
                && imap_source["fetched"] == fetched
                && got_new == new,
            || format!("pane-agent {label} sweep: {r}"),
        );
        (elapsed, requests, imap_source["fetched"].clone(), got_new)
    };
    let proto_first = sweep_prototype(&mut checks, "first");
    let pane_first = sweep_pane(&mut checks, "first", messages.len(), leaks);
    let pane_second = sweep_pane(&mut checks, "second", 0, 0);
    let proto_second = sweep_prototype(&mut checks, "second");

    // --- the report ------------------------------------------------------------------------
    println!();
    println!("pane-agent side by side with the Python prototype (release build, loopback)");
    println!(
        "prototype: {} ({python_version}), extracted from {note_path}, sha256 {original_sha}; modified: {ADDY_ORIGIN} -> {} ({urls} places)",
        proto.python.display(),
        aliases.origin()
    );
    println!(
        "data: {CONTEXTS} contexts / addy.io aliases, {} messages ({leaks} from senders outside the site), in both the emails route and Dovecot",
        messages.len()
    );
    println!(
        "setup: {CONTEXTS} pane-agent enrolls in {:.2} s ({enroll_requests} provider requests), whole setup {:.1} s",
        enroll_time.as_secs_f64(),
        setup_time.as_secs_f64()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{round_trips} round trips of each kind after {WARM_UP} warm-up, interleaved; load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "`list` reply: {list_bytes} bytes; redacting it as a value (as the daemon does before replying) takes {:.2} ms in process (median of 21)",
        ms(redact_list)
    );
    println!(
        "the first `list` after start: {:.1} ms (one round trip, signing included)",
        ms(first_list)
    );
    println!();
    println!("| round trip | p50 ms | p99 ms | prototype / this, p50 | p99 |");
    println!("| --- | --- | --- | --- | --- |");
    for (k, s) in series.iter().enumerate() {
        let base = if k < 3 { &series[0] } else { &series[3] };
        let (ratio50, ratio99) = if k % 3 == 0 {
            ("".to_string(), "".to_string())
        } else {
            (
                format!("{:.1}x", ms(base.p(0.5)) / ms(s.p(0.5))),
                format!("{:.1}x", ms(base.p(0.99)) / ms(s.p(0.99))),
            )
        };
        println!(
            "| {} | {:.2} | {:.2} | {ratio50} | {ratio99} |",
            s.name,
            ms(s.p(0.5)),
            ms(s.p(0.99))
        );
    }
    for f in &floors {
        println!(
            "| (floor) {} | {:.2} | {:.2} | | |",
            f.name,
            ms(f.p(0.5)),
            ms(f.p(0.99))
        );
    }
    println!();
    println!("| sweep over {CONTEXTS} aliases | time | provider requests | found |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| prototype, first `check_all()` | {:.0} ms ({:.0} ms with interpreter start) | {} | {} incident lines |",
        ms(proto_first.0),
        ms(proto_first.1),
        proto_first.2,
        proto_first.3
    );
    println!(
        "| pane-agent, first `sweep` | {:.0} ms | {} | {} messages over IMAP, {} new incidents |",
        ms(pane_first.0),
        pane_first.1,
        pane_first.2,
        pane_first.3
    );
    println!(
        "| prototype, second `check_all()` | {:.0} ms ({:.0} ms with interpreter start) | {} | {} incident lines (again) |",
        ms(proto_second.0),
        ms(proto_second.1),
        proto_second.2,
        proto_second.3
    );
    println!(
        "| pane-agent, second `sweep` | {:.1} ms | {} | {} messages over IMAP, {} new incidents |",
        ms(pane_second.0),
        pane_second.1,
        pane_second.2,
        pane_second.3
    );
    println!();
    println!(
        "sweep, pane-agent / prototype: time {:.1} % (first), {:.2} % (second); provider requests {:.1} % (first), {:.1} % (second) [target <= 1 %]",
        100.0 * pane_first.0.as_secs_f64() / proto_first.0.as_secs_f64(),
        100.0 * pane_second.0.as_secs_f64() / proto_second.0.as_secs_f64(),
        100.0 * pane_first.1 as f64 / proto_first.2.max(1) as f64,
        100.0 * pane_second.1 as f64 / proto_second.2.max(1) as f64,
    );
    println!(
        "per command, prototype / pane-agent at p50 [target >= 20x]: list {:.1}x socket, {:.1}x CLI; status {:.1}x socket, {:.1}x CLI",
        ms(series[0].p(0.5)) / ms(series[1].p(0.5)),
        ms(series[0].p(0.5)) / ms(series[2].p(0.5)),
        ms(series[3].p(0.5)) / ms(series[4].p(0.5)),
        ms(series[3].p(0.5)) / ms(series[5].p(0.5)),
    );

    drop(agent);
    if !checks.0.is_empty() {
        eprintln!(
            "{} wrong replies; the figures above are not valid",
            checks.0.len()
        );
        std::process::exit(1);
    }
}
