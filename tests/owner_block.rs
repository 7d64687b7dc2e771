//! Every kind of owner input goes through the same block (security round 3, points 5 and 6),
//! through the binary with the test gateway on `gateway.sock`:
//! - after the owner's safety number changed, 👍 reactions aimed at a prompt's timestamp
//!   approve nothing (a thief guessed it with 44 reactions in 43 ms);
//! - beyond a few a minute, reactions are not judged at all, and the ignored ones are audited
//!   as one count;
//! - a message from the blocked identity changes nothing: not the disappearing-message timer
//!   that goes on the held replies and alerts.

mod common;

use common::gateway::Gateway;
use common::Agent;
use pane_agent::gateway::protocol::GatewayEvent;
use serde_json::json;
use std::time::Duration;

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

/// Asks for a grant of `tool` (revoked first), and returns the Signal timestamp of the prompt
/// the owner's phone got.
fn prompt_for(agent: &Agent, gw: &mut Gateway, tool: &str) -> u64 {
    agent.send("revoke", json!({"tool": tool}));
    let asked = agent.send("grant", json!({"tool": tool}));
    assert_eq!(asked["status"], "approval_required", "{asked}");
    let prompt = gw.reply();
    assert!(prompt.contains("react 👍"), "{prompt}");
    gw.meta_of(gw.last_id.as_ref().expect("the prompt was sent"))
        .0
}

fn granted(agent: &Agent, tool: &str) -> bool {
    let help = agent.send("help", json!({}));
    help["commands"]
        .as_array()
        .expect("help lists the commands")
        .iter()
        .any(|c| c["name"] == tool && c["granted"] == true)
}

fn audited_counts(agent: &Agent, event: &str) -> u64 {
    agent
        .audit()
        .iter()
        .filter(|e| e["event"] == event)
        .map(|e| e["detail"]["count"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn reactions_from_a_changed_identity_approve_nothing() {
    let mut agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    let ts = prompt_for(&agent, &mut gw, "list");
    gw.event(&GatewayEvent::IdentityChanged {
        sender: OWNER.into(),
    });
    // The thief's burst around the prompt's timestamp, the right one included.
    for i in 0..44u64 {
        gw.react(
            &format!("{OWNER}.1.{}", 100 + i),
            OWNER,
            "👍",
            ts - 22 + i,
            false,
        );
    }
    gw.wait_for_acks(&format!("{OWNER}.1.143"), 1);
    assert_eq!(
        agent.send("approvals", json!({}))["count"],
        1,
        "the grant still waits for the owner"
    );
    assert!(!granted(&agent, "list"), "nothing was approved");
    // The ignored reactions are in the audit log as a count (written at shutdown, or each
    // minute), not one entry each.
    agent.restart();
    assert_eq!(audited_counts(&agent, "signal.reactions_ignored"), 44);
    assert_eq!(
        agent
            .audit_events()
            .iter()
            .filter(|e| e.starts_with("signal.reaction"))
            .count(),
        1
    );
}

#[test]
fn past_a_few_reactions_a_minute_none_is_judged() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    let ts = prompt_for(&agent, &mut gw, "list");
    for i in 0..10u64 {
        gw.react(
            &format!("{OWNER}.1.{}", 200 + i),
            OWNER,
            "👍",
            ts + 1 + i,
            false,
        );
    }
    gw.react(&format!("{OWNER}.1.300"), OWNER, "👍", ts, false);
    gw.wait_for_acks(&format!("{OWNER}.1.300"), 1);
    assert_eq!(agent.send("approvals", json!({}))["count"], 1);
    assert!(!granted(&agent, "list"));
}

#[test]
fn a_message_from_a_blocked_identity_does_not_set_the_disappearing_timer() {
    let agent = common::agent_with_owner(OWNER);
    let mut gw = Gateway::connect(&agent, OWNER);
    // The owner's own timer, one hour.
    let env = agent.envelope("help", json!({})).to_json();
    gw.received_as(&format!("{OWNER}.1.1"), OWNER, &env, 3600);
    gw.reply();
    assert_eq!(gw.meta_of(gw.last_id.as_ref().unwrap()).1, Some(3600));

    gw.event(&GatewayEvent::IdentityChanged {
        sender: OWNER.into(),
    });
    let env = agent.envelope("list", json!({})).to_json();
    gw.received_as(&format!("{OWNER}.1.2"), OWNER, &env, 5);
    gw.wait_for_acks(&format!("{OWNER}.1.2"), 1);
    agent.send("lockdown", json!({}));
    assert!(gw.sends(Duration::from_millis(500)).is_empty());

    let out = agent.cli(&["trust"]);
    assert!(out.status.success(), "{out:?}");
    let held: Vec<(String, String, String)> = gw.sends(Duration::from_secs(3));
    assert!(
        held.iter().any(|s| s.2.contains("LOCKDOWN")),
        "the held alert went out: {held:?}"
    );
    for (id, _, body) in &held {
        assert_eq!(
            gw.meta_of(id).1,
            Some(3600),
            "the owner's own timer, not the blocked identity's: {body}"
        );
    }
}
