//! What must survive a restart (clean or kill -9): the replay cache, pending approvals with
//! their original deadline, grants, the audit chain, the outbox. And a changed, removed or
//! cut-off audit entry is detected.

mod common;

use common::{assert_error, Agent};
use pane_agent::audit::AuditEntry;
use pane_agent::outbox::{MessageKind, Outbox};
use pane_agent::store::{Store, Table, TableId};
use serde_json::json;

#[test]
fn replay_cache_survives_restart_and_crash() {
    let mut agent = Agent::start();
    let env = agent.envelope("list", json!({})).to_json();
    assert!(agent.raw(env.as_bytes()).get("error").is_none());
    agent.restart();
    assert_error(&agent.raw(env.as_bytes()), "replayed");
    let env2 = agent.envelope("help", json!({})).to_json();
    assert!(agent.raw(env2.as_bytes()).get("error").is_none());
    agent.kill();
    agent.spawn();
    assert_error(&agent.raw(env2.as_bytes()), "replayed");
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut agent = Agent::start();
    assert_eq!(
        agent.send("revoke", json!({"tool": "status"}))["status"],
        "revoked"
    );
    let asked = agent.send("grant", json!({"tool": "audit"}));
    let code = asked["code"].as_str().unwrap().to_string();
    let audit_len = agent.audit().len();
    agent.kill();
    agent.spawn();
    assert_error(
        &agent.send("status", json!({"context": "x"})),
        "not_granted",
    );
    assert_eq!(
        agent.send("approvals", json!({}))["pending"][0]["code"],
        code.as_str()
    );
    let after = agent.audit();
    assert!(
        after.len() > audit_len,
        "audit entries before the crash are all there"
    );
    let verify = agent.send("audit", json!({"verify": true, "limit": 1}));
    assert_eq!(verify["verify"]["ok"], true, "{verify}");
}

#[test]
fn pending_approvals_keep_their_deadline_and_work_after_restart() {
    let mut agent = Agent::start();
    agent.send("revoke", json!({"tool": "list"}));
    let asked = agent.send("grant", json!({"tool": "list"}));
    let code = asked["code"].as_str().unwrap().to_string();
    let deadline = asked["expires_at"].clone();
    // Wall clock, not synchronisation: past the next whole second, so that a deadline reset
    // at the restart would read differently.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    agent.restart();
    let pending = agent.send("approvals", json!({}));
    assert_eq!(pending["pending"][0]["code"], code.as_str());
    assert_eq!(
        pending["pending"][0]["expires_at"], deadline,
        "the deadline is not reset"
    );
    assert_eq!(
        agent.send("approve", json!({"code": code}))["status"],
        "approved"
    );
    assert!(agent.send("list", json!({})).get("error").is_none());
}

#[test]
fn approvals_due_while_down_expire_at_start() {
    let mut agent = Agent::init();
    agent.write_config(
        &pane_agent::config::TEMPLATE.replace("timeout_secs = 300", "timeout_secs = 1"),
    );
    agent.spawn();
    agent.send("revoke", json!({"tool": "list"}));
    let code = agent.send("grant", json!({"tool": "list"}))["code"]
        .as_str()
        .unwrap()
        .to_string();
    agent.stop();
    // Wall clock, not synchronisation: the 1 s deadline passes while the agent is down (the
    // scenario); nothing runs that could be waited on.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    agent.spawn();
    assert_eq!(agent.send("approvals", json!({}))["count"], 0);
    assert_error(
        &agent.send("approve", json!({"code": code})),
        "approval_invalid",
    );
    assert!(agent.audit_events().iter().any(|e| e == "approval.expired"));
}

#[test]
fn outbox_keeps_prompts_and_alerts_across_restart() {
    let mut agent = Agent::start();
    let code = agent.send("grant", json!({"tool": "list"}))["code"]
        .as_str()
        .unwrap()
        .to_string();
    agent.send("lockdown", json!({}));
    agent.stop();
    let store = Store::open(&agent.dir.join("store")).unwrap();
    let outbox = Outbox::new(&store);
    let pending = outbox.pending(10).unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert_eq!(pending[0].kind, MessageKind::Prompt);
    assert!(pending[0].body.contains(&format!("approve {code}")));
    assert_eq!(pending[1].kind, MessageKind::Alert);
    assert!(pending[1].body.contains("LOCKDOWN"));
    // Delivered once: acknowledging removes it for good.
    assert!(outbox.delivered(&pending[0].id()).unwrap());
    assert!(!outbox.delivered(&pending[0].id()).unwrap());
    store.flush_blocking().unwrap();
    drop(outbox);
    drop(store);
    agent.spawn();
    agent.stop();
    let store = Store::open(&agent.dir.join("store")).unwrap();
    let left = Outbox::new(&store).pending(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id(), pending[1].id());
}

/// Stops the agent, lets `tamper` change the audit tree directly, restarts, and returns the
/// verification report.
fn verify_after(tamper: impl FnOnce(&Table, &[AuditEntry])) -> serde_json::Value {
    let mut agent = Agent::start();
    for _ in 0..3 {
        agent.send("list", json!({}));
    }
    let ok = agent.send("audit", json!({"verify": true, "limit": 1}));
    assert_eq!(ok["verify"]["ok"], true, "{ok}");
    agent.stop();
    {
        let store = Store::open(&agent.dir.join("store")).unwrap();
        let audit = store.table(TableId::Audit);
        let entries: Vec<AuditEntry> = audit
            .iter()
            .map(|r| serde_json::from_slice(&r.unwrap().1).unwrap())
            .collect();
        tamper(&audit, &entries);
        store.flush_blocking().unwrap();
    }
    agent.spawn();
    let r = agent.send("audit", json!({"verify": true, "limit": 1}));
    r["verify"].clone()
}

#[test]
fn a_changed_audit_entry_is_detected() {
    let report = verify_after(|tree, entries| {
        let mut e = entries[2].clone();
        e.detail = json!({"cmd": "nothing to see"});
        tree.insert(e.seq.to_be_bytes(), serde_json::to_vec(&e).unwrap())
            .unwrap();
    });
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_bad_seq"], 3);
    assert!(report["problem"].as_str().unwrap().contains("changed"));
}

#[test]
fn a_removed_audit_entry_is_detected() {
    let report = verify_after(|tree, entries| {
        tree.remove(entries[1].seq.to_be_bytes()).unwrap();
    });
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_bad_seq"], 2);
}

#[test]
fn a_cut_off_audit_tail_is_detected() {
    let report = verify_after(|tree, entries| {
        let last = entries.last().unwrap();
        tree.remove(last.seq.to_be_bytes()).unwrap();
    });
    assert_eq!(report["ok"], false, "{report}");
    assert!(
        report["problem"].as_str().unwrap().contains("missing"),
        "{report}"
    );
}

#[test]
fn audit_replies_show_the_chain_hashes() {
    let agent = Agent::start();
    agent.send("list", json!({}));
    let entries = agent.audit();
    assert!(entries.len() >= 2);
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev"], pair[0]["hash"]);
        assert_eq!(pair[0]["hash"].as_str().unwrap().len(), 64);
    }
}
