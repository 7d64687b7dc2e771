//! The real provider clients (addy.io, SimpleLogin, Privacy.com, Lithic) against the local
//! mock servers in `common::providers`: round trips, paging, retries, faults, keys, secrets.

mod common;

use common::providers::*;
use pane_agent::providers::addy::Addy;
use pane_agent::providers::lithic::Lithic;
use pane_agent::providers::privacy::Privacy;
use pane_agent::providers::simplelogin::SimpleLogin;
use pane_agent::providers::{
    AliasProvider, CardInfo, CardProvider, CardState, CardUpdate, NewAlias, NewCard, ProviderError,
    RetryPolicy,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const KEY: &str = "test-key-0123456789";

/// Small delays and a short timeout, so the fault tests run fast.
fn policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
    }
}

/// Longer than the policy's timeout.
const SLOW: Duration = Duration::from_secs(4);

/// A marker like the agent's intent markers.
fn marker() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("pane:{}", hex::encode(b))
}

fn new_alias(marker: &str) -> NewAlias {
    NewAlias {
        description: format!("pane shop ({marker})"),
        hostname: "shop.example".into(),
    }
}

fn new_card(marker: &str) -> NewCard {
    NewCard {
        memo: format!("pane shop {marker}"),
        spend_limit_cents: 0,
    }
}

