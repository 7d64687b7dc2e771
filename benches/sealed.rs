//! `cargo bench --bench sealed`: what sealing at rest (issue #23) costs, for
//! docs/performance.md.
//!
//! One installation in clear (`init --unsealed`) is filled through its control socket:
//! 1,000 `enroll`s (alias, paused card and placeholder identity on local addy.io and
//! Privacy.com servers), 2 messages per alias in a local Dovecot (the last of every tenth
//! alias's from a sender outside its site) and one `sweep` (100 incidents, audited, alerts
//! queued). It is stopped and copied, and the copy is sealed with `pane-agent seal-init`
//! (the default KDF target of 1,000 ms, which it calibrates on this machine): two
//! installations holding the same records, byte for byte, against the same servers. Then:
//!
//! - signed `status {context}` and `list` (1,000 contexts) over each control socket, the four
//!   series interleaved round by round (the order rotates): p50 / p99 of each, and sealed /
//!   clear (target: within 1.2x); then the daemon's own CPU time per command (from
//!   `/proc/<pid>/stat`, over runs of one kind), which the load of other work on the
//!   machine moves much less than the wall time;
//! - later `sweep`s of the same new mail on both (100 new incidents each), sequential and
//!   burst `enroll`s on both: wall time and the daemon's CPU time;
//! - the store on disk: both data dirs after the same use, and fresh copies of the same
//!   records written in process (clear and sealed), flushed: bytes and blocks; the records
//!   themselves (count, key and value bytes), read back through the library;
//! - in process (this thread's CPU time): the first walk of the contexts tree after the store
//!   is opened, then (medians of 51) the walk again, `Contexts::all()`,
//!   `Incidents::unalerted()`, clear and sealed;
//! - the KDF alone (`KeyFile::unwrap_key`: Argon2id, 64 MiB, the calibrated passes), in
//!   process, with what 1, 2 and the calibrated passes cost and what `Cost::calibrate` picks
//!   now; `pane-agent unseal` wall time from the CLI after a reboot (keyring cleared, fresh
//!   daemon) and after a `seal` (the daemon running); the CLI's own floor (`unseal` of an
//!   agent already unsealed answers before any KDF); a crash-restart (SIGKILL, then the kernel
//!   keyring's key: no KDF) until `list` answers, against the same restart in clear; and the
//!   CPU time of the KDF alone and of the daemon during an unseal (the session start is the
//!   difference, which the machine's load moves less than the wall times).
//! - the store on disk: fresh copies are made three times each (sled's files for the same
//!   records vary from one copy to the next).
//!
//! Every reply is checked; the bench exits non-zero if one was wrong. Figures are printed,
//! not asserted. `PANE_BENCH_ROUND_TRIPS` sets the 500 round trips of each kind,
//! `PANE_BENCH_CONTEXTS` the 1,000 contexts; `PANE_BENCH_KEEP=<dir>` keeps both data dirs
//! there (stopped), for a profile of the daemon on the same data.

#[path = "../tests/common/mod.rs"]
mod common;

use common::dovecot::{message, Dovecot};
use common::providers;
use common::{stdin_cmd, Agent, PASSPHRASE};
use pane_agent::auth::{Envelope, Secret};
use pane_agent::seal::{Cost, KeyFile};
use pane_agent::store::{Disk, Keys, Sealer, Store, TableId};
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADDY_KEY: &str = "addy-bench-key-sealed-0001";
const PRIVACY_KEY: &str = "privacy-bench-key-sealed-0001";
const WARM_UP: usize = 20;
const MAILS_PER_ALIAS: usize = 2;
const LEAK_EVERY: usize = 10;
const SWEEP_ROUNDS: usize = 4;
const LATER_ENROLLS: usize = 100;
const BURSTS: usize = 3;
/// Commands of one kind in a row, for the daemon's CPU time per command.
const CPU_LISTS: usize = 200;
const CPU_STATUSES: usize = 1000;
/// Per sealed record: the format version, the 24-byte nonce, the 16-byte tag and the real
/// key's u32 length (`store::sealer`).
const SEALED_VALUE_OVERHEAD: u64 = 1 + 24 + 16 + 4;
const HASHED_KEY_BYTES: u64 = 16;

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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CPU time (user + system, every thread) process `pid` has used.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (in parentheses, which may hold spaces): fields 3 onwards;
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[derive(Default, Clone)]
struct Series(Vec<Duration>);

