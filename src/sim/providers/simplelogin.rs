//! SimpleLogin.
//!
//! Shape from github.com/simple-login/app: docs/api.md; app/api/base.py (`Authentication: KEY`,
//! 401 {"error": "Wrong api key"}); app/api/views/new_random_alias.py (POST
//! /api/alias/random/new?hostname=&mode=word|uuid {note} -> 201, the alias object plus an
//! "alias" key with the address); app/api/views/alias.py (GET|POST /api/v2/aliases?page_id=N,
//! page_id required -> 400 "page_id must be provided in request query", 20 a page (PAGE_LIMIT,
//! app/config.py), pinned first then newest; GET /api/aliases/{id} -> the bare object, a missing
//! alias 400 "Unknown error"; DELETE -> {"deleted": true}; POST .../toggle -> {"enabled"};
//! GET .../activities?page_id=N -> {"activities"}; toggle, delete and activities on a missing
//! alias answer 403 "Forbidden"); app/api/serializer.py (serialize_alias_info_v2); error
//! handlers in simplelogin_app.py: every error is {"error": "..."}, 404 "No such endpoint".

use super::faults::Forged;
use super::ids::{rand_below, uuid, word};
use super::{body_json, json_reply, About, Provider, Seen};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

const PAGE: usize = 20;
const MAILBOX: &str = "owner@example.com";

/// The mock SimpleLogin account.
pub(super) struct SimpleLogin {
    about: About,
    book: Mutex<Book>,
}

/// What the account holds.
struct Book {
    /// Oldest first.
    aliases: Vec<Value>,
    /// Each alias id's activity log, oldest first.
    activities: HashMap<u64, Vec<Value>>,
    next_id: u64,
    /// How many `seed_aliases` made, for their notes.
    seeded: usize,
    forged: Forged,
}

type St = State<Arc<SimpleLogin>>;

fn error(status: u16, message: &str) -> Response {
    json_reply(status, json!({"error": message}))
}

fn no_page_id() -> Response {
    error(400, "page_id must be provided in request query")
}

fn page_id(r: &Seen) -> Option<i64> {
    r.q("page_id").and_then(|s| s.trim().parse::<i64>().ok())
}