fn addy_client(m: &MockServer, key: &str) -> Addy {
    Addy::new(
        &m.base,
        key,
        "anonaddy.me",
        "random_characters",
        policy(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap()
}

fn sl_client(m: &MockServer, key: &str) -> SimpleLogin {
    SimpleLogin::new(
        &m.base,
        key,
        policy(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap()
}

fn privacy_client(m: &MockServer, key: &str) -> Privacy {
    Privacy::new(
        &m.base,
        key,
        policy(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap()
}

fn lithic_client(m: &MockServer, key: &str) -> Lithic {
    Lithic::new(
        &m.base,
        key,
        policy(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap()
}

/// Requests in the log that start with `prefix` ("POST /api/v1/aliases").
fn count(m: &MockServer, prefix: &str) -> usize {
    m.requests()
        .iter()
        .filter(|r| r.starts_with(prefix))
        .count()
}

#[track_caller]
fn assert_unavailable(e: &ProviderError) {
    assert!(
        matches!(e, ProviderError::Unavailable { .. }),
        "expected Unavailable, got {e:?}"
    );
    assert!(e.outcome_unknown());
}

#[track_caller]
fn assert_key_rejected(e: &ProviderError, status: u16) {
    match e {
        ProviderError::KeyRejected { status: s, .. } => assert_eq!(*s, status, "{e:?}"),
        other => panic!("expected KeyRejected, got {other:?}"),
    }
}

/// Neither the Debug form nor the JSON of `card` holds the number, the CVV or the expiry.
#[track_caller]
fn assert_no_card_secrets(card: &CardInfo, full: &Value) {
    let pan = full["pan"].as_str().expect("the mock card has a pan");
    let cvv = full["cvv"].as_str().expect("the mock card has a cvv");
    assert!(luhn_valid(pan), "{pan}");
    assert_eq!(card.last_four, pan[pan.len() - 4..]);
    let ser = serde_json::to_value(card).unwrap();
    let mut fields: Vec<&str> = ser
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "last_four",
            "memo",
            "spend_limit",
            "spend_limit_duration",
            "state",
            "token"
        ],
        "only these fields are kept"
    );
    for s in [format!("{card:?}"), format!("{card:#?}"), ser.to_string()] {
        assert!(!s.contains(pan), "pan leaked: {s}");
        assert!(!s.contains(&pan[..12]), "pan prefix leaked: {s}");
        assert!(!s.to_lowercase().contains("cvv"), "cvv field: {s}");
        assert!(!s.contains("exp_"), "expiry field: {s}");
        // The CVV is three digits, which may occur by chance inside a UUID, so look for it as
        // a whole value only.
        assert!(!s.contains(&format!("\"{cvv}\"")), "cvv value leaked: {s}");
    }
}

// ---------------------------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------------------------

#[test]
fn mock_card_numbers_are_luhn_valid_and_the_check_works() {
    assert!(luhn_valid("4111111111111111"));
    assert!(luhn_valid("4242424242424242"));
    assert!(!luhn_valid("4111111111111112"));
    assert!(!luhn_valid("41111111111111a1"));
    let m = privacy(KEY);
    m.seed_cards(50);
    for card in m.cards() {
        let pan = card["pan"].as_str().unwrap();
        assert_eq!(pan.len(), 16);
        assert!(pan.starts_with("4111") && luhn_valid(pan), "{pan}");
        assert_eq!(card["last_four"].as_str().unwrap(), &pan[12..]);
        assert_eq!(card["cvv"].as_str().unwrap().len(), 3);
    }
}

#[test]
fn plain_http_to_a_non_loopback_host_is_refused() {
    let p = policy();
    let refused = |r: Result<(), ProviderError>, what: &str| match r {
        Err(ProviderError::NotConfigured { hint, .. }) => {
            assert!(hint.contains("base URL"), "{what}: {hint}")
        }
        other => panic!("{what}: expected NotConfigured, got {other:?}"),
    };
    for base in [
        "http://app.example.com/api/v1",
        "http://10.0.0.1/api/v1",
        "ftp://127.0.0.1/x",
    ] {
        refused(
            Addy::new(
                base,
                KEY,
                "anonaddy.me",
                "random_characters",
                p,
                &pane_agent::egress::Egress::direct(),
            )
            .map(|_| ()),
            base,
        );
        refused(
            SimpleLogin::new(base, KEY, p, &pane_agent::egress::Egress::direct()).map(|_| ()),
            base,
        );
        refused(
            Privacy::new(base, KEY, p, &pane_agent::egress::Egress::direct()).map(|_| ()),
            base,
        );
        refused(
            Lithic::new(base, KEY, p, &pane_agent::egress::Egress::direct()).map(|_| ()),
            base,
        );
    }
    for base in [
        "https://app.example.com",
        "http://127.0.0.1:9/v1",
        "http://localhost:9",
        "http://[::1]:9",
    ] {
        assert!(
            Addy::new(
                base,
                KEY,
                "anonaddy.me",
                "random_characters",
                p,
                &pane_agent::egress::Egress::direct()
            )
            .is_ok(),
            "{base}"
        );
        assert!(
            SimpleLogin::new(base, KEY, p, &pane_agent::egress::Egress::direct()).is_ok(),
            "{base}"
        );
        assert!(
            Privacy::new(base, KEY, p, &pane_agent::egress::Egress::direct()).is_ok(),
            "{base}"
        );
        assert!(
            Lithic::new(base, KEY, p, &pane_agent::egress::Egress::direct()).is_ok(),
            "{base}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// addy.io
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn addy_round_trip() {
    let m = addy(KEY);
    let c = addy_client(&m, KEY);
    let mk = marker();
    let a = c.create(&new_alias(&mk)).await.unwrap();
    assert!(a.email.ends_with("@anonaddy.me"), "{a:?}");
    assert!(a.active);
    assert_eq!(
        a.description.as_deref(),
        Some(format!("pane shop ({mk})").as_str())
    );
    assert_eq!(m.aliases().len(), 1);
    assert_eq!(m.aliases()[0]["id"], a.id.as_str());

    assert_eq!(c.get(&a.id).await.unwrap(), a);
    c.set_active(&a.id, false).await.unwrap();
    assert!(!c.get(&a.id).await.unwrap().active);
    c.set_active(&a.id, false).await.unwrap(); // idempotent
    assert!(!m.aliases()[0]["active"].as_bool().unwrap());
    c.set_active(&a.id, true).await.unwrap();
    assert!(c.get(&a.id).await.unwrap().active);

    let (all, requests) = c.list().await.unwrap();
    assert_eq!(requests, 1);
    assert_eq!(all.len(), 1);
    assert_eq!(
        c.find_by_marker(&mk).await.unwrap().map(|f| f.id),
        Some(a.id.clone())
    );
    assert_eq!(c.find_by_marker(&marker()).await.unwrap(), None);

    c.delete(&a.id).await.unwrap();
    assert!(
        m.aliases().is_empty(),
        "soft-deleted aliases are not listed"
    );
    assert!(c.list().await.unwrap().0.is_empty());
    // Soft deleted: still readable, and no longer forwarding.
    assert!(!c.get(&a.id).await.unwrap().active);
    // Deleting again (an already-gone alias is 404) is still success.
    c.delete(&a.id).await.unwrap();

    let log = m.requests();
    assert_eq!(log[0], "POST /api/v1/aliases");
    assert!(
        log.contains(&format!("DELETE /api/v1/active-aliases/{}", a.id)),
        "{log:?}"
    );
    assert!(
        log.contains(&"POST /api/v1/active-aliases".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&format!("DELETE /api/v1/aliases/{}", a.id)),
        "{log:?}"
    );
}

#[tokio::test]
async fn addy_lists_250_aliases_in_three_pages_of_100() {
    let m = addy(KEY);
    m.seed_aliases(250);
    let c = addy_client(&m, KEY);
    let (all, requests) = c.list().await.unwrap();
    assert_eq!(all.len(), 250);
    assert_eq!(requests, 3);
    let log = m.requests();
    assert_eq!(log.len(), 3, "{log:?}");
    for (i, line) in log.iter().enumerate() {
        assert!(line.starts_with("GET /api/v1/aliases?"), "{line}");
        assert!(line.contains("page[size]=100"), "{line}");
        assert!(line.contains(&format!("page[number]={}", i + 1)), "{line}");
    }
    let mut ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250, "no alias twice");
    assert!(all
        .iter()
        .any(|a| a.description.as_deref() == Some("seed-0")));
    assert!(all
        .iter()
        .any(|a| a.description.as_deref() == Some("seed-249")));
}

#[tokio::test]
async fn addy_find_by_marker_uses_the_search_filter() {
    let m = addy(KEY);
    m.seed_aliases(150);
    let c = addy_client(&m, KEY);
    let mk = marker();
    let a = c.create(&new_alias(&mk)).await.unwrap();
    m.seed_aliases(150);
    m.clear_requests();
    let found = c.find_by_marker(&mk).await.unwrap().expect("found");
    assert_eq!(found.id, a.id);
    let log = m.requests();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains(&format!("filter[search]={mk}")), "{log:?}");
}

#[tokio::test]
async fn addy_mock_follows_the_documented_list_shape() {
    let m = addy(KEY);
    m.seed_aliases(5);
    let http = reqwest::Client::new();
    let get = |q: &'static str| {
        http.get(format!("{}/aliases?{q}", m.base))
            .bearer_auth(KEY)
            .header("x-requested-with", "XMLHttpRequest")
            .header("accept", "application/json")
            .send()
    };
    let r = get("page%5Bsize%5D=2&page%5Bnumber%5D=2").await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let meta = &v["meta"];
    assert_eq!(
        (
            &meta["current_page"],
            &meta["last_page"],
            &meta["per_page"],
            &meta["total"],
            &meta["from"],
            &meta["to"]
        ),
        (
            &json!(2),
            &json!(3),
            &json!(2),
            &json!(5),
            &json!(3),
            &json!(4)
        )
    );
    assert!(v["links"]["next"]
        .as_str()
        .unwrap()
        .contains("page%5Bnumber%5D=3"));
    assert!(v["links"]["prev"]
        .as_str()
        .unwrap()
        .contains("page%5Bnumber%5D=1"));
    let alias = &v["data"][0];
    for field in [
        "id",
        "email",
        "active",
        "description",
        "emails_forwarded",
        "emails_blocked",
        "last_forwarded",
        "created_at",
        "deleted_at",
        "local_part",
        "domain",
    ] {
        assert!(alias.get(field).is_some(), "alias lacks {field}: {alias}");
    }

    let r = get("page%5Bsize%5D=101").await.unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["errors"]["page.size"].is_array(), "{v}");

    let r = get("filter%5Bsearch%5D=seed-3").await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["total"], 1, "{v}");
    let r = get("filter%5Bactive%5D=false").await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["meta"]["total"], 0, "{v}");

    // The prototype-only route, and a 404 in Laravel's shape.
    let id = m.aliases()[0]["id"].as_str().unwrap().to_string();
    let r = http
        .get(format!("{}/aliases/{id}/emails", m.base))
        .bearer_auth(KEY)
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"data": []}));
    let r = http
        .get(format!(
            "{}/aliases/00000000-0000-4000-8000-000000000000",
            m.base
        ))
        .bearer_auth(KEY)
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("No query results"));

    // The control route is neither logged nor faulted.
    m.push_fault(Fault::status(500));
    let before = m.request_count();
    let state: Value = http
        .get(format!("{}/__state", m.origin()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["aliases"].as_array().unwrap().len(), 5);
    assert_eq!(m.request_count(), before);
    assert_eq!(m.pending_faults(), 1);
}

