//! What Privacy.com and Lithic share (Lithic grew out of Privacy.com's API): the card and
//! transaction records, the checks on a new or changed card, and the routes that read and
//! write one card. Each issuer's own shapes, paging and keys are in its module ([`Issuer`]).

use super::faults::Forged;
use super::ids::{pan, rand_below, uuid};
use super::txns::Charge;
use super::{body_json, json_reply, About, Provider, Seen};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

const STATES_NEW: &[&str] = &["OPEN", "PAUSED"];
const STATES_UPDATE: &[&str] = &["OPEN", "PAUSED", "CLOSED"];
const DURATIONS: &[&str] = &["ANNUALLY", "FOREVER", "MONTHLY", "TRANSACTION"];
pub(super) const FUNDING_TOKEN: &str = "b0f0d91a-3697-46d8-85f3-20f0a585cbea";
const ISSUING_REQUIRED: &str = "Insufficient Privileges. Issuing API key required";

pub(super) fn rfc3339_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What differs between the two card issuers.
pub(super) trait Issuer: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    const ENV_STEM: &'static str;
    const PREFIX: &'static str;
    /// The card types a create may ask for.
    const TYPES: &'static [&'static str];
    /// Privacy.com docs: the spend limit "has to be a whole dollars (in cents)".
    const WHOLE_DOLLARS: bool;
    /// The issuer's routes, keys checked, unknown routes answered.
    fn router(state: Arc<Issuing<Self>>) -> Router;
    /// The issuer's error body.
    fn error(status: u16, message: &str) -> Response;
    /// The issuer's own fields on a new card.
    fn extend_card(_card: &mut Value) {}
    /// A settled, approved transaction of `amount` cents at `descriptor` on a card.
    fn transaction(card_token: &str, amount: i64, descriptor: &str) -> Value;
}

/// A card issuer's account, typed by its issuer.
pub(super) struct Issuing<I> {
    pub about: About,
    book: Mutex<CardBook>,
    issuer: PhantomData<I>,
}

pub(super) struct Txn {
    pub card_token: String,
    pub value: Value,
}

/// What the account holds.
pub(super) struct CardBook {
    /// Oldest first, full objects (pan, cvv).
    pub cards: Vec<Value>,
    /// Oldest first by `created`.
    pub transactions: Vec<Txn>,
    /// False: a key without write access.
    write_access: bool,
    /// How many `seed_cards` made, for their memos.
    seeded: usize,
    forged: Forged,
}

type St<I> = State<Arc<Issuing<I>>>;

impl<I: Issuer> Issuing<I> {
    pub fn new(key: &str) -> Issuing<I> {
        Issuing {
            about: About {
                name: I::NAME,
                env_stem: I::ENV_STEM,
                prefix: I::PREFIX,
                key: key.to_string(),
                error: I::error,
                fault_words: &[(429, "Rate limited, too many requests per second")],
            },
            book: Mutex::new(CardBook {
                cards: Vec::new(),
                transactions: Vec::new(),
                write_access: true,
                seeded: 0,
                forged: Forged::default(),
            }),
            issuer: PhantomData,
        }
    }

    pub fn book(&self) -> MutexGuard<'_, CardBook> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CardBook {
    pub fn index(&self, token: &str) -> Option<usize> {
        self.cards.iter().position(|c| c["token"] == token)
    }

