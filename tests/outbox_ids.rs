//! Issue 21, point 8: a message is never silently dropped after a rollback. The gateway's
//! sent log answers `sent` without sending for an id it has seen, so the ids the core gives
//! outbox messages must never repeat, not even after the store is restored from an older
//! copy; and a gateway that refuses an id the core believes new is a loud error.

mod common;

use common::gateway::{code_in, Gateway, NO_CONTEXTS};
use common::{wait_for, Agent};
use pane_agent::gateway::sent_log::{content_digest, Seen, SentLog};
use serde_json::json;
use std::path::Path;

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

fn copy_dir(from: &Path, to: &Path) {
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

/// Three approval prompts and three replies, each of which must reach the phone.
fn prompts_and_replies(agent: &Agent, gw: &mut Gateway) {
    for tool in ["list", "audit", "status"] {
        agent.send("grant", json!({"tool": tool}));
        let prompt = gw.reply();
        code_in(&prompt);
        gw.received(OWNER, &agent.envelope("list", json!({})).to_json());
        assert_eq!(gw.reply(), NO_CONTEXTS);
    }
}

#[test]
fn messages_queued_after_a_store_rollback_reach_the_phone() {
    let mut agent = common::agent_with_owner(OWNER);
    // pane-signal's sent log, kept across the core's restarts as the gateway keeps it.
    let log = agent.tmp.path().join("sent-ids");
    let mut gw = Gateway::connect(&agent, OWNER).with_sent_log(&log);
    gw.received(OWNER, &agent.envelope("list", json!({})).to_json());
    assert_eq!(gw.reply(), NO_CONTEXTS);
    drop(gw);
    agent.stop();
    let backup = agent.tmp.path().join("store.backup");
    copy_dir(&agent.dir.join("store"), &backup);

    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER).with_sent_log(&log);
    prompts_and_replies(&agent, &mut gw);
    let first: Vec<String> = gw.sent_meta.iter().map(|(id, _, _)| id.clone()).collect();
    drop(gw);
    agent.stop();

    // Only the store goes back; the gateway's sent log remembers what it sent since.
    std::fs::remove_dir_all(agent.dir.join("store")).unwrap();
    std::fs::rename(&backup, agent.dir.join("store")).unwrap();
    agent.spawn();
    // Wall clock, not synchronisation: the envelopes below are signed in a later millisecond
    // than the rollback floor, the last envelope accepted before the restore.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut gw = Gateway::connect(&agent, OWNER).with_sent_log(&log);
    let alert = gw.reply();
    assert!(alert.contains("high-water mark"), "{alert}");
    prompts_and_replies(&agent, &mut gw);
    assert!(
        gw.not_delivered.is_empty(),
        "answered `sent` and never sent: {:?}",
        gw.not_delivered
    );
    assert!(gw.refused.is_empty(), "refused: {:?}", gw.refused);
    for (id, _, _) in &gw.sent_meta {
        assert!(!first.contains(id), "id {id} used again after the restore");
    }
}

/// A gateway whose sent log holds the id of a message the core believes new refuses it
/// (`id_conflict`) instead of claiming `sent`; the core says so loudly (log, audit, an alert)
/// and sends the message again under a new id, so it still reaches the phone.
#[test]
fn an_id_the_gateway_sent_with_other_content_is_refused_loudly_and_sent_anew() {
    let agent = common::agent_with_owner(OWNER);
    let log = agent.tmp.path().join("sent-ids");
    let mut gw = Gateway::connect(&agent, OWNER).with_sent_log(&log);
    agent.send("grant", json!({"tool": "list"}));
    let id = gw.next_send_id();
    gw.log_as_sent_elsewhere(&id);
    let prompt = gw.reply();
    code_in(&prompt);
    assert_eq!(gw.refused.len(), 1, "{:?}", gw.refused);
    assert_eq!(gw.refused[0], (id.clone(), prompt.clone()));
    assert!(gw.not_delivered.is_empty());
    assert_ne!(
        gw.last_id.as_deref(),
        Some(id.as_str()),
        "sent under a new id"
    );
    let alert = gw.reply();
    assert!(alert.contains("already been used"), "{alert}");
    let entry = wait_for("outbox.id_conflict audited", || {
        agent
            .audit()
            .into_iter()
            .find(|e| e["event"] == "outbox.id_conflict")
    });
    assert_eq!(entry["detail"]["id"], id.as_str(), "{entry}");
    assert!(agent.logs().contains("It was NOT delivered"));
    // The refused id was never taken for delivered.
    assert!(!agent
        .audit()
        .iter()
        .any(|e| e["event"] == "outbox.delivered" && e["detail"]["id"] == id.as_str()));
}

/// The sent log itself: the same id with the same content is `sent`, with other content a
/// conflict, across a reopen; an id logged before digests were kept counts as sent.
#[test]
fn the_sent_log_tells_a_repeat_from_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sent-ids");
    std::fs::write(&path, "41\n").unwrap();
    let mut log = SentLog::open(&path).unwrap();
    let first = content_digest(OWNER, 1_700, "✓ list");
    let again_later = content_digest(OWNER, 1_800, "✓ list");
    let other_text = content_digest(OWNER, 1_700, "✓ status");
    let other_recipient = content_digest("someone", 1_700, "✓ list");
    assert_eq!(log.check("42.00000000000000aa", &first), Seen::New);
    log.record("42.00000000000000aa", &first).unwrap();
    for log in [log, SentLog::open(&path).unwrap()] {
        assert_eq!(log.check("42.00000000000000aa", &first), Seen::Sent);
        for other in [&again_later, &other_text, &other_recipient] {
            assert_eq!(log.check("42.00000000000000aa", other), Seen::Conflict);
        }
        assert_eq!(log.check("41", &first), Seen::Sent, "an old line");
        assert_eq!(log.check("43", &first), Seen::New);
    }
    // Recording an id again keeps what was sent under it first.
    let mut log = SentLog::open(&path).unwrap();
    log.record("42.00000000000000aa", &other_text).unwrap();
    assert_eq!(log.check("42.00000000000000aa", &first), Seen::Sent);
}

/// Compacting the log (past twice the ids it keeps) keeps the newest ids with their digests.
#[test]
fn a_compacted_sent_log_keeps_its_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sent-ids");
    let mut log = SentLog::open(&path).unwrap();
    let digest = |i: u64| content_digest(OWNER, i, "body");
    for i in 0..20_001u64 {
        log.record(&i.to_string(), &digest(i)).unwrap();
    }
    let log = SentLog::open(&path).unwrap();
    assert_eq!(log.check("0", &digest(0)), Seen::New, "forgotten");
    assert_eq!(log.check("20000", &digest(20_000)), Seen::Sent);
    assert_eq!(log.check("15000", &digest(15_000)), Seen::Sent);
    assert_eq!(log.check("15000", &digest(1)), Seen::Conflict);
    assert!(!tmp.path().join("sent-ids.tmp").exists());
}
