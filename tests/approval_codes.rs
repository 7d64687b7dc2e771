//! Security round 3, point 4, through the binary: a live approval code is written in clear
//! only into the owner's Signal prompt. A queued burn's code leaves by no reply of
//! `incident.ack` (socket, HTTP, Signal, MCP), no other command's reply, no alert, no audit
//! entry and no record but the approval's own (docs/security-model.md, "Approval codes").

mod common;

use common::canary_world::{owner_messages, sweep, world, Cards, World, OWNER};
use common::gateway::code_in;
use common::wait_for;
use pane_agent::auth::Envelope;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// The text every approval prompt carries, and nothing else the agent sends.
const PROMPT_MARK: &str = "react 👍 or 👎 to this message";

/// Both forms of a code: as shown (`ABCDE-FGHJK`) and as stored (`ABCDEFGHJK`), and the
/// lower-case ones an approve accepts too.
fn forms(code: &str) -> Vec<String> {
    let bare = code.replace('-', "");
    vec![
        code.to_string(),
        code.to_lowercase(),
        bare.to_lowercase(),
        bare,
    ]
}

/// Fails when `text` (what `what` is) holds any form of any of `codes`.
fn assert_no_code(what: &str, text: &str, codes: &[String]) {
    for code in codes {
        for form in forms(code) {
            assert!(
                !text.contains(&form),
                "{what} holds the live code {form}: {text}"
            );
        }
    }
}

/// Everything the agent says, sorted: prompts (where a code belongs), and the rest.
#[derive(Default)]
struct Heard {
    prompts: Vec<String>,
    others: Vec<(String, String)>,
}

impl Heard {
    /// Every code the prompts gave so far.
    fn codes(&self) -> Vec<String> {
        self.prompts.iter().map(|p| code_in(p)).collect()
    }

    /// Reads what the agent sent the owner within `wait`.
    fn listen(&mut self, w: &mut World, wait: Duration) -> Vec<String> {
        let got = owner_messages(&mut w.gw, wait);
        for m in &got {
            if m.contains(PROMPT_MARK) {
                self.prompts.push(m.clone());
            } else {
                self.others.push(("a Signal message".into(), m.clone()));
            }
        }
        got
    }

    /// Sends `cmd` from the owner's phone as a signed envelope and waits for its answer
    /// (a message that is not a prompt or an alert).
    fn sent_from_phone(&mut self, w: &mut World, cmd: &str, args: Value) {
        let env = w.agent.envelope(cmd, args).to_json();
        w.gw.received(OWNER, &env);
        let before = self.others.len();
        let mut waited = 0;
        while !self.others[before..]
            .iter()
            .any(|(_, m)| !m.contains("breach signal"))
        {
            self.listen(w, Duration::from_millis(300));
            waited += 1;
            assert!(waited < 60, "no Signal answer to {cmd}");
        }
        self.listen(w, Duration::from_millis(200));
    }

    fn reply(&mut self, what: String, reply: &Value) {
        self.others.push((what, reply.to_string()));
    }

    /// Nothing but a prompt holds any code a prompt gave (every leak is listed).
    fn assert_clean(&self) {
        let codes = self.codes();
        assert!(!codes.is_empty(), "no prompt was heard");
        let leaks: Vec<String> = self
            .others
            .iter()
            .filter(|(_, text)| {
                codes
                    .iter()
                    .flat_map(|c| forms(c))
                    .any(|form| text.contains(&form))
            })
            .map(|(what, text)| format!("{what}: {}", text.chars().take(300).collect::<String>()))
            .collect();
        assert!(
            leaks.is_empty(),
            "a live code left by:\n{}",
            leaks.join("\n")
        );
    }
}

/// The MCP key's envelope for `cmd`.
fn mcp_envelope(w: &World, cmd: &str, args: Value) -> Vec<u8> {
    let key = pane_agent::auth::mcp_key::load(&w.agent.dir)
        .unwrap()
        .expect("mcp.key");
    let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
    Envelope::sign(&key, chrono::Utc::now(), cmd, args)
        .to_json()
        .into_bytes()
}

/// Gives the running agent an MCP key (`pane-agent mcp-key`, then `secrets.reload`).
fn add_mcp_key(w: &World) {
    let out = w.agent.cli(&["mcp-key"]);
    assert!(out.status.success(), "{out:?}");
    let r = w.agent.send("secrets.reload", json!({}));
    assert_eq!(r["status"], "reloaded", "{r}");
}

