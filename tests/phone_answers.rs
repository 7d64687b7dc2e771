//! The owner's answer from the phone is a request of its own kind, with the same crash-safe
//! handling whichever way it came: a 👍 on a prompt is recorded before it is acted on, like a
//! typed `approve CODE`, so a kill in the middle of the action it approved leaves it to be
//! answered at the next start, not dropped in silence.

mod common;

use common::gateway::Gateway;
use common::providers::Fault;
use common::{wait_for, wait_for_requests};
use serde_json::json;
use std::time::Duration;

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

/// Replies from the gateway (each acknowledged as sent), until one satisfies `want`; at
/// most `n` of them.
fn reply_where(gw: &mut Gateway, n: usize, want: impl Fn(&str) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let body = gw.reply();
        let done = want(&body);
        seen.push(body);
        if done {
            return seen;
        }
    }
    panic!("no such reply among {seen:#?}");
}

#[test]
fn a_reaction_cut_off_by_a_kill_is_answered_at_the_next_start() {
    let config = common::unlimited_rates(pane_agent::config::TEMPLATE)
        .replace("owner = \"\"", &format!("owner = \"{OWNER}\""));
    let (mut agent, _aliases, cards) = common::agent_with_providers(&[], &config);
    let made = agent.send(
        "enroll",
        json!({"url": "https://notion.so", "alias": "notion"}),
    );
    assert!(made.get("error").is_none(), "{made}");
    let mut gw = Gateway::connect(&agent, OWNER);
    let asked = agent.send("card.fund", json!({"context": "notion", "limit": 25}));
    assert_eq!(asked["status"], "approval_required", "{asked}");
    let prompt = reply_where(&mut gw, 5, |b| b.contains("Approval needed"));
    assert!(prompt.last().is_some_and(|p| p.contains("react 👍")));
    let (ts, _) = gw.meta_of(gw.last_id.as_ref().expect("the prompt's id"));

    // Privacy.com acts on the fund but answers only much later; the agent is killed in
    // between, after the 👍 was acknowledged to the gateway (so the gateway forgot it).
    cards.push_fault_for("PATCH", "/v1/cards", Fault::Delay(Duration::from_secs(60)));
    let reaction = format!("{OWNER}.1.77");
    gw.react(&reaction, OWNER, "👍", ts, false);
    gw.wait_for_acks(&reaction, 1);
    wait_for_requests(&cards, "PATCH /v1/cards", 1);
    drop(gw);
    agent.kill();
    cards.clear_faults();
    agent.spawn();

    // The owner hears about their 👍: it was taken, and where the approval stands.
    let mut gw = Gateway::connect(&agent, OWNER);
    let replies = reply_where(&mut gw, 5, |b| b.contains("Your approve of approval"));
    let answer = replies.last().expect("the answer");
    assert!(
        answer.contains("was taken, but the agent stopped before it answered")
            && answer.contains("The approval is approved"),
        "{answer}"
    );
    wait_for("the approved fund to be resumed and recorded", || {
        agent
            .audit()
            .iter()
            .any(|e| e["event"] == "action.ok" && e["detail"]["cmd"] == "card.fund")
            .then_some(())
    });
    // Answered once: the record of the reaction is gone once the answer is queued.
    drop(gw);
    agent.restart();
    let mut gw = Gateway::connect(&agent, OWNER);
    let again: Vec<String> = gw
        .sends(Duration::from_secs(2))
        .into_iter()
        .map(|(_, _, body)| body)
        .filter(|b| b.contains("Your approve of approval"))
        .collect();
    assert!(again.is_empty(), "answered again: {again:?}");
}
