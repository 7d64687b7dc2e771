//! The Signal channel through the real binary: a test gateway speaking the relay protocol on
//! `gateway.sock`, and the crate's own relay driving a test double of the Signal device.

mod common;

use common::gateway::{code_in, Gateway, NO_CONTEXTS};

use common::Agent;
use pane_agent::gateway::protocol::{encode_line, GatewayEvent};
use pane_agent::outbox::MAX_MESSAGE_BYTES;
use pane_agent::words::SIGNAL_TEXT_LIMIT;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";
const STRANGER: &str = "9f0e1d2c-3b4a-4596-8877-665544332211";

/// An agent with an owner, its aliases at a local addy.io (not yet spawned).
fn agent_with_owner_and_addy() -> (common::providers::MockServer, Agent) {
    let aliases = common::providers::addy("addy-test-key-0001");
    let mut agent = Agent::init();
    agent
        .env
        .push(("ADDY_API_KEY".into(), "addy-test-key-0001".into()));
    agent
        .env
        .push(("ADDY_BASE_URL".into(), aliases.base.clone()));
    agent.write_config(
        &pane_agent::config::TEMPLATE.replace("owner = \"\"", &format!("owner = \"{OWNER}\"")),
    );
    (aliases, agent)
}

/// Waits until the core has recorded the gateway's `sent` for `id` (audited as
/// `outbox.delivered`).
fn wait_for_delivered(agent: &Agent, id: &str) {
    common::wait_for_audit(agent, "outbox.delivered", |d| d["id"] == id);
}

#[test]
fn owner_commands_are_answered_and_strangers_are_not() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.received(OWNER, &agent.envelope("list", json!({})).to_json());
    assert_eq!(gw.reply(), NO_CONTEXTS);

    // A stranger with a perfectly signed envelope: no reply, no action.
    gw.received(STRANGER, &agent.envelope("lockdown", json!({})).to_json());
    gw.received(STRANGER, "approve ABCDE-FGHJK");
    assert!(
        gw.sends(Duration::from_millis(800)).is_empty(),
        "strangers get no reply"
    );
    let help = agent.send("help", json!({}));
    assert!(
        help["commands"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["granted"] == true),
        "no lockdown happened"
    );

    // The owner with a bad signature: refused, and told so.
    let mut bad: Value =
        serde_json::from_str(&agent.envelope("list", json!({})).to_json()).unwrap();
    bad["cmd"] = json!("lockdown");
    gw.received(OWNER, &bad.to_string());
    let reply = gw.reply();
    assert!(reply.starts_with("✗ refused: bad signature"), "{reply}");

    // Anything else gets a short note on how to sign.
    gw.received(OWNER, "hello?");
    assert!(gw.reply().contains("signed command"));

    // doctor sees the gateway connected (pane-signal's store dir marks it registered).
    std::fs::create_dir_all(agent.dir.join("signal")).unwrap();
    let out = agent.cli(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("registered and connected"), "{text}");
    drop(gw);
    common::wait_for("doctor to see the gateway gone", || {
        let text = String::from_utf8_lossy(&agent.cli(&["doctor"]).stdout).into_owned();
        text.contains("not connected").then_some(())
    });
}

#[test]
fn long_replies_are_shortened_to_fit_a_signal_message() {
    let agent = common::agent_with_owner(OWNER);
    for _ in 0..60 {
        agent.send("help", json!({}));
    }
    let mut gw = Gateway::connect(&agent, OWNER);
    // The whole reply over the socket is far longer than a Signal message.
    let whole = agent.send("audit", json!({"limit": 200})).to_string();
    assert!(whole.len() > MAX_MESSAGE_BYTES, "{}", whole.len());
    gw.received(
        OWNER,
        &agent.envelope("audit", json!({"limit": 200})).to_json(),
    );
    let reply = gw.reply();
    assert!(reply.len() <= SIGNAL_TEXT_LIMIT, "{}", reply.len());
    assert!(reply.starts_with("✓ audit\ncount: "), "{reply}");
    assert!(reply.ends_with("for all of it."), "{reply}");
}

