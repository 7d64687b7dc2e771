//! The breach monitor end to end: a real Dovecot on loopback, the real binary, contexts made
//! against the local addy.io and Privacy.com servers, and mail with addy.io, SimpleLogin and
//! direct headers, including the tricky domains; IMAP over TLS and STARTTLS with a private
//! CA, and what is refused before the password is sent.

mod common;

use common::dovecot::{addy_mail, message, Dovecot};
use common::providers::{self, MockServer};
use common::{assert_error, Agent};
use pane_agent::outbox::{MessageKind, Outbox};
use pane_agent::store::Store;
use serde_json::{json, Value};

struct World {
    agent: Agent,
    imap: Dovecot,
    aliases: MockServer,
    _cards: MockServer,
    alias: String,
}

fn world(edit: impl Fn(String) -> String) -> World {
    world_on(Dovecot::start(), |imap, c| imap.configure(c), edit)
}

/// An agent watching `imap`, with `[breach.imap]` written by `point`.
fn world_on(
    imap: Dovecot,
    point: impl Fn(&Dovecot, &str) -> String,
    edit: impl Fn(String) -> String,
) -> World {
    let aliases = providers::addy("k-addy-0001");
    let cards = providers::privacy("k-privacy-0001");
    let mut agent = Agent::init();
    common::use_local_services(&mut agent, &aliases, &cards, &imap);
    let config = common::quiet_schedules(&point(&imap, pane_agent::config::TEMPLATE))
        .replace("idle = true", "idle = false");
    agent.write_config(&edit(config));
    agent.spawn();
    let r = agent.send(
        "enroll",
        json!({"url": "https://www.notion.so", "senders": ["mailgun.net"]}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    let alias = r["alias"]["email"].as_str().unwrap().to_string();
    World {
        agent,
        imap,
        aliases,
        _cards: cards,
        alias,
    }
}

fn simplelogin_mail(alias: &str, sender: &str, subject: &str) -> String {
    message(
        &[
            ("From", "\"Sender - at x\" <reply+abc@simplelogin.co>"),
            ("To", "owner@real.example"),
            (
                "X-SimpleLogin-Original-From",
                &format!("Someone <{sender}>"),
            ),
            ("X-SimpleLogin-Envelope-To", alias),
            ("Subject", subject),
            (
                "Message-ID",
                &format!("<sl-{}@test>", subject.replace(' ', "-")),
            ),
        ],
        "body",
    )
}

fn direct_mail(alias: &str, sender: &str, subject: &str) -> String {
    message(
        &[
            ("From", &format!("Sender <{sender}>")),
            ("Delivered-To", alias),
            ("To", "undisclosed-recipients:;"),
            ("Subject", subject),
            (
                "Message-ID",
                &format!("<direct-{}@test>", subject.replace(' ', "-")),
            ),
        ],
        "body",
    )
}

/// Waits until `check-incidents` shows exactly one incident, from `domain`.
fn wait_for_single_incident(agent: &Agent, domain: &str, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = agent.send("check-incidents", json!({}));
        if r["count"] == 1 {
            assert_eq!(r["incidents"][0]["sender_domain"], domain);
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {r} {}",
            agent.logs()
        );
        // The poll interval of this bounded wait.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn sweep(agent: &Agent) -> Value {
    let r = agent.send("sweep", json!({}));
    assert!(r.get("error").is_none(), "{r}");
    r
}

fn imap_report(r: &Value) -> &Value {
    &r["sources"][0]
}

fn breach_alerts(agent: &mut Agent) -> Vec<String> {
    agent.stop();
    let store = Store::open(&agent.dir.join("store")).unwrap();
    let alerts = Outbox::new(&store)
        .pending(10_000)
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MessageKind::Alert && m.body.contains("breach signal"))
        .map(|m| m.body)
        .collect();
    drop(store);
    agent.spawn();
    alerts
}

#[test]
fn a_sweep_finds_exactly_the_right_incidents_once() {
    let mut w = world(|c| c);
    let a = w.alias.clone();
    w.imap
        .append(&addy_mail(&a, "team@mail.notion.so", "Welcome"));
    w.imap
        .append(&addy_mail(&a, "bounce@mailgun.net", "Receipt"));
    w.imap
        .append(&addy_mail(&a, "deals@evilnotion.so", "Deal one"));
    w.imap
        .append(&simplelogin_mail(&a, "x@notion.so.evil.example", "Phish"));
    w.imap
        .append(&direct_mail(&a, "news@notion-so.com", "Lookalike"));
    w.imap.append(&addy_mail(
        "stranger@anonaddy.me",
        "a@evil.example",
        "Not ours",
    ));
    w.imap
        .append(&addy_mail(&a, "more@evilnotion.so", "Deal two"));
    // Listed before the sweep, so that the incident counts below reach `list` by updating the
    // views it already rendered.
    assert_eq!(
        w.agent.send("list", json!({}))["contexts"][0]["incidents"],
        0
    );

    let r = sweep(&w.agent);
    assert_eq!(imap_report(&r)["ok"], true, "{r}");
    assert_eq!(imap_report(&r)["fetched"], 7);
    assert_eq!(
        r["expected"], 2,
        "notion.so and the listed mailgun.net belong: {r}"
    );
    assert_eq!(r["unmatched"], 1);
    assert_eq!(r["repeated"], 1);
    let mut found: Vec<&str> = r["new_incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sender_domain"].as_str().unwrap())
        .collect();
    found.sort();
    assert_eq!(found, ["evil.example", "evilnotion.so", "notion-so.com"]);

    // One queued burn for the context, and one alert per incident.
    let approvals = w.agent.send("approvals", json!({}));
    assert_eq!(approvals["count"], 1, "{approvals}");
    assert_eq!(approvals["pending"][0]["action"], "expire");
    let status = w.agent.send("status", json!({"context": "notion"}));
    assert_eq!(status["incidents"], 3);
    assert_eq!(w.agent.send("list", json!({}))["contexts"][0], status);

    let out = w.agent.cli(&["check-incidents"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("notion  ←  evilnotion.so"), "{text}");
    assert!(text.lines().all(|l| l.starts_with("⚠  20")), "{text}");
    let incidents = w.agent.send("check-incidents", json!({}));
    let evil = incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sender_domain"] == "evilnotion.so")
        .unwrap()
        .clone();
    assert_eq!(evil["count"], 2);
    assert_eq!(evil["source"], "imap");

    // Nothing new: nothing fetched, nothing alerted again.
    let again = sweep(&w.agent);
    assert_eq!(imap_report(&again)["fetched"], 0, "{again}");
    assert!(again["new_incidents"].as_array().unwrap().is_empty());
    assert_eq!(breach_alerts(&mut w.agent).len(), 3);

    // The cursor survives a restart.
    w.agent.restart();
    assert_eq!(imap_report(&sweep(&w.agent))["fetched"], 0);
    w.imap
        .append(&direct_mail(&a, "team@notion.so", "Still fine"));
    let one = sweep(&w.agent);
    assert_eq!(imap_report(&one)["fetched"], 1, "{one}");
    assert_eq!(one["expected"], 1);

    // A new UIDVALIDITY: everything is read again, nothing is counted or alerted twice.
    w.imap.reset_uidvalidity();
    let rescan = sweep(&w.agent);
    assert_eq!(imap_report(&rescan)["rescanned"], true, "{rescan}");
    assert_eq!(imap_report(&rescan)["fetched"], 8);
    assert!(rescan["new_incidents"].as_array().unwrap().is_empty());
    assert_eq!(
        w.agent.send("status", json!({"context": "notion"}))["incidents"],
        3
    );
    assert_eq!(breach_alerts(&mut w.agent).len(), 3);

    // Acknowledge one.
    let id = evil["id"].as_str().unwrap();
    assert_eq!(
        w.agent.send("incident.ack", json!({"id": id}))["status"],
        "acknowledged"
    );
    assert_error(
        &w.agent.send("incident.ack", json!({"id": "i-0000000000"})),
        "not_found",
    );

    // Approving the queued burn expires the context.
    let code = approvals["pending"][0]["code"].as_str().unwrap();
    let done = w.agent.send("approve", json!({"code": code}));
    assert_eq!(done["result"]["status"], "expired", "{done}");
    assert!(w.aliases.aliases().is_empty());
}

/// Dovecot's successful logins so far (`imap-login: Login: user=<...>, ..., TLS, ...`).
fn logins(imap: &Dovecot) -> Vec<String> {
    imap.logs()
        .lines()
        .filter(|l| l.contains("Login: user="))
        .map(str::to_string)
        .collect()
}

/// The logins once Dovecot has logged at least `n` (it writes each line a moment after the
/// login).
fn logins_once(imap: &Dovecot, n: usize) -> Vec<String> {
    common::wait_for(&format!("Dovecot to log {n} logins"), || {
        let seen = logins(imap);
        (seen.len() >= n).then_some(seen)
    })
}

#[test]
fn imap_over_tls_and_starttls_with_a_private_ca() {
    for mode in ["tls", "starttls"] {
        let w = world_on(
            Dovecot::start_tls(),
            |imap, c| imap.configure_tls(c, mode),
            |c| c,
        );
        w.imap
            .append(&addy_mail(&w.alias, "deals@evilnotion.so", "Deal"));
        let before = logins_once(&w.imap, w.imap.harness_logins()).len();
        let r = sweep(&w.agent);
        assert_eq!(imap_report(&r)["ok"], true, "{mode}: {r}");
        assert_eq!(imap_report(&r)["fetched"], 1, "{mode}: {r}");
        assert_eq!(
            r["new_incidents"][0]["sender_domain"], "evilnotion.so",
            "{r}"
        );
        // The agent's login is the one after the test client's, and it went over TLS.
        let logins = logins_once(&w.imap, before + 1);
        assert_eq!(logins.len(), before + 1, "{mode}: {logins:?}");
        assert!(
            logins[before].contains(", TLS"),
            "{mode}: {}",
            logins[before]
        );
    }
}

#[test]
fn imap_tls_failures_are_reported_before_any_password_is_sent() {
    type Point = Box<dyn Fn(&Dovecot, &str) -> String>;
    // Implicit TLS, trusting `ca_file` instead of the server's test CA.
    let tls_trusting = |ca_file: &'static str| -> Point {
        Box::new(move |imap, c| {
            let test_ca = imap.tls.as_ref().unwrap().ca_file.display().to_string();
            imap.configure_tls(c, "tls").replace(
                &format!("ca_file = \"{test_ca}\""),
                &format!("ca_file = \"{ca_file}\""),
            )
        })
    };
    // (what, server, how the agent is pointed at it, what the reported error names)
    let cases: Vec<(&str, Dovecot, Point, &str)> = vec![
        (
            "a certificate from an unknown CA (no ca_file)",
            Dovecot::start_tls(),
            tls_trusting(""),
            "UnknownIssuer",
        ),
        (
            "STARTTLS asked of a server that has no TLS",
            Dovecot::start(),
            Box::new(|imap, c| {
                imap.configure(c)
                    .replace("tls = \"none\"", "tls = \"starttls\"")
            }),
            "STARTTLS",
        ),
        (
            "a ca_file that is not there",
            Dovecot::start_tls(),
            tls_trusting("/nonexistent/ca.pem"),
            "ca_file",
        ),
    ];
    for (what, imap, point, error) in cases {
        let w = world_on(imap, point, |c| c);
        w.imap
            .append(&addy_mail(&w.alias, "deals@evilnotion.so", "Deal"));
        // Dovecot writes its log lines a moment after the harness's own logins (the append
        // above): wait until they are all there before counting.
        let before = logins_once(&w.imap, w.imap.harness_logins());
        let r = sweep(&w.agent);
        assert_eq!(imap_report(&r)["ok"], false, "{what}: {r}");
        let reason = imap_report(&r)["error"].as_str().unwrap_or_default();
        assert!(reason.contains(error), "{what}: {reason}");
        assert!(
            r["new_incidents"].as_array().unwrap().is_empty(),
            "{what}: {r}"
        );
        assert_eq!(logins(&w.imap), before, "{what}: the agent logged in");
        assert!(
            !w.agent.logs().contains(&w.imap.password),
            "{what}: the IMAP password is in the agent's log"
        );
    }
}