    /// A new card object, with pan and cvv.
    fn new_card<I: Issuer>(&mut self, body: &Value) -> Value {
        let pan = pan();
        let now = chrono::Utc::now();
        let exp_year =
            (now.format("%Y").to_string().parse::<i32>().unwrap_or(2030) + 4).to_string();
        let str_field = |k: &str, default: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_string()
        };
        let mut card = json!({
            "created": rfc3339_now(),
            "token": uuid(),
            "last_four": &pan[pan.len() - 4..],
            "hostname": "",
            "memo": str_field("memo", ""),
            "type": str_field("type", "MERCHANT_LOCKED"),
            "spend_limit": body.get("spend_limit").and_then(Value::as_u64).unwrap_or(0),
            "spend_limit_duration": str_field("spend_limit_duration", "TRANSACTION"),
            "state": str_field("state", "OPEN"),
            "pan": pan,
            "cvv": format!("{:03}", rand_below(1000)),
            "exp_month": format!("{:02}", 1 + rand_below(12)),
            "exp_year": exp_year,
            "auth_rule_tokens": [],
        });
        card["funding"] = json!({"account_name": "Checking", "created": "2020-07-08T17:57:36Z",
                                 "last_four": "5263", "nickname": "", "state": "ENABLED",
                                 "token": FUNDING_TOKEN, "type": "DEPOSITORY_CHECKING"});
        I::extend_card(&mut card);
        self.forged.apply(card)
    }

    /// Applies a PATCH body to a card; a closed card can only be "closed" again.
    fn update_card<I: Issuer>(&mut self, i: usize, body: &Value) -> Result<(), String> {
        if let Some(s) = body.get("state") {
            if !s.as_str().is_some_and(|s| STATES_UPDATE.contains(&s)) {
                return Err("state must be OPEN, PAUSED or CLOSED".into());
            }
        }
        check_limits::<I>(body)?;
        let card = &mut self.cards[i];
        if card["state"] == "CLOSED" {
            let only_close = body
                .as_object()
                .is_some_and(|o| o.iter().all(|(k, v)| k == "state" && v == "CLOSED"));
            if only_close {
                return Ok(());
            }
            // UNCONFIRMED: the wording; closing "cannot be undone" is documented by both.
            return Err("Card is closed and cannot be modified".into());
        }
        for field in ["state", "memo", "spend_limit", "spend_limit_duration"] {
            if let Some(v) = body.get(field) {
                card[field] = v.clone();
            }
        }
        Ok(())
    }
}

/// Checks a create body; the message is the 400's.
fn check_new_card<I: Issuer>(body: &Value) -> Result<(), String> {
    // UNCONFIRMED: the wording of these 400s (the statuses are the documented ones).
    match body.get("type").and_then(Value::as_str) {
        None => return Err("type is required".into()),
        Some(t) if !I::TYPES.contains(&t) => {
            return Err(format!("type must be one of {}", I::TYPES.join(", ")))
        }
        _ => {}
    }
    if let Some(s) = body.get("state") {
        if !s.as_str().is_some_and(|s| STATES_NEW.contains(&s)) {
            return Err("state must be OPEN or PAUSED".into());
        }
    }
    check_limits::<I>(body)
}

fn check_limits<I: Issuer>(body: &Value) -> Result<(), String> {
    if let Some(d) = body.get("spend_limit_duration") {
        if !d.as_str().is_some_and(|d| DURATIONS.contains(&d)) {
            return Err(format!(
                "spend_limit_duration must be one of {}",
                DURATIONS.join(", ")
            ));
        }
    }
    if let Some(l) = body.get("spend_limit") {
        let Some(cents) = l.as_u64() else {
            return Err("spend_limit must be a non-negative integer (cents)".into());
        };
        if I::WHOLE_DOLLARS && cents % 100 != 0 {
            return Err("spend_limit has to be whole dollars (in cents)".into());
        }
    }
    if let Some(m) = body.get("memo") {
        if !m.is_string() {
            return Err("memo must be a string".into());
        }
    }
    Ok(())
}

/// 400 for a query parameter the endpoint does not take.
pub(super) fn check_params<I: Issuer>(r: &Seen, allowed: &[&str]) -> Option<Response> {
    r.query
        .iter()
        .find(|(k, _)| !allowed.contains(&k.as_str()))
        .map(|(k, _)| I::error(400, &format!("[{k}] is not a valid parameter")))
}

