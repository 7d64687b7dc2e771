//! `inbox` and `mail` end to end: the real binary, a real Dovecot on loopback holding a
//! corpus built from real-world shapes (`tests/inbox/corpus/`: multipart/alternative,
//! HTML only, quoted-printable and base64 bodies, ISO-8859-1 and windows-1252 text, a very
//! long line, addy.io and SimpleLogin forwarding headers, a phishing mail whose link goes
//! elsewhere than the site; and, made here, a mail with a 20 MB attachment), checked against
//! its answer key (`tests/inbox/answers.json`). Also: no request leaves for any link or image
//! (a local HTTP server named in them counts), every message stays unread, nothing of a body
//! is left in the store or the log, and every phone reply fits one Signal message.

mod common;

use common::dovecot::Dovecot;
use common::gateway::Gateway;
use common::providers;
use common::{assert_error, Agent};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const OWNER: &str = "0b4e6c1a-7d9f-4e21-9a3b-5c6d7e8f9a0b";

/// Strings only a body holds (never a header): none may be stored or logged.
const BODY_ONLY: &[&str] = &[
    "ignore this email",
    "Lorem ipsum dolor",
    "We noticed unusual activity",
    "Guests: 2",
    "Ne le partagez",
];

/// A local HTTP server that counts every connection made to it (and answers 200).
fn counting_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (addr, hits)
}