#[test]
fn plain_approve_and_deny_settle_pending_approvals() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    agent.send("revoke", json!({"tool": "list"}));
    let asked = agent.send("grant", json!({"tool": "list"}));
    // With an owner set, the code goes to the phone only: the prompt carries it.
    assert!(asked.get("code").is_none(), "{asked}");
    let code = code_in(&gw.reply());
    gw.received(OWNER, &format!("Approve {}", code.to_lowercase()));
    let reply = gw.reply();
    assert!(reply.starts_with("✓ Approved: grant ran."), "{reply}");
    assert!(agent.send("list", json!({})).get("error").is_none());

    agent.send("grant", json!({"tool": "audit"}));
    let code = code_in(&gw.reply());
    gw.received(OWNER, &format!("deny {code}"));
    let reply = gw.reply();
    assert!(reply.starts_with("✓ Denied: grant will not run"), "{reply}");
}

#[test]
fn a_changed_safety_number_stops_signal_commands_until_trusted() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.event(&GatewayEvent::IdentityChanged {
        sender: OWNER.into(),
    });
    gw.received(OWNER, &agent.envelope("lockdown", json!({})).to_json());
    // Fail secure: not even the "paused" reply goes to the changed identity before `trust`.
    assert!(gw.sends(Duration::from_secs(1)).is_empty());
    assert!(agent.send("help", json!({}))["commands"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["granted"] == true));
    assert!(
        agent.logs().contains("safety number changed"),
        "the operator is told"
    );
    // trust is console-only: over Signal it is refused even once unblocked.
    let out = agent.cli(&["trust"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gw.reply().contains("paused"), "what waited is delivered");
    gw.received(OWNER, &agent.envelope("list", json!({})).to_json());
    assert_eq!(gw.reply(), NO_CONTEXTS);
    gw.received(OWNER, &agent.envelope("trust", json!({})).to_json());
    let reply = gw.reply();
    assert!(reply.starts_with("✗ trust: "), "{reply}");
}

#[test]
fn queued_messages_are_delivered_once_across_disconnects_and_core_crashes() {
    let mut agent = common::agent_with_owner(OWNER);
    // Three prompts queued with no gateway connected.
    for tool in ["list", "status", "audit"] {
        agent.send("grant", json!({"tool": tool}));
    }
    let mut gw = Gateway::connect(&agent, OWNER);
    let first = gw.sends(Duration::from_secs(2));
    assert_eq!(first.len(), 3, "{first:?}");
    // Acknowledge one, then drop the connection.
    gw.event(&GatewayEvent::Sent {
        id: first[0].0.clone(),
        timestamp: None,
    });
    wait_for_delivered(&agent, &first[0].0);
    drop(gw);
    // Reconnected: the two unacknowledged ones come again, the acknowledged one never.
    let mut gw = Gateway::connect(&agent, OWNER);
    let again = gw.sends(Duration::from_secs(2));
    let ids: Vec<&String> = again.iter().map(|s| &s.0).collect();
    assert_eq!(ids, [&first[1].0, &first[2].0]);
    gw.event(&GatewayEvent::Sent {
        id: first[1].0.clone(),
        timestamp: None,
    });
    wait_for_delivered(&agent, &first[1].0);
    drop(gw);
    // The core is killed with one message still unacknowledged.
    agent.kill();
    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER);
    let after = gw.sends(Duration::from_secs(2));
    assert_eq!(
        after.iter().map(|s| &s.0).collect::<Vec<_>>(),
        [&first[2].0]
    );
    gw.event(&GatewayEvent::Sent {
        id: first[2].0.clone(),
        timestamp: None,
    });
    assert!(
        gw.sends(Duration::from_secs(1)).is_empty(),
        "acknowledged: never sent again"
    );
}

