//! addy.io, API v1.
//!
//! Shape from the addy.io API docs (https://app.addy.io/docs/) and the server source,
//! github.com/anonaddy/anonaddy: routes/api.php; app/Http/Controllers/Api/AliasController.php
//! (index: newest first, filter[search] on email or description, filter[active],
//! filter[deleted]; show withTrashed; store -> 201; destroy without trashed -> 204; forget);
//! ActiveAliasController.php (POST {id} -> 200 {data}, 422 plain text for a deleted alias;
//! DELETE -> 204); app/Http/Requests/IndexAliasRequest.php (page[size] 1..100, default 100;
//! filter[search] 3..50 chars) and StoreAliasRequest.php; app/Http/Resources/AliasResource.php
//! (fields); app/Models/Alias.php (deleting deactivates); the jsonPaginate macro in
//! app/Providers/AppServiceProvider.php (Laravel LengthAwarePaginator: data, links, meta).
//! Errors are Laravel's: 401 {"message": "Unauthenticated."}, 404 {"message": "No query
//! results for model [App\\Models\\Alias] ID"}, 422 {"message", "errors": {field: [...]}}.
//! `GET /aliases/{id}/emails` is NOT part of the real API (a prototype route some benchmarks use).

use super::faults::Forged;
use super::ids::{rand_below, random_chars, uuid, word};
use super::{body_json, empty_reply, json_reply, text_reply, About, Provider, Seen};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

mod aliases;

/// The domains the mock account may make aliases on (`GET /domain-options`).
pub const ADDY_DOMAINS: &[&str] = &[
    "johndoe.anonaddy.com",
    "johndoe.anonaddy.me",
    "addymail.com",
    "addy.io",
    "anonaddy.com",
    "anonaddy.me",
];
const SHARED_DOMAINS: &[&str] = &["addymail.com", "addy.io", "anonaddy.com", "anonaddy.me"];
const USER_ID: &str = "ca0a4e09-c266-4f6f-845c-958db5090f09";
const PREFIX: &str = "/api/v1";

/// The mock addy.io account.
pub(super) struct Addy {
    about: About,
    /// `http://127.0.0.1:PORT`, for the page links.
    origin: String,
    book: Mutex<Book>,
}

/// What the account holds.
#[derive(Default)]
struct Book {
    /// Oldest first, soft-deleted ones too (`deleted_at` set).
    aliases: Vec<Value>,
    /// Each alias id's mail, oldest first, for the prototype-only `/aliases/{id}/emails`.
    emails: HashMap<String, Vec<Value>>,
    /// How many `seed_aliases` made, for their descriptions.
    seeded: usize,
    forged: Forged,
}

type St = State<Arc<Addy>>;

fn laravel_now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn error(status: u16, message: &str) -> Response {
    json_reply(status, json!({"message": message}))
}

fn missing(id: &str) -> Response {
    error(
        404,
        &format!("No query results for model [App\\Models\\Alias] {id}"),
    )
}

/// A Laravel 422: `{"message": first (and N more errors), "errors": {field: [messages]}}`.
fn validation(errors: Vec<(&str, String)>) -> Response {
    let first = errors.first().map(|e| e.1.clone()).unwrap_or_default();
    let message = match errors.len().saturating_sub(1) {
        0 => first,
        1 => format!("{first} (and 1 more error)"),
        n => format!("{first} (and {n} more errors)"),
    };
    let mut map = Map::new();
    for (field, m) in errors {
        if let Some(list) = map
            .entry(field.to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            list.push(json!(m));
        }
    }
    json_reply(422, json!({"message": message, "errors": map}))
}