#[tokio::test]
async fn addy_429_waits_for_retry_after_then_succeeds() {
    let m = addy(KEY);
    m.seed_aliases(3);
    let c = addy_client(&m, KEY);
    m.push_fault(Fault::Status {
        status: 429,
        body: json!({"message": "Too Many Attempts."}),
        retry_after: Some(1),
    });
    let started = Instant::now();
    let (all, _) = c.list().await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After not honoured"
    );
    let log = m.requests();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0], log[1], "the same request, sent again");
}

#[tokio::test]
async fn addy_429_beyond_the_policy_is_reported_at_once() {
    let m = addy(KEY);
    let c = addy_client(&m, KEY);
    m.push_fault(Fault::rate_limited(600));
    let e = c
        .get("7c1a2f3e-9b0d-4c1e-8f4a-2d6b5e9c0a11")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ProviderError::RateLimited {
            provider: "addy.io",
            retry_after_secs: 600
        }
    );
    assert_eq!(m.request_count(), 1);
    // The hourly creation cap: plain text and no Retry-After.
    m.push_fault(Fault::Status {
        status: 429,
        body: json!("You have reached your hourly limit for creating new aliases"),
        retry_after: None,
    });
    let e = c.create(&new_alias(&marker())).await.unwrap_err();
    assert!(matches!(e, ProviderError::RateLimited { .. }), "{e:?}");
    assert!(!e.outcome_unknown());
    assert_eq!(count(&m, "POST"), 1);
    assert!(m.aliases().is_empty());
}

#[tokio::test]
async fn addy_500_then_success_for_reads_and_state_changes() {
    let m = addy(KEY);
    let c = addy_client(&m, KEY);
    let a = c.create(&new_alias(&marker())).await.unwrap();
    m.clear_requests();
    m.push_fault(Fault::status(500));
    assert_eq!(c.get(&a.id).await.unwrap().id, a.id);
    assert_eq!(m.request_count(), 2);
    // A deactivation that was applied but answered 500 is repeated harmlessly.
    m.push_fault(Fault::ApplyThenStatus(500));
    c.set_active(&a.id, false).await.unwrap();
    assert_eq!(count(&m, "DELETE /api/v1/active-aliases/"), 2);
    assert_eq!(m.aliases()[0]["active"], false);
    // So is a delete: the second attempt meets 404, which is what we wanted.
    m.push_fault(Fault::ApplyThenStatus(500));
    c.delete(&a.id).await.unwrap();
    assert_eq!(count(&m, "DELETE /api/v1/aliases/"), 2);
    assert!(m.aliases().is_empty());
}

#[tokio::test]
async fn addy_create_answered_500_after_creating_is_not_retried() {
    let m = addy(KEY);
    let c = addy_client(&m, KEY);
    let mk = marker();
    m.push_fault_for("POST", "/aliases", Fault::ApplyThenStatus(500));
    let e = c.create(&new_alias(&mk)).await.unwrap_err();
    assert_unavailable(&e);
    assert_eq!(count(&m, "POST"), 1);
    assert_eq!(m.aliases().len(), 1, "exactly one alias exists");
    // The caller reconciles by the marker.
    let found = c
        .find_by_marker(&mk)
        .await
        .unwrap()
        .expect("the alias the server made");
    assert_eq!(m.aliases()[0]["id"], found.id.as_str());
}

