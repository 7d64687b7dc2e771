//! The real Have I Been Pwned client (`pane_agent::providers::hibp`) against the local mock in
//! `common::hibp`: lookups, the 404-is-clean rule, path encoding, retries, keys, settings.

mod common;

use common::hibp::{breach, hibp, HibpMock};
use common::providers::Fault;
use pane_agent::providers::hibp::{Breach, Hibp, DEFAULT_BASE_URL};
use pane_agent::providers::{ProviderError, RetryPolicy};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const KEY: &str = "0123456789abcdef0123456789abcdef";

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

fn client(m: &HibpMock) -> Hibp {
    Hibp::new(
        &m.base,
        KEY,
        policy(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap()
}

fn adobe() -> Value {
    breach(
        "Adobe",
        "adobe.com",
        &[
            "Email addresses",
            "Password hints",
            "Passwords",
            "Usernames",
        ],
    )
}

#[tokio::test]
async fn breached_account_returns_full_breaches() {
    let m = hibp(KEY);
    m.add_breach("alice@example.com", adobe());
    m.add_breach(
        "alice@example.com",
        breach(
            "LinkedIn",
            "linkedin.com",
            &["Email addresses", "Passwords"],
        ),
    );
    m.add_breach("bob@example.com", breach("Other", "other.example", &[]));

    let got = client(&m)
        .breached_account("alice@example.com")
        .await
        .unwrap();
    assert_eq!(
        got[0],
        Breach {
            name: "Adobe".into(),
            title: "Adobe".into(),
            domain: "adobe.com".into(),
            breach_date: "2013-10-04".into(),
            added_date: "2013-12-04T00:00:00Z".into(),
            data_classes: vec![
                "Email addresses".into(),
                "Password hints".into(),
                "Passwords".into(),
                "Usernames".into()
            ],
        }
    );
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].name, "LinkedIn");
    assert_eq!(
        m.requests(),
        vec!["GET /api/v3/breachedaccount/alice%40example.com?truncateResponse=false"]
    );
    // Every request carried HIBP's mandatory user agent.
    assert_eq!(m.user_agents(), vec![Some("pane-agent".to_string())]);
}

#[tokio::test]
async fn unknown_account_is_an_empty_list() {
    let m = hibp(KEY);
    m.add_breach("alice@example.com", adobe());
    let got = client(&m)
        .breached_account("nobody@example.com")
        .await
        .unwrap();
    assert!(got.is_empty());
    // 404 is an answer, not a failure: no retry.
    assert_eq!(m.request_count(), 1);
}

#[tokio::test]
async fn plus_and_at_reach_the_server_intact() {
    let m = hibp(KEY);
    // Decoys: what a `+` decoded as a space, or a lost tag, would find.
    m.add_breach("first.last shop@example.com", breach("Space", "", &[]));
    m.add_breach("first.last@example.com", breach("Untagged", "", &[]));
    m.add_breach("first.last+shop@example.com", adobe());

    let got = client(&m)
        .breached_account("first.last+shop@example.com")
        .await
        .unwrap();
    let names: Vec<&str> = got.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, vec!["Adobe"]);
    assert_eq!(
        m.requests(),
        vec!["GET /api/v3/breachedaccount/first.last%2Bshop%40example.com?truncateResponse=false"]
    );
}

#[tokio::test]
async fn a_slash_or_dots_cannot_leave_the_path_segment() {
    let m = hibp(KEY);
    let c = client(&m);
    assert!(c.breached_account("../breaches").await.unwrap().is_empty());
    assert_eq!(
        m.requests(),
        vec!["GET /api/v3/breachedaccount/..%2Fbreaches?truncateResponse=false"]
    );
    for bad in ["", "  ", ".", ".."] {
        let e = c.breached_account(bad).await.unwrap_err();
        assert!(
            matches!(e, ProviderError::Rejected { status: 400, .. }),
            "{bad:?}: {e:?}"
        );
    }
    // Refused before sending.
    assert_eq!(m.request_count(), 1);
}