#[test]
fn imap_down_then_up_loses_nothing() {
    let mut w = world(|c| c);
    let a = w.alias.clone();
    w.imap
        .append(&addy_mail(&a, "x@leaky.example", "Before the outage"));
    w.imap.stop();
    let down = sweep(&w.agent);
    assert_eq!(imap_report(&down)["ok"], false, "{down}");
    assert!(imap_report(&down)["error"]
        .as_str()
        .unwrap()
        .contains("IMAP"));
    assert!(w
        .agent
        .audit_events()
        .iter()
        .any(|e| e == "breach.source_down"));
    w.imap.restart();
    let up = sweep(&w.agent);
    assert_eq!(imap_report(&up)["fetched"], 1, "{up}");
    assert_eq!(up["new_incidents"][0]["sender_domain"], "leaky.example");
}

/// Issue 12, point 10: a subject that tries to forge the alert's layout (a line separator
/// that starts a fake line, a right-to-left override, a zero-width space, a CR LF folded in
/// an encoded word) reaches the alert and `check-incidents` with each shown as `\u{...}`.
#[test]
fn a_subject_cannot_forge_the_alerts_layout() {
    use base64::Engine;
    let mut w = world(|c| c);
    let forged = "Receipt\u{2028}\u{2029}no breach\r\n\u{202E}moc.lapyap\u{202C} pay\u{200B}pal\u{FEFF}\u{2066}x\u{2069}\u{61C}";
    let encoded = format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(forged)
    );
    w.imap
        .append(&addy_mail(&w.alias, "x@databroker.example", &encoded));
    let r = sweep(&w.agent);
    assert_eq!(r["new_incidents"].as_array().unwrap().len(), 1, "{r}");
    let shown = "Receipt\\u{2028}\\u{2029}no breach\\u{d}\\u{a}\\u{202e}moc.lapyap\\u{202c} pay\\u{200b}pal\\u{feff}\\u{2066}x\\u{2069}\\u{61c}";
    let incidents = w.agent.send("check-incidents", json!({}));
    assert_eq!(
        incidents["incidents"][0]["sample_subject"], shown,
        "{incidents}"
    );
    let alerts = breach_alerts(&mut w.agent);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains(&format!("sample subject: \"{shown}\"")),
        "{alerts:?}"
    );
    for c in [
        '\u{2028}', '\u{2029}', '\r', '\n', '\u{202E}', '\u{202C}', '\u{200B}', '\u{FEFF}',
        '\u{2066}', '\u{2069}', '\u{61C}',
    ] {
        assert!(
            !alerts[0].contains(c),
            "{c:?} reached the alert: {:?}",
            alerts[0]
        );
    }
}