impl Series {
    fn p(&self, p: f64) -> Duration {
        let mut t = self.0.clone();
        t.sort();
        if t.is_empty() {
            return Duration::ZERO;
        }
        t[((t.len() as f64 - 1.0) * p).round() as usize]
    }
    fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
    fn min(&self) -> Duration {
        self.0.iter().copied().min().unwrap_or_default()
    }
    fn sum(&self) -> Duration {
        self.0.iter().sum()
    }
    fn list(&self) -> String {
        self.0
            .iter()
            .map(|d| format!("{:.0}", ms(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// This thread's CPU time for `f`, median of 51 (after one run to warm up).
fn cpu_median(mut f: impl FnMut()) -> Duration {
    f();
    let mut s = Series::default();
    for _ in 0..51 {
        let t = thread_cpu();
        f();
        s.0.push(thread_cpu() - t);
    }
    s.p(0.5)
}

/// Signs with the current time, each envelope in a millisecond of its own (the same command
/// signed twice in one millisecond is one envelope, refused as replayed). The wait is before
/// the timed part.
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

/// One envelope over a new connection to the control socket (as the CLI does): the time
/// from connecting until the whole reply is read, and the reply.
fn round_trip(sock: &Path, envelope: &str) -> (Duration, Value) {
    let t = Instant::now();
    let mut s = UnixStream::connect(sock).expect("connect to agent.sock");
    s.write_all(envelope.as_bytes())
        .expect("write the envelope");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the reply");
    let elapsed = t.elapsed();
    let reply = serde_json::from_slice(&out)
        .unwrap_or_else(|_| json!({"error": String::from_utf8_lossy(&out)}));
    (elapsed, reply)
}

/// One installation and the command secret it is signed with.
struct Side {
    label: &'static str,
    agent: Agent,
    secret: Secret,
}

impl Side {
    fn send(&self, cmd: &str, args: Value) -> (Duration, Value) {
        round_trip(&self.agent.socket(), &sign(&self.secret, cmd, args))
    }

    fn pid(&self) -> u32 {
        self.agent.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    fn cpu(&self) -> Duration {
        process_cpu(self.pid())
    }

    /// `pane-agent unseal` with the passphrase on stdin: its wall time and reply.
    fn unseal(&self) -> (Duration, Value) {
        let t = Instant::now();
        let out = stdin_cmd(&self.agent.dir, &["unseal"], PASSPHRASE);
        let elapsed = t.elapsed();
        let reply = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| json!({"error": String::from_utf8_lossy(&out.stderr)}));
        (elapsed, reply)
    }

    /// Polls (1 ms) until `list` answers with contexts; the time since `since`.
    fn until_list_answers(&self, since: Instant) -> Duration {
        loop {
            let (_, r) = self.send("list", json!({}));
            if r["count"].is_u64() {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(60),
                "{}: list never answered: {r}",
                self.label
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Polls until the agent answers `sealed`.
    fn until_sealed(&self) {
        let t = Instant::now();
        loop {
            let (_, r) = self.send("list", json!({}));
            if r["kind"] == "sealed" {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{}: did not seal: {r}",
                self.label
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The store's files: (apparent bytes, bytes of the blocks allocated, files).
fn files_size(dir: &Path) -> (u64, u64, usize) {
    let (mut bytes, mut blocks, mut files) = (0, 0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read the store dir") {
            let path = entry.expect("dir entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                stack.push(path);
            } else {
                bytes += meta.len();
                blocks += meta.blocks() * 512;
                files += 1;
            }
        }
    }
    (bytes, blocks, files)
}

/// What a store holds, read back with the daemon stopped: per tree, (records, key and value
/// bytes as the agent sees them, bytes as stored: for a sealed store, hashed keys and sealed
/// values, by the record format); and what reading it costs in process.
#[derive(Default)]
struct Contents {
    records: u64,
    plain: u64,
    stored: u64,
    per_tree: Vec<(&'static str, u64, u64, u64)>,
    /// This thread's CPU time: the first walk of the contexts tree, then medians of 51: the
    /// contexts tree walked, `Contexts::all`, `Incidents::unalerted`.
    timings: Vec<Duration>,
}

fn contents(store: &Store) -> Contents {
    let sealed = store.is_sealed();
    let mut c = Contents::default();
    let contexts = pane_agent::context::Contexts::new(store);
    let incidents = pane_agent::breach::incidents::Incidents::new(store);
    let table = store.table(TableId::Contexts);
    // The first walk of a store just opened: every record opened (sealed).
    let t = thread_cpu();
    std::hint::black_box(table.iter().count());
    let first_walk = thread_cpu() - t;
    c.timings = vec![
        first_walk,
        cpu_median(|| {
            std::hint::black_box(table.iter().count());
        }),
        cpu_median(|| {
            std::hint::black_box(contexts.all().expect("contexts"));
        }),
        cpu_median(|| {
            std::hint::black_box(incidents.unalerted().expect("incidents"));
        }),
    ];
    for id in TableId::ALL {
        let (mut n, mut plain, mut stored) = (0u64, 0u64, 0u64);
        for item in store.table(id).iter() {
            let (k, v) = item.expect("a record that opens");
            let (k, v) = (k.len() as u64, v.len() as u64);
            n += 1;
            plain += k + v;
            stored += if !sealed {
                k + v
            } else {
                let disk_key = match id.keys() {
                    Keys::Hashed => HASHED_KEY_BYTES,
                    Keys::Ordered => k,
                };
                disk_key + SEALED_VALUE_OVERHEAD + k + v
            };
        }
        c.records += n;
        c.plain += plain;
        c.stored += stored;
        c.per_tree.push((id.name(), n, plain, stored));
    }
    c
}

/// `from`'s records copied into a new store in `dir` (sealed with `sealer`, else in clear),
/// flushed and closed: the size of its files.
fn fresh_copy(from: &Store, dir: &Path, sealer: Option<Arc<Sealer>>) -> (u64, u64, usize) {
    {
        let disk = Disk::open(dir).expect("open a new store");
        let to = disk.store(sealer).expect("the new store");
        from.copy_into(&to).expect("copy the records");
        to.flush_blocking().expect("flush");
        drop(to);
        disk.flush().expect("flush the files");
    }
    files_size(dir)
}

fn config(imap: &Dovecot) -> String {
    common::unlimited_rates(&imap.configure(pane_agent::config::TEMPLATE))
        .replace("idle = true", "idle = false")
        .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\"")
        .replace("weekly_digest = \"0 0 9 * * Mon\"", "weekly_digest = \"\"")
        .replace(
            "secret_rotation_reminder = \"0 0 9 1 1,4,7,10 *\"",
            "secret_rotation_reminder = \"\"",
        )
}

fn addy_mail(email: &str, sender: &str, subject: &str, id: &str) -> String {
    message(
        &[
            ("From", "\"Forwarded\" <noreply@anonaddy.me>"),
            ("To", email),
            ("X-AnonAddy-Original-Sender", sender),
            ("Subject", subject),
            ("Message-ID", &format!("<{id}@bench>")),
        ],
        "body",
    )
}

fn main() {
    let started = Instant::now();
    let env_usize = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(default)
    };
    let round_trips = env_usize("PANE_BENCH_ROUND_TRIPS", 500);
    let n_contexts = env_usize("PANE_BENCH_CONTEXTS", 1000);
    let mut checks = Checks::default();
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("pane-agent sealed at rest against in clear (release build), commit {commit}");
    println!("load average at start: {}", load());

    // --- the installation in clear, filled ----------------------------------------------------
    let aliases = providers::addy(ADDY_KEY);
    let cards = providers::privacy(PRIVACY_KEY);
    let imap = Dovecot::start();
    let mut env: Vec<(String, String)> = vec![
        ("ADDY_API_KEY".into(), ADDY_KEY.into()),
        ("ADDY_BASE_URL".into(), aliases.base.clone()),
        ("PRIVACY_API_KEY".into(), PRIVACY_KEY.into()),
        ("PRIVACY_BASE_URL".into(), cards.base.clone()),
        ("PANE_IMAP_PASSWORD".into(), imap.password.clone()),
        // The daemon's default filter (the harness asks for debug).
        ("RUST_LOG".into(), "info".into()),
    ];
    let mut clear_agent = Agent::init();
    clear_agent.env = env.clone();
    clear_agent.write_config(&config(&imap));
    clear_agent.spawn();
    let secret_text = std::fs::read_to_string(clear_agent.dir.join("agent.secret"))
        .expect("agent.secret")
        .trim()
        .to_string();
    let mut clear = Side {
        label: "clear",
        agent: clear_agent,
        secret: Secret::new(&secret_text),
    };
    let mut fill_enrolls = Series::default();
    let mut emails = Vec::new();
    let t = Instant::now();
    for i in 0..n_contexts {
        let name = format!("site{i:04}");
        let (took, r) = clear.send(
            "enroll",
            json!({"url": format!("https://www.{name}.com/signup"), "alias": name}),
        );
        checks.check(r["status"] == "enrolled", || format!("enroll {name}: {r}"));
        fill_enrolls.0.push(took);
        emails.push(r["alias"]["email"].as_str().unwrap_or_default().to_string());
    }
    let fill_time = t.elapsed();
    let mut messages = Vec::new();
    let mut leaks = 0;
    for (i, email) in emails.iter().enumerate() {
        for j in 0..MAILS_PER_ALIAS {
            let leaked = i % LEAK_EVERY == 0 && j == MAILS_PER_ALIAS - 1;
            let sender = if leaked {
                leaks += 1;
                format!("offers@broker{}.net", i % 7)
            } else {
                format!("news{j}@mail.site{i:04}.com")
            };
            messages.push(addy_mail(
                email,
                &sender,
                &format!("Message {j} to site{i:04}"),
                &format!("m{i}.{j}"),
            ));
        }
    }
    imap.append_many(&messages);
    let (first_sweep, r) = clear.send("sweep", json!({}));
    let new = r["new_incidents"].as_array().map(Vec::len).unwrap_or(0);
    checks.check(new == leaks, || {
        format!("first sweep: {new} new incidents, {leaks} expected")
    });
    clear.agent.stop();
    let filled_audit = {
        let disk = Disk::open(&clear.agent.dir.join("store")).expect("open the clear store");
        let store = disk.store(None).expect("store");
        store.table(TableId::Audit).len()
    };
    println!(
        "filled in clear: {n_contexts} enrolls in {:.1} s (p50 {:.2} ms, p99 {:.2} ms), {} messages, one sweep ({leaks} incidents) in {:.0} ms; {filled_audit} audit entries",
        fill_time.as_secs_f64(),
        ms(fill_enrolls.p(0.5)),
        ms(fill_enrolls.p(0.99)),
        messages.len(),
        ms(first_sweep)
    );

    // --- its copy, sealed with seal-init -----------------------------------------------------
    let sealed_tmp = tempfile::tempdir().expect("tempdir");
    let sealed_dir = sealed_tmp.path().join("pane");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&clear.agent.dir)
        .arg(&sealed_dir)
        .status()
        .expect("cp");
    assert!(status.success(), "copy the data dir");
    // The owner's phone keeps the command secret (the harness signs with this copy).
    std::fs::write(sealed_tmp.path().join("phone.secret"), &secret_text).expect("phone copy");
    let t = Instant::now();
    let out = stdin_cmd(&sealed_dir, &["seal-init"], PASSPHRASE);
    let seal_init_time = t.elapsed();
    assert!(
        out.status.success(),
        "seal-init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seal_init_report = String::from_utf8_lossy(&out.stdout).to_string();
    let keyfile = KeyFile::load(&sealed_dir)
        .expect("read seal.json")
        .expect("sealed");
    let kdf = keyfile.wrappers[0].kdf.clone();
    let sealed_log = sealed_tmp.path().join("agent.log");
    let mut sealed = Side {
        label: "sealed",
        agent: Agent {
            tmp: sealed_tmp,
            dir: sealed_dir,
            child: None,
            log: sealed_log,
            env: std::mem::take(&mut env),
        },
        secret: Secret::new(&secret_text),
    };
    println!(
        "seal-init of that copy: {:.2} s (calibrated the KDF to Argon2id {} MiB x {} passes, {} lane); {}",
        seal_init_time.as_secs_f64(),
        kdf.m_kib / 1024,
        kdf.t,
        kdf.p,
        seal_init_report
            .lines()
            .find(|l| l.contains("records"))
            .unwrap_or_default()
            .trim_matches(|c| c == '"' || c == ',' || c == ' ')
    );

    clear.agent.spawn();
    sealed.agent.spawn();
    let (first_unseal, r) = sealed.unseal();
    checks.check(r["status"] == "unsealed", || format!("first unseal: {r}"));
    let sides = [&clear, &sealed];
    for s in sides {
        let (_, r) = s.send("list", json!({}));
        checks.check(r["count"] == n_contexts, || {
            format!("{}: {} contexts", s.label, r["count"])
        });
    }

    // --- round trips, interleaved -------------------------------------------------------------
    // [clear list, sealed list, clear status, sealed status]
    let mut series: [Series; 4] = Default::default();
    let load_before = load();
    let t = Instant::now();
    for i in 0..WARM_UP + round_trips {
        let name = format!("site{:04}", (i * 7) % n_contexts);
        for k in 0..4 {
            // The order rotates every round, so no series always follows the same one.
            let which = (k + i) % 4;
            let s = sides[which % 2];
            let (took, r) = if which < 2 {
                s.send("list", json!({}))
            } else {
                s.send("status", json!({"context": name}))
            };
            let ok = if which < 2 {
                r.get("error").is_none()
                    && r["count"] == n_contexts
                    && r["contexts"].as_array().map(Vec::len) == Some(n_contexts)
            } else {
                r.get("error").is_none() && r["context"] == name.as_str()
            };
            let label = s.label;
            checks.check(ok, || {
                let mut t = r.to_string();
                t.truncate(300);
                format!("{label} round trip {which}: {t}")
            });
            if i >= WARM_UP {
                series[which].0.push(took);
            }
        }
    }
    let measuring = t.elapsed();
    let load_after = load();
    let list_bytes: Vec<usize> = sides
        .iter()
        .map(|s| s.send("list", json!({})).1.to_string().len())
        .collect();

    // The daemons' CPU time per command, over runs of one kind (the sides alternate).
    // [clear list, sealed list, clear status, sealed status], per command.
    let mut cpu_per: [Duration; 4] = Default::default();
    let load_cpu_before = load();
    for (which, n) in [
        (0, CPU_LISTS),
        (1, CPU_LISTS),
        (3, CPU_STATUSES),
        (2, CPU_STATUSES),
    ] {
        let s = sides[which % 2];
        let before = s.cpu();
        for i in 0..n {
            let r = if which < 2 {
                s.send("list", json!({})).1
            } else {
                s.send(
                    "status",
                    json!({"context": format!("site{:04}", (i * 13) % n_contexts)}),
                )
                .1
            };
            let label = s.label;
            checks.check(r.get("error").is_none(), || {
                let mut t = r.to_string();
                t.truncate(300);
                format!("{label} cpu run {which}: {t}")
            });
        }
        cpu_per[which] = (s.cpu() - before) / n as u32;
    }
    let load_cpu_after = load();

    // --- the same later work on both ---------------------------------------------------------
    // Sweeps of the same new mail (both read the one mailbox, each from its own cursor): each
    // round 100 messages from a new domain, to every tenth alias, so 100 new incidents.
    let mut sweeps: [Series; 2] = Default::default();
    let mut sweeps_cpu: [Series; 2] = Default::default();
    for round in 0..SWEEP_ROUNDS {
        let messages: Vec<String> = emails
            .iter()
            .enumerate()
            .filter(|(i, _)| i % LEAK_EVERY == 0)
            .map(|(i, email)| {
                addy_mail(
                    email,
                    &format!("deals@leak{round}x{}.org", i % 7),
                    &format!("Round {round} to site{i:04}"),
                    &format!("r{round}.{i}"),
                )
            })
            .collect();
        imap.append_many(&messages);
        for k in 0..2 {
            let which = (round + k) % 2;
            let s = sides[which];
            let before = s.cpu();
            let (took, r) = s.send("sweep", json!({}));
            sweeps_cpu[which].0.push(s.cpu() - before);
            let new = r["new_incidents"].as_array().map(Vec::len).unwrap_or(0);
            let label = s.label;
            let want = messages.len();
            checks.check(r.get("error").is_none() && new == want, || {
                let mut t = r.to_string();
                t.truncate(300);
                format!("{label} sweep round {round}: {new} new incidents, {want} expected: {t}")
            });
            sweeps[which].0.push(took);
        }
    }
    // Enrolls, one at a time, the sides interleaved.
    let mut enrolls: [Series; 2] = Default::default();
    let mut enrolls_cpu: [Duration; 2] = Default::default();
    for i in 0..LATER_ENROLLS {
        for k in 0..2 {
            let which = (i + k) % 2;
            let s = sides[which];
            let name = format!("later{i:03}");
            let before = s.cpu();
            let (took, r) = s.send(
                "enroll",
                json!({"url": format!("https://www.{name}.com/join"), "alias": name}),
            );
            enrolls_cpu[which] += s.cpu() - before;
            let label = s.label;
            checks.check(r["status"] == "enrolled", || {
                format!("{label} enroll {name}: {r}")
            });
            enrolls[which].0.push(took);
        }
    }
    // Bursts: 100 enrolls from 10 threads at once.
    let mut bursts: [Series; 2] = Default::default();
    let mut bursts_cpu: [Series; 2] = Default::default();
    for (b, which) in (0..BURSTS).flat_map(|b| [(b, b % 2), (b, (b + 1) % 2)]) {
        let s = sides[which];
        let before = s.cpu();
        let t = Instant::now();
        let replies: Vec<Value> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..10)
                .map(|th| {
                    scope.spawn(move || {
                        (0..10)
                            .map(|j| {
                                let name = format!("burst{b}t{th}x{j}");
                                s.send(
                                    "enroll",
                                    json!({"url": format!("https://{name}.example"), "alias": name}),
                                )
                                .1
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("burst thread"))
                .collect()
        });
        bursts[which].0.push(t.elapsed());
        bursts_cpu[which].0.push(s.cpu() - before);
        let label = s.label;
        let enrolled = replies.iter().filter(|r| r["status"] == "enrolled").count();
        checks.check(enrolled == 100, || {
            format!(
                "{label} burst: {enrolled} of 100 enrolled: {}",
                replies
                    .iter()
                    .find(|r| r["status"] != "enrolled")
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            )
        });
    }
    let load_work = load();

    // --- the stores, stopped ----------------------------------------------------------------
    clear.agent.stop();
    sealed.agent.stop();
    let used_sizes = [
        files_size(&clear.agent.dir.join("store")),
        files_size(&sealed.agent.dir.join("store")),
    ];
    // The KDF alone, in process: what `unseal` derives before it opens the wrapped key.
    let mut kdf_alone = Series::default();
    let mut kdf_alone_cpu = Series::default();
    let mut data_key = None;
    for _ in 0..5 {
        let t = Instant::now();
        let c = thread_cpu();
        let (key, _) = keyfile
            .unwrap_key(PASSPHRASE)
            .expect("the passphrase opens");
        kdf_alone_cpu.0.push(thread_cpu() - c);
        kdf_alone.0.push(t.elapsed());
        data_key = Some(key);
    }
    let data_key = data_key.expect("a key");
    // How `Cost::calibrate` works: one pass over 64 MiB timed, the passes scaled from it.
    // What it picks now, and what 1, 2 and the installed passes cost.
    let mut calibrations = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let cost = Cost::calibrate(Duration::from_millis(1000)).expect("calibrate");
        calibrations.push((t.elapsed(), cost.t));
    }
    let mut per_passes = Vec::new();
    for passes in [1, 2, kdf.t] {
        let mut s = Series::default();
        for _ in 0..3 {
            let cost = Cost {
                m_kib: kdf.m_kib,
                t: passes,
            };
            let t = Instant::now();
            std::hint::black_box(
                KeyFile::create(&data_key, PASSPHRASE, None, cost).expect("key file"),
            );
            s.0.push(t.elapsed());
        }
        per_passes.push((passes, s));
    }
    // The records, and fresh copies of them (the same records in clear and sealed, written
    // in one go and flushed).
    let scratch = tempfile::tempdir().expect("tempdir");
    let sealer = Arc::new(Sealer::new(&data_key).expect("sealer"));
    let (clear_contents, sealed_contents, fresh_sizes, fresh_all) = {
        let clear_disk = Disk::open(&clear.agent.dir.join("store")).expect("open");
        let clear_store = clear_disk.store(None).expect("store");
        let sealed_disk = Disk::open(&sealed.agent.dir.join("store")).expect("open");
        let sealed_store = sealed_disk.store(Some(sealer.clone())).expect("store");
        let contents = (contents(&clear_store), contents(&sealed_store));
        // Three copies of each, alternating: sled's files for the same records vary from one
        // copy to the next; the median of each.
        let mut copies: [Vec<(u64, u64, usize)>; 2] = Default::default();
        for n in 0..3 {
            copies[0].push(fresh_copy(
                &clear_store,
                &scratch.path().join(format!("clear{n}")),
                None,
            ));
            copies[1].push(fresh_copy(
                &clear_store,
                &scratch.path().join(format!("sealed{n}")),
                Some(sealer.clone()),
            ));
        }
        let fresh_all = copies.clone().map(|c| {
            c.iter()
                .map(|s| s.0.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        });
        let fresh = copies.map(|mut c| {
            c.sort();
            c[1]
        });
        (contents.0, contents.1, fresh, fresh_all)
    };
    drop(sealer);
    drop(data_key);

    // --- restarts and unseals -----------------------------------------------------------------
    let installation = keyfile.installation.clone();
    // A reboot: the keyring's copy gone, a fresh daemon, the owner unseals.
    let mut reboot_unseal = Series::default();
    let mut reboot_unseal_cpu = Series::default();
    let mut reboot_first_list = Series::default();
    for _ in 0..3 {
        sealed.agent.stop();
        pane_agent::seal::keyring::forget(&installation);
        sealed.agent.spawn();
        sealed.until_sealed();
        let t = Instant::now();
        let cpu = sealed.cpu();
        let (took, r) = sealed.unseal();
        reboot_unseal_cpu.0.push(sealed.cpu() - cpu);
        checks.check(r["status"] == "unsealed", || {
            format!("unseal after reboot: {r}")
        });
        reboot_unseal.0.push(took);
        reboot_first_list
            .0
            .push(sealed.until_list_answers(t) - took);
    }
    // The CLI's own floor: `unseal` of an agent already unsealed answers before any KDF.
    let mut unseal_floor = Series::default();
    for _ in 0..5 {
        let (took, r) = sealed.unseal();
        checks.check(r["status"] == "already_unsealed", || {
            format!("unseal when unsealed: {r}")
        });
        unseal_floor.0.push(took);
    }
    // `seal` from a signed command, then `unseal` (the daemon keeps its files open).
    let mut seal_unseal = Series::default();
    let mut seal_done = Series::default();
    for _ in 0..3 {
        let t = Instant::now();
        let (_, r) = sealed.send("seal", json!({}));
        checks.check(r["status"] == "sealing", || format!("seal: {r}"));
        sealed.until_sealed();
        // The keeper answers console requests in the same loop as it seals: once one is
        // answered, the seal (which gives the outbox up to 5 s to drain) is over.
        let _ = sealed.agent.raw(br#"{"local": "mcp_key"}"#);
        seal_done.0.push(t.elapsed());
        let (took, r) = sealed.unseal();
        checks.check(r["status"] == "unsealed", || {
            format!("unseal after seal: {r}")
        });
        seal_unseal.0.push(took);
    }
    // A crash-restart: SIGKILL, a fresh daemon, until `list` answers (sealed: the key from
    // the kernel keyring, no KDF and no owner). The first one in clear follows a clean stop.
    let mut crash_restart: [Series; 2] = Default::default();
    for _ in 0..3 {
        for (k, s) in [&mut clear, &mut sealed].into_iter().enumerate() {
            s.agent.kill();
            let t = Instant::now();
            s.agent.spawn();
            crash_restart[k].0.push(s.until_list_answers(t));
        }
    }
    let load_end = load();

    // --- the report ---------------------------------------------------------------------------
    let ratio = |s: Duration, c: Duration| s.as_secs_f64() / c.as_secs_f64();
    println!(
        "the first unseal (KDF, session start, the credentials taken in): {:.0} ms",
        ms(first_unseal)
    );
    println!();
    println!(
        "{round_trips} round trips of each kind after {WARM_UP} warm-up, the four series interleaved ({:.1} s); load average before {load_before}, after {load_after}",
        measuring.as_secs_f64()
    );
    println!(
        "`list` reply: clear {} bytes, sealed {} bytes",
        list_bytes[0], list_bytes[1]
    );
    println!(
        "the daemon's CPU time per command: {CPU_LISTS} `list`s, then {CPU_STATUSES} `status`es in a row on each; load average before {load_cpu_before}, after {load_cpu_after}"
    );
    println!();
    println!("| signed, over the control socket | clear p50 / p99 | sealed p50 / p99 | sealed / clear, p50 | p99 | daemon CPU per command, clear / sealed | sealed / clear, CPU | target |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, c, s, cc, sc) in [
        (
            format!("`status {{context}}` ({n_contexts} contexts)"),
            &series[2],
            &series[3],
            cpu_per[2],
            cpu_per[3],
        ),
        (
            format!("`list` ({n_contexts} contexts)"),
            &series[0],
            &series[1],
            cpu_per[0],
            cpu_per[1],
        ),
    ] {
        let r50 = ratio(s.p(0.5), c.p(0.5));
        println!(
            "| {name} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | **{r50:.2}x** | {:.2}x | {:.2} / {:.2} ms | {:.2}x | <= 1.2x: {} |",
            ms(c.p(0.5)),
            ms(c.p(0.99)),
            ms(s.p(0.5)),
            ms(s.p(0.99)),
            ratio(s.p(0.99), c.p(0.99)),
            ms(cc),
            ms(sc),
            ratio(sc, cc),
            if r50 <= 1.2 { "met" } else { "**not met**" }
        );
    }
    println!();
    println!("the same later work on both; load average after it {load_work}");
    println!();
    println!(
        "| later work | clear (wall) | sealed (wall) | sealed / clear | daemon CPU, clear / sealed | sealed / clear, CPU |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| `enroll`, one at a time ({LATER_ENROLLS} each, interleaved), p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2}x / {:.2}x | {:.2} / {:.2} ms per enroll | {:.2}x |",
        ms(enrolls[0].p(0.5)),
        ms(enrolls[0].p(0.99)),
        ms(enrolls[1].p(0.5)),
        ms(enrolls[1].p(0.99)),
        ratio(enrolls[1].p(0.5), enrolls[0].p(0.5)),
        ratio(enrolls[1].p(0.99), enrolls[0].p(0.99)),
        ms(enrolls_cpu[0]) / LATER_ENROLLS as f64,
        ms(enrolls_cpu[1]) / LATER_ENROLLS as f64,
        ratio(enrolls_cpu[1], enrolls_cpu[0]),
    );
    println!(
        "| burst: 100 `enroll`s from 10 threads at once, median of {BURSTS} ({} / {} ms) | {:.0} ms | {:.0} ms | {:.2}x | {:.0} / {:.0} ms per burst | {:.2}x |",
        bursts[0].list(),
        bursts[1].list(),
        ms(bursts[0].p(0.5)),
        ms(bursts[1].p(0.5)),
        ratio(bursts[1].p(0.5), bursts[0].p(0.5)),
        ms(bursts_cpu[0].sum()) / BURSTS as f64,
        ms(bursts_cpu[1].sum()) / BURSTS as f64,
        ratio(bursts_cpu[1].sum(), bursts_cpu[0].sum()),
    );
    println!(
        "| `sweep` of 100 new messages (100 new incidents), median of {SWEEP_ROUNDS} ({} / {} ms) | {:.0} ms | {:.0} ms | {:.2}x | {:.0} / {:.0} ms per sweep | {:.2}x |",
        sweeps[0].list(),
        sweeps[1].list(),
        ms(sweeps[0].p(0.5)),
        ms(sweeps[1].p(0.5)),
        ratio(sweeps[1].p(0.5), sweeps[0].p(0.5)),
        ms(sweeps_cpu[0].sum()) / SWEEP_ROUNDS as f64,
        ms(sweeps_cpu[1].sum()) / SWEEP_ROUNDS as f64,
        ratio(sweeps_cpu[1].sum(), sweeps_cpu[0].sum()),
    );
    println!();
    println!("| unsealing (the sealed installation) | median | min / max | samples (ms) |");
    println!("| --- | --- | --- | --- |");
    let mut rows = vec![
        (
            format!(
                "KDF alone in process (Argon2id {} MiB x {} passes, `KeyFile::unwrap_key`)",
                kdf.m_kib / 1024,
                kdf.t
            ),
            &kdf_alone,
        ),
        (
            "`pane-agent unseal` after a reboot (keyring cleared, fresh daemon): CLI wall time"
                .to_string(),
            &reboot_unseal,
        ),
        (
            "then until the first `list` answers".to_string(),
            &reboot_first_list,
        ),
        (
            "`pane-agent unseal` after `seal` (the daemon running): CLI wall time".to_string(),
            &seal_unseal,
        ),
        (
            "`pane-agent unseal` of an agent already unsealed (the CLI's floor: no KDF, no session)"
                .to_string(),
            &unseal_floor,
        ),
        (
            "crash-restart, sealed: SIGKILL, spawn, the key from the kernel keyring, until `list` answers"
                .to_string(),
            &crash_restart[1],
        ),
        (
            "crash-restart, in clear: the same".to_string(),
            &crash_restart[0],
        ),
        (
            "`seal` (signed, over the socket) until the keeper is free again (it gives the outbox up to 5 s to drain)"
                .to_string(),
            &seal_done,
        ),
    ];
    for (passes, s) in &per_passes {
        rows.push((
            format!("KDF at {passes} pass(es), 64 MiB (`KeyFile::create`)"),
            s,
        ));
    }
    for (name, s) in rows {
        println!(
            "| {name} | {:.1} ms | {:.1} / {:.1} ms | {} |",
            ms(s.p(0.5)),
            ms(s.min()),
            ms(s.max()),
            s.list()
        );
    }
    println!(
        "`Cost::calibrate(1000 ms)` now: {}",
        calibrations
            .iter()
            .map(|(d, t)| format!("{t} passes (probe {:.0} ms)", ms(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "CPU time: the KDF alone in process {} ms (median {:.0}); the daemon during `unseal` after a reboot (KDF, session start) {} ms (median {:.0}): the session start about {:.0} ms of CPU",
        kdf_alone_cpu.list(),
        ms(kdf_alone_cpu.p(0.5)),
        reboot_unseal_cpu.list(),
        ms(reboot_unseal_cpu.p(0.5)),
        ms(reboot_unseal_cpu.p(0.5)) - ms(kdf_alone_cpu.p(0.5))
    );
    println!();
    println!("| the store | clear | sealed | sealed / clear |");
    println!("| --- | --- | --- | --- |");
    for (name, [c, s]) in [
        ("files under store/ after the same use (bytes; the sealed store was written by seal-init, then used)", used_sizes),
        ("fresh copies of the same records, flushed, median of 3 (bytes)", fresh_sizes),
    ] {
        println!(
            "| {name} ({} / {} files) | {} | {} | {:.2}x |",
            c.2,
            s.2,
            c.0,
            s.0,
            s.0 as f64 / c.0 as f64
        );
        println!(
            "| the same, blocks allocated (du) | {} | {} | {:.2}x |",
            c.1,
            s.1,
            s.1 as f64 / c.1 as f64
        );
    }
    println!(
        "| (the three fresh copies, bytes) | {} | {} | |",
        fresh_all[0], fresh_all[1]
    );
    println!(
        "| records | {} | {} | |",
        clear_contents.records, sealed_contents.records
    );
    println!(
        "| records' keys and values as the agent sees them (bytes) | {} | {} | {:.2}x |",
        clear_contents.plain,
        sealed_contents.plain,
        sealed_contents.plain as f64 / clear_contents.plain as f64
    );
    println!(
        "| the same as stored (sealed: hashed keys, and +{SEALED_VALUE_OVERHEAD} bytes and the real key in each value) | {} | {} | {:.2}x |",
        clear_contents.stored,
        sealed_contents.stored,
        sealed_contents.stored as f64 / clear_contents.stored as f64
    );
    println!();
    println!(
        "| in process, the stores read back (this thread's CPU time; after the first row, medians of 51) | clear | sealed | sealed / clear |"
    );
    println!("| --- | --- | --- | --- |");
    for (k, name) in [
        "the first walk of the contexts tree after the store is opened (`Table::iter().count()`, once; sealed: every record opened, then sorted)",
        "the contexts tree walked again (`Table::iter().count()`)",
        "`Contexts::all()` (the same, each record decoded: what `list` reads)",
        "`Incidents::unalerted()` (every incident decoded: what each sweep reads)",
    ]
    .iter()
    .enumerate()
    {
        let (c, s) = (clear_contents.timings[k], sealed_contents.timings[k]);
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:.2}x |",
            ms(c),
            ms(s),
            ratio(s, c)
        );
    }
    println!();
    println!(
        "| tree | records (clear / sealed) | plain bytes (clear / sealed) | stored bytes (clear / sealed) |"
    );
    println!("| --- | --- | --- | --- |");
    for (a, b) in clear_contents
        .per_tree
        .iter()
        .zip(&sealed_contents.per_tree)
    {
        if a.1 == 0 && b.1 == 0 {
            continue;
        }
        println!(
            "| {} | {} / {} | {} / {} | {} / {} |",
            a.0, a.1, b.1, a.2, b.2, a.3, b.3
        );
    }
    println!();
    println!(
        "whole run {:.1} s; load average at the end {load_end}",
        started.elapsed().as_secs_f64()
    );

    if let Some(keep) = std::env::var_os("PANE_BENCH_KEEP") {
        // Both installations, stopped, for a profile of the daemon on the same data.
        for s in [&mut clear, &mut sealed] {
            s.agent.stop();
            let to = Path::new(&keep).join(s.label);
            let status = std::process::Command::new("cp")
                .arg("-a")
                .arg(s.agent.tmp.path())
                .arg(&to)
                .status()
                .expect("cp");
            assert!(status.success(), "copy to {}", to.display());
        }
        println!("kept both installations under {}", keep.to_string_lossy());
    }
    drop(clear);
    drop(sealed);
    if !checks.0.is_empty() {
        eprintln!(
            "{} wrong replies; the figures above are not valid",
            checks.0.len()
        );
        std::process::exit(1);
    }
}
