//! The Signal link never dies silently (#26, the core's side): the test gateway writes each
//! `health` line pane-signal would, and the agent keeps it and shows it (`health` on the
//! socket, over Signal and HTTP; `/healthz`; the systemd status line; `doctor`), calls the
//! fallback URL once per outage and once when it is over (with nothing of the owner's in it),
//! hands a captcha's answer to the gateway, warns of a link gone quiet, and after a relink
//! delivers what the outbox kept, once and in order, listing the approvals that expired.

mod common;

use common::gateway::Gateway;
use common::ntfy::Ntfy;
use common::{wait_for, wait_for_audit, Agent};
use pane_agent::gateway::protocol::{Challenge, GatewayBuild, LinkHealth, Registration};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";

/// How long an outage lasts before the fallback is called, in the tests: 0.02 min.
const FALLBACK_AFTER: Duration = Duration::from_millis(1200);

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis() as u64
}

/// A `health` line as pane-signal writes it: connected (or not) since a second ago, active
/// just now.
fn line(registration: Registration, connected: bool) -> LinkHealth {
    let now = now_ms();
    LinkHealth {
        connected,
        since: now - 1000,
        last_received: Some(now),
        last_sent: Some(now),
        registration,
        detail: (registration != Registration::Ok).then(|| "HTTP 4xx from Signal".into()),
        challenge: (registration == Registration::ProofRequired).then(|| Challenge {
            token: "challenge-token-1".into(),
            options: vec!["captcha".into()],
        }),
        build: GatewayBuild {
            version: "0.1.0".into(),
            presage: "9420827".into(),
            libsignal_service: "bd585ac".into(),
            capabilities: vec!["spqr".into()],
        },
        proxy: None,
    }
}

/// The config: an owner, HTTP on `port`, thresholds of a second, the fallback at `url`.
fn config(port: u16, url: Option<&str>, approvals_secs: u64) -> String {
    let mut c = common::unlimited_rates(&common::quiet_schedules(pane_agent::config::TEMPLATE))
        .replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
        .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace("unusable_after_secs = 300", "unusable_after_secs = 1")
        .replace("fallback_after_mins = 15", "fallback_after_mins = 0.02")
        .replace(
            "timeout_secs = 300",
            &format!("timeout_secs = {approvals_secs}"),
        );
    if let Some(url) = url {
        c = c.replace("fallback_url = \"\"", &format!("fallback_url = \"{url}\""));
    }
    c
}

/// An agent with the addy.io and Privacy.com mocks, `config`, and `env`, started.
fn agent(config: &str, env: &[(&str, String)]) -> Agent {
    let (agent, aliases, cards) = common::agent_with_providers(env, config);
    // The mocks live as long as the test: leaked on purpose (a test process is short).
    std::mem::forget(aliases);
    std::mem::forget(cards);
    agent
}

/// An agent without a fallback (approvals expiring after `approvals_secs`), and a gateway
/// that reported the link ok.
fn linked(approvals_secs: u64) -> (Agent, Gateway) {
    let agent = agent(&config(common::free_port(), None, approvals_secs), &[]);
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.health(line(Registration::Ok, true));
    wait_for_status(&agent, "ok");
    (agent, gw)
}

/// `health` over the control socket.
fn health(agent: &Agent) -> Value {
    agent.send("health", json!({}))
}

/// Waits until `health` says `status`, and returns it.
fn wait_for_status(agent: &Agent, status: &str) -> Value {
    wait_for(&format!("health {status}"), || {
        let h = health(agent);
        (h["status"] == status).then_some(h)
    })
}

/// `GET /healthz`: the status code and the body.
fn healthz(port: u16) -> (u16, Value) {
    let reply = http(
        port,
        "GET /healthz HTTP/1.1\r\nHost: pane\r\nConnection: close\r\n\r\n",
    );
    let status = reply[9..12].parse().unwrap();
    let (_, body) = reply.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap())
}