/// An IMAP server's own words in a refusal reach the sweep's reply with layout characters
/// escaped. The server is a few lines on loopback: Dovecot's refusals cannot be made to say
/// this. (async-imap already quotes the text with `Debug`, which escapes these; `failed`
/// escapes them itself too, so this holds whatever the client library does.)
#[test]
fn an_imap_refusal_cannot_forge_the_sweeps_layout() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        writer
            .write_all(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let tag = line.split(' ').next().unwrap_or("a").to_string();
        let refusal = format!("{tag} NO wrong password\u{2028}login ok\u{202E}x\u{200B}y\r\n");
        writer.write_all(refusal.as_bytes()).unwrap();
        let _ = reader.read_line(&mut line);
    });
    let mut agent = Agent::init();
    agent
        .env
        .push(("PANE_IMAP_PASSWORD".into(), "imap-password-1".into()));
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("host = \"\"", "host = \"127.0.0.1\"")
            .replace("port = 993", &format!("port = {port}"))
            .replace("tls = \"tls\"", "tls = \"none\"")
            .replace("user = \"\"", "user = \"owner\"")
            .replace("idle = true", "idle = false")
            .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\""),
    );
    agent.spawn();
    let r = sweep(&agent);
    let error = imap_report(&r)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("wrong password\\u{2028}login ok\\u{202e}x\\u{200b}y"),
        "{r}"
    );
    for c in ['\u{2028}', '\u{202E}', '\u{200B}'] {
        assert!(!r.to_string().contains(c), "{c:?} reached the reply: {r}");
    }
    agent.stop();
    server.join().unwrap();
}