#[tokio::test]
async fn addy_create_is_retried_when_the_server_certainly_did_nothing() {
    let m = addy(KEY);
    let c = addy_client(&m, KEY);
    m.push_fault(Fault::status(503));
    m.push_fault(Fault::rate_limited(0));
    c.create(&new_alias(&marker())).await.unwrap();
    assert_eq!(count(&m, "POST"), 3);
    assert_eq!(m.aliases().len(), 1);
}

#[tokio::test]
async fn addy_timeouts_become_unavailable() {
    let m = addy(KEY);
    let c = addy_client(&m, KEY);
    // A read is retried, each attempt times out.
    for _ in 0..3 {
        m.push_fault(Fault::Delay(SLOW));
    }
    let e = c.list().await.unwrap_err();
    assert_unavailable(&e);
    assert!(e.to_string().contains("timed out"), "{e}");
    assert_eq!(m.request_count(), 3);
    // A slow read that clears on the retry.
    m.clear_requests();
    m.push_fault(Fault::Delay(SLOW));
    c.list().await.unwrap();
    assert_eq!(m.request_count(), 2);
    // A create that times out is sent once; the slow server made the alias anyway.
    m.clear_requests();
    let mk = marker();
    m.push_fault(Fault::Delay(SLOW));
    let e = c.create(&new_alias(&mk)).await.unwrap_err();
    assert_unavailable(&e);
    assert_eq!(m.request_count(), 1);
    assert!(c.find_by_marker(&mk).await.unwrap().is_some());
}

#[tokio::test]
async fn addy_connection_reset() {
    let m = addy(KEY);
    let c = addy_client(&m, KEY);
    m.push_fault(Fault::Reset);
    let e = c.create(&new_alias(&marker())).await.unwrap_err();
    assert_unavailable(&e);
    assert_eq!(m.request_count(), 1);
    assert!(m.aliases().is_empty());
    m.push_fault(Fault::Reset);
    let (all, requests) = c.list().await.unwrap();
    assert!(all.is_empty());
    assert_eq!(requests, 1);
    assert_eq!(m.request_count(), 3, "{:?}", m.requests());
}

#[tokio::test]
async fn addy_wrong_key_is_rejected_without_retry() {
    let m = addy(KEY);
    let c = addy_client(&m, "wrong-key");
    let e = c.list().await.unwrap_err();
    assert_key_rejected(&e, 401);
    assert!(e.to_string().contains("Unauthenticated."), "{e}");
    assert!(!e.to_string().contains("wrong-key"), "{e}");
    assert_eq!(m.request_count(), 1);
    let e = c.create(&new_alias(&marker())).await.unwrap_err();
    assert_key_rejected(&e, 401);
    assert!(m.aliases().is_empty());
}

// ---------------------------------------------------------------------------------------------
// SimpleLogin
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn simplelogin_round_trip() {
    let m = simplelogin(KEY);
    let c = sl_client(&m, KEY);
    let mk = marker();
    let a = c.create(&new_alias(&mk)).await.unwrap();
    assert!(a.id.parse::<u64>().is_ok(), "integer ids: {a:?}");
    assert!(a.email.contains('@'));
    assert!(a.active);
    assert_eq!(
        a.description.as_deref(),
        Some(format!("pane shop ({mk})").as_str())
    );
    assert_eq!(
        m.requests()[0],
        "POST /api/alias/random/new?hostname=shop.example"
    );
    assert_eq!(m.aliases()[0]["note"], format!("pane shop ({mk})"));

    assert_eq!(c.get(&a.id).await.unwrap(), a);
    m.clear_requests();
    c.set_active(&a.id, false).await.unwrap();
    assert_eq!(m.aliases()[0]["enabled"], false);
    assert_eq!(count(&m, "POST /api/aliases/"), 1);
    // Already disabled: read, no toggle.
    c.set_active(&a.id, false).await.unwrap();
    assert_eq!(count(&m, "POST /api/aliases/"), 1);
    assert_eq!(m.aliases()[0]["enabled"], false);
    c.set_active(&a.id, true).await.unwrap();
    assert_eq!(m.aliases()[0]["enabled"], true);

    let (all, requests) = c.list().await.unwrap();
    assert_eq!((all.len(), requests), (1, 1));
    assert_eq!(
        c.find_by_marker(&mk).await.unwrap().map(|f| f.id),
        Some(a.id.clone())
    );
    assert_eq!(c.find_by_marker(&marker()).await.unwrap(), None);

    c.delete(&a.id).await.unwrap();
    assert!(m.aliases().is_empty());
    // A missing alias: 400 "Unknown error" on GET, 403 "Forbidden" on DELETE.
    let e = c.get(&a.id).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Rejected { status: 400, .. }),
        "{e:?}"
    );
    c.delete(&a.id).await.unwrap();
}

#[tokio::test]
async fn simplelogin_lists_45_aliases_in_three_pages() {
    let m = simplelogin(KEY);
    m.seed_aliases(45);
    let c = sl_client(&m, KEY);
    let (all, requests) = c.list().await.unwrap();
    assert_eq!(all.len(), 45);
    assert_eq!(requests, 3);
    assert_eq!(
        m.requests(),
        [
            "GET /api/v2/aliases?page_id=0",
            "GET /api/v2/aliases?page_id=1",
            "GET /api/v2/aliases?page_id=2"
        ]
    );
    // Exactly two full pages: the third, empty, page says the list is over.
    let m = simplelogin(KEY);
    m.seed_aliases(40);
    let (all, requests) = sl_client(&m, KEY).list().await.unwrap();
    assert_eq!((all.len(), requests), (40, 3));
}