/// `cmd` signed, over HTTP, in the words the phone gets.
fn http_words(agent: &Agent, port: u16, cmd: &str) -> String {
    let body = agent.envelope(cmd, json!({})).to_json();
    let reply = http(
        port,
        &format!(
            "POST /command HTTP/1.1\r\nHost: pane\r\nAccept: text/plain\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    reply.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn http(port: u16, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Waits until the fallback has published `n` messages, and returns them.
fn wait_for_published(ntfy: &Ntfy, n: usize) -> Vec<common::ntfy::Post> {
    wait_for(&format!("{n} fallback message(s)"), || {
        let p = ntfy.published();
        (p.len() >= n).then_some(p)
    })
}

/// Every systemd status line received so far.
fn status_lines(notify: &UnixDatagram, seen: &mut Vec<String>) -> Vec<String> {
    let mut buf = [0u8; 512];
    while let Ok(n) = notify.recv(&mut buf) {
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if let Some(status) = msg.strip_prefix("STATUS=") {
            seen.push(status.to_string());
        }
    }
    seen.clone()
}

#[test]
fn each_way_the_link_breaks_is_shown_everywhere_and_the_fallback_hears_once_per_outage() {
    let ntfy = Ntfy::start();
    let port = common::free_port();
    let tmp = tempfile::tempdir().unwrap();
    let notify_path = tmp.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_nonblocking(true).unwrap();
    let agent = agent(
        &config(port, Some(&ntfy.url), 300),
        &[("NOTIFY_SOCKET", notify_path.display().to_string())],
    );
    // A context with an alias: neither may reach the fallback.
    let enrolled = agent.send("enroll", json!({"url": "https://notion.so", "card": false}));
    let alias = enrolled["alias"]["email"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();

    let mut gw = Gateway::connect(&agent, OWNER);
    gw.health(line(Registration::Ok, true));
    let h = wait_for_status(&agent, "ok");
    assert_eq!(h["signal"]["registration"], "ok", "{h}");
    assert_eq!(h["build"]["presage"], "9420827", "{h}");
    assert_eq!(h["gateway"]["connected"], true, "{h}");
    // Over Signal and over HTTP, in words.
    gw.received(OWNER, &agent.envelope("health", json!({})).to_json());
    let words = gw.reply();
    assert!(
        words.starts_with("✓ health: Signal link ok · connected since "),
        "{words}"
    );
    assert!(
        words.contains("last message ") && words.contains("last send "),
        "{words}"
    );
    assert!(
        words.ends_with("presage 9420827 · libsignal-service bd585ac"),
        "{words}"
    );
    let words = http_words(&agent, port, "health");
    assert!(words.starts_with("✓ health: Signal link ok"), "{words}");
    assert_eq!(
        healthz(port),
        (200, json!({"status": "ok", "signal": "ok"}))
    );
    wait_for("the status line says the link is ok", || {
        status_lines(&notify, &mut statuses)
            .iter()
            .any(|s| s == "unsealed; Signal link ok")
            .then_some(())
    });

    // Each registration Signal can refuse, one outage each: shown everywhere, the fallback
    // told once when it has lasted, and once when it is over.
    let cases = [
        (Registration::Unlinked, "unlinked", "pane-signal link"),
        (
            Registration::Unregistered,
            "unregistered",
            "register the number again",
        ),
        (
            Registration::ProofRequired,
            "captcha required",
            "https://signalcaptchas.org/challenge/generate",
        ),
        (
            Registration::Outdated,
            "gateway outdated",
            "update pane-signal",
        ),
    ];
    let mut published = 0;
    for (registration, what, fix) in cases {
        gw.health(line(registration, true));
        let h = wait_for_status(&agent, "unusable");
        assert_eq!(h["problem"], registration.as_str(), "{h}");
        assert!(h["fix"].as_str().unwrap().contains(fix), "{h}");
        let (code, body) = healthz(port);
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["status"], "degraded", "{body}");
        assert_eq!(body["problem"], registration.as_str(), "{body}");
        assert!(body["reason"].as_str().unwrap().contains(what), "{body}");
        let words = http_words(&agent, port, "health");
        assert!(
            words.starts_with(&format!("✗ Signal unusable: {what} since ")),
            "{words}"
        );
        assert!(words.contains(fix), "{words}");
        if registration == Registration::Unlinked {
            let out = agent.cli(&["doctor"]);
            let report = String::from_utf8_lossy(&out.stdout);
            let row = common::sealed::doctor_row(&report, "signal link").unwrap();
            assert!(
                row.starts_with("FAIL") && row.contains("Signal unusable: unlinked since"),
                "{row}"
            );
            assert!(
                row.contains("fix:") && row.contains("pane-signal link"),
                "{row}"
            );
            wait_for("the status line says what broke", || {
                status_lines(&notify, &mut statuses)
                    .iter()
                    .any(|s| s.starts_with("unsealed; Signal unusable: unlinked since "))
                    .then_some(())
            });
        }
        let posts = wait_for_published(&ntfy, published + 1);
        let down = &posts[published];
        assert_eq!(down.line, "POST /pane-alerts HTTP/1.1");
        assert_eq!(down.header("title"), Some("pane-agent: Signal is unusable"));
        assert_eq!(down.header("priority"), Some("4"));
        assert!(
            down.body.contains(what) && down.body.contains(fix),
            "{}",
            down.body
        );
        // Once: not again while it lasts.
        std::thread::sleep(FALLBACK_AFTER * 2);
        assert_eq!(ntfy.published().len(), published + 1, "{:?}", ntfy.posts());
        assert_eq!(health(&agent)["outage"]["fallback_told"], true);

        gw.health(line(Registration::Ok, true));
        wait_for_status(&agent, "ok");
        assert_eq!(healthz(port).0, 200);
        let posts = wait_for_published(&ntfy, published + 2);
        let up = &posts[published + 1];
        assert_eq!(up.header("title"), Some("pane-agent: Signal works again"));
        assert!(
            up.body.contains("works again") && up.body.contains(what),
            "{}",
            up.body
        );
        published += 2;
        // The owner hears it once Signal works: what broke, and since when.
        let told = gw.reply();
        assert!(
            told.starts_with("Signal works again: it was unusable from ") && told.contains(what),
            "{told}"
        );
    }

    // Connected to the gateway, but not to Signal, for longer than the threshold.
    gw.health(line(Registration::Ok, false));
    let h = wait_for_status(&agent, "unusable");
    assert_eq!(h["problem"], "signal_disconnected", "{h}");
    assert!(wait_for_published(&ntfy, published + 1)[published]
        .body
        .contains("disconnected from Signal"));
    gw.health(line(Registration::Ok, true));
    wait_for_status(&agent, "ok");
    wait_for_published(&ntfy, published + 2);
    published += 2;
    assert!(gw.reply().contains("disconnected from Signal"));

    // No gateway at all (the process died) for longer than the threshold.
    drop(gw);
    let h = wait_for_status(&agent, "unusable");
    assert_eq!(h["problem"], "no_gateway", "{h}");
    assert_eq!(healthz(port).1["problem"], "no_gateway");
    let posts = wait_for_published(&ntfy, published + 1);
    assert!(
        posts[published].body.contains("no gateway connected")
            && posts[published]
                .body
                .contains("systemctl restart pane-signal"),
        "{}",
        posts[published].body
    );
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.health(line(Registration::Ok, true));
    wait_for_status(&agent, "ok");
    wait_for_published(&ntfy, published + 2);
    published += 2;
    assert!(gw.reply().contains("no gateway connected"));
    assert_eq!(ntfy.published().len(), published);

    // Nothing of the owner's in any of them.
    for post in ntfy.posts() {
        for secret in [OWNER, "notion", alias.as_str()] {
            assert!(
                !post.body.contains(secret) && !format!("{:?}", post.headers).contains(secret),
                "{secret} reached the fallback: {post:?}"
            );
        }
    }
    let events = agent.audit_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "signal.link_recovered")
            .count(),
        6,
        "{events:?}"
    );
}

#[test]
fn without_a_fallback_url_nothing_is_posted_and_a_failing_one_is_retried() {
    // Not configured: an outage far longer than fallback_after, and no request.
    let ntfy = Ntfy::start();
    let port = common::free_port();
    let agent = agent(&config(port, None, 300), &[]);
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.health(line(Registration::Unlinked, true));
    wait_for_status(&agent, "unusable");
    std::thread::sleep(FALLBACK_AFTER * 3);
    assert!(ntfy.posts().is_empty());
    assert_eq!(health(&agent)["outage"]["fallback_told"], false);
    drop(agent);

    // Configured, and the server fails twice: retried until it takes the message, once.
    let port = common::free_port();
    let agent = self::agent(&config(port, Some(&ntfy.url), 300), &[]);
    ntfy.fail_next(2);
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.health(line(Registration::Outdated, true));
    let posts = wait_for_published(&ntfy, 1);
    assert_eq!(ntfy.posts().len(), 3, "two 503s, then the message");
    assert!(posts[0].body.contains("gateway outdated"));
}

#[test]
fn with_a_proxy_the_fallback_goes_through_it_on_a_circuit_of_its_own() {
    let ntfy = Ntfy::start();
    let onion = format!("ntfy{}.onion", "a".repeat(52));
    let socks =
        common::socks::SocksServer::start(&[(&onion, std::net::Ipv4Addr::LOCALHOST.into())]);
    let url = format!("http://{onion}:{}/pane-alerts", ntfy.port);
    let proxied = config(common::free_port(), Some(&url), 300)
        .replace("proxy = \"\"", &format!("proxy = \"{}\"", socks.url()));
    let agent = agent(&proxied, &[]);
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.health(line(Registration::Unlinked, true));
    let posts = wait_for_published(&ntfy, 1);
    assert!(posts[0].body.contains("unlinked"), "{}", posts[0].body);
    assert_eq!(
        posts[0].peer,
        common::socks::OUTGOING,
        "not through the proxy"
    );
    let users: Vec<String> = socks
        .connects()
        .into_iter()
        .filter(|c| c.host == onion)
        .map(|c| c.username)
        .collect();
    assert!(
        !users.is_empty() && users.iter().all(|u| u.starts_with("pane-agent:alerts:")),
        "{users:?}"
    );
}

#[test]
fn a_fallback_url_the_agent_could_not_reach_safely_stops_it_at_start() {
    let bad = Agent::init();
    bad.write_config(&config(
        common::free_port(),
        Some("http://ntfy.example.net/pane-alerts"),
        300,
    ));
    let mut child = common::cmd(&bad.dir)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`run` started with a fallback URL that would go around its rules");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("[alerts] fallback_url") && stderr.contains("plain http"),
        "{stderr}"
    );
}