#[tokio::test]
async fn breaches_for_domain() {
    let m = hibp(KEY);
    m.add_domain_breach("adobe.com", adobe());
    m.add_domain_breach(
        "linkedin.com",
        breach("LinkedIn", "linkedin.com", &["Passwords"]),
    );
    let c = client(&m);

    let got = c.breaches_for_domain("adobe.com").await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].name, "Adobe");
    assert_eq!(got[0].domain, "adobe.com");
    assert_eq!(got[0].data_classes.len(), 4);

    // No match is `[]`, not 404.
    assert!(c
        .breaches_for_domain("clean.example")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        m.requests(),
        vec![
            "GET /api/v3/breaches?domain=adobe.com",
            "GET /api/v3/breaches?domain=clean.example"
        ]
    );
    assert!(matches!(
        c.breaches_for_domain(" ").await,
        Err(ProviderError::Rejected { status: 400, .. })
    ));
    assert_eq!(m.request_count(), 2);
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_then_succeeds() {
    let m = hibp(KEY);
    m.add_breach("alice@example.com", adobe());
    m.push_fault(Fault::rate_limited(1));
    let start = Instant::now();
    let got = client(&m)
        .breached_account("alice@example.com")
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "retry-after was not honoured: {:?}",
        start.elapsed()
    );
    assert_eq!(m.request_count(), 2);
    assert_eq!(m.pending_faults(), 0);
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_is_reported() {
    let m = hibp(KEY);
    m.push_fault(Fault::rate_limited(120));
    let start = Instant::now();
    let e = client(&m)
        .breached_account("alice@example.com")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ProviderError::RateLimited {
            provider: "HIBP",
            retry_after_secs: 120
        }
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(m.request_count(), 1);
}

#[tokio::test]
async fn server_errors_and_resets_are_retried() {
    let m = hibp(KEY);
    m.add_domain_breach("adobe.com", adobe());
    m.push_fault(Fault::status(503));
    m.push_fault(Fault::Reset);
    let got = client(&m).breaches_for_domain("adobe.com").await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(m.request_count(), 3);

    // Out of attempts: Unavailable.
    for _ in 0..3 {
        m.push_fault(Fault::status(503));
    }
    let e = client(&m)
        .breaches_for_domain("adobe.com")
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Unavailable { .. }), "{e:?}");
    assert_eq!(m.request_count(), 6);
}

#[tokio::test]
async fn wrong_key_is_key_rejected() {
    let m = hibp(KEY);
    m.add_breach("alice@example.com", adobe());
    let c = Hibp::new(
        &m.base,
        "ffffffffffffffffffffffffffffffff",
        policy(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap();
    let e = c.breached_account("alice@example.com").await.unwrap_err();
    assert_eq!(
        e,
        ProviderError::KeyRejected {
            provider: "HIBP",
            status: 401,
            message: "Access denied due to invalid hibp-api-key.".into()
        }
    );
    // Not retried.
    assert_eq!(m.request_count(), 1);
    // The key never appears in what the owner sees.
    assert!(!format!("{e} {e:?} {c:?}").contains(KEY));
}

#[tokio::test]
async fn an_unexpected_shape_is_a_decode_error() {
    let m = hibp(KEY);
    m.push_fault(Fault::Status {
        status: 200,
        body: json!({"Name": "not an array"}),
        retry_after: None,
    });
    let e = client(&m)
        .breached_account("alice@example.com")
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Decode { .. }), "{e:?}");
}