#[test]
fn a_command_cut_off_by_a_crash_is_answered_after_the_restart() {
    let (aliases, mut agent) = agent_with_owner_and_addy();
    agent.spawn();
    // The alias is made at once but answered only after 5 s: the kill comes in between.
    aliases.push_fault_for(
        "POST",
        "/api/v1/aliases",
        common::providers::Fault::Delay(Duration::from_secs(5)),
    );
    let mut gw = Gateway::connect(&agent, OWNER);
    let enroll = agent.envelope(
        "enroll",
        json!({"url": "https://www.shop.example", "alias": "shop", "card": false, "identity": "none"}),
    );
    gw.received(OWNER, &enroll.to_json());
    let deadline = Instant::now() + Duration::from_secs(5);
    while aliases.aliases().is_empty() {
        assert!(Instant::now() < deadline, "the alias was never asked for");
        // The poll interval of this bounded wait.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        gw.sends(Duration::from_millis(200)).is_empty(),
        "no reply yet"
    );
    drop(gw);
    agent.kill();
    agent.spawn();

    // One reply, saying what happened; the command's work is there, made once.
    let mut gw = Gateway::connect(&agent, OWNER);
    let reply = gw.reply();
    assert!(
        reply.contains("`enroll` command was accepted, but the agent stopped before it answered"),
        "{reply}"
    );
    assert!(gw.sends(Duration::from_secs(1)).is_empty(), "answered once");
    assert_eq!(aliases.aliases().len(), 1);
    let status = agent.send("status", json!({"context": "shop"}));
    assert_eq!(
        status["alias"]["email"],
        aliases.aliases()[0]["email"],
        "{status}"
    );
    assert!(agent.audit_events().iter().any(|e| e == "signal.cut_off"));
    // The same envelope again is a replay, as it should be.
    gw.received(OWNER, &enroll.to_json());
    let again = gw.reply();
    assert!(again.starts_with("✗ refused: replayed"), "{again}");
    // Answered messages are not answered again at the next start (once the core has taken
    // the gateway's `sent` for the last one: before that, sending it again is right).
    let last = gw.last_id.clone().expect("the replay refusal was sent");
    common::wait_for_audit(&agent, "outbox.delivered", |d| {
        d["id"].as_str() == Some(last.as_str())
    });
    drop(gw);
    agent.restart();
    let mut gw = Gateway::connect(&agent, OWNER);
    assert!(gw.sends(Duration::from_secs(1)).is_empty());
}

#[test]
fn an_owner_message_taken_in_but_never_handled_is_handled_at_start() {
    let mut agent = common::agent_with_owner(OWNER);
    agent.stop();
    // As a crash right after the message was recorded would leave it.
    let list = agent.envelope("list", json!({})).to_json();
    {
        let store = pane_agent::store::Store::open(&agent.dir.join("store")).unwrap();
        let key = store.next_id().unwrap().to_be_bytes();
        store
            .table(pane_agent::store::TableId::SignalInbox)
            .insert(key, list.as_bytes())
            .unwrap();
        store.flush_blocking().unwrap();
    }
    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER);
    assert_eq!(gw.reply(), NO_CONTEXTS);
    assert!(gw.sends(Duration::from_secs(1)).is_empty(), "answered once");
    drop(gw);
    agent.restart();
    let mut gw = Gateway::connect(&agent, OWNER);
    assert!(gw.sends(Duration::from_secs(1)).is_empty(), "not again");
}

/// A gateway from before the acknowledged relay writes `received` without `id` and
/// `expire_timer` (and reads `sent` without a timestamp): the daemon still answers it.
#[test]
fn the_daemon_answers_an_older_gateways_line() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    let line = json!({
        "type": "received",
        "sender": OWNER,
        "device": 1,
        "timestamp": 5,
        "body": agent.envelope("list", json!({})).to_json(),
        "sealed": true,
    });
    gw.write_raw(format!("{line}\n").as_bytes());
    assert_eq!(gw.reply(), NO_CONTEXTS);
}

