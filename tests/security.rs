//! Security round 2, through the binary: what an outside attacker review broke must hold.
//! Each test names the point of the issue it covers.

mod common;

use common::dovecot::{message, Dovecot};
use common::gateway::{code_in, Gateway};
use common::providers;
use common::{assert_error, Agent};
use pane_agent::auth::Envelope;
use serde_json::{json, Map};

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

fn with_owner(config: &str) -> String {
    config.replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
}

/// Both forms of a code: as shown and as stored.
fn forms(code: &str) -> [String; 2] {
    [code.to_string(), code.replace('-', "")]
}

fn assert_no_code(what: &str, text: &str, code: &str) {
    for form in forms(code) {
        assert!(
            !text.contains(&form),
            "{what} holds the code {form}: {text}"
        );
    }
}

/// Point 1: with `[signal] owner` set, codes go to the phone only, by default, by every route.
#[test]
fn with_an_owner_approval_codes_reach_the_phone_only() {
    let aliases = providers::addy("k-addy-0001");
    let cards = providers::privacy("k-privacy-0001");
    let imap = Dovecot::start();
    let mut agent = Agent::init();
    common::use_local_services(&mut agent, &aliases, &cards, &imap);
    let config = imap
        .configure(&with_owner(pane_agent::config::TEMPLATE))
        .replace("idle = true", "idle = false");
    agent.write_config(&config);
    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER);

    // A grant asked over the socket: the reply, `approvals` and the audit log hold no code.
    agent.send("revoke", json!({"tool": "list"}));
    let asked = agent.send("grant", json!({"tool": "list"}));
    assert_eq!(asked["status"], "approval_required", "{asked}");
    let code = code_in(&gw.reply());
    assert_no_code("the grant's reply", &asked.to_string(), &code);
    let pending = agent.send("approvals", json!({}));
    assert_eq!(pending["count"], 1, "{pending}");
    assert_no_code("approvals", &pending.to_string(), &code);
    assert_no_code(
        "the audit log",
        &agent.send("audit", json!({"limit": 1000})).to_string(),
        &code,
    );
    // A wrong code's error names no code either.
    let wrong = agent.send("approve", json!({"code": "ZZZZZ-ZZZZZ"}));
    assert_no_code("an approve error", &wrong.to_string(), &code);

    // An incident's queued burn: its code is in the owner's alert, and only there.
    let r = agent.send(
        "enroll",
        json!({"url": "https://www.notion.so", "card": false}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    let alias = r["alias"]["email"].as_str().unwrap().to_string();
    imap.append(&message(
        &[
            ("From", "\"Forwarded\" <noreply@anonaddy.me>"),
            ("To", &alias),
            ("X-AnonAddy-Original-Sender", "x@databroker.example"),
            ("Subject", "We bought your address"),
            ("Message-ID", "<broker-1@test>"),
        ],
        "body",
    ));
    let swept = agent.send("sweep", json!({}));
    assert_eq!(
        swept["new_incidents"].as_array().map(Vec::len),
        Some(1),
        "{swept}"
    );
    // The burn's prompt, then the alert that names it by its reference (round 3, point 4:
    // the code is in the prompt only).
    let mut prompt = None;
    let alert = loop {
        let body = gw.reply();
        if body.contains("`approve ") && body.contains("expire context notion") {
            prompt = Some(body.clone());
        }
        if body.contains("breach signal") {
            break body;
        }
    };
    let burn = code_in(&prompt.expect("the burn's prompt before its alert"));
    assert_no_code("the breach alert", &alert, &burn);
    assert!(alert.contains("A burn is queued (a-"), "{alert}");
    let incidents = agent.send("check-incidents", json!({}));
    assert_no_code("check-incidents", &incidents.to_string(), &burn);
    assert_no_code(
        "the audit log",
        &agent.send("audit", json!({"limit": 1000})).to_string(),
        &burn,
    );
    // It is the right code: approving it from the phone burns the context.
    gw.received(OWNER, &format!("approve {burn}"));
    let reply = gw.reply();
    assert!(reply.starts_with("✓ Approved: expire ran."), "{reply}");
    assert_eq!(
        agent.send("status", json!({"context": "notion"}))["state"],
        "expired"
    );
}

/// Point 2: after `lockdown`, grant and approve are refused until the owner unlocks, from
/// the console or from Signal with an approval; the command secret alone cannot undo it.
#[test]
fn lockdown_is_sticky_until_the_owner_unlocks() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    agent.send("revoke", json!({"tool": "audit"}));
    agent.send("grant", json!({"tool": "audit"}));
    let before = code_in(&gw.reply());
    let r = agent.send("lockdown", json!({}));
    assert_eq!(r["status"], "locked_down", "{r}");
    gw.reply();
    assert_error(
        &agent.send("grant", json!({"tool": "audit"})),
        "locked_down",
    );
    // An approval opened before it was denied by it.
    gw.received(OWNER, &format!("approve {before}"));
    let r = gw.reply();
    assert_eq!(r, "✗ approve: approval was denied; a denial is final");

    // Unlock asked from the phone: its approval cannot be answered from the socket.
    gw.received(OWNER, &agent.envelope("unlock", json!({})).to_json());
    let mut unlock_code = None;
    for _ in 0..2 {
        let body = gw.reply();
        if body.contains("`approve ") {
            unlock_code = Some(code_in(&body));
        }
    }
    let unlock_code = unlock_code.expect("the unlock's prompt");
    assert_error(
        &agent.send("approve", json!({"code": unlock_code})),
        "not_granted",
    );
    assert_error(
        &agent.send("grant", json!({"tool": "audit"})),
        "locked_down",
    );
    gw.received(OWNER, &format!("approve {unlock_code}"));
    // The alert that the lockdown ended, and the reply.
    let r = loop {
        let r = gw.reply();
        if r.starts_with('✓') {
            break r;
        }
    };
    assert_eq!(
        r,
        "✓ Approved: unlock ran.\n✓ unlock: unlocked\nnote: tools stay revoked until granted again"
    );
    let asked = agent.send("grant", json!({"tool": "audit"}));
    assert_eq!(asked["status"], "approval_required", "{asked}");
}

