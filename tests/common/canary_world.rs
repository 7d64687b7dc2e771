//! The world of the issue-16 tests (`tests/canaries.rs`, `tests/impersonation.rs`): an agent
//! with an owner on the test gateway, a Dovecot, addy.io and a card provider, and the
//! context `notion`; and what those tests ask of it.
#![allow(dead_code)]

use super::dovecot::Dovecot;
use super::gateway::{code_in, Gateway};
use super::providers::{self, MockServer};
use super::{wait_for, Agent};
use pane_agent::gateway::protocol::GatewayEvent;
use serde_json::{json, Value};
use std::time::Duration;

pub const OWNER: &str = "5f0c2b8e-3a4d-4e6f-8a1b-2c3d4e5f6a7b";

/// The agent and everything it talks to.
pub struct World {
    pub agent: Agent,
    pub gw: Gateway,
    pub imap: Dovecot,
    pub aliases: MockServer,
    pub cards: MockServer,
    /// The `notion` context's alias.
    pub alias: String,
    /// The `notion` context's card token at the provider.
    pub card_token: String,
}

/// Which card provider.
#[derive(Clone, Copy, PartialEq)]
pub enum Cards {
    Privacy,
    Lithic,
}

fn config_for(imap: &Dovecot, cards: Cards) -> String {
    let c = imap
        .configure(pane_agent::config::TEMPLATE)
        .replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
        .replace("idle = true", "idle = false")
        .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\"")
        .replace(
            "secret_rotation_reminder = \"0 0 9 1 1,4,7,10 *\"",
            "secret_rotation_reminder = \"\"",
        );
    match cards {
        Cards::Privacy => c,
        Cards::Lithic => c.replace("provider = \"privacy\"", "provider = \"lithic\""),
    }
}

/// An agent with an owner on the test gateway, a Dovecot, addy.io and the card provider, and
/// the context `notion` (alias, paused $0 card).
pub fn world(cards: Cards, edit: impl Fn(String) -> String) -> World {
    let aliases = providers::addy("k-addy-0016");
    let card_server = match cards {
        Cards::Privacy => providers::privacy("k-privacy-0016"),
        Cards::Lithic => providers::lithic("k-lithic-0016"),
    };
    let imap = Dovecot::start();
    let mut agent = Agent::init();
    super::use_local_services(&mut agent, &aliases, &card_server, &imap);
    agent.env.push(("LITHIC_API_KEY".into(), card_server.key()));
    agent
        .env
        .push(("LITHIC_BASE_URL".into(), card_server.base.clone()));
    agent.write_config(&edit(config_for(&imap, cards)));
    agent.spawn();
    let gw = Gateway::connect(&agent, OWNER);
    let r = agent.send("enroll", json!({"url": "https://www.notion.so"}));
    assert_eq!(r["status"], "enrolled", "{r}");
    let alias = r["alias"]["email"].as_str().unwrap().to_string();
    let card_token = card_server.cards()[0]["token"]
        .as_str()
        .unwrap()
        .to_string();
    World {
        agent,
        gw,
        imap,
        aliases,
        cards: card_server,
        alias,
        card_token,
    }
}

pub fn sweep(agent: &Agent) -> Value {
    let r = agent.send("sweep", json!({}));
    assert!(r.get("error").is_none(), "{r}");
    r
}

pub fn source<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["source"] == name))
        .unwrap_or_else(|| panic!("no {name} source in {r}"))
}

/// Every message the core sends the owner within `wait`, acknowledged as sent, by id (a
/// resend of the same message is one message).
pub fn owner_messages(gw: &mut Gateway, wait: Duration) -> Vec<String> {
    let mut ids = Vec::new();
    let mut out = Vec::new();
    for (id, _, body) in gw.sends(wait) {
        gw.event(&GatewayEvent::Sent {
            id: id.clone(),
            timestamp: None,
        });
        if !ids.contains(&id) {
            ids.push(id);
            out.push(body);
        }
    }
    out
}

pub fn alerts(gw: &mut Gateway, wait: Duration) -> Vec<String> {
    owner_messages(gw, wait)
        .into_iter()
        .filter(|b| b.contains("breach signal"))
        .collect()
}

pub fn only_new_incident(r: &Value) -> Value {
    let new = r["new_incidents"].as_array().unwrap();
    assert_eq!(new.len(), 1, "{r}");
    new[0].clone()
}

/// Funds `context`'s card (the provider's `index`th) through its approval, answered on the
/// phone.
pub fn fund(w: &mut World, context: &str, index: usize, limit: &str) {
    let asked = w
        .agent
        .send("card.fund", json!({"context": context, "limit": limit}));
    assert_eq!(asked["status"], "approval_required", "{asked}");
    let prompt = wait_for("the fund prompt", || {
        owner_messages(&mut w.gw, Duration::from_millis(300))
            .into_iter()
            .find(|m| m.contains("`approve "))
    });
    w.gw.received(OWNER, &format!("approve {}", code_in(&prompt)));
    let cards = &w.cards;
    wait_for("the card to open", || {
        (cards.cards()[index]["state"] == "OPEN").then_some(())
    });
}
