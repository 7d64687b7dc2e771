//! Issue 16, through the binary: cards as canaries (Privacy.com and Lithic transactions read
//! in one account-wide sweep), Have I Been Pwned's domain search, and each incident said in
//! words in `check-incidents`, the alert (through the test gateway) and the digest. Mail that
//! impersonates the site is in `tests/impersonation.rs`.

mod common;

use common::canary_world::*;
use common::gateway::Gateway;
use common::providers::MockServer;
use common::wait_for;
use serde_json::json;
use std::time::Duration;

#[test]
fn an_attempt_on_the_paused_card_is_found_once_alerted_once_and_said_in_words() {
    let mut w = world(Cards::Privacy, |c| c);
    w.cards
        .add_card_transaction(&w.card_token, 1200, "SHADYSHOP LLC", "CARD_PAUSED", None);
    let r = sweep(&w.agent);
    let i = only_new_incident(&r);
    assert_eq!(i["kind"], "card.attempt", "{i}");
    let summary = i["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("someone tried to charge the notion card")
            && summary.contains("at SHADYSHOP LLC")
            && summary.ends_with("the card is paused"),
        "{summary}"
    );
    assert_eq!(source(&r, "cards")["requests"], 1, "{r}");
    let first = alerts(&mut w.gw, Duration::from_secs(2));
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].contains("(card.attempt): someone tried to charge the notion card"));
    assert!(first[0].contains("A burn is queued"), "{:?}", first[0]);
    // The card was paused already: auto_pause is for card.merchant only.
    assert_eq!(w.cards.cards()[0]["state"], "PAUSED");

    // Nothing new: one request for the whole account, no incident, no alert.
    let before = w.cards.transaction_requests();
    let again = sweep(&w.agent);
    assert!(
        again["new_incidents"].as_array().unwrap().is_empty(),
        "{again}"
    );
    assert_eq!(source(&again, "cards")["requests"], 1);
    assert_eq!(w.cards.transaction_requests(), before + 1);
    // The same merchant again: counted against the incident, not alerted again.
    w.cards
        .add_card_transaction(&w.card_token, 100, "SHADYSHOP LLC", "CARD_PAUSED", None);
    let third = sweep(&w.agent);
    assert!(third["new_incidents"].as_array().unwrap().is_empty());
    assert_eq!(third["repeated"], 1, "{third}");
    assert!(alerts(&mut w.gw, Duration::from_secs(1)).is_empty());

    let listed = w.agent.send("check-incidents", json!({}));
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["incidents"][0]["count"], 2);
    assert!(listed["incidents"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("2 times"));
    let line = listed["lines"][0].as_str().unwrap();
    assert!(
        line.contains("someone tried to charge the notion card"),
        "{line}"
    );
    let approvals = w.agent.send("approvals", json!({}));
    assert_eq!(approvals["pending"][0]["action"], "expire", "{approvals}");
    // No card number anywhere: not in the store's incidents, not in the replies.
    let pan = w.cards.cards()[0]["pan"].as_str().unwrap().to_string();
    assert!(!listed.to_string().contains(&pan));

    // The weekly digest says it in the same words.
    w.agent.stop();
    {
        let store = pane_agent::store::Store::open(&w.agent.dir.join("store")).unwrap();
        let ago = (chrono::Utc::now() - chrono::Duration::days(8)).to_rfc3339();
        store
            .table(pane_agent::store::TableId::Meta)
            .insert("schedule.weekly_digest.last_run", ago.as_bytes())
            .unwrap();
        store.flush_blocking().unwrap();
        let raw: Vec<u8> = store
            .table(pane_agent::store::TableId::Incidents)
            .iter()
            .flat_map(|e| e.unwrap().1.to_vec())
            .collect();
        assert!(!String::from_utf8_lossy(&raw).contains(&pan));
        drop(store);
        // Nor anywhere in the store's files or the daemon's log.
        common::assert_not_in_store(&w.agent.dir, &pan, "the card number");
        assert!(!w.agent.logs().contains(&pan));
    }
    w.agent.spawn();
    let mut gw = Gateway::connect(&w.agent, OWNER);
    let digest = wait_for("the digest", || {
        owner_messages(&mut gw, Duration::from_millis(300))
            .into_iter()
            .find(|m| m.starts_with("Weekly digest"))
    });
    assert!(
        digest.contains("someone tried to charge the notion card")
            && digest.contains("SHADYSHOP LLC"),
        "{digest}"
    );
}