#[test]
fn settings_are_checked() {
    // An empty key is "not configured", not a 401 later.
    assert!(matches!(
        Hibp::new(
            DEFAULT_BASE_URL,
            " ",
            policy(),
            &pane_agent::egress::Egress::direct()
        ),
        Err(ProviderError::NotConfigured { .. })
    ));
    // Plain http only to loopback.
    for base in [
        "http://haveibeenpwned.com/api/v3",
        "http://10.0.0.1/api/v3",
        "ftp://127.0.0.1/api/v3",
        "not a url",
    ] {
        assert!(
            matches!(
                Hibp::new(base, KEY, policy(), &pane_agent::egress::Egress::direct()),
                Err(ProviderError::NotConfigured { .. })
            ),
            "{base} was accepted"
        );
    }
    for base in [
        DEFAULT_BASE_URL,
        "http://127.0.0.1:9/api/v3",
        "http://localhost:9/api/v3",
    ] {
        assert!(
            Hibp::new(base, KEY, policy(), &pane_agent::egress::Egress::direct()).is_ok(),
            "{base} was refused"
        );
    }
}

/// The only test in this binary that touches the process environment.
#[tokio::test]
async fn from_env_reads_the_key_and_base() {
    let m = hibp(KEY);
    m.add_breach("alice@example.com", adobe());
    std::env::remove_var("HIBP_API_KEY");
    std::env::remove_var("HIBP_BASE_URL");

    // No key: HIBP is simply not used.
    assert!(Hibp::from_env(&m.base, policy(), &pane_agent::egress::Egress::direct()).is_none());
    std::env::set_var("HIBP_API_KEY", "  ");
    assert!(Hibp::from_env(&m.base, policy(), &pane_agent::egress::Egress::direct()).is_none());

    // The configured base, and the key from the environment.
    std::env::set_var("HIBP_API_KEY", KEY);
    let c = Hibp::from_env(&m.base, policy(), &pane_agent::egress::Egress::direct())
        .unwrap()
        .unwrap();
    assert_eq!(
        c.breached_account("alice@example.com").await.unwrap().len(),
        1
    );

    // HIBP_BASE_URL wins over the configured base.
    std::env::set_var("HIBP_BASE_URL", &m.base);
    let c = Hibp::from_env(
        "https://configured.invalid/api/v3",
        policy(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        c.breached_account("alice@example.com").await.unwrap().len(),
        1
    );
    assert_eq!(m.request_count(), 2);

    // A base that is plain http off loopback is refused.
    std::env::set_var("HIBP_BASE_URL", "http://haveibeenpwned.com/api/v3");
    let r = Hibp::from_env("", policy(), &pane_agent::egress::Egress::direct()).unwrap();
    assert!(
        matches!(r, Err(ProviderError::NotConfigured { .. })),
        "{r:?}"
    );

    std::env::remove_var("HIBP_API_KEY");
    std::env::remove_var("HIBP_BASE_URL");
}

// The mock itself, checked against the documented behaviour with a bare HTTP client.

#[tokio::test]
async fn mock_follows_the_documented_shapes() {
    let m = hibp(KEY);
    m.add_breach("alice@example.com", adobe());
    let url = format!("{}/breachedaccount/alice%40example.com", m.base);

    // No user agent: 403 (reqwest sends none unless told).
    let bare = reqwest::Client::new();
    let r = bare
        .get(&url)
        .header("hibp-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    let http = reqwest::Client::builder()
        .user_agent("pane-agent-tests")
        .build()
        .unwrap();
    // No key: 401 with HIBP's JSON body.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"statusCode": 401, "message": "Access denied due to missing hibp-api-key."})
    );

    // truncateResponse defaults to true: names only.
    let r = http
        .get(&url)
        .header("hibp-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!([{"Name": "Adobe"}]));

    // Unknown account: 404 with an empty body.
    let r = http
        .get(format!("{}/breachedaccount/nobody%40example.com", m.base))
        .header("hibp-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.text().await.unwrap().is_empty());

    // 429: retry-after and the documented body.
    m.push_fault(Fault::rate_limited(2));
    let r = http
        .get(&url)
        .header("hibp-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 2 seconds."})
    );

    // /breaches needs no key.
    let r = http
        .get(format!("{}/breaches?domain=adobe.com", m.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body[0]["Name"], "Adobe");
}