/// A world with an HTTP endpoint; a stranger charges the paused `notion` card, so a sweep
/// finds an incident and queues its burn. Returns the HTTP port and the incident's id.
fn world_with_a_queued_burn(heard: &mut Heard) -> (World, u16, String) {
    let port = common::free_port();
    let mut w = world(Cards::Privacy, |c| {
        c.replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\""))
    });
    heard.listen(&mut w, Duration::from_millis(300));
    w.cards
        .add_card_transaction(&w.card_token, 1200, "SHADYSHOP LLC", "CARD_PAUSED", None);
    let swept = sweep(&w.agent);
    heard.reply("the sweep's reply".into(), &swept);
    let id = swept["new_incidents"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no incident: {swept}"))
        .to_string();
    wait_for("the burn's prompt and its alert", || {
        heard.listen(&mut w, Duration::from_millis(300));
        let prompt = heard
            .prompts
            .iter()
            .any(|p| p.contains("expire context notion"));
        let alert = heard
            .others
            .iter()
            .any(|(_, m)| m.contains("breach signal"));
        (prompt && alert).then_some(())
    });
    (w, port, id)
}

/// The trees of the store and what each holds, key and value, as text.
fn store_trees(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let store = pane_agent::store::Store::open(&dir.join("store")).unwrap();
    pane_agent::store::TableId::ALL
        .into_iter()
        .map(|id| {
            let (name, tree) = (id.name(), store.table(id));
            let mut text = String::new();
            for item in tree.iter() {
                let (k, v) = item.unwrap();
                text.push_str(&String::from_utf8_lossy(&k));
                text.push(' ');
                text.push_str(&String::from_utf8_lossy(&v));
                text.push('\n');
            }
            (name, text)
        })
        .collect()
}

/// The point as the issue found it: `incident.ack` gave the queued burn's code on every
/// channel, the owner's own ack wrote it into the audit log, and the MCP key read it.
#[test]
fn a_queued_burns_code_leaves_by_no_ack_no_reply_and_no_audit_entry() {
    let mut heard = Heard::default();
    let (mut w, port, id) = world_with_a_queued_burn(&mut heard);
    add_mcp_key(&w);
    let burn = heard
        .prompts
        .iter()
        .find(|p| p.contains("expire context notion"))
        .map(|p| code_in(p))
        .unwrap();

    // incident.ack on every channel, and what shows the incident or the approvals there.
    for cmd in ["incident.ack", "check-incidents", "approvals", "audit"] {
        let args = match cmd {
            "incident.ack" => json!({"id": id}),
            "audit" => json!({"limit": 1000}),
            _ => json!({}),
        };
        let r = w.agent.send(cmd, args.clone());
        assert!(r.get("error").is_none(), "{cmd} over the socket: {r}");
        heard.reply(format!("{cmd} over the socket"), &r);
        let r = common::http_post(
            port,
            w.agent.envelope(cmd, args.clone()).to_json().as_bytes(),
        );
        assert!(r.get("error").is_none(), "{cmd} over HTTP: {r}");
        heard.reply(format!("{cmd} over HTTP"), &r);
        let r = w.agent.raw(&mcp_envelope(&w, cmd, args.clone()));
        assert!(r.get("error").is_none(), "{cmd} over MCP: {r}");
        heard.reply(format!("{cmd} over MCP"), &r);
        heard.sent_from_phone(&mut w, cmd, args);
    }
    // The incident names its burn, by reference.
    let listed = w.agent.send("check-incidents", json!({}));
    let reference = listed["incidents"][0]["burn_code"].as_str().unwrap_or("");
    assert!(
        reference.starts_with("a-") && reference.len() == 12,
        "{listed}"
    );
    // Every audit entry, read whole after the acks (the owner's from the phone included).
    heard.reply("the audit log".into(), &Value::Array(w.agent.audit()));
    heard.assert_clean();

    // The records: only the approval itself (and the prompts that carry it to the phone and
    // answer a reaction on it) hold the code.
    w.agent.stop();
    let bare = burn.replace('-', "");
    for (tree, text) in store_trees(&w.agent.dir) {
        match tree {
            "approvals" | "outbox" | "signal_prompts" => {}
            tree => assert_no_code(
                &format!("the store's {tree} tree"),
                &text,
                std::slice::from_ref(&burn),
            ),
        }
        if tree == "approvals" {
            assert!(text.contains(&bare), "the scan reads the approvals tree");
        }
    }

    // It is still the owner's code: approved from the phone, the burn runs.
    w.agent.spawn();
    let mut gw = common::gateway::Gateway::connect(&w.agent, OWNER);
    gw.received(OWNER, &format!("approve {burn}"));
    let done = wait_for("the burn's result", || {
        gw.sends(Duration::from_millis(300))
            .into_iter()
            .map(|s| s.2)
            .find(|m| m.contains("Approved"))
    });
    assert!(done.starts_with("✓ Approved: expire ran."), "{done}");
}

