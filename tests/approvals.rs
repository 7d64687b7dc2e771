//! Approvals end to end: granted, denied, expired, replayed, used for another action;
//! grants, lockdown and rate limits.

mod common;

use common::{assert_error, Agent};
use serde_json::json;

fn ask_grant(agent: &Agent, tool: &str) -> String {
    let reply = agent.send("grant", json!({"tool": tool}));
    assert_eq!(reply["status"], "approval_required", "{reply}");
    let prompt = reply["prompt"].as_str().unwrap();
    let code = reply["code"].as_str().unwrap().to_string();
    assert!(prompt.contains(&format!("approve {code}")), "{prompt}");
    assert!(
        prompt.contains(&format!("grant the tool `{tool}`")),
        "the prompt says what will happen: {prompt}"
    );
    code
}

#[test]
fn approve_runs_the_bound_action_once() {
    let agent = Agent::start();
    assert_eq!(
        agent.send("revoke", json!({"tool": "status"}))["status"],
        "revoked"
    );
    assert_error(
        &agent.send("status", json!({"context": "x"})),
        "not_granted",
    );

    let code = ask_grant(&agent, "status");
    // Nothing happens before approval.
    assert_error(
        &agent.send("status", json!({"context": "x"})),
        "not_granted",
    );
    let pending = agent.send("approvals", json!({}));
    assert_eq!(pending["count"], 1);
    assert_eq!(pending["pending"][0]["code"], code.as_str());
    assert_eq!(pending["pending"][0]["args"], json!({"tool": "status"}));

    // Typed on a phone: lower case, no dash.
    let typed = code.replace('-', "").to_lowercase();
    let approved = agent.send("approve", json!({"code": typed}));
    assert_eq!(approved["status"], "approved", "{approved}");
    assert_eq!(
        approved["result"],
        json!({"status": "granted", "tool": "status"})
    );
    assert_error(&agent.send("status", json!({"context": "x"})), "not_found");

    // The code works once.
    let again = agent.send("approve", json!({"code": code}));
    assert_error(&again, "approval_invalid");
    assert!(again["error"].as_str().unwrap().contains("once"), "{again}");
    assert_error(
        &agent.send("deny", json!({"code": code})),
        "approval_invalid",
    );
    assert_eq!(agent.send("approvals", json!({}))["count"], 0);

    let events = agent.audit_events();
    for e in ["policy.approval_required", "approval.approved", "action.ok"] {
        assert!(events.iter().any(|x| x == e), "{e} missing from {events:?}");
    }
    assert_eq!(
        events.iter().filter(|e| *e == "approval.approved").count(),
        1,
        "approved exactly once"
    );
}

#[test]
fn a_code_approves_only_its_own_action() {
    let agent = Agent::start();
    agent.send("revoke", json!({"tool": "status"}));
    agent.send("revoke", json!({"tool": "audit"}));
    let for_status = ask_grant(&agent, "status");
    let for_audit = ask_grant(&agent, "audit");
    assert_ne!(for_status, for_audit);
    let r = agent.send("approve", json!({"code": for_status}));
    assert_eq!(r["result"]["tool"], "status", "{r}");
    // audit is still revoked; its own approval is still pending.
    assert_error(&agent.send("audit", json!({})), "not_granted");
    assert_eq!(
        agent.send("approvals", json!({}))["pending"][0]["code"],
        for_audit.as_str()
    );
    // A well-formed code that was never issued.
    let fake = if for_audit.starts_with('A') {
        "BBBBB-BBBBB"
    } else {
        "AAAAA-AAAAA"
    };
    let r = agent.send("approve", json!({"code": fake}));
    assert_error(&r, "approval_invalid");
    // Not a code at all.
    assert_error(
        &agent.send("approve", json!({"code": "0OIL1"})),
        "invalid_args",
    );
}

#[test]
fn denial_is_final() {
    let agent = Agent::start();
    agent.send("revoke", json!({"tool": "list"}));
    let code = ask_grant(&agent, "list");
    let denied = agent.send("deny", json!({"code": code}));
    assert_eq!(denied["status"], "denied", "{denied}");
    let late = agent.send("approve", json!({"code": code}));
    assert_error(&late, "approval_invalid");
    assert!(late["error"].as_str().unwrap().contains("final"), "{late}");
    assert_error(&agent.send("list", json!({})), "not_granted");
    assert_eq!(agent.send("approvals", json!({}))["count"], 0);
}

