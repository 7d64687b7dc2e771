//! Privacy.com, API v1.
//!
//! Shape from the Privacy.com developer docs: https://privacy-com.readme.io/docs/api-basics
//! (`Authorization: api-key KEY`; errors {"message"} and their table: 401 "Please provide API
//! key in Authorization header", "... in the form Authorization: api-key [api-key]", "Could not
//! find API key", "Insufficient Privileges. Issuing API key required"; 400 "[query] is not a
//! valid parameter"; 429 "Rate limited, too many requests per second"), /docs/cards (the card
//! object with pan, cvv, exp_month, exp_year; POST /v1/cards {type, memo, spend_limit,
//! spend_limit_duration, state}; PATCH /v1/cards/{card_token}; CLOSED cannot be undone;
//! spend_limit in whole dollars), /docs/transactions (the transaction object, card embedded).
//! The page wrapper {data, page, total_entries, total_pages} with page (1-based) and page_size
//! (1..1000, default 50) is from github.com/FasterSpeeding/Privacy.py util/pagination.py and the
//! older shared Privacy/Lithic docs (UNCONFIRMED for the current /v1/cards). Newest first:
//! UNCONFIRMED.

use super::cards::{self, check_params, in_range, CardBook, Issuer, Issuing, Txn, FUNDING_TOKEN};
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

pub(super) struct Privacy;

type St = State<Arc<Issuing<Privacy>>>;

fn error(status: u16, message: &str) -> Response {
    json_reply(status, json!({"message": message}))
}

/// `Authorization: api-key KEY`, with the documented 401s.
async fn authenticate(State(s): St, headers: HeaderMap, req: Request, next: Next) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    match auth.map(|v| v.strip_prefix("api-key ")) {
        None => error(401, "Please provide API key in Authorization header"),
        Some(None) => error(
            401,
            "Please provide API key in the form Authorization: api-key [api-key]",
        ),
        Some(Some(k)) if k.trim() == s.about.key => next.run(req).await,
        Some(Some(_)) => error(401, "Could not find API key"),
    }
}

/// UNCONFIRMED: the body of an unknown route.
async fn no_route() -> Response {
    error(404, "Not Found")
}

async fn list_cards(State(s): St, r: Seen) -> Response {
    if let Some(bad) =
        check_params::<Privacy>(&r, &["page", "page_size", "begin", "end", "card_token"])
    {
        return bad;
    }
    let book = s.book();
    let list: Vec<&Value> = book
        .cards
        .iter()
        .rev()
        .filter(|c| r.q("card_token").is_none_or(|t| c["token"] == t))
        .filter(|c| in_range(&r, &c["created"]))
        .collect();
    page(&r, list, Value::clone)
}

/// A transaction with its card embedded, as Privacy.com sends it.
fn with_card(book: &CardBook, t: &Txn) -> Value {
    let mut v = t.value.clone();
    v["card"] = book
        .index(&t.card_token)
        .map(|i| book.cards[i].clone())
        .unwrap_or(Value::Null);
    v
}

async fn list_transactions(State(s): St, r: Seen) -> Response {
    let allowed = ["card_token", "result", "begin", "end", "page", "page_size"];
    if let Some(bad) = check_params::<Privacy>(&r, &allowed) {
        return bad;
    }
    // Paged first, then each transaction of the page gets its card: the mock's own cost stays
    // out of the benchmarks.
    let book = s.book();
    let list: Vec<&Txn> = book
        .transactions
        .iter()
        .rev()
        .filter(|t| r.q("card_token").is_none_or(|c| t.card_token == c))
        .filter(|t| r.q("result").is_none_or(|res| t.value["result"] == res))
        .filter(|t| in_range(&r, &t.value["created"]))
        .collect();
    page(&r, list, |t| with_card(&book, t))
}

async fn show_transaction(State(s): St, Path(token): Path<String>) -> Response {
    let book = s.book();
    match book.transactions.iter().find(|t| t.value["token"] == token) {
        Some(t) => json_reply(200, with_card(&book, t)),
        None => error(404, "Transaction not found"),
    }
}

/// The page wrapper over `list`, rendering only the items of the page asked for.
fn page<T>(r: &Seen, list: Vec<T>, render: impl Fn(T) -> Value) -> Response {
    let page = match r.q("page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        _ => return error(400, "[page] is not a valid parameter"),
    };
    let size = match r.q("page_size").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        _ => return error(400, "[page_size] is not a valid parameter"),
    };
    let total = list.len();
    let data: Vec<Value> = list
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .map(render)
        .collect();
    json_reply(
        200,
        json!({"data": data, "page": page, "total_entries": total, "total_pages": total.div_ceil(size)}),
    )
}

impl Issuer for Privacy {
    const NAME: &'static str = "privacy";
    const ENV_STEM: &'static str = "PRIVACY";
    const PREFIX: &'static str = "/v1";
    const TYPES: &'static [&'static str] = &[
        "MERCHANT_LOCKED",
        "PHYSICAL",
        "SINGLE_USE",
        "UNLOCKED",
        "DIGITAL_WALLET",
    ];
    const WHOLE_DOLLARS: bool = true;

    fn router(state: Arc<Issuing<Privacy>>) -> Router {
        let api = Router::new()
            .route("/cards", get(list_cards).post(cards::create::<Privacy>))
            .route(
                "/cards/{card_token}",
                get(cards::show::<Privacy>).patch(cards::update::<Privacy>),
            )
            .route("/transactions", get(list_transactions))
            .route("/transactions/{transaction_token}", get(show_transaction))
            .method_not_allowed_fallback(no_route)
            .fallback(no_route)
            .layer(middleware::from_fn_with_state(state.clone(), authenticate));
        Router::new()
            .nest(Self::PREFIX, api)
            .fallback(no_route)
            .with_state(state)
    }

    fn error(status: u16, message: &str) -> Response {
        error(status, message)
    }

    fn transaction(_card_token: &str, amount: i64, descriptor: &str) -> Value {
        json!({
            "token": uuid(), "created": cards::rfc3339_now(), "amount": amount,
            "authorization_amount": amount, "settled_amount": amount, "merchant_amount": amount,
            "merchant_authorization_amount": amount, "merchant_currency": "USD",
            "acquirer_fee": 0, "status": "SETTLED", "result": "APPROVED",
            "authorization_code": "123456", "merchant": cards::merchant(descriptor),
            "funding": [{"amount": amount, "token": FUNDING_TOKEN, "type": "DEPOSITORY_CHECKING"}],
            "events": [],
        })
    }
}
