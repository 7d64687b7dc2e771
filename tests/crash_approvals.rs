//! An approved action is never lost, and the card record never lies (security round 3, point
//! 3). Through the binary, against the local Privacy.com server: a `card.fund` approved and
//! sent to the provider, then a SIGKILL before its answer was recorded. At the next start the
//! card change's intent is reconciled against the provider (the record says what Privacy.com
//! says), and the approved action, whose approval was already spent, runs again to the end
//! and is recorded, with the owner told.

mod common;

use common::providers::{Fault, MockServer};
use common::{count_requests, wait_for, wait_for_requests, Agent};
use serde_json::{json, Value};
use std::time::Duration;

fn world() -> (Agent, MockServer, MockServer) {
    common::agent_with_providers(&[], &common::unlimited_rates(pane_agent::config::TEMPLATE))
}

#[test]
fn a_fund_approved_and_cut_off_by_a_kill_is_reconciled_and_resumed_at_start() {
    let (mut agent, _aliases, cards) = world();
    let made = agent.send(
        "enroll",
        json!({"url": "https://notion.so", "alias": "notion"}),
    );
    assert!(made.get("error").is_none(), "{made}");
    let asked = agent.send("card.fund", json!({"context": "notion", "limit": 25}));
    assert_eq!(asked["status"], "approval_required", "{asked}");
    let code = asked["code"]
        .as_str()
        .expect("a code on the console")
        .to_string();

    // Privacy.com carries the change out at once but answers only much later: the agent is
    // killed in between, as a crash would.
    cards.push_fault_for("PATCH", "/v1/cards", Fault::Delay(Duration::from_secs(60)));
    let socket = agent.socket();
    let envelope = agent.envelope("approve", json!({"code": code}));
    let approving = std::thread::spawn(move || {
        // Never answered: the daemon dies first.
        use std::io::{Read, Write};
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) else {
            return;
        };
        let _ = s.write_all(envelope.to_json().as_bytes());
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read_to_end(&mut Vec::new());
    });
    wait_for_requests(&cards, "PATCH /v1/cards", 1);
    // Anything answered to anyone is flushed first: the spent approval is on disk.
    let status = agent.send("status", json!({"context": "notion"}));
    assert_eq!(status["card"]["state"], "PAUSED", "{status}");
    agent.kill();
    let _ = approving.join();
    assert_eq!(
        cards.cards()[0]["state"],
        "OPEN",
        "Privacy.com opened the card"
    );

    // Back up: the record is what the provider says, and the approved action finished.
    cards.clear_faults();
    agent.spawn();
    let resumed = wait_for("the approved fund to be resumed and recorded", || {
        let audit = agent.audit();
        let resumed = audit.iter().any(|e| e["event"] == "approval.resumed");
        let done = audit
            .iter()
            .any(|e| e["event"] == "action.ok" && e["detail"]["cmd"] == "card.fund");
        (resumed && done).then_some(audit)
    });
    let resumed_entry: Vec<&Value> = resumed
        .iter()
        .filter(|e| e["event"] == "approval.resumed")
        .collect();
    assert_eq!(resumed_entry.len(), 1, "resumed once: {resumed_entry:?}");
    assert_eq!(resumed_entry[0]["detail"]["action"], "card.fund");
    let status = agent.send("status", json!({"context": "notion"}));
    assert_eq!(status["card"]["state"], "OPEN", "{status}");
    assert_eq!(status["card"]["limit"], "25.00", "{status}");

    // The approval is settled with its result; a second approve says it was used, and a
    // restart does not run the action a third time.
    let again = agent.send("approve", json!({"code": code}));
    common::assert_error(&again, "approval_invalid");
    let patches_before = count_requests(&cards, "PATCH");
    agent.restart();
    // The start-up work is decided before the first command is answered: the reconciliation
    // job is started first, then a resume would be audited (`approval.resumed`, counted
    // below) and started as a job. Wait until every job started since has ended.
    wait_for("the start-up jobs to end", || {
        let audit = agent.audit();
        let start = audit
            .iter()
            .rposition(|e| e["event"] == "job.started" && e["detail"]["cmd"] == "reconcile")?;
        let started: Vec<u64> = audit[start..]
            .iter()
            .filter(|e| e["event"] == "job.started")
            .filter_map(|e| e["detail"]["job"].as_u64())
            .collect();
        let ended = |id: &u64| {
            audit.iter().any(|e| {
                (e["event"] == "action.ok" || e["event"] == "action.error")
                    && e["detail"]["job"].as_u64() == Some(*id)
            })
        };
        started.iter().all(ended).then_some(())
    });
    let patches_after = count_requests(&cards, "PATCH");
    assert_eq!(
        patches_before, patches_after,
        "finished work is not resumed again"
    );
    let resumes = agent
        .audit_events()
        .iter()
        .filter(|e| *e == "approval.resumed")
        .count();
    assert_eq!(resumes, 1);
}

