//! addy.io's `GET /aliases` (the paginated, filtered index) and `POST /aliases` (a new alias),
//! with Laravel's validation: app/Http/Requests/IndexAliasRequest.php and
//! StoreAliasRequest.php, the jsonPaginate macro (see the parent's notes).

use super::{validation, Seen, St, ADDY_DOMAINS};
use crate::sim::providers::{body_json, json_reply};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};

const FORMATS: &[&str] = &[
    "random_characters",
    "uuid",
    "random_words",
    "random_male_name",
    "random_female_name",
    "random_noun",
    "custom",
];

pub(super) async fn store(State(a): St, body: Bytes) -> Response {
    let body = body_json(&body).unwrap_or_else(|| json!({}));
    let mut book = a.book();
    let mut errors: Vec<(&str, String)> = Vec::new();
    let domain = body
        .get("domain")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    if domain.is_empty() {
        errors.push(("domain", "The domain field is required.".into()));
    } else if !ADDY_DOMAINS.contains(&domain.as_str()) {
        errors.push(("domain", "The selected domain is invalid.".into()));
    }
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            if s.chars().count() > 200 {
                errors.push((
                    "description",
                    "The description field must not be greater than 200 characters.".into(),
                ));
            }
            Some(s.clone())
        }
        Some(_) => {
            errors.push((
                "description",
                "The description field must be a string.".into(),
            ));
            None
        }
    };
    let format = match body.get("format") {
        None | Some(Value::Null) => "random_characters".to_string(),
        Some(v) => {
            let f = v.as_str().unwrap_or("").to_string();
            if !FORMATS.contains(&f.as_str()) {
                errors.push(("format", "The selected format is invalid.".into()));
            }
            f
        }
    };
    let local_part = body
        .get("local_part")
        .and_then(Value::as_str)
        .map(str::to_string);
    if format == "custom" {
        match &local_part {
            None => errors.push((
                "local_part",
                "The local part field is required when format is custom.".into(),
            )),
            Some(lp) => {
                let bare = lp.split('+').next().unwrap_or("").to_lowercase();
                if bare.is_empty() || bare.len() > 50 {
                    errors.push((
                        "local_part",
                        "The local part field format is invalid.".into(),
                    ));
                } else if book
                    .aliases
                    .iter()
                    .any(|a| a["email"] == format!("{bare}@{domain}"))
                {
                    errors.push((
                        "local_part_without_extension",
                        "That alias already exists.".into(),
                    ));
                }
            }
        }
    }
    if !errors.is_empty() {
        return validation(errors);
    }
    let alias = book.alias(
        &domain,
        &format,
        local_part.as_deref(),
        description.as_deref(),
    );
    book.aliases.push(alias.clone());
    json_reply(201, json!({"data": alias}))
}

/// `page[number]` and `page[size]`, or their 422s.
fn page(r: &Seen, errors: &mut Vec<(&str, String)>) -> (usize, usize) {
    let number = match r.q("page[number]") {
        None | Some("") => 1,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => n.max(1) as usize,
            Err(_) => {
                errors.push((
                    "page.number",
                    "The page.number field must be an integer.".into(),
                ));
                1
            }
        },
    };
    let size = match r.q("page[size]") {
        None | Some("") => 100,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n < 1 => {
                errors.push((
                    "page.size",
                    "The page.size field must be at least 1.".into(),
                ));
                1
            }
            Ok(n) if n > 100 => {
                errors.push((
                    "page.size",
                    "The page.size field must not be greater than 100.".into(),
                ));
                100
            }
            Ok(n) => n as usize,
            Err(_) => {
                errors.push((
                    "page.size",
                    "The page.size field must be an integer.".into(),
                ));
                100
            }
        },
    };
    (number, size)
}

pub(super) async fn index(State(a): St, r: Seen) -> Response {
    let mut errors: Vec<(&str, String)> = Vec::new();
    let (number, size) = page(&r, &mut errors);
    let search = r
        .q("filter[search]")
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    if let Some(s) = &search {
        let n = s.chars().count();
        if n < 3 {
            errors.push((
                "filter.search",
                "The filter.search field must be at least 3 characters.".into(),
            ));
        } else if n > 50 {
            errors.push((
                "filter.search",
                "The filter.search field must not be greater than 50 characters.".into(),
            ));
        }
    }
    let active = r.q("filter[active]").filter(|s| !s.is_empty());
    if active.is_some_and(|a| a != "true" && a != "false") {
        errors.push((
            "filter.active",
            "The selected filter.active is invalid.".into(),
        ));
    }
    let deleted = r
        .q("filter[deleted]")
        .or_else(|| r.q("deleted"))
        .unwrap_or("without");
    if !matches!(deleted, "with" | "without" | "only") {
        errors.push((
            "filter.deleted",
            "The selected filter.deleted is invalid.".into(),
        ));
    }
    if !errors.is_empty() {
        return validation(errors);
    }
    let book = a.book();
    let list: Vec<&Value> = book
        .aliases
        .iter()
        .rev()
        .filter(|a| match deleted {
            "with" => true,
            "only" => !a["deleted_at"].is_null(),
            _ => a["deleted_at"].is_null(),
        })
        .filter(|a| active.is_none_or(|want| a["active"] == (want == "true")))
        .filter(|a| {
            search.as_deref().is_none_or(|s| {
                a["email"].as_str().unwrap_or("").to_lowercase().contains(s)
                    || a["description"]
                        .as_str()
                        .unwrap_or("")
                        .to_lowercase()
                        .contains(s)
            })
        })
        .collect();
    let total = list.len();
    let last_page = total.div_ceil(size).max(1);
    let start = (number - 1).saturating_mul(size);
    let data: Vec<Value> = list
        .iter()
        .skip(start)
        .take(size)
        .map(|v| (*v).clone())
        .collect();
    let (from, to) = if data.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (json!(start + 1), json!(start + data.len()))
    };
    let path = format!("{}{}", a.origin, r.path);
    let url = |n: usize| -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in r.query.iter().filter(|(k, _)| k != "page[number]") {
            s.append_pair(k, v);
        }
        s.append_pair("page[number]", &n.to_string());
        format!("{path}?{}", s.finish())
    };
    let prev = if number > 1 {
        json!(url(number - 1))
    } else {
        Value::Null
    };
    let next = if number < last_page {
        json!(url(number + 1))
    } else {
        Value::Null
    };
    let mut meta_links = vec![json!({"url": prev, "label": "&laquo; Previous", "active": false})];
    for p in 1..=last_page {
        meta_links.push(json!({"url": url(p), "label": p.to_string(), "active": p == number}));
    }
    meta_links.push(json!({"url": next, "label": "Next &raquo;", "active": false}));
    json_reply(
        200,
        json!({
            "data": data,
            "links": {"first": url(1), "last": url(last_page), "prev": prev, "next": next},
            "meta": {"current_page": number, "from": from, "last_page": last_page, "links": meta_links,
                     "path": path, "per_page": size, "to": to, "total": total},
        }),
    )
}