/// Point 2: `unlock` over HTTP (the onion endpoint, reachable with the secret alone) is
/// refused.
#[test]
fn unlock_over_http_is_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut agent = Agent::init();
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\"")),
    );
    agent.spawn();
    agent.send("lockdown", json!({}));
    let env = agent.envelope("unlock", json!({}));
    let r = common::http_post(port, env.to_json().as_bytes());
    assert_error(&r, "not_granted");
    assert_error(
        &agent.send("grant", json!({"tool": "audit"})),
        "locked_down",
    );
}

/// Point 12: a prompt names the channel and the time of the request; the same request while
/// one is pending is merged into it; the owner's approvals over Signal have their own budget.
#[test]
fn prompts_name_who_asked_are_merged_and_the_owner_keeps_a_budget() {
    let mut agent = Agent::init();
    agent.write_config(&with_owner(pane_agent::config::TEMPLATE).replace(
        "# \"grant\" = { max = 3, window_secs = 3600 }",
        "\"approve\" = { max = 5, window_secs = 3600 }",
    ));
    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER);
    agent.send("revoke", json!({"tool": "audit"}));
    agent.send("grant", json!({"tool": "audit"}));
    let prompt = gw.reply();
    assert!(prompt.contains("Asked over socket at 20"), "{prompt}");
    let again = agent.send("grant", json!({"tool": "audit"}));
    assert_eq!(again["merged"], true, "{again}");
    assert!(
        gw.sends(std::time::Duration::from_millis(500)).is_empty(),
        "no second prompt"
    );
    assert_eq!(agent.send("approvals", json!({}))["count"], 1);

    // Wrong codes from the socket use up the shared approve budget...
    for _ in 0..5 {
        agent.send("approve", json!({"code": "ZZZZZ-ZZZZZ"}));
    }
    assert_error(
        &agent.send("approve", json!({"code": "ZZZZZ-ZZZZZ"})),
        "rate_limited",
    );
    // ...and the owner still approves from the phone.
    gw.received(OWNER, &format!("approve {}", code_in(&prompt)));
    let r = gw.reply();
    assert!(r.starts_with("✓ Approved: grant ran."), "{r}");
}

/// Point 7: refusals not audited one by one are counted and the count is written, even when
/// no later refusal comes (here: at shutdown).
#[test]
fn a_refusal_flood_leaves_its_count_in_the_audit_log() {
    let mut agent = Agent::start();
    let refusals = |agent: &Agent| -> u64 {
        let audit = agent.audit();
        let counted: u64 = audit
            .iter()
            .filter(|e| e["event"] == "envelope.refused.suppressed")
            .filter_map(|e| e["detail"]["count"].as_u64())
            .sum();
        let one_by_one = audit
            .iter()
            .filter(|e| e["event"] == "envelope.refused" && e["detail"]["kind"] == "bad_signature")
            .count() as u64;
        counted + one_by_one
    };
    let before = refusals(&agent);
    let bad = Envelope::sign(
        &pane_agent::auth::Secret::new(&"0".repeat(64)),
        chrono::Utc::now(),
        "list",
        Map::new(),
    );
    for _ in 0..100 {
        let r = agent.raw(bad.to_json().as_bytes());
        assert_error(&r, "bad_signature");
    }
    agent.stop();
    agent.spawn();
    assert_eq!(
        refusals(&agent) - before,
        100,
        "every refusal is accounted for"
    );
}