#[test]
fn signal_challenge_hands_the_answer_to_the_gateway_with_the_token_and_keeps_nothing() {
    let (agent, mut gw) = linked(300);
    let captcha =
        "signal-hcaptcha.5fad97ac-7d06-4e44-b18a-b950b20148ff.registration.P1_eyJ0eXAiOiJKV1Qi";

    // Nothing pending: a clear error, nothing written to the gateway.
    let r = agent.send(
        "signal.challenge",
        json!({"captcha": format!("signalcaptcha://{captcha}")}),
    );
    common::assert_error(&r, "conflict");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("no challenge is pending"),
        "{r}"
    );
    // Not an answer: refused before anything.
    let r = agent.send("signal.challenge", json!({"captcha": "two words"}));
    common::assert_error(&r, "invalid_args");

    gw.health(line(Registration::ProofRequired, true));
    let h = wait_for_status(&agent, "unusable");
    assert_eq!(h["signal"]["challenge"], json!(["captcha"]), "{h}");
    let r = agent.send(
        "signal.challenge",
        json!({"captcha": format!("signalcaptcha://{captcha}")}),
    );
    assert_eq!(r["status"], "submitted", "{r}");
    wait_for("the submit_challenge line", || {
        gw.sends(Duration::from_millis(100));
        (!gw.challenges.is_empty()).then_some(())
    });
    assert_eq!(
        gw.challenges,
        vec![("challenge-token-1".to_string(), captcha.to_string())]
    );
    // Nothing of the answer is kept: not in the audit log, not in the store.
    let audit = serde_json::to_string(&agent.audit()).unwrap();
    assert!(
        !audit.contains("5fad97ac"),
        "the captcha is in the audit log"
    );
    assert!(audit.contains("[captcha]"), "{audit}");
    common::assert_not_in_store(&agent.dir, "5fad97ac", "the captcha");
    // Over Signal too, from the owner (whose message is kept, sealed, until answered, as
    // every message of theirs is).
    let envelope = agent.envelope("signal.challenge", json!({"captcha": captcha}));
    gw.received(OWNER, &envelope.to_json());
    // A captcha to solve holds nothing back (a rate limit may lift by itself, and only a send
    // that goes through shows it did): the reply to that message is tried.
    let mut tried = Vec::new();
    wait_for(
        "the second submit_challenge line, and the reply tried",
        || {
            tried.extend(gw.sends(Duration::from_millis(100)));
            (gw.challenges.len() == 2 && !tried.is_empty()).then_some(())
        },
    );
    // The gateway solved it: the link works again.
    gw.health(line(Registration::Ok, true));
    wait_for_status(&agent, "ok");
    let audit = serde_json::to_string(&agent.audit()).unwrap();
    assert!(
        !audit.contains("5fad97ac"),
        "the captcha is in the audit log"
    );

    // No gateway connected: said so.
    gw.health(line(Registration::ProofRequired, true));
    wait_for_status(&agent, "unusable");
    drop(gw);
    let r = wait_for("the refusal without a gateway", || {
        let r = agent.send("signal.challenge", json!({"captcha": captcha}));
        (r["kind"] == "unavailable").then_some(r)
    });
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("no Signal gateway is connected"),
        "{r}"
    );
}