#[test]
fn a_flood_of_strangers_does_not_stop_the_owner_or_fill_the_audit() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    let mut burst = String::new();
    for i in 0..10_000 {
        let e = GatewayEvent::Received {
            id: None,
            expire_timer: 0,
            sender: STRANGER.into(),
            device: 1,
            timestamp: i,
            body: "approve ABCDE-FGHJK".into(),
            sealed: false,
        };
        burst.push_str(&encode_line(&e).unwrap());
    }
    gw.write_raw(burst.as_bytes());
    gw.received(OWNER, &agent.envelope("list", json!({})).to_json());
    assert_eq!(gw.reply(), NO_CONTEXTS);
    let refused = agent
        .audit()
        .iter()
        .filter(|e| e["event"] == "envelope.refused")
        .count();
    assert!(
        refused <= 31,
        "the flood is counted, not written out: {refused}"
    );
}

#[test]
fn the_sent_log_stops_a_second_delivery_after_a_gateway_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sent-ids");
    use pane_agent::gateway::sent_log::{content_digest, Seen, SentLog};
    let digest = content_digest(OWNER, 1_700, "reply");
    let mut log = SentLog::open(&path).unwrap();
    assert_eq!(log.check("7", &digest), Seen::New);
    log.record("7", &digest).unwrap();
    let log = SentLog::open(&path).unwrap();
    assert_eq!(
        log.check("7", &digest),
        Seen::Sent,
        "remembered across a restart"
    );
}

#[test]
fn codes_over_signal_only_make_the_phone_a_second_factor() {
    let mut agent = Agent::init();
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
            .replace(
                "codes_over_signal_only = false",
                "codes_over_signal_only = true",
            ),
    );
    agent.spawn();
    agent.send("revoke", json!({"tool": "list"}));
    // Asked on the console: no code in the reply, in `approvals`, or in the audit log.
    let asked = agent.send("grant", json!({"tool": "list"}));
    assert_eq!(asked["status"], "approval_required");
    assert!(asked.get("code").is_none(), "{asked}");
    let mut gw = Gateway::connect(&agent, OWNER);
    let prompt = gw.reply();
    let code = prompt
        .split("approve ")
        .nth(1)
        .unwrap()
        .split('`')
        .next()
        .unwrap()
        .to_string();
    let bare = code.replace('-', "");
    let everywhere = format!(
        "{asked}{}{}",
        agent.send("approvals", json!({})),
        serde_json::Value::Array(agent.audit())
    );
    assert!(
        !everywhere.contains(&code) && !everywhere.contains(&bare),
        "the code leaked: {everywhere}"
    );
    // Only the phone has it: the owner approves over Signal.
    gw.received(OWNER, &format!("approve {code}"));
    let reply = gw.reply();
    assert!(reply.starts_with("✓ Approved: grant ran."), "{reply}");
    assert!(agent.send("list", json!({})).get("error").is_none());
}

/// The acknowledged relay: an owner's message is acknowledged once recorded; the same line
/// sent again (after a reconnect) is acknowledged again and acted on once.
#[test]
fn a_message_is_acknowledged_once_recorded_and_acted_on_once() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    let env = agent.envelope("list", json!({})).to_json();
    let id = format!("{OWNER}.1.1700000000001");
    gw.received_as(&id, OWNER, &env, 0);
    gw.wait_for_acks(&id, 1);
    assert_eq!(gw.reply(), NO_CONTEXTS);
    drop(gw);
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.received_as(&id, OWNER, &env, 0);
    gw.wait_for_acks(&id, 1);
    assert!(
        gw.sends(Duration::from_secs(1)).is_empty(),
        "acted on twice (a replayed reply)"
    );
}

