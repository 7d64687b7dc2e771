//! Issue 21: everything the owner sends over Signal counts against a budget of its own, so a
//! burst from another channel (say a holder of the secret asking for `grant` again and again)
//! cannot rate-limit the owner's next request from the phone.

mod common;

use common::gateway::Gateway;
use common::{wait_for, Agent};
use serde_json::json;

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

#[test]
fn a_burst_of_grants_elsewhere_does_not_rate_limit_the_owner_on_signal() {
    let mut agent = Agent::init();
    agent.write_config(
        &pane_agent::config::TEMPLATE.replace("owner = \"\"", &format!("owner = \"{OWNER}\"")),
    );
    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER);
    let mut sent = 0;
    loop {
        let r = agent.send("grant", json!({"tool": "list"}));
        if r["kind"] == "rate_limited" {
            break;
        }
        assert!(r.get("error").is_none(), "{r}");
        sent += 1;
        assert!(sent < 100, "never rate limited");
    }
    // The owner's own external request from the phone is judged, not rate limited.
    gw.received(
        OWNER,
        &agent.envelope("grant", json!({"tool": "audit"})).to_json(),
    );
    let judged = wait_for("the phone's grant judged", || {
        agent.audit().into_iter().rev().find(|e| {
            e["channel"] == "signal"
                && (e["event"] == "policy.approval_required" || e["event"] == "policy.deny")
        })
    });
    assert_eq!(judged["event"], "policy.approval_required", "{judged}");
    let reply = loop {
        let body = gw.reply();
        if !body.contains("`approve ") || body.contains("audit") {
            break body;
        }
    };
    assert!(!reply.to_lowercase().contains("rate"), "{reply}");
}