#[test]
fn auto_burn_expires_without_asking() {
    let w = world(|c| c.replace("auto_burn = false", "auto_burn = true"));
    w.imap.append(&addy_mail(
        &w.alias,
        "x@databroker.example",
        "We bought your address",
    ));
    let r = sweep(&w.agent);
    assert_eq!(r["new_incidents"].as_array().unwrap().len(), 1, "{r}");
    // The burn runs as a job beside the gate; the owner hears when it is done.
    common::wait_for("the automatic burn", || {
        let s = w.agent.send("status", json!({"context": "notion"}));
        (s["state"] == "expired").then_some(())
    });
    assert!(w.aliases.aliases().is_empty());
    assert_eq!(w.agent.send("approvals", json!({}))["count"], 0);
}

#[test]
fn a_sweep_missed_while_down_runs_once_at_start() {
    let mut w = world(|c| c.replace("breach_sweep = \"\"", "breach_sweep = \"0 0 * * * *\""));
    w.imap.append(&addy_mail(
        &w.alias,
        "x@missed.example",
        "While you were away",
    ));
    w.agent.stop();
    {
        let store = Store::open(&w.agent.dir.join("store")).unwrap();
        let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
        store
            .table(pane_agent::store::TableId::Meta)
            .insert("schedule.breach_sweep.last_run", two_hours_ago.as_bytes())
            .unwrap();
        store.flush_blocking().unwrap();
    }
    w.agent.spawn();
    wait_for_single_incident(&w.agent, "missed.example", "the missed sweep did not run");
    let runs = w
        .agent
        .audit()
        .iter()
        .filter(|e| e["event"] == "schedule.run" && e["detail"]["job"] == "breach_sweep")
        .count();
    assert_eq!(runs, 1, "once, not once per missed hour");
}

