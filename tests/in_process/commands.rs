//! Commands through the gate to the memory providers and back.

use crate::harness::{assert_error, World};
use pane_agent::providers::CardState;
use serde_json::json;

#[tokio::test]
async fn enroll_makes_an_alias_and_a_paused_card_that_list_and_status_show() {
    let w = World::start();
    let r = w
        .send(
            "enroll",
            json!({"url": "https://www.aa.com/booking", "alias": "travel-aa"}),
        )
        .await;
    assert_eq!(r["status"], "enrolled", "{r}");
    assert_eq!(r["context"], "travel-aa");
    assert_eq!(r["domain"], "aa.com");

    // The providers made one of each, carrying the intent's marker.
    let aliases = w.aliases.aliases();
    assert_eq!(aliases.len(), 1);
    assert_eq!(w.aliases.controls().count("create"), 1);
    assert_eq!(r["alias"]["email"], aliases[0].email.as_str(), "{r}");
    assert!(aliases[0]
        .description
        .as_deref()
        .is_some_and(|d| !d.is_empty()));
    let cards = w.cards.cards();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].state, CardState::Paused);
    assert_eq!(cards[0].spend_limit, 0);
    assert_eq!(r["card"]["last_four"], cards[0].last_four.as_str(), "{r}");

    let list = w.send("list", json!({})).await;
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(
        list["contexts"][0]["alias"]["email"],
        aliases[0].email.as_str()
    );
    let status = w.send("status", json!({"context": "travel-aa"})).await;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["card"]["last_four"], cards[0].last_four.as_str());

    let events = w.audit_events().await;
    for e in ["job.started", "action.ok"] {
        assert!(events.iter().any(|x| x == e), "{e} missing from {events:?}");
    }
    w.stop().await;
}

#[tokio::test]
async fn a_card_fund_waits_for_approval_and_approve_runs_it_once() {
    let w = World::start();
    w.enroll("notion").await;

    let asked = w
        .send("card.fund", json!({"context": "notion", "limit": 25}))
        .await;
    assert_eq!(asked["status"], "approval_required", "{asked}");
    assert_eq!(
        w.cards.controls().count("update"),
        0,
        "nothing before approval"
    );
    assert_eq!(w.cards.cards()[0].state, CardState::Paused);

    let approved = w.send("approve", json!({"code": asked["code"]})).await;
    assert_eq!(approved["status"], "approved", "{approved}");
    assert_eq!(approved["result"]["card"]["state"], "OPEN", "{approved}");
    assert_eq!(approved["result"]["card"]["limit"], "25.00", "{approved}");
    let card = &w.cards.cards()[0];
    assert_eq!((card.state, card.spend_limit), (CardState::Open, 2500));

    let again = w.send("approve", json!({"code": asked["code"]})).await;
    assert_error(&again, "approval_invalid");
    assert_eq!(
        w.cards.controls().count("update"),
        1,
        "the approved change ran exactly once"
    );
    let events = w.audit_events().await;
    assert_eq!(
        events.iter().filter(|e| *e == "approval.approved").count(),
        1,
        "{events:?}"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_provider_failure_is_the_reply_and_the_next_call_goes_through() {
    let w = World::start();
    w.aliases
        .controls()
        .fail_next(pane_agent::providers::ProviderError::KeyRejected {
            provider: "memory",
            status: 401,
            message: "bad key".into(),
        });
    let r = w
        .send(
            "enroll",
            json!({"url": "https://notion.example", "alias": "notion"}),
        )
        .await;
    assert_error(&r, "key_rejected");
    assert!(w.aliases.aliases().is_empty());
    assert_eq!(
        w.cards.controls().count("create"),
        0,
        "no card without its alias"
    );

    // The same enroll again resumes the context the failure left.
    w.enroll("notion").await;
    assert_eq!(w.aliases.aliases().len(), 1);
    w.stop().await;
}