#[test]
fn a_stranger_charging_the_funded_card_pauses_it_at_once_and_the_site_is_fine() {
    let mut w = world(Cards::Lithic, |c| c);
    fund(&mut w, "notion", 0, "25");
    // The site's own charge on the funded card: no incident.
    w.cards
        .add_card_transaction(&w.card_token, 2500, "NOTION LABS INC", "APPROVED", None);
    let r = sweep(&w.agent);
    assert!(r["new_incidents"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(source(&r, "cards")["fetched"], 1);
    assert_eq!(r["expected"], 1, "{r}");
    // Someone else charging it: card.merchant, and auto_pause pauses the card at once.
    w.cards
        .add_card_transaction(&w.card_token, 1999, "SHADYSHOP LLC", "APPROVED", None);
    let r = sweep(&w.agent);
    let i = only_new_incident(&r);
    assert_eq!(i["kind"], "card.merchant", "{i}");
    let cards = &w.cards;
    wait_for("auto_pause", || {
        (cards.cards()[0]["state"] == "PAUSED").then_some(())
    });
    let messages = owner_messages(&mut w.gw, Duration::from_secs(2));
    let signals: Vec<&String> = messages
        .iter()
        .filter(|m| m.contains("breach signal"))
        .collect();
    assert_eq!(signals.len(), 1, "{messages:?}");
    assert!(
        signals[0].contains("was charged $19.99 at SHADYSHOP LLC"),
        "{}",
        signals[0]
    );
    assert!(
        signals[0].contains("being paused (auto_pause)"),
        "{}",
        signals[0]
    );
    let listed = wait_for("the incident to say the card is paused", || {
        let l = w.agent.send("check-incidents", json!({}));
        l["incidents"][0]["summary"]
            .as_str()
            .is_some_and(|s| s.ends_with("the card is paused"))
            .then_some(l)
    });
    assert_eq!(listed["count"], 1, "{listed}");
    // The pause was a job through the card manager, audited like any write.
    let audit = w.agent.audit();
    assert!(
        audit
            .iter()
            .any(|e| e["event"] == "action.ok" && e["detail"]["cmd"] == "card.pause"),
        "no audited card.pause"
    );
    let status = w.agent.send("status", json!({"context": "notion"}));
    assert_eq!(status["card"]["state"], "PAUSED", "{status}");
    let more = owner_messages(&mut w.gw, Duration::from_secs(1));
    assert!(
        messages
            .iter()
            .chain(&more)
            .any(|m| m.contains("auto_pause: the notion card was paused")),
        "{messages:?} {more:?}"
    );
    // Nothing new next time: one request, nothing alerted.
    let again = sweep(&w.agent);
    assert!(
        again["new_incidents"].as_array().unwrap().is_empty(),
        "{again}"
    );
    assert_eq!(source(&again, "cards")["requests"], 1);
    assert!(alerts(&mut w.gw, Duration::from_secs(1)).is_empty());
}

#[test]
fn with_auto_pause_off_or_a_lockdown_the_card_stays_open_and_the_owner_is_told() {
    let mut w = world(Cards::Privacy, |c| {
        c.replace("auto_pause = true", "auto_pause = false")
    });
    fund(&mut w, "notion", 0, "25");
    w.cards
        .add_card_transaction(&w.card_token, 500, "SHADYSHOP LLC", "APPROVED", None);
    let r = sweep(&w.agent);
    let i = only_new_incident(&r);
    assert_eq!(i["kind"], "card.merchant");
    assert!(
        i["summary"]
            .as_str()
            .unwrap()
            .ends_with("the card is still open: pause it with card.pause"),
        "{i}"
    );
    // An auto_pause is started (audited as `job.started`) before the sweep is answered.
    assert!(!pause_started(&w.agent), "auto_pause is off");
    assert_eq!(w.cards.cards()[0]["state"], "OPEN");

    // auto_pause on, but a lockdown comes while the sweep reads the provider.
    let mut w = world(Cards::Privacy, |c| c);
    fund(&mut w, "notion", 0, "25");
    w.cards
        .add_card_transaction(&w.card_token, 500, "SHADYSHOP LLC", "APPROVED", None);
    w.cards.hold();
    let asked = w.agent.envelope("sweep", json!({})).to_json();
    let socket = w.agent.socket();
    let sweeping = std::thread::spawn(move || common::raw_at(&socket, asked.as_bytes()));
    wait_for("the sweep to reach the provider", || {
        (w.cards.transaction_requests() > 0).then_some(())
    });
    let locked = w.agent.send("lockdown", json!({}));
    assert_eq!(locked["status"], "locked_down", "{locked}");
    w.cards.release();
    let r = sweeping.join().unwrap();
    assert_eq!(only_new_incident(&r)["kind"], "card.merchant", "{r}");
    let held = alerts(&mut w.gw, Duration::from_secs(2));
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].contains("auto_pause is held"), "{}", held[0]);
    assert!(!pause_started(&w.agent), "auto_pause is held");
    assert_eq!(w.cards.cards()[0]["state"], "OPEN");
}