/// A card change whose outcome was unknown (the provider timed out after acting) is read back
/// from the provider at once: the record never says "paused at $0" for a card that is open.
#[test]
fn a_pause_whose_answer_never_came_is_read_back_from_the_provider() {
    let (agent, _aliases, cards) = world();
    let made = agent.send(
        "enroll",
        json!({"url": "https://notion.so", "alias": "notion", "card": {"limit": 0}}),
    );
    assert!(made.get("error").is_none(), "{made}");
    let asked = agent.send("card.fund", json!({"context": "notion", "limit": 10}));
    let funded = agent.send("approve", json!({"code": asked["code"]}));
    assert_eq!(funded["status"], "approved", "{funded}");
    // Privacy.com pauses the card and then the connection resets before the answer: every
    // retry meets the same.
    for _ in 0..4 {
        cards.push_fault_for("PATCH", "/v1/cards", Fault::ApplyThenStatus(500));
    }
    let paused = agent.send("card.pause", json!({"context": "notion"}));
    assert!(
        paused.get("error").is_some(),
        "the pause reported failure: {paused}"
    );
    let status = agent.send("status", json!({"context": "notion"}));
    assert_eq!(
        status["card"]["state"], "PAUSED",
        "the record follows the provider, which paused it: {status}"
    );
}

/// A card create the daemon had sent when it was killed, and that the provider carries out
/// only after the restart, is still found and attached: the intent of the run that died is
/// not taken as "nothing was made" while the create can still land, so the card is neither an
/// orphan nor made twice.
#[test]
fn a_create_that_lands_after_the_restart_is_attached_not_orphaned() {
    let (mut agent, _aliases, cards) = world();
    cards.push_fault_for(
        "POST",
        "/v1/cards",
        Fault::LandLater(Duration::from_secs(3)),
    );
    let socket = agent.socket();
    let envelope = agent.envelope(
        "enroll",
        json!({"url": "https://notion.so", "alias": "notion"}),
    );
    let enrolling = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) else {
            return;
        };
        let _ = s.write_all(envelope.to_json().as_bytes());
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.read_to_end(&mut Vec::new());
    });
    wait_for_requests(&cards, "POST /v1/cards", 1);
    agent.kill();
    let _ = enrolling.join();
    agent.spawn();
    // The restart's reconciliation looks for the card before the provider has made it.
    wait_for_requests(&cards, "GET /v1/cards", 1);
    assert!(cards.cards().is_empty(), "not landed yet");
    wait_for("the create to land", || {
        (!cards.cards().is_empty()).then_some(())
    });
    let status = wait_for_long("the card to be attached", || {
        let s = agent.send("status", json!({"context": "notion"}));
        s["card"]["last_four"].is_string().then_some(s)
    });
    assert_eq!(status["card"]["last_four"], cards.cards()[0]["last_four"]);
    // Enrolling again finishes the context without a second card.
    let again = agent.send(
        "enroll",
        json!({"url": "https://notion.so", "alias": "notion"}),
    );
    assert_eq!(again["status"], "enrolled", "{again}");
    assert_eq!(cards.cards().len(), 1, "one card: {:?}", cards.cards());
}

/// [`wait_for`] with room for the 30 s landing window.
fn wait_for_long<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        // The poll interval of this bounded wait.
        std::thread::sleep(Duration::from_millis(200));
    }
}