#[test]
fn unanswered_approvals_expire_as_denials() {
    let mut agent = Agent::init();
    agent.write_config(
        &pane_agent::config::TEMPLATE.replace("timeout_secs = 300", "timeout_secs = 1"),
    );
    agent.spawn();
    agent.send("revoke", json!({"tool": "list"}));
    let code = ask_grant(&agent, "list");
    // Wall clock, not synchronisation: the 1 s deadline and the expiry timer's tick pass with
    // no command sent (polling would send commands, and the test is that the timer does it).
    std::thread::sleep(std::time::Duration::from_millis(2600));
    // The timer expired it without any command arriving.
    assert_eq!(agent.send("approvals", json!({}))["count"], 0);
    assert!(agent.audit_events().iter().any(|e| e == "approval.expired"));
    let late = agent.send("approve", json!({"code": code}));
    assert_error(&late, "approval_invalid");
    assert_error(&agent.send("list", json!({})), "not_granted");
}

#[test]
fn lockdown_denies_pending_approvals_at_once_and_holds_until_unlocked() {
    let agent = Agent::start();
    agent.send("revoke", json!({"tool": "audit"}));
    let code = ask_grant(&agent, "audit");
    let r = agent.send("lockdown", json!({}));
    assert_eq!(r["status"], "locked_down", "{r}");
    // Named by reference, as everywhere but the prompt (security round 3, point 4).
    let reference = pane_agent::approval_code::ApprovalCode::parse(&code)
        .unwrap()
        .reference();
    assert_eq!(r["denied_approvals"], json!([reference]));
    assert_error(
        &agent.send("approve", json!({"code": code})),
        "approval_invalid",
    );
    // Read tools keep their grants; the owner can still look around.
    assert!(agent.send("list", json!({})).get("error").is_none());
    // Sticky: the command secret alone cannot grant again, nor unlock over HTTP-like
    // channels; the console can.
    assert_error(
        &agent.send("grant", json!({"tool": "audit"})),
        "locked_down",
    );
    let out = agent.cli(&["unlock"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let again = ask_grant(&agent, "audit");
    assert_eq!(
        agent.send("approve", json!({"code": again}))["status"],
        "approved"
    );
    assert!(agent
        .send("audit", json!({"limit": 1}))
        .get("error")
        .is_none());
}

#[test]
fn rate_limits_apply_per_tool_including_reads() {
    let mut agent = Agent::init();
    agent.write_config(&pane_agent::config::TEMPLATE.replace(
        "# \"grant\" = { max = 3, window_secs = 3600 }",
        "\"list\" = { max = 3, window_secs = 60 }",
    ));
    agent.spawn();
    for _ in 0..3 {
        assert!(agent.send("list", json!({})).get("error").is_none());
    }
    let limited = agent.send("list", json!({}));
    assert_error(&limited, "rate_limited");
    assert!(
        limited["error"].as_str().unwrap().contains("3 per 60 s"),
        "{limited}"
    );
    // Another tool has its own window.
    assert!(agent.send("help", json!({})).get("error").is_none());
    assert!(agent.audit_events().iter().any(|e| e == "policy.deny"));
}

#[test]
fn grants_are_checked_for_known_tools_only() {
    let agent = Agent::start();
    assert_error(&agent.send("revoke", json!({"tool": "nope"})), "not_found");
    let r = agent.send("revoke", json!({"tool": "approve"}));
    assert_error(&r, "invalid_args");
    assert!(r["error"].as_str().unwrap().contains("always available"));
    let help = agent.send("help", json!({}));
    let names: Vec<&str> = help["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for c in [
        "help",
        "list",
        "status",
        "approvals",
        "approve",
        "deny",
        "audit",
        "grant",
        "revoke",
        "lockdown",
    ] {
        assert!(names.contains(&c), "help lists {c}");
    }
}
