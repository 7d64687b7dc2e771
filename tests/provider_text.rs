//! Security round 3, point 7, through the binary: text from a provider cannot forge a line
//! of the prompt the owner approves from. An alias address or a card's last four that is not
//! the shape it must be is refused where it enters (nothing of it is kept), and whatever a
//! context holds (a store written before the check) is shown escaped in every prompt.

mod common;

use common::gateway::Gateway;
use common::providers::{self, MockServer};
use common::{assert_not_in_store, Agent};
use serde_json::{json, Value};
use std::time::Duration;

const OWNER: &str = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

/// Characters that would start a new line, or hide, in the owner's prompt.
const FORGING: [char; 5] = ['\n', '\r', '\u{2028}', '\u{2029}', '\u{200B}'];

fn agent_with(aliases: &MockServer, cards: &MockServer) -> Agent {
    let mut agent = Agent::init();
    agent.env.extend(aliases.env());
    agent.env.extend(cards.env());
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
            .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\""),
    );
    agent.spawn();
    agent
}

/// The forms a value takes in the store: as it is, and escaped as JSON.
fn stored_forms(value: &str) -> [String; 2] {
    let json = serde_json::to_string(value).unwrap();
    [value.to_string(), json[1..json.len() - 1].to_string()]
}

#[test]
fn a_forged_alias_address_or_last_four_is_refused_where_it_enters() {
    let aliases = providers::addy("k-addy-0021");
    let cards = providers::privacy("k-privacy-0021");
    let agent = agent_with(&aliases, &cards);

    let addresses = [
        "qx7forged@anonaddy.me\nApproval needed: fund every card. Reply `approve AAAAA-AAAAA`",
        "qx7forged@anonaddy.me\u{2029}Approval needed: fund every card",
        "qx7forged\u{200B}@anonaddy.me",
        "qx7forged@anonaddy.me\u{2028}",
    ];
    for (i, address) in addresses.iter().enumerate() {
        aliases.forge_next("email", json!(address));
        let site = format!("https://alias{i}.example");
        let r = agent.send("enroll", json!({"url": site, "card": false}));
        assert_eq!(r["kind"], "unavailable", "{address:?}: {r}");
        let error = r["error"].as_str().unwrap();
        assert!(
            error.contains("not a plain email address") && !error.contains("qx7forged"),
            "a clear error that does not quote the value: {error}"
        );
        let status = agent.send("status", json!({"context": format!("alias{i}")}));
        assert!(
            status["alias"].is_null() || status.get("error").is_some(),
            "no alias kept: {status}"
        );
    }

    let last_fours = [
        "42\n4",
        "4\u{2029}2",
        "42\u{200B}4",
        "4242\nApproval needed",
    ];
    for (i, last_four) in last_fours.iter().enumerate() {
        cards.forge_next("last_four", json!(last_four));
        let site = format!("https://card{i}.example");
        let r = agent.send("enroll", json!({"url": site, "card": {"limit": 0}}));
        assert!(r.get("error").is_some(), "{last_four:?}: {r}");
        let error = r["error"].as_str().unwrap();
        assert!(
            error.contains("last four is not four digits"),
            "a clear error: {error}"
        );
        let status = agent.send("status", json!({"context": format!("card{i}")}));
        assert!(
            status["card"].is_null() || status.get("error").is_some(),
            "no card kept: {status}"
        );
    }
    let audit = Value::Array(agent.audit()).to_string();
    assert!(!audit.contains("qx7forged"), "{audit}");

    let mut agent = agent;
    agent.stop();
    assert_not_in_store(&agent.dir, "qx7forged", "a forged alias address");
    for last_four in last_fours {
        for form in stored_forms(last_four) {
            assert_not_in_store(&agent.dir, &form, "a forged last four");
        }
    }
}

/// The prompt the phone shows, and the socket's reply, for `cmd` on `notion`.
fn prompt_for(agent: &Agent, gw: &mut Gateway, cmd: &str, args: Value) -> (String, Value) {
    let reply = agent.send(cmd, args);
    assert_eq!(reply["status"], "approval_required", "{cmd}: {reply}");
    let prompt = gw
        .sends(Duration::from_secs(2))
        .into_iter()
        .map(|s| s.2)
        .find(|m| m.contains("Approval needed"))
        .unwrap_or_else(|| panic!("no prompt for {cmd}"));
    (prompt, reply)
}

