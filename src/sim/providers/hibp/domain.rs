//! The mock's domain search, for aliases on a domain of the owner's own.
//!
//! Shapes: https://haveibeenpwned.com/API/v3, "Domain Search": `GET
//! /api/v3/breacheddomain/{domain}` with `hibp-api-key` (Core and Pro subscriptions; the
//! domain must be verified in the domain search dashboard) answers `{"alias1": ["Adobe"],
//! "alias2": ["Adobe", "Gawker"]}`, each breached alias (the part before `@`) with the names of
//! its breaches (the example of the api-evangelist HIBP collection); "Getting a single
//! breached site": `GET /api/v3/breach/{name}` answers one Breach object, 404 when unknown.
//! UNCONFIRMED (guessed): 404 when no alias on the domain is breached (as for an account);
//! 403 with the `{"statusCode", "message"}` body for a domain that is not verified for the
//! key.

use super::{error, percent_decode, raw_param, reply, HibpMock, Seen, St};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value};

impl HibpMock {
    /// Verifies `domain` for the key (the domain search dashboard).
    pub fn verify_domain(&self, domain: &str) {
        self.hibp.book().verified.push(domain.to_ascii_lowercase());
    }
}

/// `GET breacheddomain/{domain}`.
pub(super) async fn breached_domain(State(h): St, headers: HeaderMap, seen: Seen) -> Response {
    let key = headers.get("hibp-api-key").and_then(|v| v.to_str().ok());
    if key != Some(h.about.key.as_str()) {
        return error(401, "Access denied due to invalid hibp-api-key.");
    }
    let Some(domain) = percent_decode(raw_param(&seen)).map(|d| d.to_ascii_lowercase()) else {
        return error(404, "Not found");
    };
    let book = h.book();
    if !book.verified.contains(&domain) {
        return error(403, "Forbidden: the domain is not verified for this key.");
    }
    let mut found: Map<String, Value> = Map::new();
    for (account, b) in &book.accounts {
        let Some((local, d)) = account.rsplit_once('@') else {
            continue;
        };
        if !d.eq_ignore_ascii_case(&domain) {
            continue;
        }
        let names = found
            .entry(local.to_ascii_lowercase())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = names.as_array_mut() {
            list.push(b["Name"].clone());
        }
    }
    if found.is_empty() {
        reply(404, None, None)
    } else {
        reply(200, Some(Value::Object(found)), None)
    }
}

/// `GET breach/{name}`.
pub(super) async fn breach(State(h): St, seen: Seen) -> Response {
    let Some(name) = percent_decode(raw_param(&seen)) else {
        return error(404, "Not found");
    };
    let book = h.book();
    let known = book
        .accounts
        .iter()
        .map(|(_, b)| b)
        .chain(book.domains.iter().map(|(_, b)| b))
        .find(|b| b["Name"].as_str() == Some(name.as_str()));
    match known {
        Some(b) => reply(200, Some(b.clone()), None),
        None => error(404, "Not found"),
    }
}