/// Whether a `card.pause` job was started. An auto_pause is started while the gate handles
/// the sweep's result, before the sweep is answered: asked after that answer, this is final
/// for that sweep (no time window to wait out).
fn pause_started(agent: &common::Agent) -> bool {
    agent
        .audit()
        .iter()
        .any(|e| e["event"] == "job.started" && e["detail"]["cmd"] == "card.pause")
}

#[test]
fn aliases_on_the_owners_domain_are_searched_with_one_hibp_request() {
    let domain = "johndoe.anonaddy.me";
    let hibp = common::hibp::hibp("k-hibp-0016");
    let mut w = world(Cards::Privacy, |c| {
        c.replace(
            "addy_domain = \"anonaddy.me\"",
            &format!("addy_domain = \"{domain}\""),
        )
        .replace(
            "hibp_domains = []",
            &format!("hibp_domains = [\"{domain}\"]"),
        )
    });
    w.agent.stop();
    w.agent
        .env
        .push(("HIBP_API_KEY".into(), "k-hibp-0016".into()));
    w.agent
        .env
        .push(("HIBP_BASE_URL".into(), hibp.base.clone()));
    w.agent.spawn();
    let figma = w
        .agent
        .send("enroll", json!({"url": "https://figma.com", "card": false}));
    let figma_alias = figma["alias"]["email"].as_str().unwrap().to_string();
    assert!(w.alias.ends_with(&format!("@{domain}")), "{}", w.alias);
    hibp.verify_domain(domain);
    let adobe = common::hibp::breach("Adobe", "adobe.com", &["Email addresses", "Passwords"]);
    hibp.add_breach(&w.alias, adobe.clone());
    hibp.add_breach(&figma_alias, adobe);
    hibp.add_breach(
        &figma_alias,
        common::hibp::breach("Gawker", "gawker.com", &["Email addresses"]),
    );
    let r = sweep(&w.agent);
    assert_eq!(source(&r, "hibp")["ok"], true, "{r}");
    let mut found: Vec<String> = r["new_incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["context"].as_str().unwrap(),
                i["sender_domain"].as_str().unwrap()
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        ["figma adobe.com", "figma gawker.com", "notion adobe.com"],
        "{r}"
    );
    let requests = hibp.requests();
    let count = |p: &str| requests.iter().filter(|q| q.contains(p)).count();
    assert_eq!(count("/breacheddomain/"), 1, "{requests:?}");
    assert_eq!(count("/breachedaccount/"), 0, "{requests:?}");
    assert_eq!(
        count("/breach/"),
        2,
        "each breach's details once: {requests:?}"
    );
    let summary = r["new_incidents"][0]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Have I Been Pwned lists a breach"),
        "{summary}"
    );
    let before = hibp.request_count();
    let again = sweep(&w.agent);
    assert!(again["new_incidents"].as_array().unwrap().is_empty());
    assert_eq!(hibp.request_count(), before, "at most once a day");
}

