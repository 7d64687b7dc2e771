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

use super::{error, percent_decode, reply, HibpMock, Inner};
use axum::response::Response;
use serde_json::{Map, Value};

impl HibpMock {
    /// Verifies `domain` for the key (the domain search dashboard).
    pub fn verify_domain(&self, domain: &str) {
        self.inner().verified.push(domain.to_ascii_lowercase());
    }
}

/// The domain search's routes; None for any other path.
pub(super) fn route(
    st: &Inner,
    method: &str,
    segs: &[&str],
    key: Option<&str>,
) -> Option<Response> {
    match (method, segs) {
        ("GET", ["breacheddomain", domain]) => {
            if key != Some(st.key.as_str()) {
                return Some(error(401, "Access denied due to invalid hibp-api-key."));
            }
            let domain = percent_decode(domain)?.to_ascii_lowercase();
            if !st.verified.contains(&domain) {
                return Some(error(
                    403,
                    "Forbidden: the domain is not verified for this key.",
                ));
            }
            let mut found: Map<String, Value> = Map::new();
            for (account, b) in &st.accounts {
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
            Some(if found.is_empty() {
                reply(404, None, None)
            } else {
                reply(200, Some(Value::Object(found)), None)
            })
        }
        ("GET", ["breach", name]) => {
            let name = percent_decode(name)?;
            let known = st
                .accounts
                .iter()
                .map(|(_, b)| b)
                .chain(st.domains.iter().map(|(_, b)| b))
                .find(|b| b["Name"].as_str() == Some(name.as_str()));
            Some(match known {
                Some(b) => reply(200, Some(b.clone()), None),
                None => error(404, "Not found"),
            })
        }
        _ => None,
    }
}