/// Arguments that make each command do something (or refuse) with a context `notion`.
fn args_for(cmd: &str, incident: &str) -> Value {
    match cmd {
        "status" | "transactions" | "alias.deactivate" | "alias.activate" | "alias.create"
        | "card.pause" | "card.close" | "expire" => json!({"context": "notion"}),
        "card.fund" => json!({"context": "notion", "limit": "5"}),
        "enroll" => json!({"url": "https://example.org", "card": false}),
        "incident.ack" => json!({"id": incident}),
        "audit" => json!({"limit": 1000, "verify": true}),
        "grant" => json!({"tool": "status"}),
        "revoke" => json!({"tool": "transactions"}),
        "approve" | "deny" => json!({"code": "ZZZZZ-ZZZZZ"}),
        "request.status" => json!({"request_id": "r-0123456789abcdef"}),
        _ => json!({}),
    }
}

/// Every command, in phone-only mode (the default once an owner is set), over the socket
/// and from the phone, while codes are live (a queued burn, then a fund, a close and a
/// grant): no reply, no message but a prompt, and no audit entry holds any of them.
#[test]
fn in_phone_only_mode_no_commands_reply_holds_a_live_code() {
    let mut heard = Heard::default();
    let (mut w, _port, id) = world_with_a_queued_burn(&mut heard);
    let help = w.agent.send("help", json!({}));
    let every: BTreeSet<String> = help["commands"]
        .as_array()
        .unwrap_or_else(|| panic!("{help}"))
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    // The approvals first, so that the rest runs while they are live; lockdown last.
    let mut order: Vec<&str> = vec!["card.fund", "card.close", "grant", "expire"];
    let rest: Vec<&str> = every
        .iter()
        .map(String::as_str)
        .filter(|c| !order.contains(c) && *c != "lockdown")
        .collect();
    order.extend(rest);
    order.push("lockdown");
    let sent: BTreeSet<String> = order.iter().map(|c| c.to_string()).collect();
    assert_eq!(sent, every, "every command in help is swept");

    for cmd in &order {
        if *cmd != "lockdown" {
            let r = w.agent.send(cmd, args_for(cmd, &id));
            heard.reply(format!("{cmd} over the socket"), &r);
            heard.listen(&mut w, Duration::from_millis(200));
        }
        // From the phone the same command (a second `expire` is merged into the burn).
        heard.sent_from_phone(&mut w, cmd, args_for(cmd, &id));
        if *cmd == "lockdown" {
            let r = w.agent.send(cmd, json!({}));
            heard.reply("lockdown over the socket".into(), &r);
        }
    }
    heard.listen(&mut w, Duration::from_millis(500));
    assert!(
        heard.codes().len() >= 4,
        "a burn, a fund, a close and a grant were asked: {:?}",
        heard.prompts
    );
    heard.reply("the audit log".into(), &Value::Array(w.agent.audit()));
    heard.assert_clean();
}

/// By construction: the code's clear text comes from one call, in the function that decides
/// where a code may be shown (`Gate::code_in_clear`); tests aside, nothing else asks for it.
#[test]
fn the_clear_code_is_asked_for_in_one_place() {
    let mut files = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut calls = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                if line.contains(".reveal_in_clear(") {
                    calls.push(format!("{}:{}", path.display(), n + 1));
                }
            }
        }
    }
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].contains("src/gate/approvals.rs"), "{calls:?}");
    let gate = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gate/approvals.rs"),
    )
    .unwrap();
    let at = gate.find(".reveal_in_clear(").unwrap();
    let owner = gate[..at].rfind("fn ").map(|i| &gate[i..i + 16]);
    assert_eq!(
        owner,
        Some("fn code_in_clear"),
        "called outside code_in_clear"
    );
}
