//! Lithic.
//!
//! Shape from the Lithic API reference, https://docs.lithic.com/reference and
//! https://docs.lithic.com/docs/api-basics (`Authorization: KEY`, the bare key; status codes; 400
//! "[query] is not a valid parameter"; 401 "Insufficient Privileges. Issuing API key
//! required"), and the Stainless-generated SDK github.com/lithic-com/lithic-python
//! (src/lithic/_client.py auth_headers; types/card.py = non_pci_card.py + pan, cvv: list items
//! are NonPCICard, without pan and cvv; card_create_params.py, card_update_params.py (CLOSED
//! "cannot be undone"), card_list_params.py (page_size, starting_after, ending_before card
//! tokens, begin, end, account_token, memo, state); types/transaction.py; pagination.py
//! SyncCursorPage {data, has_more}). UNCONFIRMED: page_size range (1..100 here, default 50),
//! "debugging_request_id" in error bodies, the create status (200 here), newest-first order.

use super::cards::{self, check_params, in_range, Issuer, Issuing};
use super::ids::uuid;
use super::{json_reply, Seen};
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;

const ACCOUNT_TOKEN: &str = "f3f4918c-8d3a-4b1e-9c2a-6f0b1d2e3c4a";
const CARD_PROGRAM_TOKEN: &str = "5e9483eb-8103-4e16-9794-2106111b2eca";

pub(super) struct Lithic;

type St = State<Arc<Issuing<Lithic>>>;

fn error(status: u16, message: &str) -> Response {
    json_reply(
        status,
        json!({"debugging_request_id": uuid(), "message": message}),
    )
}

/// `Authorization: KEY`, the bare key.
async fn authenticate(State(s): St, headers: HeaderMap, req: Request, next: Next) -> Response {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => error(401, "Please provide API key in Authorization header"),
        Some(v) if v.trim() == s.about.key => next.run(req).await,
        Some(v) if v.starts_with("api-key ") => error(
            401,
            "Please provide API key in the form Authorization: [api-key]",
        ),
        Some(_) => error(401, "Could not find API key"),
    }
}

/// UNCONFIRMED: the body of an unknown route.
async fn no_route() -> Response {
    error(404, "Not Found")
}

/// A list item: the card without pan and cvv.
fn non_pci(c: &Value) -> Value {
    let mut c = c.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("pan");
        o.remove("cvv");
    }
    c
}

async fn list_cards(State(s): St, r: Seen) -> Response {
    let allowed = [
        "page_size",
        "starting_after",
        "ending_before",
        "begin",
        "end",
        "account_token",
        "memo",
        "state",
    ];
    if let Some(bad) = check_params::<Lithic>(&r, &allowed) {
        return bad;
    }
    let list: Vec<Value> = s
        .book()
        .cards
        .iter()
        .rev()
        .filter(|c| r.q("account_token").is_none_or(|t| c["account_token"] == t))
        .filter(|c| r.q("state").is_none_or(|s| c["state"] == s))
        .filter(|c| {
            r.q("memo")
                .is_none_or(|m| c["memo"].as_str().unwrap_or("").contains(m))
        })
        .filter(|c| in_range(&r, &c["created"]))
        .map(non_pci)
        .collect();
    cursor_page(&r, &list)
}

async fn list_transactions(State(s): St, r: Seen) -> Response {
    let allowed = [
        "card_token",
        "account_token",
        "begin",
        "end",
        "page_size",
        "starting_after",
        "ending_before",
        "result",
        "status",
    ];
    if let Some(bad) = check_params::<Lithic>(&r, &allowed) {
        return bad;
    }
    let list: Vec<Value> = s
        .book()
        .transactions
        .iter()
        .rev()
        .filter(|t| r.q("card_token").is_none_or(|c| t.card_token == c))
        .filter(|t| r.q("result").is_none_or(|x| t.value["result"] == x))
        .filter(|t| r.q("status").is_none_or(|x| t.value["status"] == x))
        .filter(|t| in_range(&r, &t.value["created"]))
        .map(|t| t.value.clone())
        .collect();
    cursor_page(&r, &list)
}