#[tokio::test]
async fn simplelogin_find_by_marker_pages_until_found() {
    let m = simplelogin(KEY);
    let c = sl_client(&m, KEY);
    let mk = marker();
    let a = c.create(&new_alias(&mk)).await.unwrap();
    m.seed_aliases(30); // newer ones come first, so the alias is on page 1
    m.clear_requests();
    assert_eq!(
        c.find_by_marker(&mk).await.unwrap().map(|f| f.id),
        Some(a.id)
    );
    assert_eq!(m.request_count(), 2, "{:?}", m.requests());
}

#[tokio::test]
async fn simplelogin_mock_follows_the_documented_shapes() {
    let m = simplelogin(KEY);
    m.seed_aliases(1);
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/v2/aliases", m.base))
        .header("authentication", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "page_id must be provided in request query"})
    );
    let id = m.aliases()[0]["id"].as_u64().unwrap();
    let r = http
        .get(format!("{}/api/aliases/{id}/activities?page_id=0", m.base))
        .header("authentication", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"activities": []}));
    let r = http
        .post(format!("{}/api/alias/random/new", m.base))
        .header("authentication", KEY)
        .json(&json!({"note": "n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["alias"], a["email"]);
    for field in [
        "id",
        "email",
        "enabled",
        "note",
        "nb_forward",
        "nb_block",
        "nb_reply",
        "creation_timestamp",
    ] {
        assert!(a.get(field).is_some(), "alias lacks {field}: {a}");
    }
    let r = http
        .get(format!("{}/api/v2/aliases?page_id=0", m.base))
        .header("authorization", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "Wrong api key"})
    );
}

#[tokio::test]
async fn simplelogin_429_with_retry_after_then_success() {
    let m = simplelogin(KEY);
    let c = sl_client(&m, KEY);
    let a = c.create(&new_alias(&marker())).await.unwrap();
    m.clear_requests();
    m.push_fault(Fault::rate_limited(1));
    let started = Instant::now();
    assert_eq!(c.get(&a.id).await.unwrap().id, a.id);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(m.request_count(), 2);
}

#[tokio::test]
async fn simplelogin_500_then_success_for_reads() {
    let m = simplelogin(KEY);
    m.seed_aliases(25);
    let c = sl_client(&m, KEY);
    m.push_fault_for("GET", "/api/v2/aliases", Fault::status(500));
    m.push_fault_for("GET", "/api/v2/aliases", Fault::status(502));
    let (all, requests) = c.list().await.unwrap();
    assert_eq!((all.len(), requests), (25, 2));
    assert_eq!(m.request_count(), 4);
}

#[tokio::test]
async fn simplelogin_toggle_answered_500_after_toggling_is_not_undone() {
    let m = simplelogin(KEY);
    let c = sl_client(&m, KEY);
    let a = c.create(&new_alias(&marker())).await.unwrap();
    m.clear_requests();
    m.push_fault_for("POST", "/api/aliases/", Fault::ApplyThenStatus(500));
    c.set_active(&a.id, false).await.unwrap();
    assert_eq!(
        m.aliases()[0]["enabled"],
        false,
        "the toggle must not be sent twice"
    );
    assert_eq!(count(&m, "POST"), 1, "{:?}", m.requests());
    // Likewise a toggle that timed out.
    m.push_fault_for("POST", "/api/aliases/", Fault::Delay(SLOW));
    c.set_active(&a.id, true).await.unwrap();
    assert_eq!(m.aliases()[0]["enabled"], true);
    assert_eq!(count(&m, "POST"), 2);
}

#[tokio::test]
async fn simplelogin_delete_answered_500_after_deleting_succeeds() {
    let m = simplelogin(KEY);
    let c = sl_client(&m, KEY);
    let a = c.create(&new_alias(&marker())).await.unwrap();
    m.push_fault_for("DELETE", "/api/aliases/", Fault::ApplyThenStatus(500));
    c.delete(&a.id).await.unwrap();
    assert!(m.aliases().is_empty());
    assert_eq!(
        count(&m, "DELETE"),
        2,
        "retried, then 403 for the missing alias: {:?}",
        m.requests()
    );
}

#[tokio::test]
async fn simplelogin_create_answered_500_after_creating_is_not_retried() {
    let m = simplelogin(KEY);
    let c = sl_client(&m, KEY);
    let mk = marker();
    m.push_fault_for("POST", "/api/alias/random/new", Fault::ApplyThenStatus(500));
    let e = c.create(&new_alias(&mk)).await.unwrap_err();
    assert_unavailable(&e);
    assert_eq!(m.aliases().len(), 1);
    assert_eq!(count(&m, "POST"), 1);
    assert!(c.find_by_marker(&mk).await.unwrap().is_some());
}

#[tokio::test]
async fn simplelogin_timeout_becomes_unavailable() {
    let m = simplelogin(KEY);
    let c = sl_client(&m, KEY);
    for _ in 0..3 {
        m.push_fault(Fault::Delay(SLOW));
    }
    let e = c.list().await.unwrap_err();
    assert_unavailable(&e);
    assert_eq!(m.request_count(), 3);
}