/// The owner sends `status {context}` as the Signal message `id`, recorded by the agent.
fn owner_asks(agent: &Agent, gw: &mut Gateway, id: &str, context: &str) {
    let envelope = agent.envelope("status", json!({ "context": context }));
    gw.received_as(id, OWNER, &envelope.to_json(), 0);
    gw.wait_for_acks(id, 1);
}

#[test]
fn a_relink_delivers_what_the_outbox_kept_once_in_order_and_lists_the_expired_approvals() {
    let (agent, mut gw) = linked(2);
    gw.health(line(Registration::Unlinked, true));
    wait_for_status(&agent, "unusable");
    // While unlinked: the owner's commands are answered into the outbox, an approval is
    // asked for and expires unanswered.
    owner_asks(&agent, &mut gw, "m1", "first");
    agent.send("revoke", json!({"tool": "transactions"}));
    let asked = agent.send("grant", json!({"tool": "transactions"}));
    assert_eq!(asked["status"], "approval_required", "{asked}");
    let reference = asked["approval"].as_str().unwrap().to_string();
    owner_asks(&agent, &mut gw, "m2", "second");
    wait_for_audit(&agent, "approval.expired", |_| true);
    owner_asks(&agent, &mut gw, "m3", "third");
    // Nothing was sent to an unlinked device: everything waits.
    assert!(gw.sends(Duration::from_millis(1500)).is_empty());

    // Relinked: everything, once, in the order it was queued, then what happened.
    gw.health(line(Registration::Ok, true));
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(gw.reply());
    }
    assert!(got[0].contains("context not found: first"), "{got:?}");
    assert!(
        got[1].contains("Approval needed") || got[1].contains("approve"),
        "{got:?}"
    );
    assert!(got[2].contains("context not found: second"), "{got:?}");
    assert!(got[3].contains("context not found: third"), "{got:?}");
    assert!(
        got[4].starts_with("Signal works again: it was unusable from "),
        "{got:?}"
    );
    assert!(
        got[4].contains("1 approval(s) expired meanwhile") && got[4].contains(&reference),
        "{got:?}"
    );
    // Once: nothing more, and no message per expired approval.
    let more = gw.sends(Duration::from_millis(2500));
    assert!(more.is_empty(), "{more:?}");
    assert!(!got
        .iter()
        .any(|m| m.contains("expired unanswered, so it was denied")));
}