#[test]
fn simplelogin_activity_is_read_only_for_aliases_whose_counter_moved() {
    let aliases = providers::simplelogin("k-sl-0001");
    let cards = providers::lithic("k-lithic-0001");
    let mut agent = Agent::init();
    for (k, v) in [
        ("SIMPLELOGIN_API_KEY", "k-sl-0001".to_string()),
        ("SIMPLELOGIN_BASE_URL", aliases.base.clone()),
        ("LITHIC_API_KEY", "k-lithic-0001".to_string()),
        ("LITHIC_BASE_URL", cards.base.clone()),
    ] {
        agent.env.push((k.into(), v));
    }
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("provider = \"addy\"", "provider = \"simplelogin\"")
            .replace("provider = \"privacy\"", "provider = \"lithic\""),
    );
    agent.spawn();
    aliases.seed_aliases(30);
    let r = agent.send("enroll", json!({"url": "https://notion.so", "card": false}));
    let notion = r["alias"]["email"].as_str().unwrap().to_string();
    let r = agent.send(
        "enroll",
        json!({"url": "https://github.com", "card": false}),
    );
    let github = r["alias"]["email"].as_str().unwrap().to_string();

    aliases.add_activity(&notion, "forward", "team@mail.notion.so");
    aliases.add_activity(&notion, "forward", "offers@evilnotion.so");
    aliases.add_activity(&github, "block", "x@notion-so.com");
    aliases.clear_requests();
    let r = sweep(&agent);
    let sl = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "simplelogin")
        .unwrap()
        .clone();
    assert_eq!(sl["ok"], true, "{r}");
    assert_eq!(sl["fetched"], 3);
    let mut found: Vec<(String, String)> = r["new_incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["context"].as_str().unwrap().to_string(),
                i["sender_domain"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("github".to_string(), "notion-so.com".to_string()),
            ("notion".to_string(), "evilnotion.so".to_string())
        ]
    );
    let activity_reads = aliases
        .requests()
        .iter()
        .filter(|r| r.contains("/activities"))
        .count();
    assert_eq!(
        activity_reads,
        2,
        "only the two aliases that moved: {:?}",
        aliases.requests()
    );

    // Nothing moved: the list is read, no activity log is.
    aliases.clear_requests();
    let r = sweep(&agent);
    assert!(r["new_incidents"].as_array().unwrap().is_empty(), "{r}");
    assert!(
        aliases
            .requests()
            .iter()
            .all(|r| !r.contains("/activities")),
        "{:?}",
        aliases.requests()
    );

    // One more message: one log read, one entry, counted against the existing incident.
    aliases.add_activity(&notion, "forward", "again@evilnotion.so");
    aliases.clear_requests();
    let r = sweep(&agent);
    assert_eq!(r["repeated"], 1, "{r}");
    assert_eq!(
        aliases
            .requests()
            .iter()
            .filter(|r| r.contains("/activities"))
            .count(),
        1
    );
    assert_eq!(breach_alerts(&mut agent).len(), 2, "one alert per incident");
}

#[test]
fn idle_sweeps_as_soon_as_mail_arrives() {
    let w = world(|c| c.replace("idle = false", "idle = true"));
    // Once the watcher is in IDLE, deliver.
    common::wait_for("the watcher to enter IDLE", || {
        (w.imap.idling() > 0).then_some(())
    });
    w.imap
        .append(&addy_mail(&w.alias, "x@fast.example", "Seen at once"));
    wait_for_single_incident(&w.agent, "fast.example", "IDLE did not trigger a sweep");
    // No sweep command was sent and the schedule is off: the IDLE watcher ran the sweep.
    let by_schedule = w
        .agent
        .audit()
        .iter()
        .filter(|e| e["event"] == "schedule.run" && e["detail"]["job"] == "breach_sweep")
        .count();
    assert!(by_schedule >= 1);
}