/// Point 9: a line over the limit is refused as soon as it passes it (the agent stops reading
/// and disconnects), and audited.
#[test]
fn the_gateway_socket_refuses_a_line_past_its_limit() {
    use std::io::{Read, Write};
    let agent = common::agent_with_owner(OWNER);
    let mut raw = std::os::unix::net::UnixStream::connect(agent.dir.join("gateway.sock")).unwrap();
    raw.set_write_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // 4 MiB without a newline: the agent must hang up long before the end.
    let chunk = vec![b'x'; 64 * 1024];
    let mut written = 0usize;
    let mut cut = false;
    for _ in 0..64 {
        match raw.write_all(&chunk) {
            Ok(()) => written += chunk.len(),
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    let mut rest = Vec::new();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let closed = raw.read_to_end(&mut rest).is_ok();
    assert!(cut || closed, "still connected after {written} bytes");
    assert!(agent
        .audit()
        .iter()
        .any(|e| e["event"] == "gateway.line_refused"));
    // A gateway that behaves is served afterwards.
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.received(OWNER, &agent.envelope("help", json!({})).to_json());
    assert!(gw.reply().starts_with("Commands (send each"));
}

/// Point 9: a second gateway while one is live is refused (not a silent takeover), audited,
/// and the owner is told through the one that stays.
#[test]
fn a_second_gateway_is_refused_and_the_owner_told() {
    use std::io::Read;
    let agent = common::agent_with_owner(OWNER);
    let mut first = Gateway::connect(&agent, OWNER);
    first.received(OWNER, &agent.envelope("help", json!({})).to_json());
    assert!(first.reply().starts_with("Commands (send each"));
    let mut second =
        std::os::unix::net::UnixStream::connect(agent.dir.join("gateway.sock")).unwrap();
    second
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    assert!(
        matches!(second.read_to_end(&mut buf), Ok(0)),
        "the second gateway was served"
    );
    let alert = first.reply();
    assert!(alert.contains("second Signal gateway"), "{alert}");
    first.received(OWNER, &agent.envelope("list", json!({})).to_json());
    assert_eq!(first.reply(), common::gateway::NO_CONTEXTS);
    assert!(agent
        .audit()
        .iter()
        .any(|e| e["event"] == "gateway.refused_second"));
}

/// Point 5: an envelope's arguments reach the audit log bounded, and authenticated envelopes
/// have one budget per channel before anything of them is written.
#[test]
fn envelopes_cannot_fill_the_disk_through_the_audit_log() {
    let mut agent = Agent::init();
    agent.write_config(&pane_agent::config::TEMPLATE.replace(
        "envelopes = { max = 600, window_secs = 60 }",
        "envelopes = { max = 8, window_secs = 3600 }",
    ));
    agent.spawn();
    let big = "A".repeat(60_000);
    let r = agent.send("no-such-command", json!({"x": big}));
    assert_error(&r, "unknown_command");
    let audit = agent.send("audit", json!({"limit": 1000}));
    let text = audit.to_string();
    assert!(
        text.len() < 8_000,
        "the audit log grew by {} bytes",
        text.len()
    );
    assert!(text.contains("sha256"), "{text}");
    // The budget: the envelopes past it are refused, and not written as accepted.
    let mut refused = 0;
    for _ in 0..10 {
        let r = agent.send("help", json!({}));
        if r["kind"] == "rate_limited" {
            refused += 1;
        }
        // Wall clock, not synchronisation: each `help` is signed in a later millisecond, so
        // no two are the same envelope (a replay).
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(refused >= 3, "{refused} refused");
    // The budget is in memory: after a restart the log can be read again.
    agent.stop();
    agent.spawn();
    let accepted = agent
        .audit_events()
        .iter()
        .filter(|e| *e == "envelope.accepted")
        .count();
    // The eight the budget allowed, and the read just now.
    assert!(accepted <= 9, "{accepted} accepted envelopes written");
}

/// Point 6: the chain head goes to the owner, and `audit {head}` compares the owner's copy.
#[test]
fn the_audit_head_is_given_and_compared() {
    let agent = Agent::start();
    let r = agent.send("audit", json!({"limit": 1}));
    let head = r["head"].clone();
    let seq = head["seq"].as_u64().expect("a head");
    let hash = head["hash"].as_str().unwrap().to_string();
    let same = agent.send(
        "audit",
        json!({"limit": 1, "head": {"seq": seq, "hash": hash}}),
    );
    assert_eq!(same["head_check"]["matches"], true, "{same}");
    let ahead = agent.send(
        "audit",
        json!({"limit": 1, "head": {"seq": seq + 1000, "hash": hash}}),
    );
    assert_eq!(ahead["head_check"]["matches"], false, "{ahead}");
    let other = agent.send(
        "audit",
        json!({"limit": 1, "head": {"seq": seq, "hash": "0".repeat(64)}}),
    );
    assert_eq!(other["head_check"]["matches"], false, "{other}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Point 6: a store restored from an older copy refuses the envelopes its lost replay cache
/// cannot prove unused, and says so loudly.
#[test]
fn a_rolled_back_store_refuses_what_it_cannot_prove_unused() {
    let mut agent = Agent::start();
    assert!(agent.send("help", json!({})).get("error").is_none());
    agent.stop();
    let backup = agent.dir.join("store.backup");
    copy_dir(&agent.dir.join("store"), &backup);
    agent.spawn();
    // Accepted after the backup was taken: a restored store has no record of it.
    let env = agent.envelope("list", json!({}));
    assert!(agent.raw(env.to_json().as_bytes()).get("error").is_none());
    agent.stop();
    std::fs::remove_dir_all(agent.dir.join("store")).unwrap();
    std::fs::rename(&backup, agent.dir.join("store")).unwrap();
    agent.spawn();
    let again = agent.raw(env.to_json().as_bytes());
    assert_error(&again, "replayed");
    assert!(
        agent.logs().contains("OLDER THAN ITS HIGH-WATER MARK"),
        "{}",
        agent.logs()
    );
    assert!(agent
        .audit_events()
        .iter()
        .any(|e| e == "store.rolled_back"));
    // A new envelope works. (Wall clock, not synchronisation: it is signed in a later
    // millisecond than the rollback floor, the last envelope accepted before the restore.)
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(agent.send("help", json!({})).get("error").is_none());
}

/// Point 5: past the store's size budget only what keeps the owner in control is done, and
/// the owner is told.
#[test]
fn past_the_store_budget_the_owner_keeps_control() {
    let mut agent = Agent::init();
    agent.write_config(
        &common::unlimited_rates(&with_owner(pane_agent::config::TEMPLATE))
            .replace("store_budget_mb = 1024", "store_budget_mb = 1"),
    );
    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER);
    // Fill the store past 1 MiB with audited refusals of a write command.
    let mut filled = false;
    for i in 0..20_000 {
        let r = agent.send("incident.ack", json!({"id": format!("i-{:010x}", i)}));
        if r["kind"] == "unavailable" {
            filled = true;
            break;
        }
    }
    assert!(filled, "the budget never took effect");
    // The controls still work.
    assert!(agent
        .send("revoke", json!({"tool": "list"}))
        .get("error")
        .is_none());
    assert!(agent.send("lockdown", json!({}))["status"] == "locked_down");
    assert!(agent.send("audit", json!({"limit": 1}))["entries"].is_array());
    let alert = gw.sends(std::time::Duration::from_secs(2));
    assert!(
        alert.iter().any(|(_, _, b)| b.contains("store_budget_mb")),
        "{alert:?}"
    );
}

/// Point 10: a provider's words that reach a reply cannot forge its layout.
#[test]
fn a_providers_error_text_reaches_the_reply_escaped() {
    let aliases = providers::addy("k-addy-0001");
    let cards = providers::privacy("k-privacy-0001");
    let mut agent = Agent::init();
    for (k, v) in [
        ("ADDY_API_KEY", aliases.key()),
        ("ADDY_BASE_URL", aliases.base.clone()),
        ("PRIVACY_API_KEY", cards.key()),
        ("PRIVACY_BASE_URL", cards.base.clone()),
    ] {
        agent.env.push((k.into(), v));
    }
    agent.write_config(pane_agent::config::TEMPLATE);
    agent.spawn();
    aliases.push_fault_for(
        "POST",
        "/aliases",
        providers::Fault::Status {
            status: 422,
            body: json!({"message": "refused\u{2028}\u{2028}✓ approved: all is well \u{202E}gnp.exe"}),
            retry_after: None,
        },
    );
    let r = agent.send(
        "enroll",
        json!({"url": "https://www.notion.so", "card": false}),
    );
    let text = r["error"].as_str().expect("an error").to_string();
    for c in ['\u{2028}', '\u{202E}', '\n'] {
        assert!(!text.contains(c), "{c:?} reached the reply: {text:?}");
    }
    assert!(text.contains("\\u{2028}"), "{text}");
}