#[test]
fn a_link_quiet_for_twenty_one_days_warns_the_owner_once() {
    let port = common::free_port();
    let mut agent = agent(&config(port, None, 300), &[]);
    let mut gw = Gateway::connect(&agent, OWNER);
    let quiet_since = now_ms() - 22 * 86_400_000;
    let mut quiet = line(Registration::Ok, true);
    quiet.last_received = Some(quiet_since);
    quiet.last_sent = None;
    gw.health(quiet.clone());
    let warning = gw.reply();
    assert!(
        warning.starts_with("The Signal link has had no activity for 22 days")
            && warning.contains("about 30 days"),
        "{warning}"
    );
    let h = health(&agent);
    assert_eq!(
        (h["inactive"].clone(), h["inactive_days"].clone()),
        (json!(true), json!(22)),
        "{h}"
    );
    assert!(http_words(&agent, port, "health").contains("⚠ no activity for 22 days"));
    // Once per quiet spell: not for the same line again, nor after a restart.
    gw.health(quiet.clone());
    assert!(gw.sends(Duration::from_millis(1500)).is_empty());
    drop(gw);
    agent.restart();
    let mut gw = Gateway::connect(&agent, OWNER);
    gw.health(quiet);
    assert!(gw.sends(Duration::from_millis(1500)).is_empty());
    assert_eq!(
        agent
            .audit_events()
            .iter()
            .filter(|e| *e == "signal.link_inactive")
            .count(),
        1
    );
    // Activity again: no longer inactive.
    gw.health(line(Registration::Ok, true));
    wait_for("the link active again", || {
        (health(&agent)["inactive"] == false).then_some(())
    });
}