#[test]
fn have_i_been_pwned_reports_breached_aliases_and_sites_once_a_day() {
    let aliases = providers::addy("k-addy-0002");
    let cards = providers::privacy("k-privacy-0002");
    let hibp = common::hibp::hibp("k-hibp-0001");
    let mut agent = Agent::init();
    for (k, v) in [
        ("ADDY_API_KEY", "k-addy-0002".to_string()),
        ("ADDY_BASE_URL", aliases.base.clone()),
        ("PRIVACY_API_KEY", "k-privacy-0002".to_string()),
        ("PRIVACY_BASE_URL", cards.base.clone()),
        ("HIBP_API_KEY", "k-hibp-0001".to_string()),
        ("HIBP_BASE_URL", hibp.base.clone()),
    ] {
        agent.env.push((k.into(), v));
    }
    agent.spawn();
    let r = agent.send("enroll", json!({"url": "https://notion.so"}));
    let alias = r["alias"]["email"].as_str().unwrap().to_string();
    hibp.add_breach(
        &alias,
        common::hibp::breach("DataBroker", "databroker.example", &["Email addresses"]),
    );
    hibp.add_domain_breach(
        "notion.so",
        common::hibp::breach("NotionLeak", "notion.so", &["Email addresses", "Names"]),
    );
    let r = sweep(&agent);
    let src = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "hibp")
        .unwrap()
        .clone();
    assert_eq!(src["ok"], true, "{r}");
    let mut found: Vec<&str> = r["new_incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sender_domain"].as_str().unwrap())
        .collect();
    found.sort();
    assert_eq!(found, ["databroker.example", "notion.so"], "{r}");
    assert!(hibp
        .requests()
        .iter()
        .any(|q| q.contains("truncateResponse=false")));
    let before = hibp.request_count();
    let again = sweep(&agent);
    assert_eq!(
        hibp.request_count(),
        before,
        "each look-up at most once a day"
    );
    assert!(again["new_incidents"].as_array().unwrap().is_empty());
}

#[test]
fn weekly_digest_and_rotation_reminder_reach_the_outbox() {
    let mut agent = Agent::init();
    agent.spawn();
    // A pending approval for the digest to mention, by its reference (the code is in the
    // prompt only).
    let asked = agent.send("grant", json!({"tool": "list"}));
    let code = asked["code"].as_str().unwrap().to_string();
    let reference = asked["approval"].as_str().unwrap().to_string();
    agent.stop();
    {
        let store = Store::open(&agent.dir.join("store")).unwrap();
        let ago = |days| (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
        store
            .table(pane_agent::store::TableId::Meta)
            .insert("schedule.weekly_digest.last_run", ago(8).as_bytes())
            .unwrap();
        store
            .table(pane_agent::store::TableId::Meta)
            .insert(
                "schedule.secret_rotation_reminder.last_run",
                ago(100).as_bytes(),
            )
            .unwrap();
        store.flush_blocking().unwrap();
    }
    agent.spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let alerts = loop {
        let alerts: Vec<String> = {
            agent.stop();
            let store = Store::open(&agent.dir.join("store")).unwrap();
            let a = Outbox::new(&store)
                .pending(100)
                .unwrap()
                .into_iter()
                .filter(|m| m.kind == MessageKind::Alert)
                .map(|m| m.body)
                .collect();
            drop(store);
            a
        };
        if alerts.len() >= 2 || std::time::Instant::now() > deadline {
            break alerts;
        }
        agent.spawn();
        // The pause of this bounded poll (each look stops the daemon to read its store).
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let digest = alerts
        .iter()
        .find(|a| a.starts_with("Weekly digest"))
        .expect("a digest");
    assert!(digest.contains(&format!("pending {reference}")), "{digest}");
    assert!(!digest.contains(&code), "{digest}");
    assert!(
        alerts
            .iter()
            .any(|a| a.contains("rotate the command secret")),
        "{alerts:?}"
    );
    assert_eq!(alerts.len(), 2, "each missed job ran once: {alerts:?}");
}
