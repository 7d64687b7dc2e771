//! `cargo bench --bench inbox`: `inbox` and `mail` figures for docs/performance.md.
//!
//! A real Dovecot holds 100,000 messages to 20 aliases (5,000 each), one of them a 1 MB HTML
//! message. After one sweep (which indexes them), measured over the control socket:
//! - `inbox {context, limit: 10}`, p50 and p99 (headers from the index, the 10 bodies fetched
//!   unread, searched, dropped);
//! - `mail {id}` of the 1 MB HTML message, p50 and p99;
//! - the owner's `status`, p50 and p99, alone and while `inbox` runs without pause in another
//!   thread (the gate's other commands unaffected).
//!
//! Every reply is checked; the bench exits non-zero if one was wrong. The target (`inbox`
//! under 100 ms p50) is reported, not asserted.

#[path = "../tests/common/mod.rs"]
mod common;

use common::dovecot::{message, Dovecot};
use common::{providers, Agent};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CONTEXTS: usize = 20;
const MESSAGES: usize = 100_000;
const RUNS: usize = 200;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[at.min(samples.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times `runs` calls of `call`, each checked by `ok`; (p50, p99).
fn timed(
    runs: usize,
    wrong: &mut Vec<String>,
    what: &str,
    mut call: impl FnMut(usize) -> Value,
    ok: impl Fn(&Value) -> bool,
) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        let r = call(i);
        samples.push(t.elapsed());
        if !ok(&r) {
            wrong.push(format!("{what}: {r}"));
        }
    }
    (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    )
}

fn big_html(alias: &str) -> String {
    let mut html =
        String::from("<html><body><h1>Your statement</h1><p>Your code is 654321.</p><table>");
    let mut row = 0;
    while html.len() < 1_000_000 {
        html.push_str(&format!(
            "<tr><td>Row {row}</td><td><a href=\"https://www.site0.example/item/{row}?utm_source=mail\">item {row}</a></td><td><img src=\"https://img.site0.example/{row}.png\"></td></tr>\n"
        ));
        row += 1;
    }
    html.push_str("</table></body></html>");
    message(
        &[
            ("From", "\"Forwarded\" <noreply@anonaddy.me>"),
            ("To", alias),
            (
                "X-AnonAddy-Original-Sender",
                "statements@mail.site0.example",
            ),
            ("Subject", "Your monthly statement"),
            ("Message-ID", "<big@bench>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/html; charset=utf-8"),
        ],
        &html,
    )
}

