//! Issue 16, through the binary: mail that impersonates the site. A real Dovecot holds mail
//! whose From claims the site's own domain, with failing and passing results from the
//! trusted server, forged `Authentication-Results` from untrusted ones, and addy.io mail
//! judged by addy.io's own result header.

mod common;

use common::canary_world::*;
use common::dovecot::message;
use serde_json::json;
use std::time::Duration;

/// Mail straight to the alias (own-domain style: `Delivered-To`), with result headers above
/// it in the order given (topmost first, as servers prepend them).
fn signed_mail(alias: &str, from: &str, subject: &str, results: &[&str]) -> String {
    let mut headers: Vec<(&str, &str)> = results
        .iter()
        .map(|r| ("Authentication-Results", *r))
        .collect();
    let from = format!("Notion <{from}>");
    let id = format!("<{}@test>", subject.replace(' ', "-"));
    headers.extend([
        ("From", from.as_str()),
        ("Delivered-To", alias),
        ("To", alias),
        ("Subject", subject),
        ("Message-ID", id.as_str()),
    ]);
    message(&headers, "body")
}

#[test]
fn mail_forging_the_sites_from_is_impersonation_and_forged_results_are_ignored() {
    let mut w = world(Cards::Privacy, |c| c);
    let a = w.alias.clone();
    // The mailbox's own server is the trusted authserv-id by default: `[breach.imap] host`.
    let host = w.imap.host.clone();
    let trusted_fail = format!(
        "{host}; dkim=none; spf=fail smtp.mailfrom=notion.so; dmarc=fail (p=reject) header.from=notion.so"
    );
    let trusted_pass = format!(
        "{host}; dkim=pass header.d=notion.so; spf=pass smtp.mailfrom=bounce@mail.notion.so; dmarc=pass header.from=notion.so"
    );
    let forged_pass =
        "mx.evil.example; dkim=pass header.d=notion.so; dmarc=pass header.from=notion.so";
    let forged_fail = "mx.evil.example; dmarc=fail header.from=notion.so";
    w.imap.append_many(&[
        // An ordinary unexpected sender first, to show the ranking.
        message(
            &[
                ("From", "Broker <x@databroker.example>"),
                ("Delivered-To", &a),
                ("Subject", "Offers"),
                ("Message-ID", "<broker@test>"),
            ],
            "body",
        ),
        // Forged From of the site, failing authentication at the trusted server.
        signed_mail(
            &a,
            "security@notion.so",
            "Verify your account",
            &[&trusted_fail],
        ),
        // The site itself, passing.
        signed_mail(&a, "team@mail.notion.so", "Welcome", &[&trusted_pass]),
        // A forged pass from an untrusted server on top of the trusted fail: still a fail.
        signed_mail(
            &a,
            "billing@notion.so",
            "Invoice",
            &[forged_pass, &trusted_fail],
        ),
        // A forged fail from an untrusted server on the site's real mail: not believed.
        signed_mail(
            &a,
            "team@mail.notion.so",
            "Tips",
            &[forged_fail, &trusted_pass],
        ),
        // A forged header alone judges nothing.
        signed_mail(&a, "news@notion.so", "News", &[forged_fail]),
    ]);
    let r = sweep(&w.agent);
    let mut kinds: Vec<&str> = r["new_incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["mail.impersonation", "mail.sender"], "{r}");
    assert_eq!(r["expected"], 3, "{r}");
    assert_eq!(r["repeated"], 1, "{r}");
    let listed = w.agent.send("check-incidents", json!({}));
    let top = &listed["incidents"][0];
    assert_eq!(top["kind"], "mail.impersonation", "ranked first: {listed}");
    assert_eq!(top["count"], 2, "{top}");
    assert_eq!(top["sender_domain"], "notion.so");
    let summary = top["summary"].as_str().unwrap();
    assert!(
        summary.contains("claims to be from notion.so")
            && summary.contains("dmarc=fail header.from=notion.so")
            && summary.contains("impersonating the site"),
        "{summary}"
    );
    assert!(listed["lines"][0]
        .as_str()
        .unwrap()
        .contains("impersonating"));
    let first = alerts(&mut w.gw, Duration::from_secs(2));
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().any(|m| m.contains("(mail.impersonation)")));
    // Next sweep: nothing new, nothing alerted.
    let again = sweep(&w.agent);
    assert!(
        again["new_incidents"].as_array().unwrap().is_empty(),
        "{again}"
    );
    assert!(alerts(&mut w.gw, Duration::from_secs(1)).is_empty());
}

#[test]
fn forwarded_mail_is_judged_by_the_forwarders_own_results_when_trusted() {
    let mut w = world(Cards::Privacy, |c| {
        c.replace(
            "trusted_authserv_ids = []",
            "trusted_authserv_ids = [\"mail.addy.example\"]",
        )
    });
    let a = w.alias.clone();
    let addy = |sender: &str, subject: &str, addy_result: &str| {
        message(
            &[
                // The mailbox's own server judged addy.io's hop (not trusted here anyway).
                (
                    "Authentication-Results",
                    "127.0.0.1; dkim=pass header.d=anonaddy.me; dmarc=pass header.from=anonaddy.me",
                ),
                ("From", "\"Forwarded\" <noreply@anonaddy.me>"),
                ("To", &a),
                ("X-AnonAddy-Authentication-Results", addy_result),
                ("X-AnonAddy-Original-Sender", sender),
                ("Subject", subject),
                (
                    "Message-ID",
                    &format!("<{}@addy.test>", subject.replace(' ', "-")),
                ),
            ],
            "body",
        )
    };
    w.imap.append_many(&[
        addy(
            "security@notion.so",
            "Reset your password",
            "mail.addy.example; spf=softfail smtp.mailfrom=notion.so; dmarc=fail (p=quarantine) header.from=notion.so",
        ),
        addy(
            "team@mail.notion.so",
            "Your workspace",
            "mail.addy.example; dkim=pass header.d=notion.so; dmarc=pass header.from=notion.so",
        ),
        // A result header an attacker wrote, under a name addy.io does not trust: ignored.
        addy(
            "news@notion.so",
            "Newsletter",
            "mx.attacker.example; dmarc=fail header.from=notion.so",
        ),
    ]);
    let r = sweep(&w.agent);
    let i = only_new_incident(&r);
    assert_eq!(i["kind"], "mail.impersonation", "{i}");
    assert_eq!(i["sample_sender"], "security@notion.so");
    assert_eq!(r["expected"], 2, "{r}");
    assert_eq!(alerts(&mut w.gw, Duration::from_secs(2)).len(), 1);
}