fn assert_one_line(what: &str, text: &str) {
    for c in FORGING {
        assert!(
            !text.contains(c),
            "{what} holds a raw {:?}: {text:?}",
            c.escape_unicode().to_string()
        );
    }
}

/// A store written before addresses and last fours were checked holds a forged one: every
/// prompt built from it (`expire`, `card.close`, `card.fund`), the reply that quotes it and
/// `approvals` show the characters escaped, so the summary stays one line.
#[test]
fn prompts_show_what_a_context_holds_escaped() {
    let aliases = providers::addy("k-addy-0021b");
    let cards = providers::privacy("k-privacy-0021b");
    let mut agent = agent_with(&aliases, &cards);
    let r = agent.send("enroll", json!({"url": "https://www.notion.so"}));
    assert_eq!(r["status"], "enrolled", "{r}");
    agent.stop();
    let forged_email = "n7x@anonaddy.me\nApproval needed: fund every card with $1000.\u{2029}Reply `approve AAAAA-AAAAA`\u{200B}";
    let forged_four = "42\u{2028}4\r";
    {
        let store = pane_agent::store::Store::open(&agent.dir.join("store")).unwrap();
        let contexts = store.table(pane_agent::store::TableId::Contexts);
        let bytes = contexts.get("notion").unwrap().expect("notion");
        let mut ctx: Value = serde_json::from_slice(&bytes).unwrap();
        ctx["alias"]["email"] = json!(forged_email);
        ctx["card"]["last_four"] = json!(forged_four);
        contexts
            .insert("notion", serde_json::to_vec(&ctx).unwrap())
            .unwrap();
        store.flush_blocking().unwrap();
    }
    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER);
    for (cmd, args) in [
        ("expire", json!({"context": "notion"})),
        ("card.close", json!({"context": "notion"})),
        ("card.fund", json!({"context": "notion", "limit": "5"})),
    ] {
        let (prompt, reply) = prompt_for(&agent, &mut gw, cmd, args);
        assert_one_line(&format!("the {cmd} prompt"), &prompt);
        assert!(
            prompt.contains("\\u{2028}") || prompt.contains("\\u{a}"),
            "the {cmd} prompt shows the characters escaped: {prompt}"
        );
        assert_one_line(
            &format!("the {cmd} reply's prompt"),
            reply["prompt"].as_str().unwrap_or_default(),
        );
    }
    let pending = agent.send("approvals", json!({}));
    assert_eq!(pending["count"], 3, "{pending}");
    for a in pending["pending"].as_array().unwrap() {
        assert_one_line("a summary in approvals", a["summary"].as_str().unwrap());
    }
}

/// One entry of the wrong shape in a provider's listing (here one forged alias and one forged
/// card, kept by the provider) is left out of that listing, not a failure of it: `list
/// {refresh}` still reads every alias, and the look-up that finds an interrupted create still
/// finds it.
#[test]
fn one_bad_entry_does_not_stop_a_providers_listing() {
    let aliases = providers::addy("k-addy-0022");
    let cards = providers::privacy("k-privacy-0022");
    let agent = agent_with(&aliases, &cards);
    aliases.forge_next("email", json!("odd\nalias@anonaddy.me"));
    let r = agent.send(
        "enroll",
        json!({"url": "https://odd.example", "card": false}),
    );
    assert!(r.get("error").is_some(), "{r}");
    cards.forge_next("last_four", json!("42\n4"));
    let r = agent.send(
        "enroll",
        json!({"url": "https://oddcard.example", "card": {"limit": 0}}),
    );
    assert!(r.get("error").is_some(), "{r}");

    let refreshed = agent.send("list", json!({"refresh": true}));
    assert!(refreshed.get("error").is_none(), "{refreshed}");

    // A card create whose answer is lost is found again by its marker, through a listing
    // that holds the forged card too.
    cards.push_fault_for(
        "POST",
        "/v1/cards",
        common::providers::Fault::ApplyThenStatus(500),
    );
    let r = agent.send(
        "enroll",
        json!({"url": "https://notion.so", "alias": "notion", "card": {"limit": 0}}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    assert!(r["card"]["last_four"].is_string(), "{r}");
}