/// The corpus, with the alias and the counting server's address filled in, and the mail
/// with a 20 MB attachment: (file name, raw message).
fn corpus(alias: &str, server: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inbox/corpus");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let domain = alias.rsplit_once('@').unwrap().1;
    let mut out: Vec<(String, String)> = names
        .into_iter()
        .map(|name| {
            let raw = std::fs::read_to_string(dir.join(&name)).unwrap();
            let raw = raw
                .replace("{{ALIAS_DOMAIN}}", domain)
                .replace("{{ALIAS}}", alias)
                .replace("{{TRACKER}}", server)
                .replace("{{PHISH}}", server);
            (name, raw)
        })
        .collect();
    // 20 MB of attachment, base64 in lines of 76.
    let chunk = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29k";
    let lines = 20 * 1024 * 1024 / 57;
    let mut big = format!(
        "From: \"Forwarded\" <noreply@{domain}>\r\nTo: {alias}\r\nX-AnonAddy-Original-Sender: billing@notion.so\r\nSubject: Your invoice\r\nDate: Mon, 07 Dec 2026 14:17:00 +0000\r\nMessage-ID: <corpus-07@notion.so>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix-07\"\r\n\r\n--mix-07\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour invoice is attached.\r\nReference number: INV0042X\r\n\r\n--mix-07\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    big.reserve(lines * 78 + 64);
    for _ in 0..lines {
        big.push_str(chunk);
        big.push_str("\r\n");
    }
    big.push_str("--mix-07--\r\n");
    out.push(("07-attachment.eml".into(), big));
    out
}

struct World {
    agent: Agent,
    imap: Dovecot,
    _aliases: providers::MockServer,
    _cards: providers::MockServer,
    alias: String,
}

fn world() -> World {
    let imap = Dovecot::start();
    let aliases = providers::addy("k-addy-0001");
    let cards = providers::privacy("k-privacy-0001");
    let mut agent = Agent::init();
    common::use_local_services(&mut agent, &aliases, &cards, &imap);
    let config = common::quiet_schedules(&imap.configure(pane_agent::config::TEMPLATE))
        .replace("idle = true", "idle = false")
        .replace("owner = \"\"", &format!("owner = \"{OWNER}\""));
    agent.write_config(&config);
    agent.spawn();
    let r = agent.send(
        "enroll",
        json!({"url": "https://www.notion.so", "senders": ["mailgun.net"]}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    let alias = r["alias"]["email"].as_str().unwrap().to_string();
    World {
        agent,
        imap,
        _aliases: aliases,
        _cards: cards,
        alias,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every page of `mail {id}` over the socket.
fn all_pages(agent: &Agent, id: u64) -> Vec<Value> {
    let first = agent.send("mail", json!({"id": id}));
    assert!(first.get("error").is_none(), "mail {id}: {first}");
    let pages = first["pages"].as_u64().unwrap();
    let mut out = vec![first];
    for page in 2..=pages {
        let r = agent.send("mail", json!({"id": id, "page": page}));
        assert_eq!(r["page"], page, "{r}");
        out.push(r);
    }
    out
}

/// The next message to the phone that starts with `prefix` (the sweep's alert and burn
/// prompt come first).
fn reply_starting(gw: &mut Gateway, prefix: &str) -> String {
    for _ in 0..10 {
        let text = gw.reply();
        if text.starts_with(prefix) {
            return text;
        }
    }
    panic!("no reply starting with {prefix}");
}

#[test]
fn the_corpus_read_from_the_phone_matches_its_answer_key() {
    let mut w = world();
    let (server, hits) = counting_server();
    let messages = corpus(&w.alias, &server);
    let answers: BTreeMap<String, Value> = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inbox/answers.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let raw: Vec<String> = messages.iter().map(|(_, m)| m.clone()).collect();
    w.imap.append_many(&raw);
    let swept = w.agent.send("sweep", json!({}));
    assert_eq!(swept["sources"][0]["fetched"], messages.len(), "{swept}");

    let inbox = w
        .agent
        .send("inbox", json!({"context": "notion", "limit": 50}));
    assert_eq!(inbox["count"], messages.len(), "{inbox}");
    let listed = inbox["messages"].as_array().unwrap();
    // Newest first: the last appended is first.
    assert_eq!(listed[0]["subject"], "Your invoice");
    let mut ids = BTreeMap::new();
    for (name, _) in &messages {
        let want = &answers[name];
        let got = listed
            .iter()
            .find(|m| m["subject"] == want["subject"])
            .unwrap_or_else(|| panic!("{name} not in the inbox: {inbox}"));
        assert_eq!(
            strings(&got["codes"]),
            strings(&want["codes"]),
            "{name} codes: {got}"
        );
        assert_eq!(
            strings(&got["references"]),
            strings(&want["references"]),
            "{name} references: {got}"
        );
        let actions: Vec<Value> = got["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json!([l["domain"], l["kind"], l["foreign"]]))
            .collect();
        assert_eq!(
            Value::from(actions),
            want["action_links"],
            "{name} links: {got}"
        );
        assert_eq!(got["foreign_links"], want["foreign_links"], "{name}: {got}");
        assert_eq!(
            got["incident"].is_string(),
            want["incident"].as_bool().unwrap(),
            "{name} incident: {got}"
        );
        ids.insert(name.clone(), got["id"].as_u64().unwrap());
    }

    for (name, id) in &ids {
        let want = &answers[name];
        let pages = all_pages(&w.agent, *id);
        let first = &pages[0];
        assert_eq!(
            first["links"].as_array().unwrap().len() as u64,
            want["links"],
            "{name}: {first}"
        );
        assert_eq!(first["images"], want["images"], "{name}");
        let attachments: Vec<Value> = first["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| json!([a["name"], a["content_type"]]))
            .collect();
        assert_eq!(
            Value::from(attachments),
            want["attachments"],
            "{name}: {first}"
        );
        let text: String = pages.iter().map(|p| p["text"].as_str().unwrap()).collect();
        for code in strings(&want["codes"]) {
            assert!(text.contains(&code), "{name}: {code} not in {text}");
        }
    }
    // The phishing link is marked in the message's text, and the attachment is sized, not
    // fetched (4 MiB at most).
    let phish = all_pages(&w.agent, ids["06-phishing.eml"]);
    let phish_text = phish.last().unwrap()["text"].as_str().unwrap().to_string();
    assert!(
        phish_text.contains("⚠ not the site's: 127.0.0.1"),
        "{phish_text}"
    );
    let invoice = &all_pages(&w.agent, ids["07-attachment.eml"])[0];
    let size = invoice["attachments"][0]["size"].as_u64().unwrap();
    assert!((20_000_000..22_000_000).contains(&size), "{invoice}");
    assert_eq!(invoice["truncated"], true, "{invoice}");
    // The long line is paged, and the pages hold all of it.
    assert!(all_pages(&w.agent, ids["05-long-lines.eml"]).len() >= 4);

    // No link or image was requested, and every message is still unread.
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the agent opened a link or an image"
    );
    let mut client = w.imap.client();
    client.command("SELECT INBOX").unwrap();
    let flags = client.command("UID FETCH 1:* (FLAGS)").unwrap().join("\n");
    assert!(
        !flags.contains("\\Seen"),
        "a message was marked read: {flags}"
    );
    client.logout();

    // Nothing of a body is stored or logged.
    w.agent.stop();
    for needle in BODY_ONLY {
        common::assert_not_in_store(&w.agent.dir, needle, needle);
        assert!(!w.agent.logs().contains(needle), "{needle} is in the log");
    }
    w.agent.spawn();

    // On the phone: one short line per message, and every page of every message within one
    // Signal message.
    let mut gw = Gateway::connect(&w.agent, OWNER);
    gw.received(
        OWNER,
        &w.agent
            .envelope("inbox", json!({"context": "notion"}))
            .to_json(),
    );
    let words = reply_starting(&mut gw, "✓ inbox");
    assert!(words.len() <= 2000, "{}", words.len());
    assert!(words.contains("code 483920"), "{words}");
    assert!(words.contains("⚠ unexpected sender"), "{words}");
    assert!(words.contains("⚠ confirm http://127.0.0.1"), "{words}");
    for id in ids.values() {
        let pages = w.agent.send("mail", json!({"id": id}))["pages"]
            .as_u64()
            .unwrap();
        for page in 1..=pages {
            gw.received(
                OWNER,
                &w.agent
                    .envelope("mail", json!({"id": id, "page": page}))
                    .to_json(),
            );
            let text = reply_starting(&mut gw, "✉ mail #");
            assert!(
                text.len() <= 2000,
                "mail {id} page {page}: {} bytes",
                text.len()
            );
        }
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[test]
fn only_mail_to_an_alias_can_be_read_and_bad_input_changes_nothing() {
    let w = world();
    // A message to the mailbox that no alias received: indexed by no context.
    w.imap.append(&common::dovecot::message(
        &[
            ("From", "friend@elsewhere.example"),
            ("To", "owner@real.example"),
            ("Subject", "private"),
        ],
        "personal mail",
    ));
    w.imap.append(&common::dovecot::addy_mail(
        &w.alias,
        "team@notion.so",
        "hello",
    ));
    w.agent.send("sweep", json!({}));
    let inbox = w.agent.send("inbox", json!({"context": "notion"}));
    assert_eq!(inbox["count"], 1, "{inbox}");
    assert_error(&w.agent.send("mail", json!({"id": 1})), "not_found");
    assert_error(&w.agent.send("mail", json!({"id": 0})), "invalid_args");
    assert_error(&w.agent.send("mail", json!({"id": "x"})), "invalid_args");
    assert_error(
        &w.agent.send("inbox", json!({"context": "nope"})),
        "not_found",
    );
    assert_error(
        &w.agent
            .send("inbox", json!({"context": "notion", "limit": 0})),
        "invalid_args",
    );
    let id = inbox["messages"][0]["id"].as_u64().unwrap();
    assert_error(
        &w.agent.send("mail", json!({"id": id, "page": 9})),
        "invalid_args",
    );
    let read = w.agent.send("mail", json!({"id": id}));
    assert_eq!(read["text"], "body", "{read}");
}

/// The Dovecot log's `Login:` lines.
fn logins(imap: &Dovecot) -> usize {
    imap.logs()
        .lines()
        .filter(|l| l.contains("Login: user="))
        .count()
}

#[test]
fn a_burst_of_reads_shares_one_session_and_survives_a_kill() {
    let mut w = world();
    let mail: Vec<String> = (0..30)
        .map(|i| {
            common::dovecot::addy_mail(
                &w.alias,
                "team@notion.so",
                &format!("Your code is {}", 100_000 + i),
            )
        })
        .collect();
    w.imap.append_many(&mail);
    w.agent.send("sweep", json!({}));
    let before = logins(&w.imap);
    // Forty reads at once, and the owner's `status` while they run.
    let agent = &w.agent;
    let replies: Vec<Value> = std::thread::scope(|s| {
        let readers: Vec<_> = (0..40u64)
            .map(|i| {
                s.spawn(move || {
                    // Each envelope different, or the replay cache refuses the copies.
                    if i.is_multiple_of(2) {
                        agent.send(
                            "inbox",
                            json!({"context": "notion", "limit": 5, "after": 1000 + i}),
                        )
                    } else if i < 30 {
                        agent.send("mail", json!({"id": 1 + i % 30}))
                    } else {
                        agent.send("mail", json!({"id": 1 + i % 30, "page": 1}))
                    }
                })
            })
            .collect();
        let status = agent.send("status", json!({"context": "notion"}));
        assert!(status.get("error").is_none(), "{status}");
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (i, r) in replies.iter().enumerate() {
        assert!(r.get("error").is_none(), "read {i}: {r}");
        if i.is_multiple_of(2) {
            assert_eq!(r["messages"][0]["codes"][0], "100029", "{r}");
        } else {
            assert_eq!(r["codes"][0], format!("{}", 100_000 + i % 30), "{r}");
        }
    }
    // One session served the burst (the harness's own logins aside).
    let agent_logins = logins(&w.imap) - before;
    assert!(agent_logins <= 2, "{agent_logins} logins for one burst");

    // Killed in the middle of a burst, it answers again after a restart.
    let socket = w.agent.socket();
    let pending: Vec<_> = (0..10)
        .map(|i| {
            let envelope = w
                .agent
                .envelope("inbox", json!({"context": "notion", "after": 2000 + i}));
            let socket = socket.clone();
            std::thread::spawn(move || common::raw_at(&socket, envelope.to_json().as_bytes()))
        })
        .collect();
    w.agent.kill();
    for p in pending {
        let _ = p.join();
    }
    w.agent.spawn();
    let after = w
        .agent
        .send("inbox", json!({"context": "notion", "limit": 1}));
    assert_eq!(after["messages"][0]["codes"][0], "100029", "{after}");
}