/// Stable sends: a retried message carries the timestamp it was given when queued.
#[test]
fn a_retried_send_carries_the_same_timestamp() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    agent.send("lockdown", json!({}));
    let first = gw.sends(Duration::from_secs(2));
    let (id, _, _) = first.first().cloned().expect("the lockdown alert");
    let (ts, _) = gw.meta_of(&id);
    assert!(ts > 1_600_000_000_000, "{ts}");
    gw.event(&GatewayEvent::SendFailed {
        id: id.clone(),
        error: "network".into(),
        retryable: true,
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let again = loop {
        let sends = gw.sends(Duration::from_millis(300));
        if let Some(s) = sends.into_iter().find(|s| s.0 == id) {
            break s;
        }
        assert!(Instant::now() < deadline, "never sent again");
    };
    assert_eq!(gw.meta_of(&again.0).0, ts, "a retry is the same message");
}

/// Fail secure: after the owner's identity changed, nothing is sent to them until `trust`;
/// then what waited is delivered once.
#[test]
fn nothing_goes_to_a_changed_identity_until_trusted() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.event(&GatewayEvent::IdentityChanged {
        sender: OWNER.into(),
    });
    common::wait_for_audit(&agent, "signal.identity_changed", |_| true);
    agent.send("lockdown", json!({}));
    assert!(
        gw.sends(Duration::from_secs(2)).is_empty(),
        "a message went to the changed identity"
    );
    let out = agent.cli(&["trust"]);
    assert!(out.status.success());
    let after = gw.sends(Duration::from_secs(3));
    let lockdowns = after.iter().filter(|s| s.2.contains("LOCKDOWN")).count();
    assert_eq!(lockdowns, 1, "{after:?}");
}

/// Reactions: 👍 on a prompt approves it, 👎 denies it; any other emoji, a removed reaction,
/// or a reaction to another message does nothing.
#[test]
fn reactions_on_a_prompt_approve_and_deny_it() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    agent.send("revoke", json!({"tool": "list"}));
    agent.send("revoke", json!({"tool": "audit"}));

    agent.send("grant", json!({"tool": "list"}));
    let prompt = gw.reply();
    assert!(prompt.contains("react 👍 or 👎"), "{prompt}");
    let (ts, _) = gw.meta_of(gw.last_id.as_ref().unwrap());
    gw.react(&format!("{OWNER}.1.11"), OWNER, "❤", ts, false);
    gw.react(&format!("{OWNER}.1.12"), OWNER, "👍", ts, true);
    gw.react(&format!("{OWNER}.1.13"), OWNER, "👍", ts + 1, false);
    gw.wait_for_acks(&format!("{OWNER}.1.13"), 1);
    assert_eq!(agent.send("approvals", json!({}))["count"], 1);
    gw.react(&format!("{OWNER}.1.14"), OWNER, "👍🏽", ts, false);
    let r = loop {
        let r = gw.reply();
        if r.starts_with('✓') {
            break r;
        }
    };
    assert!(r.starts_with("✓ Approved: grant ran."), "{r}");
    assert!(agent.send("list", json!({})).get("error").is_none());

    agent.send("grant", json!({"tool": "audit"}));
    gw.reply();
    let (ts, _) = gw.meta_of(gw.last_id.as_ref().unwrap());
    gw.react(&format!("{OWNER}.1.15"), OWNER, "👎", ts, false);
    let r = loop {
        let r = gw.reply();
        if r.starts_with('✓') {
            break r;
        }
    };
    assert!(r.starts_with("✓ Denied: grant will not run"), "{r}");
    assert_eq!(agent.send("approvals", json!({}))["count"], 0);
}

/// Disappearing messages: the owner's timer goes on replies, prompts and alerts.
#[test]
fn the_owners_disappearing_timer_is_carried_on_replies_and_alerts() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    let env = agent.envelope("help", json!({})).to_json();
    gw.received_as(&format!("{OWNER}.1.21"), OWNER, &env, 3600);
    gw.reply();
    assert_eq!(gw.meta_of(gw.last_id.as_ref().unwrap()).1, Some(3600));
    agent.send("lockdown", json!({}));
    let alert = gw.reply();
    assert!(alert.contains("LOCKDOWN"));
    assert_eq!(gw.meta_of(gw.last_id.as_ref().unwrap()).1, Some(3600));
}

