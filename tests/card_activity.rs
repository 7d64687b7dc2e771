//! The real card clients' account-wide transaction reads (the card canaries) against the
//! local Privacy.com and Lithic servers: the documented query shapes (`begin` as a day at
//! Privacy.com, as an instant at Lithic; `page`/`page_size`, `starting_after`), paging to
//! the cursor and no further, declined attempts, and no card number in what is read.

mod common;

use common::providers::{self, MockServer};
use pane_agent::providers::card_activity::TxnCursor;
use pane_agent::providers::lithic::Lithic;
use pane_agent::providers::privacy::Privacy;
use pane_agent::providers::{CardProvider, NewCard, RetryPolicy};

const KEY: &str = "k-card-activity-0016";

fn at(ago_secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(ago_secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A card at `server` (made through the client, paused and $0 as the agent makes them) and
/// `n` transactions on it a minute apart, the newest an hour ago; every third declined.
async fn seeded(client: &impl CardProvider, server: &MockServer, n: i64) -> String {
    let card = client
        .create(&NewCard {
            memo: "pane:test".into(),
            spend_limit_cents: 0,
        })
        .await
        .unwrap();
    for k in 0..n {
        let result = if k % 3 == 0 {
            "CARD_PAUSED"
        } else {
            "APPROVED"
        };
        server.add_card_transaction(
            &card.token,
            100 + k,
            "SHOP",
            result,
            Some(&at(3600 + 60 * (n - k))),
        );
    }
    card.token
}

fn transaction_requests(server: &MockServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.contains("/transactions"))
        .collect()
}

#[tokio::test]
async fn privacy_reads_the_account_by_day_and_stops_at_the_cursor() {
    let server = providers::privacy(KEY);
    let client = Privacy::new(
        &server.base,
        KEY,
        RetryPolicy::default(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap();
    let token = seeded(&client, &server, 120).await;
    let pan = server.cards()[0]["pan"].as_str().unwrap().to_string();

    let all = client.account_transactions(None).await.unwrap();
    assert_eq!(all.items.len(), 120);
    assert_eq!(all.requests, 3, "120 at 50 a page");
    assert!(all.items.iter().all(|t| t.card_token == token));
    assert_eq!(
        all.items
            .iter()
            .filter(|t| t.result == "CARD_PAUSED")
            .count(),
        40
    );
    assert!(all.items.iter().any(|t| t.status == "DECLINED"));
    assert!(
        !format!("{:?}", all.items).contains(&pan),
        "no card number is read"
    );
    let first = transaction_requests(&server);
    assert_eq!(
        first[0], "GET /v1/transactions?page=1&page_size=50",
        "{first:?}"
    );

    let cursor = TxnCursor::after(None, &all.items).unwrap();
    server.clear_requests();
    let quiet = client.account_transactions(Some(&cursor)).await.unwrap();
    assert_eq!(quiet.requests, 1);
    let day = &cursor.newest[..10];
    assert_eq!(
        transaction_requests(&server),
        [format!(
            "GET /v1/transactions?page=1&page_size=50&begin={day}"
        )]
    );

    // 60 new ones: the first page is all new, the second reaches the cursor.
    for k in 0..60 {
        server.add_card_transaction(&token, 1, "SHOP", "APPROVED", Some(&at(60 - k)));
    }
    let busy = client.account_transactions(Some(&cursor)).await.unwrap();
    assert_eq!(busy.requests, 2, "{busy:?}");
    let next = TxnCursor::after(Some(&cursor), &busy.items).unwrap();
    assert!(next.newest > cursor.newest);
}

#[tokio::test]
async fn lithic_reads_the_account_from_an_instant_with_cursor_paging() {
    let server = providers::lithic(KEY);
    let client = Lithic::new(
        &server.base,
        KEY,
        RetryPolicy::default(),
        &pane_agent::egress::Egress::direct(),
    )
    .unwrap();
    let token = seeded(&client, &server, 150).await;

    let all = client.account_transactions(None).await.unwrap();
    assert_eq!((all.items.len(), all.requests), (150, 2), "100 a page");
    let reqs = transaction_requests(&server);
    assert_eq!(reqs[0], "GET /v1/transactions?page_size=100");
    let last_of_first = &all.items[99].token;
    assert_eq!(
        reqs[1],
        format!("GET /v1/transactions?page_size=100&starting_after={last_of_first}")
    );
    let cursor = TxnCursor::after(None, &all.items).unwrap();
    server.clear_requests();
    let quiet = client.account_transactions(Some(&cursor)).await.unwrap();
    assert_eq!(quiet.requests, 1);
    assert_eq!(quiet.items.len(), 1, "only the cursor's own second again");
    let begin = cursor.instant().unwrap();
    assert_eq!(
        transaction_requests(&server),
        [format!("GET /v1/transactions?page_size=100&begin={begin}")]
    );
    server.add_card_transaction(
        &token,
        9,
        "ELSEWHERE",
        "UNAUTHORIZED_MERCHANT",
        Some(&at(1)),
    );
    let one = client.account_transactions(Some(&cursor)).await.unwrap();
    assert!(one
        .items
        .iter()
        .any(|t| t.merchant == "ELSEWHERE" && t.result == "UNAUTHORIZED_MERCHANT"));
}