impl Addy {
    pub fn new(key: &str, origin: &str) -> Addy {
        Addy {
            about: About {
                name: "addy",
                env_stem: "ADDY",
                prefix: PREFIX,
                key: key.to_string(),
                error,
                fault_words: &[(429, "Too Many Attempts."), (500, "Server Error")],
            },
            origin: origin.to_string(),
            book: Mutex::default(),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Book {
    fn find(&self, id: &str, with_trashed: bool) -> Option<usize> {
        self.aliases
            .iter()
            .position(|a| a["id"] == id && (with_trashed || a["deleted_at"].is_null()))
    }

    /// Runs `f` on the alias `id` (soft-deleted ones too), or answers 404.
    fn with(&mut self, id: &str, f: impl FnOnce(&mut Value) -> Response) -> Response {
        match self.find(id, true) {
            Some(i) => f(&mut self.aliases[i]),
            None => missing(id),
        }
    }

    /// A new alias object (AliasResource).
    fn alias(
        &mut self,
        domain: &str,
        format: &str,
        local_part: Option<&str>,
        description: Option<&str>,
    ) -> Value {
        let mut id = uuid();
        let (local, extension) = match (format, local_part) {
            ("custom", Some(lp)) => match lp.split_once('+') {
                Some((l, e)) => (l.to_lowercase(), Value::from(e)),
                None => (lp.to_lowercase(), Value::Null),
            },
            ("uuid", _) => (id.clone(), Value::Null),
            ("random_words" | "random_male_name" | "random_female_name" | "random_noun", _) => (
                format!("{}.{}{}", word(), word(), rand_below(100)),
                Value::Null,
            ),
            _ => (random_chars(8), Value::Null),
        };
        if format == "uuid" {
            id = local.clone();
        }
        let domain = domain.to_lowercase();
        let now = laravel_now();
        let alias = json!({
            "id": id, "user_id": USER_ID, "aliasable_id": null, "aliasable_type": null,
            "local_part": local, "extension": extension, "domain": domain,
            "email": format!("{local}@{domain}"), "active": true, "pinned": false,
            "description": description, "from_name": null, "attached_recipients_only": false,
            "emails_forwarded": 0, "emails_blocked": 0, "emails_replied": 0, "emails_sent": 0,
            "recipients": [], "last_forwarded": null, "last_blocked": null, "last_replied": null,
            "last_sent": null, "created_at": now, "updated_at": now, "deleted_at": null,
        });
        self.forged.apply(alias)
    }
}

/// Laravel's Sanctum guard: `Authorization: Bearer KEY`, and JSON only for requests that ask
/// for it.
async fn authenticate(State(a): St, headers: HeaderMap, req: Request, next: Next) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let token = header("authorization").and_then(|v| {
        v.get(..7)
            .filter(|p| p.eq_ignore_ascii_case("bearer "))
            .map(|_| v[7..].trim())
    });
    if token != Some(a.about.key.as_str()) {
        return error(401, "Unauthenticated.");
    }
    if header("x-requested-with") != Some("XMLHttpRequest") {
        // The real service answers JSON (and 401 rather than a redirect to /login) only to
        // requests that expect JSON; the mock insists on the header the docs send on every
        // request.
        return error(
            400,
            "mock addy.io: send X-Requested-With: XMLHttpRequest, as every request in the docs does",
        );
    }
    next.run(req).await
}

/// Laravel's 404 for a route it does not have.
async fn no_route(seen: Seen) -> Response {
    error(
        404,
        &format!(
            "The route {} could not be found.",
            seen.path.trim_start_matches('/')
        ),
    )
}

async fn show(State(a): St, Path(id): Path<String>) -> Response {
    a.book()
        .with(&id, |alias| json_reply(200, json!({"data": alias})))
}

async fn update(State(a): St, Path(id): Path<String>, body: Bytes) -> Response {
    let body = body_json(&body).unwrap_or_else(|| json!({}));
    a.book().with(&id, |alias| {
        for field in ["description", "from_name"] {
            if let Some(v) = body.get(field) {
                alias[field] = v.clone();
            }
        }
        alias["updated_at"] = json!(laravel_now());
        json_reply(200, json!({"data": alias}))
    })
}

/// Soft delete: the alias is deactivated and kept (`deleted=with` lists it).
async fn destroy(State(a): St, Path(id): Path<String>) -> Response {
    let mut book = a.book();
    let Some(i) = book.find(&id, false) else {
        return missing(&id);
    };
    let now = laravel_now();
    let alias = &mut book.aliases[i];
    alias["active"] = json!(false);
    alias["deleted_at"] = json!(now);
    alias["updated_at"] = json!(now);
    empty_reply(204)
}

async fn restore(State(a): St, Path(id): Path<String>) -> Response {
    a.book().with(&id, |alias| {
        alias["active"] = json!(true);
        alias["deleted_at"] = Value::Null;
        alias["updated_at"] = json!(laravel_now());
        json_reply(200, json!({"data": alias}))
    })
}

/// Shared-domain aliases are anonymised and moved to a nil user, others are force-deleted:
/// either way the account no longer has it.
async fn forget(State(a): St, Path(id): Path<String>) -> Response {
    let mut book = a.book();
    match book.find(&id, true) {
        Some(i) => {
            book.aliases.remove(i);
            empty_reply(204)
        }
        None => missing(&id),
    }
}

async fn emails(State(a): St, Path(id): Path<String>) -> Response {
    let book = a.book();
    match book.find(&id, true) {
        Some(_) => json_reply(
            200,
            json!({"data": book.emails.get(&id).cloned().unwrap_or_default()}),
        ),
        None => missing(&id),
    }
}

async fn activate(State(a): St, body: Bytes) -> Response {
    let id = body_json(&body).and_then(|b| b.get("id").and_then(Value::as_str).map(str::to_string));
    let Some(id) = id else {
        return validation(vec![("id", "The id field is required.".into())]);
    };
    a.book().with(&id, |alias| {
        if !alias["deleted_at"].is_null() {
            return text_reply(
                422,
                "You need to restore this alias before you can activate it",
            );
        }
        alias["active"] = json!(true);
        alias["updated_at"] = json!(laravel_now());
        json_reply(200, json!({"data": alias}))
    })
}

async fn deactivate(State(a): St, Path(id): Path<String>) -> Response {
    a.book().with(&id, |alias| {
        alias["active"] = json!(false);
        alias["updated_at"] = json!(laravel_now());
        empty_reply(204)
    })
}

async fn domain_options() -> Response {
    json_reply(
        200,
        json!({"data": ADDY_DOMAINS, "sharedDomains": SHARED_DOMAINS,
               "defaultAliasDomain": "anonaddy.me", "defaultAliasFormat": "random_characters"}),
    )
}

async fn account_details(State(a): St) -> Response {
    let book = a.book();
    let count = |f: &dyn Fn(&Value) -> bool| book.aliases.iter().filter(|a| f(a)).count();
    let active = count(&|a| a["deleted_at"].is_null() && a["active"] == true);
    let deleted = count(&|a| !a["deleted_at"].is_null());
    let total = book.aliases.len();
    json_reply(
        200,
        json!({"data": {"id": USER_ID, "username": "johndoe", "default_alias_domain": "anonaddy.me",
            "default_alias_format": "random_characters", "subscription": "pro",
            "total_aliases": total, "total_active_aliases": active,
            "total_inactive_aliases": total - active - deleted,
            "total_deleted_aliases": deleted,
            "created_at": "2023-01-01 00:00:00", "updated_at": "2023-01-01 00:00:00"}}),
    )
}

impl Provider for Addy {
    fn about(&self) -> &About {
        &self.about
    }

    fn router(self: Arc<Self>) -> Router {
        let api = Router::new()
            .route("/aliases", get(aliases::index).post(aliases::store))
            .route("/aliases/{id}", get(show).patch(update).delete(destroy))
            .route("/aliases/{id}/restore", patch(restore))
            .route("/aliases/{id}/forget", delete(forget))
            .route("/aliases/{id}/emails", get(emails))
            .route("/active-aliases", post(activate))
            .route("/active-aliases/{id}", delete(deactivate))
            .route("/domain-options", get(domain_options))
            .route("/account-details", get(account_details))
            .method_not_allowed_fallback(no_route)
            .fallback(no_route)
            .layer(middleware::from_fn_with_state(self.clone(), authenticate));
        Router::new()
            .nest(PREFIX, api)
            .fallback(no_route)
            .with_state(self)
    }

    fn state(&self) -> Value {
        json!({"aliases": self.book().aliases, "cards": [], "transactions": []})
    }

    fn forge_next(&self, field: &str, value: Value) {
        self.book().forged.push(field, value);
    }

    fn aliases(&self) -> Vec<Value> {
        let book = self.book();
        let live = book.aliases.iter().filter(|a| a["deleted_at"].is_null());
        live.cloned().collect()
    }

    fn seed_aliases(&self, n: usize) {
        let mut book = self.book();
        for _ in 0..n {
            let desc = format!("seed-{}", book.seeded);
            book.seeded += 1;
            let a = book.alias("anonaddy.me", "random_characters", None, Some(&desc));
            book.aliases.push(a);
        }
    }

    fn add_email(&self, alias_id: &str, from: &str, subject: &str) {
        let mut book = self.book();
        let Some(i) = book.find(alias_id, true) else {
            panic!("no alias {alias_id}");
        };
        let now = laravel_now();
        let n = book.aliases[i]["emails_forwarded"].as_u64().unwrap_or(0) + 1;
        book.aliases[i]["emails_forwarded"] = json!(n);
        book.aliases[i]["last_forwarded"] = json!(now);
        book.emails
            .entry(alias_id.to_string())
            .or_default()
            .push(json!({"id": uuid(), "from": from, "subject": subject, "created_at": now}));
    }
}