/// Replies in words: every command the owner sends over Signal is answered in short text
/// that no client would take for JSON (the test gateway checks every reply it reads), and it
/// names what the JSON reply over the socket names.
#[test]
fn every_command_is_answered_in_words_that_name_what_the_json_would() {
    let (_aliases, mut agent) = agent_with_owner_and_addy();
    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER);
    for site in ["notion", "shop"] {
        let reply = ask(
            &mut gw,
            &agent,
            "enroll",
            json!({"url": format!("https://www.{site}.example"), "alias": site, "card": false, "identity": "none"}),
        );
        assert!(reply.contains(site), "{reply}");
    }
    let json_list = agent.send("list", json!({}));
    let email = json_list["contexts"][0]["alias"]["email"]
        .as_str()
        .unwrap()
        .to_string();
    let list = ask(&mut gw, &agent, "list", json!({}));
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(list.starts_with("2 contexts:\n• notion · "), "{list}");
    assert!(list.contains(&email), "{list}");
    assert_eq!(
        ask(&mut gw, &agent, "list", json!({"after": "notion"}))
            .lines()
            .count(),
        2,
        "after: the next ones"
    );

    let status = ask(&mut gw, &agent, "status", json!({"context": "notion"}));
    assert!(status.starts_with("notion (active)\n"), "{status}");
    assert!(
        status.contains(&email) && status.contains("site: https://www.notion.example"),
        "{status}"
    );

    let help = ask(&mut gw, &agent, "help", json!({}));
    let tools = agent.send("help", json!({}))["commands"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        help.lines().filter(|l| l.starts_with("• ")).count(),
        tools,
        "{help}"
    );
    assert!(
        help.contains("\n• status {context} (read)")
            || help.contains("\n• status {context} — show one context (read)"),
        "{help}"
    );

    let missing = ask(&mut gw, &agent, "status", json!({"context": "nope"}));
    assert_eq!(missing, "✗ status: context not found: nope");

    let audit = ask(&mut gw, &agent, "audit", json!({"limit": 3}));
    assert!(
        audit.starts_with("✓ audit\ncount: 3\nentries (3):\n• "),
        "{audit}"
    );
    let approvals = ask(&mut gw, &agent, "approvals", json!({}));
    assert!(
        approvals.starts_with("✓ approvals\ncount: 0"),
        "{approvals}"
    );
    let incidents = ask(&mut gw, &agent, "check-incidents", json!({}));
    assert_eq!(incidents, "✓ No incidents.");

    // An external command asks the owner: its prompt, in words, with the code.
    let asked = ask(&mut gw, &agent, "expire", json!({"context": "shop"}));
    assert!(asked.starts_with("Approval needed (a-"), "{asked}");
    let waiting = gw.reply();
    assert!(
        waiting.starts_with("⏳ expire: waiting for your approval"),
        "{waiting}"
    );
    let prompt = gw_prompt(&asked);
    let approved = ask(&mut gw, &agent, "approve", json!({"code": prompt}));
    assert!(
        approved.starts_with("✓ Approved: expire ran.\n"),
        "{approved}"
    );
    assert!(approved.contains("shop"), "{approved}");

    let locked = ask(&mut gw, &agent, "lockdown", json!({}));
    assert!(
        locked.starts_with("LOCKDOWN: revoked "),
        "the alert: {locked}"
    );
    let locked = gw.reply();
    assert!(locked.starts_with("✓ lockdown: locked_down\n"), "{locked}");
}

fn ask(gw: &mut Gateway, agent: &Agent, cmd: &str, args: Value) -> String {
    gw.received(OWNER, &agent.envelope(cmd, args).to_json());
    let reply = gw.reply();
    assert!(reply.len() <= SIGNAL_TEXT_LIMIT, "{cmd}: {}", reply.len());
    reply
}

fn gw_prompt(text: &str) -> String {
    code_in(text)
}