#[tokio::test]
async fn simplelogin_wrong_key_is_rejected() {
    let m = simplelogin(KEY);
    let e = sl_client(&m, "nope").list().await.unwrap_err();
    assert_key_rejected(&e, 401);
    assert!(e.to_string().contains("Wrong api key"), "{e}");
    assert_eq!(m.request_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Privacy.com
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn privacy_round_trip() {
    let m = privacy(KEY);
    let c = privacy_client(&m, KEY);
    let mk = marker();
    let card = c.create(&new_card(&mk)).await.unwrap();
    assert_eq!(card.state, CardState::Paused);
    assert_eq!(card.memo, format!("pane shop {mk}"));
    assert_eq!(card.spend_limit, 0);
    assert_eq!(card.spend_limit_duration, "FOREVER");
    assert_eq!(m.cards().len(), 1);
    assert_eq!(m.cards()[0]["type"], "MERCHANT_LOCKED");
    assert_no_card_secrets(&card, &m.cards()[0]);

    let open = c
        .update(
            &card.token,
            &CardUpdate {
                state: Some(CardState::Open),
                spend_limit_cents: Some(2500),
            },
        )
        .await
        .unwrap();
    assert_eq!((open.state, open.spend_limit), (CardState::Open, 2500));
    let (all, requests) = c.list().await.unwrap();
    assert_eq!((all.len(), requests), (1, 1));
    assert_eq!(all[0], open);
    assert_no_card_secrets(&all[0], &m.cards()[0]);
    assert_eq!(c.find_by_marker(&mk).await.unwrap(), Some(open.clone()));
    assert_eq!(c.find_by_marker(&marker()).await.unwrap(), None);

    m.add_transaction(&card.token, 1999, "COFFEE SHOP");
    m.add_transaction(&card.token, 500, "NETFLIX.COM");
    m.add_transaction("some-other-card", 100, "ELSEWHERE");
    let txns = c.transactions(&card.token).await.unwrap();
    assert_eq!(txns.len(), 2);
    assert_eq!(
        (txns[0].amount, txns[0].merchant.as_str()),
        (500, "NETFLIX.COM")
    );
    assert_eq!(
        (txns[1].amount, txns[1].merchant.as_str()),
        (1999, "COFFEE SHOP")
    );
    assert_eq!(txns[0].status, "SETTLED");
    let shown = format!("{txns:?}{}", serde_json::to_string(&txns).unwrap());
    assert!(
        !shown.contains(m.cards()[0]["pan"].as_str().unwrap()),
        "{shown}"
    );

    let closed = c
        .update(
            &card.token,
            &CardUpdate {
                state: Some(CardState::Closed),
                spend_limit_cents: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(closed.state, CardState::Closed);
    let e = c
        .update(
            &card.token,
            &CardUpdate {
                state: Some(CardState::Open),
                spend_limit_cents: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Rejected { status: 400, .. }),
        "{e:?}"
    );
    assert_eq!(m.cards()[0]["state"], "CLOSED");
}

#[tokio::test]
async fn privacy_lists_more_than_one_page() {
    let m = privacy(KEY);
    m.seed_cards(120);
    let c = privacy_client(&m, KEY);
    let (all, requests) = c.list().await.unwrap();
    assert_eq!((all.len(), requests), (120, 3));
    assert_eq!(
        m.requests(),
        [
            "GET /v1/cards?page=1&page_size=50",
            "GET /v1/cards?page=2&page_size=50",
            "GET /v1/cards?page=3&page_size=50"
        ]
    );
    let mut tokens: Vec<&str> = all.iter().map(|c| c.token.as_str()).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 120);
    let full = m.cards();
    for card in all.iter().take(5) {
        let raw = full
            .iter()
            .find(|c| c["token"] == card.token.as_str())
            .unwrap();
        assert_no_card_secrets(card, raw);
    }
}

#[tokio::test]
async fn privacy_mock_follows_the_documented_shapes() {
    let m = privacy(KEY);
    m.seed_cards(3);
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", m.base))
            .header("authorization", format!("api-key {KEY}"))
            .send()
    };
    let v: Value = get("/cards?page=1&page_size=2")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&v["page"], &v["total_entries"], &v["total_pages"]),
        (&json!(1), &json!(3), &json!(2))
    );
    let card = &v["data"][0];
    for field in [
        "token",
        "last_four",
        "pan",
        "cvv",
        "exp_month",
        "exp_year",
        "memo",
        "spend_limit",
        "spend_limit_duration",
        "state",
        "type",
        "hostname",
        "created",
    ] {
        assert!(card.get(field).is_some(), "card lacks {field}: {card}");
    }
    let r = get("/cards?foo=1").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "[foo] is not a valid parameter"})
    );
    let r = http
        .get(format!("{}/cards", m.base))
        .header("authorization", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Whole dollars only.
    let r = http
        .post(format!("{}/cards", m.base))
        .header("authorization", format!("api-key {KEY}"))
        .json(&json!({"type": "MERCHANT_LOCKED", "spend_limit": 2550}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn privacy_without_an_issuing_key_says_so() {
    let m = privacy(KEY);
    m.seed_cards(1);
    m.set_write_access(false);
    let c = privacy_client(&m, KEY);
    let e = c.create(&new_card(&marker())).await.unwrap_err();
    assert_key_rejected(&e, 401);
    let text = e.to_string();
    assert!(text.contains("Issuing API key"), "{text}");
    assert!(m.cards().len() == 1, "nothing created");
    let token = m.cards()[0]["token"].as_str().unwrap().to_string();
    let e = c
        .update(
            &token,
            &CardUpdate {
                state: Some(CardState::Paused),
                spend_limit_cents: None,
            },
        )
        .await
        .unwrap_err();
    assert_key_rejected(&e, 401);
    assert!(e.to_string().contains("Issuing API key"), "{e}");
    // Reads still work with such a key.
    assert_eq!(c.list().await.unwrap().0.len(), 1);
    m.set_write_access(true);
    c.create(&new_card(&marker())).await.unwrap();
}

#[tokio::test]
async fn privacy_429_and_500_then_success() {
    let m = privacy(KEY);
    m.seed_cards(2);
    let c = privacy_client(&m, KEY);
    m.push_fault(Fault::rate_limited(1));
    let started = Instant::now();
    assert_eq!(c.list().await.unwrap().0.len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(m.request_count(), 2);
    m.clear_requests();
    m.push_fault(Fault::status(500));
    let token = m.cards()[0]["token"].as_str().unwrap().to_string();
    let u = CardUpdate {
        state: Some(CardState::Paused),
        spend_limit_cents: None,
    };
    assert_eq!(c.update(&token, &u).await.unwrap().state, CardState::Paused);
    assert_eq!(count(&m, "PATCH /v1/cards/"), 2);
}

#[tokio::test]
async fn privacy_create_answered_500_after_creating_is_not_retried() {
    let m = privacy(KEY);
    let c = privacy_client(&m, KEY);
    let mk = marker();
    m.push_fault_for("POST", "/cards", Fault::ApplyThenStatus(500));
    let e = c.create(&new_card(&mk)).await.unwrap_err();
    assert_unavailable(&e);
    assert_eq!(m.cards().len(), 1, "exactly one card exists");
    assert_eq!(count(&m, "POST"), 1);
    let found = c
        .find_by_marker(&mk)
        .await
        .unwrap()
        .expect("found by its memo");
    assert_eq!(m.cards()[0]["token"], found.token.as_str());
}

#[tokio::test]
async fn privacy_timeout_and_wrong_key() {
    let m = privacy(KEY);
    let c = privacy_client(&m, KEY);
    m.push_fault(Fault::Delay(SLOW));
    let e = c.create(&new_card(&marker())).await.unwrap_err();
    assert_unavailable(&e);
    assert_eq!(m.request_count(), 1);

    m.clear_requests();
    let e = privacy_client(&m, "not-the-key").list().await.unwrap_err();
    assert_key_rejected(&e, 401);
    assert_eq!(m.request_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Lithic
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lithic_round_trip() {
    let m = lithic(KEY);
    let c = lithic_client(&m, KEY);
    let mk = marker();
    let card = c.create(&new_card(&mk)).await.unwrap();
    assert_eq!(card.state, CardState::Paused);
    assert_eq!(card.memo, format!("pane shop {mk}"));
    assert_no_card_secrets(&card, &m.cards()[0]);
    assert_eq!(m.requests()[0], "POST /v1/cards");

    let set = |state| CardUpdate {
        state: Some(state),
        spend_limit_cents: None,
    };
    assert_eq!(
        c.update(&card.token, &set(CardState::Open))
            .await
            .unwrap()
            .state,
        CardState::Open
    );
    assert_eq!(
        c.update(&card.token, &set(CardState::Paused))
            .await
            .unwrap()
            .state,
        CardState::Paused
    );
    let limited = c
        .update(
            &card.token,
            &CardUpdate {
                state: None,
                spend_limit_cents: Some(1250),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (limited.spend_limit, limited.state),
        (1250, CardState::Paused)
    );

    let (all, requests) = c.list().await.unwrap();
    assert_eq!((all.len(), requests), (1, 1));
    assert_eq!(all[0], limited);
    assert_eq!(c.find_by_marker(&mk).await.unwrap(), Some(limited.clone()));
    assert_eq!(c.find_by_marker(&marker()).await.unwrap(), None);

    m.add_transaction(&card.token, 2500, "COFFEE SHOP");
    let txns = c.transactions(&card.token).await.unwrap();
    assert_eq!(txns.len(), 1);
    assert_eq!(
        (
            txns[0].amount,
            txns[0].merchant.as_str(),
            txns[0].status.as_str()
        ),
        (2500, "COFFEE SHOP", "SETTLED")
    );
    // Another card's transactions are not this card's.
    let other = c.create(&new_card(&marker())).await.unwrap();
    m.add_transaction(&other.token, 700, "ELSEWHERE");
    assert_eq!(c.transactions(&card.token).await.unwrap().len(), 1);
    assert_eq!(
        c.transactions(&other.token).await.unwrap()[0].merchant,
        "ELSEWHERE"
    );

    assert_eq!(
        c.update(&card.token, &set(CardState::Closed))
            .await
            .unwrap()
            .state,
        CardState::Closed
    );
    let e = c
        .update(&card.token, &set(CardState::Open))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Rejected { status: 400, .. }),
        "{e:?}"
    );
    assert_eq!(m.cards()[0]["state"], "CLOSED", "closing is final");
}

#[tokio::test]
async fn lithic_lists_by_cursor_over_several_pages() {
    let m = lithic(KEY);
    m.seed_cards(250);
    let c = lithic_client(&m, KEY);
    let (all, requests) = c.list().await.unwrap();
    assert_eq!((all.len(), requests), (250, 3));
    let log = m.requests();
    assert_eq!(log[0], "GET /v1/cards?page_size=100");
    assert_eq!(
        log[1],
        format!(
            "GET /v1/cards?page_size=100&starting_after={}",
            all[99].token
        )
    );
    assert_eq!(
        log[2],
        format!(
            "GET /v1/cards?page_size=100&starting_after={}",
            all[199].token
        )
    );
    let mut tokens: Vec<&str> = all.iter().map(|c| c.token.as_str()).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 250);
    // Newest first.
    assert_eq!(all[0].memo, "seed-249");
    assert_eq!(all[249].memo, "seed-0");
}

#[tokio::test]
async fn lithic_mock_follows_the_documented_shapes() {
    let m = lithic(KEY);
    m.seed_cards(5);
    let http = reqwest::Client::new();
    let get = |q: String| {
        http.get(format!("{}/v1/cards{q}", m.base))
            .header("authorization", KEY)
            .send()
    };
    let v: Value = get("?page_size=2".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["has_more"], true);
    let first = v["data"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    assert!(
        first[0].get("pan").is_none() && first[0].get("cvv").is_none(),
        "list items are non-PCI"
    );
    assert!(first[0].get("last_four").is_some());
    let after = first[1]["token"].as_str().unwrap();
    let v: Value = get(format!("?page_size=2&starting_after={after}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = v["data"].as_array().unwrap().clone();
    let before = second[0]["token"].as_str().unwrap();
    let v: Value = get(format!("?page_size=2&ending_before={before}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["data"].as_array().unwrap(),
        &first,
        "ending_before goes back a page"
    );
    assert_eq!(v["has_more"], false);
    // One card by token carries the PAN.
    let one: Value = http
        .get(format!("{}/v1/cards/{after}", m.base))
        .header("authorization", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(luhn_valid(one["pan"].as_str().unwrap()), "{one}");
    let r = http
        .get(format!("{}/v1/cards", m.base))
        .header("authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"].is_string() && body["debugging_request_id"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn lithic_429_and_500_then_success() {
    let m = lithic(KEY);
    m.seed_cards(3);
    let c = lithic_client(&m, KEY);
    m.push_fault(Fault::rate_limited(1));
    m.push_fault(Fault::status(500));
    let started = Instant::now();
    assert_eq!(c.list().await.unwrap().0.len(), 3);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(m.request_count(), 3);
    let token = m.cards()[0]["token"].as_str().unwrap().to_string();
    m.clear_requests();
    m.push_fault_for("GET", "/v1/transactions", Fault::status(503));
    m.add_transaction(&token, 100, "X");
    assert_eq!(c.transactions(&token).await.unwrap().len(), 1);
    assert_eq!(m.request_count(), 2);
}

#[tokio::test]
async fn lithic_create_answered_500_after_creating_is_not_retried() {
    let m = lithic(KEY);
    let c = lithic_client(&m, KEY);
    let mk = marker();
    m.push_fault_for("POST", "/v1/cards", Fault::ApplyThenStatus(500));
    let e = c.create(&new_card(&mk)).await.unwrap_err();
    assert_unavailable(&e);
    assert_eq!(m.cards().len(), 1);
    assert_eq!(count(&m, "POST"), 1);
    assert_eq!(
        c.find_by_marker(&mk).await.unwrap().map(|f| f.token),
        m.cards()[0]["token"].as_str().map(str::to_string)
    );
}

#[tokio::test]
async fn lithic_timeout_reset_and_wrong_key() {
    let m = lithic(KEY);
    let c = lithic_client(&m, KEY);
    for _ in 0..3 {
        m.push_fault(Fault::Delay(SLOW));
    }
    let e = c.list().await.unwrap_err();
    assert_unavailable(&e);
    assert_eq!(m.request_count(), 3);

    m.clear_requests();
    m.push_fault(Fault::Reset);
    let e = c.create(&new_card(&marker())).await.unwrap_err();
    assert_unavailable(&e);
    assert!(m.cards().is_empty());
    assert_eq!(m.request_count(), 1);

    m.clear_requests();
    let e = lithic_client(&m, "bad").list().await.unwrap_err();
    assert_key_rejected(&e, 401);
    assert_eq!(m.request_count(), 1);
}

#[tokio::test]
async fn lithic_without_an_issuing_key_is_key_rejected() {
    let m = lithic(KEY);
    m.set_write_access(false);
    let e = lithic_client(&m, KEY)
        .create(&new_card(&marker()))
        .await
        .unwrap_err();
    assert_key_rejected(&e, 401);
    assert!(e.to_string().contains("Issuing API key required"), "{e}");
    assert!(m.cards().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------------------------

/// A one-shot raw HTTP server: answers every connection with `response` and reports the
/// request heads it read.
fn raw_server(response: String) -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).to_string());
            let _ = s.write_all(response.as_bytes());
        }
    });
    (port, rx)
}

#[tokio::test]
async fn redirects_are_not_followed_so_keys_stay_with_the_provider() {
    // Another host (localhost, not 127.0.0.1) that would receive a followed redirect.
    let body = r#"{"aliases":[]}"#;
    let ok = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (elsewhere, seen_elsewhere) = raw_server(ok);
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nlocation: http://localhost:{elsewhere}/api/v2/aliases?page_id=0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (provider, seen_by_provider) = raw_server(redirect);
    let c = SimpleLogin::new(
        &format!("http://127.0.0.1:{provider}"),
        "sl-secret-key",
        policy(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap();
    let result = c.list().await;
    if let Ok(head) = seen_elsewhere.recv_timeout(Duration::from_millis(300)) {
        panic!("the redirect was followed to another host, carrying: {head}");
    }
    let e = result.unwrap_err();
    assert!(
        matches!(e, ProviderError::Rejected { status: 302, .. }),
        "{e:?}"
    );
    let head = seen_by_provider
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    assert!(
        head.to_lowercase()
            .contains("authentication: sl-secret-key"),
        "{head}"
    );
}
