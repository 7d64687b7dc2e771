//! Contexts end to end through the binary, against local servers that follow the providers'
//! documented shapes: enroll, list, status, fund and expire with approval, `list` following
//! every change (its views are rendered ahead and kept in step), expire denied,
//! approval timeout, a provider failing mid-enroll and a restart (no duplicates), and no card
//! number or CVV anywhere.

mod common;

use common::providers::{self, Fault, MockServer};
use common::{assert_error, Agent};
use serde_json::{json, Value};

const ADDY_KEY: &str = "addy-test-key-0001";
const PRIVACY_KEY: &str = "privacy-test-key-0001";
const SL_KEY: &str = "simplelogin-test-key-0001";
const LITHIC_KEY: &str = "lithic-test-key-0001";

struct World {
    agent: Agent,
    aliases: MockServer,
    cards: MockServer,
}

/// An agent on addy.io + Privacy.com (the defaults), or SimpleLogin + Lithic.
fn world(simplelogin_lithic: bool, config_edit: impl Fn(String) -> String) -> World {
    let mut agent = Agent::init();
    let (aliases, cards) = if simplelogin_lithic {
        let a = providers::simplelogin(SL_KEY);
        let c = providers::lithic(LITHIC_KEY);
        agent
            .env
            .push(("SIMPLELOGIN_API_KEY".into(), SL_KEY.into()));
        agent
            .env
            .push(("SIMPLELOGIN_BASE_URL".into(), a.base.clone()));
        agent.env.push(("LITHIC_API_KEY".into(), LITHIC_KEY.into()));
        agent.env.push(("LITHIC_BASE_URL".into(), c.base.clone()));
        (a, c)
    } else {
        let a = providers::addy(ADDY_KEY);
        let c = providers::privacy(PRIVACY_KEY);
        agent.env.push(("ADDY_API_KEY".into(), ADDY_KEY.into()));
        agent.env.push(("ADDY_BASE_URL".into(), a.base.clone()));
        agent
            .env
            .push(("PRIVACY_API_KEY".into(), PRIVACY_KEY.into()));
        agent.env.push(("PRIVACY_BASE_URL".into(), c.base.clone()));
        (a, c)
    };
    let mut config = pane_agent::config::TEMPLATE.replace(
        "forwarding_address = \"\"",
        "forwarding_address = \"PO Box 77, 101 Reykjavik\"",
    );
    if simplelogin_lithic {
        config = config
            .replace("provider = \"addy\"", "provider = \"simplelogin\"")
            .replace("provider = \"privacy\"", "provider = \"lithic\"");
    }
    agent.write_config(&config_edit(config));
    agent.spawn();
    World {
        agent,
        aliases,
        cards,
    }
}

fn approve(agent: &Agent, asked: &Value) -> Value {
    assert_eq!(asked["status"], "approval_required", "{asked}");
    agent.send("approve", json!({"code": asked["code"]}))
}