async fn show_transaction(State(s): St, Path(token): Path<String>) -> Response {
    let book = s.book();
    match book.transactions.iter().find(|t| t.value["token"] == token) {
        Some(t) => json_reply(200, t.value.clone()),
        None => error(404, "Transaction not found"),
    }
}

/// `{data, has_more}`: cursor paging over `items` (newest first) by token.
fn cursor_page(r: &Seen, items: &[Value]) -> Response {
    let size = match r.q("page_size").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        _ => return error(400, "[page_size] is not a valid parameter"),
    };
    let position = |t: &str| items.iter().position(|v| v["token"] == t);
    let (data, has_more) = match (r.q("starting_after"), r.q("ending_before")) {
        (Some(_), Some(_)) => {
            return error(400, "starting_after and ending_before cannot both be set")
        }
        (Some(t), None) => {
            let Some(i) = position(t) else {
                return error(400, "[starting_after] is not a valid parameter");
            };
            let rest = &items[i + 1..];
            (rest.iter().take(size).cloned().collect(), rest.len() > size)
        }
        (None, Some(t)) => {
            let Some(i) = position(t) else {
                return error(400, "[ending_before] is not a valid parameter");
            };
            let start = i.saturating_sub(size);
            (items[start..i].to_vec(), start > 0)
        }
        (None, None) => (
            items.iter().take(size).cloned().collect::<Vec<_>>(),
            items.len() > size,
        ),
    };
    json_reply(200, json!({"data": data, "has_more": has_more}))
}

impl Issuer for Lithic {
    const NAME: &'static str = "lithic";
    const ENV_STEM: &'static str = "LITHIC";
    const PREFIX: &'static str = "";
    const TYPES: &'static [&'static str] = &[
        "MERCHANT_LOCKED",
        "PHYSICAL",
        "SINGLE_USE",
        "VIRTUAL",
        "UNLOCKED",
        "DIGITAL_WALLET",
    ];
    const WHOLE_DOLLARS: bool = false;

    fn router(state: Arc<Issuing<Lithic>>) -> Router {
        Router::new()
            .route("/v1/cards", get(list_cards).post(cards::create::<Lithic>))
            .route(
                "/v1/cards/{card_token}",
                get(cards::show::<Lithic>).patch(cards::update::<Lithic>),
            )
            .route("/v1/transactions", get(list_transactions))
            .route(
                "/v1/transactions/{transaction_token}",
                get(show_transaction),
            )
            .method_not_allowed_fallback(no_route)
            .fallback(no_route)
            .layer(middleware::from_fn_with_state(state.clone(), authenticate))
            .with_state(state)
    }

    fn error(status: u16, message: &str) -> Response {
        error(status, message)
    }

    fn extend_card(card: &mut Value) {
        card["account_token"] = json!(ACCOUNT_TOKEN);
        card["card_program_token"] = json!(CARD_PROGRAM_TOKEN);
        card["pin_status"] = json!("NOT_SET");
    }

    fn transaction(card_token: &str, amount: i64, descriptor: &str) -> Value {
        let now = cards::rfc3339_now();
        let amt = |a: i64| json!({"amount": a, "currency": "USD"});
        json!({
            "token": uuid(), "account_token": ACCOUNT_TOKEN, "card_token": card_token,
            "amount": amount,
            "amounts": {"cardholder": {"amount": amount, "conversion_rate": "1.000000", "currency": "USD"},
                        "hold": amt(0), "merchant": amt(amount), "settlement": amt(amount)},
            "authorization_amount": amount, "authorization_code": "123456", "created": now,
            "updated": now, "merchant": cards::merchant(descriptor), "merchant_amount": amount,
            "merchant_authorization_amount": amount, "merchant_currency": "USD", "network": "VISA",
            "result": "APPROVED", "settled_amount": amount, "status": "SETTLED", "tags": {},
            "pos": {"entry_mode": {"card": "NOT_PRESENT", "cardholder": "NOT_PRESENT",
                                   "pan": "ECOMMERCE", "pin_entered": false}},
            "events": [],
        })
    }
}