/// `n` transactions on a card no context holds, a second apart, the newest `newest_ago`
/// seconds ago.
fn seed_other_cards(cards: &MockServer, n: i64, newest_ago: i64) {
    let now = chrono::Utc::now();
    for k in 0..n {
        let at = (now - chrono::Duration::seconds(newest_ago + n - k))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        cards.add_card_transaction(
            &format!("other-{}", k % 7),
            300,
            "COFFEE SHOP",
            "APPROVED",
            Some(&at),
        );
    }
}

#[test]
fn the_whole_account_costs_one_request_when_nothing_is_new() {
    for kind in [Cards::Privacy, Cards::Lithic] {
        let w = world(kind, |c| c);
        // 120 older transactions: more than a page at either provider's page size.
        seed_other_cards(&w.cards, 120, 600);
        let first = sweep(&w.agent);
        let pages = source(&first, "cards")["requests"].as_u64().unwrap();
        assert!(pages >= 2, "the first sweep reads every page: {first}");
        assert_eq!(first["unmatched"], 120, "{first}");
        let quiet = sweep(&w.agent);
        assert_eq!(source(&quiet, "cards")["requests"], 1, "{quiet}");
        // 50 new ones: about 50 / page size more.
        seed_other_cards(&w.cards, 50, 5);
        let busy = sweep(&w.agent);
        let n = source(&busy, "cards")["requests"].as_u64().unwrap();
        assert!((1..=2).contains(&n), "{busy}");
        assert!(busy["unmatched"].as_u64().unwrap() >= 50, "{busy}");
        assert_eq!(source(&sweep(&w.agent), "cards")["requests"], 1);
    }
}

#[test]
fn descriptors_the_owner_accepted_belong_to_the_site() {
    let mut w = world(Cards::Privacy, |c| c);
    let bad = w.agent.send(
        "enroll",
        json!({"url": "https://www.aa.com", "merchants": ["***"]}),
    );
    common::assert_error(&bad, "invalid_args");
    let r = w.agent.send(
        "enroll",
        json!({"url": "https://www.aa.com", "merchants": ["American Airlines"], "identity": "none"}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    let status = w.agent.send("status", json!({"context": "aa"}));
    assert_eq!(
        status["merchant_descriptors"],
        json!(["AMERICAN AIRLINES"]),
        "{status}"
    );
    // Fund aa's card (the second card the provider made) through its approval.
    fund(&mut w, "aa", 1, "300");
    let aa = w.cards.cards()[1]["token"].as_str().unwrap().to_string();
    w.cards
        .add_card_transaction(&aa, 24900, "AMERICAN AIRLINES 0012345", "APPROVED", None);
    let fine = sweep(&w.agent);
    assert!(
        fine["new_incidents"].as_array().unwrap().is_empty(),
        "{fine}"
    );
    w.cards
        .add_card_transaction(&aa, 100, "AMERICAN EXPRESS TRAVEL", "APPROVED", None);
    let r = sweep(&w.agent);
    let i = only_new_incident(&r);
    assert_eq!(
        (i["kind"].as_str(), i["context"].as_str()),
        (Some("card.merchant"), Some("aa")),
        "{i}"
    );
    assert_eq!(i["sender_domain"], "AMERICAN EXPRESS TRAVEL");
}