fn main() {
    let imap = Dovecot::start();
    let aliases = providers::addy("bench-key");
    let cards = providers::privacy("bench-key");
    let mut agent = Agent::init();
    common::use_local_services(&mut agent, &aliases, &cards, &imap);
    agent.write_config(&common::unlimited_rates(
        &common::quiet_schedules(&imap.configure(pane_agent::config::TEMPLATE))
            .replace("idle = true", "idle = false"),
    ));
    agent.spawn();
    let mut emails = Vec::new();
    for i in 0..CONTEXTS {
        let r = agent.send(
            "enroll",
            json!({"url": format!("https://site{i}.example"), "card": false}),
        );
        emails.push(r["alias"]["email"].as_str().unwrap_or_default().to_string());
    }
    let mut messages: Vec<String> = (0..MESSAGES - 1)
        .map(|i| {
            let alias = &emails[i % CONTEXTS];
            message(
                &[
                    ("From", "\"Forwarded\" <noreply@anonaddy.me>"),
                    ("To", alias),
                    (
                        "X-AnonAddy-Original-Sender",
                        &format!("news@mail.site{}.example", i % CONTEXTS),
                    ),
                    ("Subject", &format!("Your code is {}", 100_000 + i)),
                    ("Message-ID", &format!("<m{i}@bench>")),
                ],
                &format!("Hello,\n\nYour verification code is {}.\n\nhttps://www.site{}.example/confirm?t={i}\n", 100_000 + i, i % CONTEXTS),
            )
        })
        .collect();
    // The 1 MB message arrives near the end (the index keeps each context's newest 200),
    // then more mail after it.
    messages.insert(MESSAGES - 60, big_html(&emails[0]));
    let t = Instant::now();
    imap.append_many(&messages);
    println!(
        "appended {} messages in {:.1} s",
        messages.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let swept = agent.send("sweep", json!({}));
    println!(
        "first sweep (indexes {} messages): {:.2} s",
        swept["sources"][0]["fetched"],
        t.elapsed().as_secs_f64()
    );

    let mut wrong = Vec::new();
    let context = "site0";
    let first = agent.send("inbox", json!({"context": context, "limit": 10}));
    if first["count"] != 10 {
        wrong.push(format!("inbox: {first}"));
    }
    let big_id = {
        let mut found = None;
        let mut after: Option<u64> = None;
        while found.is_none() {
            let mut args = json!({"context": context, "limit": 50});
            if let Some(a) = after {
                args["after"] = json!(a);
            }
            let page = agent.send("inbox", args);
            let list = page["messages"].as_array().cloned().unwrap_or_default();
            found = list
                .iter()
                .find(|m| m["subject"] == "Your monthly statement")
                .and_then(|m| m["id"].as_u64());
            after = list.last().and_then(|m| m["id"].as_u64());
            if list.is_empty() {
                break;
            }
        }
        found
    };
    let (inbox_p50, inbox_p99) = timed(
        RUNS,
        &mut wrong,
        "inbox",
        |i| {
            agent.send(
                "inbox",
                json!({"context": context, "limit": 10, "after": u32::MAX as usize - i}),
            )
        },
        |r| {
            r["count"] == 10
                && r["messages"][0]["codes"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty())
        },
    );
    println!(
        "inbox {{context, limit: 10}} in a {MESSAGES}-message mailbox: p50 {:.1} ms, p99 {:.1} ms (target: under 100 ms p50)",
        ms(inbox_p50),
        ms(inbox_p99)
    );
    match big_id {
        Some(id) => {
            let (p50, p99) = timed(
                20,
                &mut wrong,
                "mail",
                |i| agent.send("mail", json!({"id": id, "page": 1 + i % 2})),
                |r| r["pages"].as_u64().is_some_and(|p| p > 1) && r["codes"][0] == "654321",
            );
            println!(
                "mail {{id}} of a 1 MB HTML message: p50 {:.1} ms, p99 {:.1} ms",
                ms(p50),
                ms(p99)
            );
        }
        None => wrong.push("the 1 MB message is not in the inbox".into()),
    }

    let status = |i: usize| {
        if i.is_multiple_of(2) {
            agent.send("status", json!({"context": context}))
        } else {
            agent.send("status", json!({"context": "site1"}))
        }
    };
    let status_ok = |r: &Value| r.get("error").is_none();
    let (alone_p50, alone_p99) = timed(RUNS, &mut wrong, "status", status, status_ok);
    let stop = AtomicBool::new(false);
    let (busy_p50, busy_p99, reads) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                agent.send(
                    "inbox",
                    json!({"context": "site2", "limit": 10, "after": 4_000_000_000u64 - n as u64}),
                );
                n += 1;
            }
            n
        });
        std::thread::sleep(Duration::from_millis(50));
        let (p50, p99) = timed(
            RUNS,
            &mut wrong,
            "status while inbox runs",
            status,
            status_ok,
        );
        stop.store(true, Ordering::SeqCst);
        (p50, p99, reader.join().unwrap_or(0))
    });
    println!(
        "status alone: p50 {:.2} ms, p99 {:.2} ms; while inbox runs without pause ({reads} inbox calls meanwhile): p50 {:.2} ms, p99 {:.2} ms",
        ms(alone_p50),
        ms(alone_p99),
        ms(busy_p50),
        ms(busy_p99)
    );
    if !wrong.is_empty() {
        for w in wrong.iter().take(5) {
            eprintln!("wrong: {w}");
        }
        std::process::exit(1);
    }
}