#[test]
fn enroll_list_status_fund_and_expire_with_approval() {
    let w = world(false, |c| c);
    let a = &w.agent;
    let r = a.send(
        "enroll",
        json!({"url": "https://www.aa.com/booking", "alias": "travel-aa-2025", "card": {"limit": 0},
               "identity": "placeholder", "note": "call to complete with real name"}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    assert_eq!(r["context"], "travel-aa-2025");
    assert_eq!(r["domain"], "aa.com");
    let email = r["alias"]["email"].as_str().unwrap().to_string();
    assert_eq!(r["card"]["state"], "PAUSED");
    assert_eq!(r["card"]["limit"], "0.00");
    assert_eq!(r["identity"]["address"], "PO Box 77, 101 Reykjavik");
    assert!(r["identity"]["name"].as_str().unwrap().contains(' '));
    let last_mile = r["last_mile"].to_string();
    assert!(
        last_mile.contains("call the site") && last_mile.contains("card.fund"),
        "{last_mile}"
    );

    // The provider really has them: one alias described with the context, one paused $0 card.
    let aliases = w.aliases.aliases();
    assert_eq!(aliases.len(), 1);
    assert_eq!(aliases[0]["email"], email.as_str());
    assert!(aliases[0]["description"]
        .as_str()
        .unwrap()
        .contains("travel-aa-2025"));
    let cards = w.cards.cards();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0]["state"], "PAUSED");
    assert_eq!(cards[0]["spend_limit"], 0);
    assert_eq!(cards[0]["type"], "MERCHANT_LOCKED");

    let list = a.send("list", json!({}));
    assert_eq!(list["count"], 1);
    assert_eq!(list["contexts"][0]["alias"]["email"], email.as_str());
    let status = a.send("status", json!({"context": "travel-aa-2025"}));
    assert_eq!(status["card"]["last_four"], r["card"]["last_four"]);
    assert_eq!(status["state"], "active");

    // Funding needs approval; the prompt names the card and the amount.
    let cents = a.send(
        "card.fund",
        json!({"context": "travel-aa-2025", "limit": "25.50"}),
    );
    assert_error(&cents, "invalid_args");
    assert!(
        cents["error"].as_str().unwrap().contains("whole amounts"),
        "{cents}"
    );
    assert_error(
        &a.send(
            "card.fund",
            json!({"context": "travel-aa-2025", "limit": 0}),
        ),
        "invalid_args",
    );
    let asked = a.send(
        "card.fund",
        json!({"context": "travel-aa-2025", "limit": "25"}),
    );
    let prompt = asked["prompt"].as_str().unwrap();
    let last4 = r["card"]["last_four"].as_str().unwrap();
    assert!(
        prompt.contains(&format!("ending {last4}")) && prompt.contains("25.00"),
        "{prompt}"
    );
    assert_eq!(
        w.cards.cards()[0]["state"],
        "PAUSED",
        "nothing before approval"
    );
    let done = approve(a, &asked);
    assert_eq!(done["result"]["card"]["state"], "OPEN", "{done}");
    assert_eq!(done["result"]["card"]["limit"], "25.00");
    assert_eq!(w.cards.cards()[0]["spend_limit"], 2500);
    assert_eq!(w.cards.cards()[0]["state"], "OPEN");

    // Over the configured maximum is refused before any approval.
    assert_error(
        &a.send(
            "card.fund",
            json!({"context": "travel-aa-2025", "limit": 5000}),
        ),
        "invalid_args",
    );

    // Expire: approval, then alias gone and card closed; the context stays as expired.
    let asked = a.send("expire", json!({"context": "travel-aa-2025"}));
    let prompt = asked["prompt"].as_str().unwrap();
    assert!(
        prompt.contains(&email) && prompt.contains(last4),
        "{prompt}"
    );
    let done = approve(a, &asked);
    assert_eq!(done["result"]["status"], "expired", "{done}");
    assert!(
        w.aliases.aliases().is_empty(),
        "the alias is deleted at the provider"
    );
    assert_eq!(w.cards.cards()[0]["state"], "CLOSED");
    let status = a.send("status", json!({"context": "travel-aa-2025"}));
    assert_eq!(status["state"], "expired");
    assert_eq!(status["alias"]["deleted"], true);
    // An approval is not even asked for what cannot happen.
    assert_error(
        &a.send(
            "card.fund",
            json!({"context": "travel-aa-2025", "limit": 1}),
        ),
        "conflict",
    );
    assert_error(
        &a.send("expire", json!({"context": "travel-aa-2025"})),
        "conflict",
    );
    assert_error(&a.send("expire", json!({"context": "nope"})), "not_found");
    assert_eq!(a.send("approvals", json!({}))["count"], 0);
}