impl SimpleLogin {
    pub fn new(key: &str) -> SimpleLogin {
        SimpleLogin {
            about: About {
                name: "simplelogin",
                env_stem: "SIMPLELOGIN",
                prefix: "",
                key: key.to_string(),
                error,
                fault_words: &[(429, "Rate limit exceeded"), (500, "Internal error")],
            },
            book: Mutex::new(Book {
                aliases: Vec::new(),
                activities: HashMap::new(),
                next_id: 100,
                seeded: 0,
                forged: Forged::default(),
            }),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Book {
    fn alias(&mut self, note: Option<&str>, mode: &str) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let local = if mode == "uuid" {
            uuid()
        } else {
            format!("{}_{}{}", word(), word(), rand_below(1000))
        };
        let now = chrono::Utc::now();
        let alias = json!({
            "id": id, "email": format!("{local}@simplelogin.com"),
            "creation_date": now.format("%Y-%m-%d %H:%M:%S+00:00").to_string(),
            "creation_timestamp": now.timestamp(), "enabled": true, "note": note, "name": null,
            "nb_forward": 0, "nb_block": 0, "nb_reply": 0,
            "mailbox": {"id": 1, "email": MAILBOX}, "mailboxes": [{"id": 1, "email": MAILBOX}],
            "support_pgp": false, "disable_pgp": false, "pinned": false, "latest_activity": null,
        });
        self.forged.apply(alias)
    }

    fn find(&self, id: u64) -> Option<usize> {
        self.aliases.iter().position(|a| a["id"] == id)
    }
}

/// app/api/base.py's `require_api_auth`.
async fn authenticate(State(s): St, headers: HeaderMap, req: Request, next: Next) -> Response {
    let key = headers.get("authentication").and_then(|v| v.to_str().ok());
    if key != Some(s.about.key.as_str()) {
        return error(401, "Wrong api key");
    }
    next.run(req).await
}

fn not_found() -> Response {
    error(404, "No such endpoint")
}

async fn no_route() -> Response {
    not_found()
}

/// Runs `f` on the alias `id` (its index, if the account has it). Routes are
/// `<int:alias_id>`: anything else is no route at all.
fn with_alias(
    s: &SimpleLogin,
    id: &str,
    f: impl FnOnce(&mut Book, u64, Option<usize>) -> Response,
) -> Response {
    match id.parse::<u64>() {
        Err(_) => not_found(),
        Ok(id) => {
            let mut book = s.book();
            let i = book.find(id);
            f(&mut book, id, i)
        }
    }
}

async fn random_new(State(s): St, r: Seen, body: Bytes) -> Response {
    let mode = r.q("mode").unwrap_or("word");
    if mode != "word" && mode != "uuid" {
        return error(400, &format!("{mode} must be either word or uuid"));
    }
    let note =
        body_json(&body).and_then(|b| b.get("note").and_then(Value::as_str).map(str::to_string));
    let mut book = s.book();
    let alias = book.alias(note.as_deref(), mode);
    book.aliases.push(alias.clone());
    let mut out = alias.clone();
    out["alias"] = alias["email"].clone();
    json_reply(201, out)
}

async fn list(State(s): St, r: Seen, body: Bytes) -> Response {
    let Some(page_id) = page_id(&r) else {
        return no_page_id();
    };
    let query = body_json(&body).and_then(|b| {
        b.get("query")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
    });
    let book = s.book();
    let list = book
        .aliases
        .iter()
        .rev()
        .filter(|a| !r.has("pinned") || a["pinned"] == true)
        .filter(|a| !r.has("disabled") || a["enabled"] == false)
        .filter(|a| !r.has("enabled") || a["enabled"] == true)
        .filter(|a| {
            query.as_deref().is_none_or(|q| {
                ["email", "note", "name"]
                    .iter()
                    .any(|f| a[*f].as_str().unwrap_or("").to_lowercase().contains(q))
            })
        });
    let page: Vec<Value> = if page_id < 0 {
        Vec::new()
    } else {
        list.skip(page_id as usize * PAGE)
            .take(PAGE)
            .cloned()
            .collect()
    };
    json_reply(200, json!({"aliases": page}))
}

async fn show(State(s): St, Path(id): Path<String>) -> Response {
    with_alias(&s, &id, |book, _, i| match i {
        Some(i) => json_reply(200, book.aliases[i].clone()),
        None => error(400, "Unknown error"),
    })
}

async fn delete(State(s): St, Path(id): Path<String>) -> Response {
    with_alias(&s, &id, |book, _, i| match i {
        Some(i) => {
            book.aliases.remove(i);
            json_reply(200, json!({"deleted": true}))
        }
        None => error(403, "Forbidden"),
    })
}

async fn update(State(s): St, Path(id): Path<String>, body: Bytes) -> Response {
    let body = body_json(&body).filter(|b| b.as_object().is_some_and(|o| !o.is_empty()));
    with_alias(&s, &id, |book, _, i| {
        let Some(body) = body else {
            return error(400, "request body cannot be empty");
        };
        let Some(i) = i else {
            return error(403, "Forbidden");
        };
        for field in ["note", "name", "pinned", "disable_pgp"] {
            if let Some(v) = body.get(field) {
                book.aliases[i][field] = v.clone();
            }
        }
        json_reply(200, json!({"ok": true}))
    })
}

async fn toggle(State(s): St, Path(id): Path<String>) -> Response {
    with_alias(&s, &id, |book, _, i| match i {
        Some(i) => {
            let enabled = book.aliases[i]["enabled"] != true;
            book.aliases[i]["enabled"] = json!(enabled);
            json_reply(200, json!({"enabled": enabled}))
        }
        None => error(403, "Forbidden"),
    })
}

/// Newest first, 20 a page (app/api/views/alias.py get_alias_activities).
async fn activities(State(s): St, Path(id): Path<String>, r: Seen) -> Response {
    with_alias(&s, &id, |book, id, i| {
        let Some(page) = page_id(&r) else {
            return no_page_id();
        };
        if i.is_none() {
            return error(403, "Forbidden");
        }
        let log = book.activities.get(&id).cloned().unwrap_or_default();
        let skip = page.max(0) as usize * PAGE;
        let items: Vec<Value> = log.into_iter().rev().skip(skip).take(PAGE).collect();
        json_reply(200, json!({"activities": items}))
    })
}

async fn user_info() -> Response {
    json_reply(
        200,
        json!({"name": "John Wick", "is_premium": true, "email": MAILBOX, "in_trial": false,
               "trial_end_timestamp": null, "max_alias_free_plan": 10,
               "connected_proton_address": null, "can_create_reverse_alias": true,
               "profile_picture_url": null}),
    )
}

impl Provider for SimpleLogin {
    fn about(&self) -> &About {
        &self.about
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/api/alias/random/new", post(random_new))
            .route("/api/v2/aliases", get(list).post(list))
            .route(
                "/api/aliases/{id}",
                get(show).delete(delete).put(update).patch(update),
            )
            .route("/api/aliases/{id}/toggle", post(toggle))
            .route("/api/aliases/{id}/activities", get(activities))
            .route("/api/user_info", get(user_info))
            .method_not_allowed_fallback(no_route)
            .fallback(no_route)
            .layer(middleware::from_fn_with_state(self.clone(), authenticate))
            .with_state(self)
    }

    fn state(&self) -> Value {
        json!({"aliases": self.book().aliases, "cards": [], "transactions": []})
    }

    fn forge_next(&self, field: &str, value: Value) {
        self.book().forged.push(field, value);
    }

    fn aliases(&self) -> Vec<Value> {
        self.book().aliases.clone()
    }

    fn seed_aliases(&self, n: usize) {
        let mut book = self.book();
        for _ in 0..n {
            let desc = format!("seed-{}", book.seeded);
            book.seeded += 1;
            let a = book.alias(Some(&desc), "word");
            book.aliases.push(a);
        }
    }

    fn add_activity(&self, alias_email: &str, action: &str, from: &str) {
        let mut book = self.book();
        let Some(i) = book.aliases.iter().position(|a| a["email"] == alias_email) else {
            panic!("no alias {alias_email}");
        };
        let id = book.aliases[i]["id"].as_u64().unwrap_or_default();
        let counter = if action == "block" {
            "nb_block"
        } else {
            "nb_forward"
        };
        let n = book.aliases[i][counter].as_u64().unwrap_or(0) + 1;
        book.aliases[i][counter] = json!(n);
        let ts = chrono::Utc::now().timestamp().max(0);
        book.activities.entry(id).or_default().push(json!({
            "action": action, "from": from, "to": alias_email, "timestamp": ts,
            "reverse_alias": format!("\"{from}\" <reply+{n}@simplelogin.co>"),
            "reverse_alias_address": format!("reply+{n}@simplelogin.co"),
        }));
    }
}