/// True when `created` is within the query's `begin..=end`: days (`YYYY-MM-DD`, Privacy.com,
/// inclusive) or instants (RFC 3339, Lithic: "only entries created after" / "before" the time).
pub(super) fn in_range(r: &Seen, created: &Value) -> bool {
    let created = created.as_str().unwrap_or("");
    let day = created.get(..10).unwrap_or("");
    let after = |b: &str| if b.len() > 10 { created > b } else { day >= b };
    let before = |e: &str| if e.len() > 10 { created < e } else { day <= e };
    r.q("begin").is_none_or(after) && r.q("end").is_none_or(before)
}

/// The body of a create or update: a JSON object, or the 400.
fn object(body: &Bytes) -> Option<Value> {
    body_json(body).filter(Value::is_object)
}

const NOT_AN_OBJECT: &str = "Request body must be a JSON object";

/// `GET cards/{card_token}`.
pub(super) async fn show<I: Issuer>(State(s): St<I>, Path(token): Path<String>) -> Response {
    let book = s.book();
    match book.index(&token) {
        Some(i) => json_reply(200, book.cards[i].clone()),
        None => I::error(404, "Card not found"),
    }
}

/// `POST cards`.
pub(super) async fn create<I: Issuer>(State(s): St<I>, body: Bytes) -> Response {
    let mut book = s.book();
    if !book.write_access {
        return I::error(401, ISSUING_REQUIRED);
    }
    let Some(body) = object(&body) else {
        return I::error(400, NOT_AN_OBJECT);
    };
    if let Err(m) = check_new_card::<I>(&body) {
        return I::error(400, &m);
    }
    let card = book.new_card::<I>(&body);
    book.cards.push(card.clone());
    json_reply(200, card)
}

/// `PATCH cards/{card_token}`.
pub(super) async fn update<I: Issuer>(
    State(s): St<I>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let mut book = s.book();
    if !book.write_access {
        return I::error(401, ISSUING_REQUIRED);
    }
    let Some(i) = book.index(&token) else {
        return I::error(404, "Card not found");
    };
    let Some(body) = object(&body) else {
        return I::error(400, NOT_AN_OBJECT);
    };
    match book.update_card::<I>(i, &body) {
        Ok(()) => json_reply(200, book.cards[i].clone()),
        Err(m) => I::error(400, &m),
    }
}

impl<I: Issuer> Provider for Issuing<I> {
    fn about(&self) -> &About {
        &self.about
    }

    fn router(self: Arc<Self>) -> Router {
        I::router(self)
    }

    fn state(&self) -> Value {
        let book = self.book();
        let txns: Vec<&Value> = book.transactions.iter().map(|t| &t.value).collect();
        json!({"aliases": [], "cards": book.cards, "transactions": txns})
    }

    fn forge_next(&self, field: &str, value: Value) {
        self.book().forged.push(field, value);
    }

    fn cards(&self) -> Vec<Value> {
        self.book().cards.clone()
    }

    fn seed_cards(&self, n: usize) {
        let mut book = self.book();
        for _ in 0..n {
            let memo = format!("seed-{}", book.seeded);
            book.seeded += 1;
            let body = json!({"type": "MERCHANT_LOCKED", "memo": memo, "spend_limit": 0,
                              "spend_limit_duration": "FOREVER", "state": "OPEN"});
            let c = book.new_card::<I>(&body);
            book.cards.push(c);
        }
    }

    fn add_transaction(&self, card_token: &str, amount: i64, descriptor: &str) {
        let value = I::transaction(card_token, amount, descriptor);
        self.book().transactions.push(Txn {
            card_token: card_token.to_string(),
            value,
        });
    }

    fn add_card_transaction(&self, c: Charge<'_>) -> String {
        let value = I::transaction(c.card_token, c.amount, c.descriptor);
        self.book().insert_dated(c, value)
    }

    fn set_write_access(&self, allowed: bool) {
        self.book().write_access = allowed;
    }
}

/// The merchant of the transactions the mocks record.
pub(super) fn merchant(descriptor: &str) -> Value {
    json!({"acceptor_id": "174030075991", "acquiring_institution_id": "191231",
           "city": "LOS GATOS", "country": "USA", "descriptor": descriptor,
           "mcc": "5999", "state": "CA"})
}