/// `list` shows every context exactly as `status` does (`status` decodes the stored record;
/// `list` copies views rendered ahead), with the count, and nothing else.
fn assert_list_matches_status(a: &Agent, expected: &[&str]) -> Value {
    let list = a.send("list", json!({}));
    let contexts = list["contexts"].as_array().expect("contexts");
    let names: Vec<&str> = contexts
        .iter()
        .map(|c| c["context"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected, "{list}");
    assert_eq!(list["count"], expected.len());
    for c in contexts {
        assert_eq!(*c, a.send("status", json!({"context": c["context"]})));
    }
    list
}

#[test]
fn list_follows_every_change_to_a_context() {
    let mut w = world(false, |c| c);
    let a = &w.agent;
    assert_list_matches_status(a, &[]);
    for (name, card) in [("b-shop", json!({"limit": 0})), ("a-news", json!(false))] {
        let r = a.send(
            "enroll",
            json!({"url": format!("https://www.{name}.com"), "alias": name, "card": card,
                   "identity": "none"}),
        );
        assert_eq!(r["status"], "enrolled", "{r}");
    }
    // The first `list` renders the views; each change below must reach them.
    assert_list_matches_status(a, &["a-news", "b-shop"]);

    let done = approve(
        a,
        &a.send("card.fund", json!({"context": "b-shop", "limit": 20})),
    );
    assert_eq!(done["result"]["card"]["limit"], "20.00", "{done}");
    let list = assert_list_matches_status(a, &["a-news", "b-shop"]);
    assert_eq!(list["contexts"][1]["card"]["state"], "OPEN");

    let off = a.send("alias.deactivate", json!({"context": "a-news"}));
    assert!(off.get("error").is_none(), "{off}");
    let list = assert_list_matches_status(a, &["a-news", "b-shop"]);
    assert_eq!(list["contexts"][0]["alias"]["active"], false);

    // Mail forwarded at the provider reaches the contexts through `list {refresh}`.
    let id = w.aliases.aliases()[0]["id"].as_str().unwrap().to_string();
    w.aliases.add_email(&id, "news@b-shop.com", "Hello");
    let refreshed = a.send("list", json!({"refresh": true}));
    assert_eq!(refreshed["refresh"]["contexts_updated"], 1, "{refreshed}");
    let list = assert_list_matches_status(a, &["a-news", "b-shop"]);
    assert_eq!(refreshed["contexts"], list["contexts"]);
    assert_eq!(list["contexts"][1]["alias"]["forwarded"], 1, "{list}");

    let done = approve(a, &a.send("expire", json!({"context": "b-shop"})));
    assert_eq!(done["result"]["status"], "expired", "{done}");
    let list = assert_list_matches_status(a, &["a-news", "b-shop"]);
    assert_eq!(list["contexts"][1]["state"], "expired");

    // A third context after the views were rendered, with a note that JSON escapes and
    // digits that could start a card number (so `list` takes the redactor's full path), then
    // a restart (rendered anew).
    let r = a.send(
        "enroll",
        json!({"url": "https://c-bank.com", "alias": "c-bank", "card": false, "identity": "none",
               "note": "say \"hi\"\nto the 4111 1111 desk"}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    let before = assert_list_matches_status(a, &["a-news", "b-shop", "c-bank"]);
    assert_eq!(
        before["contexts"][2]["note"],
        "say \"hi\"\nto the 4111 1111 desk"
    );
    w.agent.restart();
    let after = assert_list_matches_status(&w.agent, &["a-news", "b-shop", "c-bank"]);
    assert_eq!(before, after);
}

#[test]
fn expire_denied_or_unanswered_changes_nothing() {
    let w = world(false, |c| {
        // Short, so the unanswered one expires in the test; long enough that the deny
        // below lands first on a loaded machine.
        c.replace("timeout_secs = 300", "timeout_secs = 3")
    });
    let a = &w.agent;
    assert_eq!(
        a.send("enroll", json!({"url": "https://notion.so"}))["context"],
        "notion"
    );
    w.aliases.clear_requests();
    w.cards.clear_requests();

    let asked = a.send("expire", json!({"context": "notion"}));
    let denied = a.send("deny", json!({"code": asked["code"]}));
    assert_eq!(denied["status"], "denied");

    let asked = a.send("expire", json!({"context": "notion"}));
    assert_eq!(asked["status"], "approval_required");
    // Wall clock, not synchronisation: the approval's 3 s deadline passes unanswered (the
    // scenario), with room for the expiry timer's tick.
    std::thread::sleep(std::time::Duration::from_millis(4600));
    assert_error(
        &a.send("approve", json!({"code": asked["code"]})),
        "approval_invalid",
    );

    assert_eq!(w.aliases.request_count(), 0, "{:?}", w.aliases.requests());
    assert_eq!(w.cards.request_count(), 0, "{:?}", w.cards.requests());
    assert_eq!(
        a.send("status", json!({"context": "notion"}))["state"],
        "active"
    );
    assert_eq!(w.aliases.aliases().len(), 1);
}

/// Enrolls `gh` so that it stops half way with an open card intent: the card is created but
/// the answer is lost, and the look-up that follows fails too. Returns the enroll's reply.
fn enroll_leaving_a_card_intent(w: &World) -> Value {
    w.cards
        .push_fault_for("POST", "/v1/cards", Fault::ApplyThenStatus(500));
    for _ in 0..4 {
        w.cards.push_fault_for(
            "GET",
            "/v1/cards",
            Fault::Status {
                status: 503,
                body: json!({"message": "down"}),
                retry_after: None,
            },
        );
    }
    let r = w.agent.send(
        "enroll",
        json!({"url": "https://github.com", "alias": "gh"}),
    );
    assert_error(&r, "unavailable");
    r
}

#[test]
fn provider_failure_mid_enroll_then_restart_makes_no_duplicates() {
    let mut w = world(false, |c| c);
    let r = enroll_leaving_a_card_intent(&w);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("send the same enroll again"),
        "{r}"
    );
    assert_eq!(
        w.agent.send("status", json!({"context": "gh"}))["state"],
        "enrolling"
    );

    // Crash, restart: the intent finds the card the provider made.
    w.agent.kill();
    w.agent.spawn();
    let r = w.agent.send(
        "enroll",
        json!({"url": "https://github.com", "alias": "gh"}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    assert_eq!(w.aliases.aliases().len(), 1, "one alias");
    assert_eq!(w.cards.cards().len(), 1, "one card");
    let posts = w
        .cards
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!(
        posts,
        1,
        "the card was created once: {:?}",
        w.cards.requests()
    );

    // Enrolling again is refused, not duplicated.
    assert_error(
        &w.agent.send(
            "enroll",
            json!({"url": "https://github.com", "alias": "gh"}),
        ),
        "conflict",
    );
}

#[test]
fn provider_error_text_is_redacted_in_the_daemon_log() {
    let mut w = world(false, |c| c);
    enroll_leaving_a_card_intent(&w);
    // At the restart the intent's look-up is refused with a body that quotes the API key and
    // a card number: the reconciliation report (logged at info, the default level) carries
    // the provider's words, and the secrets are redacted out of them.
    w.agent.kill();
    let echo = format!("key {PRIVACY_KEY} may not list card 4111 1111 1111 1111");
    w.cards.push_fault_for(
        "GET",
        "/v1/cards",
        Fault::Status {
            status: 422,
            body: json!({"message": echo}),
            retry_after: None,
        },
    );
    w.agent.spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !w.agent.logs().contains("may not list card") {
        assert!(
            std::time::Instant::now() < deadline,
            "the provider's refusal is not in the log: {}",
            w.agent.logs()
        );
        // The poll interval of this bounded wait.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let logs = w.agent.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("may not list card"))
        .unwrap_or_default();
    assert!(line.contains("may not list card"), "{line}");
    assert!(line.contains("[redacted]"), "{line}");
    assert!(!logs.contains(PRIVACY_KEY), "{logs}");
    assert!(!logs.contains("4111 1111 1111 1111"), "{logs}");
}

#[test]
fn alias_provider_down_is_reported_and_resumable() {
    let w = world(false, |c| c);
    for _ in 0..4 {
        w.aliases.push_fault(Fault::Status {
            status: 502,
            body: json!({"message": "bad gateway"}),
            retry_after: None,
        });
    }
    let r = w
        .agent
        .send("enroll", json!({"url": "https://example.org"}));
    assert_error(&r, "unavailable");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("addy.io is unavailable"),
        "{r}"
    );
    assert!(w.cards.cards().is_empty(), "no card without an alias");
    let r = w
        .agent
        .send("enroll", json!({"url": "https://example.org"}));
    assert_eq!(r["status"], "enrolled", "{r}");
    assert_eq!(w.aliases.aliases().len(), 1);
}

#[test]
fn simplelogin_and_lithic_alias_and_card_commands() {
    let w = world(true, |c| c);
    let a = &w.agent;
    let r = a.send(
        "enroll",
        json!({"url": "https://news.ycombinator.com", "card": false, "identity": "none"}),
    );
    assert_eq!(r["context"], "ycombinator", "{r}");
    assert!(r["card"].is_null() && r["identity"].is_null(), "{r}");
    assert!(w.cards.cards().is_empty());

    let off = a.send("alias.deactivate", json!({"context": "ycombinator"}));
    assert_eq!(off["alias"]["active"], false, "{off}");
    assert_eq!(w.aliases.aliases()[0]["enabled"], false);
    let on = a.send("alias.activate", json!({"context": "ycombinator"}));
    assert_eq!(on["alias"]["active"], true);
    assert_eq!(w.aliases.aliases()[0]["enabled"], true);

    let r = a.send(
        "enroll",
        json!({"url": "https://shop.example.co.uk", "card": {"limit": "10"}}),
    );
    assert_eq!(r["context"], "example", "{r}");
    assert_eq!(r["domain"], "example.co.uk");
    assert_eq!(r["card"]["limit"], "10.00");
    // Lithic reads a limit of 0 as "no limit": a $0 card is made with one cent, paused.
    let r0 = a.send(
        "enroll",
        json!({"url": "https://zero.example.net", "alias": "zero", "card": {"limit": 0}}),
    );
    assert_eq!(r0["card"]["limit"], "0.01", "{r0}");
    assert_eq!(r0["card"]["state"], "PAUSED");
    let paused = a.send("card.pause", json!({"context": "example"}));
    assert_eq!(paused["card"]["state"], "PAUSED");
    let token = w.cards.cards()[0]["token"].as_str().unwrap().to_string();
    w.cards.add_transaction(&token, 1999, "SHOP EXAMPLE UK");
    let t = a.send("transactions", json!({"context": "example"}));
    assert_eq!(t["count"], 1, "{t}");
    assert_eq!(t["transactions"][0]["amount"], 1999);
    let closed = approve(a, &a.send("card.close", json!({"context": "example"})));
    assert_eq!(closed["result"]["card"]["state"], "CLOSED", "{closed}");
    assert_error(
        &a.send("card.pause", json!({"context": "example"})),
        "conflict",
    );
}

#[test]
fn unconfigured_and_rejected_keys_are_clear() {
    // No keys at all.
    let agent = Agent::start();
    let r = agent.send("enroll", json!({"url": "https://aa.com"}));
    assert_error(&r, "not_configured");
    assert!(r["error"].as_str().unwrap().contains("ADDY_API_KEY"), "{r}");

    // A wrong key.
    let mut agent = Agent::init();
    let addy = providers::addy(ADDY_KEY);
    agent
        .env
        .push(("ADDY_API_KEY".into(), "wrong-key-000000".into()));
    agent.env.push(("ADDY_BASE_URL".into(), addy.base.clone()));
    agent.spawn();
    let r = agent.send("enroll", json!({"url": "https://aa.com"}));
    assert_error(&r, "key_rejected");

    // Privacy.com without write access.
    let w = world(false, |c| c);
    w.cards.set_write_access(false);
    let r = w.agent.send("enroll", json!({"url": "https://aa.com"}));
    assert_error(&r, "key_rejected");
    assert!(
        r["error"].as_str().unwrap().contains("Issuing API key"),
        "{r}"
    );
}

#[test]
fn no_card_number_or_cvv_anywhere() {
    let mut w = world(false, |c| c);
    let mut seen = String::new();
    for (cmd, args) in [
        (
            "enroll",
            json!({"url": "https://aa.com", "card": {"limit": 5}}),
        ),
        ("status", json!({"context": "aa"})),
        ("list", json!({})),
        ("transactions", json!({"context": "aa"})),
    ] {
        seen.push_str(&w.agent.send(cmd, args).to_string());
    }
    let asked = w
        .agent
        .send("card.fund", json!({"context": "aa", "limit": 7}));
    seen.push_str(&asked.to_string());
    seen.push_str(&approve(&w.agent, &asked).to_string());
    seen.push_str(&Value::Array(w.agent.audit()).to_string());
    w.agent.stop();
    seen.push_str(&w.agent.logs());
    let card = &w.cards.cards()[0];
    let pan = card["pan"].as_str().unwrap();
    let cvv = card["cvv"].as_str().unwrap();
    assert!(pan.len() >= 13 && !cvv.is_empty());
    assert!(!seen.contains(pan), "card number leaked");
    assert!(
        !seen.contains(&format!("\"{cvv}\"")) && !seen.contains("cvv"),
        "cvv leaked"
    );
    assert!(
        !seen.contains(PRIVACY_KEY) && !seen.contains(ADDY_KEY),
        "a provider key leaked"
    );
    // And nothing of it is in the store on disk.
    let store_dir = w.agent.dir.join("store");
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&store_dir).unwrap().flatten() {
        if entry.path().is_file() {
            bytes.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    assert!(
        !bytes.windows(pan.len()).any(|w| w == pan.as_bytes()),
        "card number stored"
    );
}
