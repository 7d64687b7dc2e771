//! `[network] proxy` through the binary (issue #25): with a SOCKS5 proxy set, every outbound
//! connection of the agent goes through it, names resolved by the proxy, one circuit per
//! provider; with the proxy down, nothing goes out at all and the owner is told once.
//!
//! The proxy is `common::socks` (RFC 1928/1929, its own name table, every outgoing connection
//! from 127.0.0.2). The local addy.io, Privacy.com and HIBP servers close any connection that
//! does not come from 127.0.0.2, and their base URLs name onion services only that proxy
//! resolves (no resolver on this host knows `.onion`, RFC 7686); Dovecot lets the agent's user
//! log in only from 127.0.0.2 (passdb `allow_nets`), at `imap.pane-test.invalid` (RFC 6761:
//! never resolves), over TLS with a certificate for that name.

mod common;

use common::dovecot::{addy_mail, Dovecot, PROXIED_HOST, PROXIED_USER};
use common::providers::{self, MockServer};
use common::socks::{SocksServer, OUTGOING};
use common::Agent;
use pane_agent::outbox::{MessageKind, Outbox};
use pane_agent::store::Store;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A v3 onion service's name (56 base32 characters) starting with `tag`.
fn onion(tag: &str) -> String {
    format!("{tag}{}.onion", "a".repeat(56 - tag.len()))
}

struct World {
    agent: Agent,
    socks: SocksServer,
    aliases: MockServer,
    cards: MockServer,
    hibp: common::hibp::HibpMock,
    imap: Dovecot,
}

fn world() -> World {
    let imap = Dovecot::start_tls();
    let aliases = providers::addy("k-addy-tor-0001");
    let cards = providers::privacy("k-privacy-tor-0001");
    let hibp = common::hibp::hibp("k-hibp-tor-0001");
    for server in [&aliases, &cards, hibp.server()] {
        server.only_from(OUTGOING);
    }
    let socks = SocksServer::start(&[
        (&onion("addy"), LOOPBACK),
        (&onion("privacy"), LOOPBACK),
        (&onion("hibp"), LOOPBACK),
        (PROXIED_HOST, LOOPBACK),
    ]);
    let mut agent = Agent::init();
    for (k, v) in [
        ("ADDY_API_KEY", aliases.key()),
        ("ADDY_BASE_URL", aliases.base_at(&onion("addy"))),
        ("PRIVACY_API_KEY", cards.key()),
        ("PRIVACY_BASE_URL", cards.base_at(&onion("privacy"))),
        ("HIBP_API_KEY", "k-hibp-tor-0001".to_string()),
        (
            "HIBP_BASE_URL",
            hibp.base.replacen("127.0.0.1", &onion("hibp"), 1),
        ),
        ("PANE_IMAP_PASSWORD", imap.password.clone()),
    ] {
        agent.env.push((k.into(), v));
    }
    let config = imap
        .configure_tls(pane_agent::config::TEMPLATE, "tls")
        .replace(
            &format!("host = \"{}\"", imap.host),
            &format!("host = \"{PROXIED_HOST}\""),
        )
        .replace(
            &format!("user = \"{}\"", imap.user),
            &format!("user = \"{PROXIED_USER}\""),
        )
        .replace("idle = true", "idle = false")
        .replace("breach_sweep = \"0 0 * * * *\"", "breach_sweep = \"\"")
        .replace("proxy = \"\"", &format!("proxy = \"{}\"", socks.url()));
    agent.write_config(&config);
    agent.spawn();
    World {
        agent,
        socks,
        aliases,
        cards,
        hibp,
        imap,
    }
}

/// The SOCKS user names the proxy saw for `host`, in order.
fn users_for(socks: &SocksServer, host: &str) -> Vec<String> {
    socks
        .connects()
        .into_iter()
        .filter(|c| c.host == host)
        .map(|c| c.username)
        .collect()
}

fn approve(agent: &Agent, asked: &Value) -> Value {
    assert_eq!(asked["status"], "approval_required", "{asked}");
    agent.send("approve", json!({"code": asked["code"]}))
}

#[test]
fn every_call_goes_through_the_proxy_on_a_circuit_per_provider() {
    let w = world();
    let a = &w.agent;

    // enroll, card.fund after approval, a sweep over IMAP with TLS and HIBP.
    let r = a.send(
        "enroll",
        json!({"url": "https://www.notion.so", "card": true, "senders": ["mailgun.net"]}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    let alias = r["alias"]["email"].as_str().unwrap().to_string();
    let funded = approve(
        a,
        &a.send("card.fund", json!({"context": "notion", "limit": 25})),
    );
    assert_eq!(funded["result"]["card"]["state"], "OPEN", "{funded}");
    w.imap
        .append(&addy_mail(&alias, "deals@evilnotion.so", "Deal"));
    w.hibp.add_breach(
        &alias,
        common::hibp::breach("DataBroker", "databroker.example", &["Email addresses"]),
    );
    let sweep = a.send("sweep", json!({}));
    let source = |name: &str| {
        sweep["sources"]
            .as_array()
            .unwrap_or_else(|| panic!("{sweep}"))
            .iter()
            .find(|s| s["source"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {sweep}"))
    };
    assert_eq!(source("imap")["ok"], true, "{sweep}");
    assert_eq!(source("imap")["fetched"], 1, "{sweep}");
    assert_eq!(source("hibp")["ok"], true, "{sweep}");
    let mut found: Vec<&str> = sweep["new_incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sender_domain"].as_str().unwrap())
        .collect();
    found.sort();
    assert_eq!(found, ["databroker.example", "evilnotion.so"], "{sweep}");

    // Everything reached the servers through the proxy, and only through it.
    assert!(!w.cards.cards().is_empty());
    for (name, server) in [
        ("addy.io", &w.aliases),
        ("Privacy.com", &w.cards),
        ("HIBP", w.hibp.server()),
    ] {
        let peers = server.admitted_peers();
        assert!(!peers.is_empty(), "{name} was never reached");
        assert!(peers.iter().all(|p| *p == OUTGOING), "{name}: {peers:?}");
        assert!(
            server.refused_peers().is_empty(),
            "{name} was reached directly: {:?}",
            server.refused_peers()
        );
    }
    let dovecot = w.imap.logs();
    let logins: Vec<&str> = dovecot
        .lines()
        .filter(|l| l.contains(&format!("Login: user=<{PROXIED_USER}>")))
        .collect();
    assert!(!logins.is_empty(), "{dovecot}");
    assert!(
        logins
            .iter()
            .all(|l| l.contains("rip=127.0.0.2") && l.contains(", TLS")),
        "{logins:?}"
    );
    assert!(!dovecot.contains("allow_nets"), "{dovecot}");
    let connects = w.socks.connects();
    assert!(connects.iter().all(|c| c.connected), "{connects:?}");
    for host in [onion("addy"), onion("privacy"), onion("hibp")] {
        assert!(
            connects.iter().any(|c| c.host == host),
            "{host}: {connects:?}"
        );
    }
    assert!(connects.iter().any(|c| c.host == PROXIED_HOST));
    assert!(
        !w.agent.logs().contains("name look-up refused"),
        "the agent tried to resolve a name itself"
    );

    // One circuit per provider: four different user names, all in the same minute.
    let first = |host: &str| users_for(&w.socks, host)[0].clone();
    let users = [
        first(&onion("addy")),
        first(&onion("privacy")),
        first(&onion("hibp")),
        first(PROXIED_HOST),
    ];
    assert_eq!(
        users,
        [
            "pane-agent:addy.io:0",
            "pane-agent:Privacy.com:0",
            "pane-agent:HIBP:0",
            "pane-agent:imap:0"
        ]
    );
    let span = connects.last().unwrap().at - connects[0].at;
    assert!(span.as_secs() < 60, "{span:?}");

    // Expiring a context moves every circuit on: what comes after shares none with before.
    let expired = approve(a, &a.send("expire", json!({"context": "notion"})));
    assert_eq!(expired["result"]["status"], "expired", "{expired}");
    let before = w.socks.connects().len();
    let r = a.send("enroll", json!({"url": "https://figma.com", "card": true}));
    assert_eq!(r["status"], "enrolled", "{r}");
    let after: Vec<_> = w.socks.connects().split_off(before);
    let addy_after: Vec<_> = after.iter().filter(|c| c.host == onion("addy")).collect();
    let privacy_after: Vec<_> = after
        .iter()
        .filter(|c| c.host == onion("privacy"))
        .collect();
    assert!(
        !addy_after.is_empty() && !privacy_after.is_empty(),
        "{after:?}"
    );
    assert!(addy_after
        .iter()
        .all(|c| c.username == "pane-agent:addy.io:1"));
    assert!(privacy_after
        .iter()
        .all(|c| c.username == "pane-agent:Privacy.com:1"));
}

/// The owner's alerts queued in the outbox (the agent is stopped to read its store).
fn alerts(agent: &mut Agent, about: &str) -> Vec<String> {
    agent.stop();
    let store = Store::open(&agent.dir.join("store")).unwrap();
    let alerts = Outbox::new(&store)
        .pending(10_000)
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MessageKind::Alert && m.body.contains(about))
        .map(|m| m.body)
        .collect();
    drop(store);
    agent.spawn();
    alerts
}

#[test]
fn with_the_proxy_down_nothing_goes_out_and_the_owner_is_told_once() {
    let mut w = world();
    w.socks.stop();
    let down = format!("Tor is not reachable at {}", w.socks.addr);
    for _ in 0..2 {
        let r = w.agent.send(
            "enroll",
            json!({"url": "https://www.notion.so", "card": true}),
        );
        common::assert_error(&r, "unavailable");
        assert!(r["error"].as_str().unwrap().contains(&down), "{r}");
    }
    // Nothing was made, and nothing went out directly.
    assert!(w.aliases.aliases().is_empty());
    assert!(w.cards.cards().is_empty());
    for server in [&w.aliases, &w.cards] {
        assert_eq!(server.request_count(), 0);
        assert!(server.admitted_peers().is_empty());
        assert!(server.refused_peers().is_empty());
    }
    common::wait_for_audit(&w.agent, "network.proxy_down", |d| {
        d["proxy"] == w.socks.addr.to_string()
    });

    // Back: the same enroll resumes, and the owner hears it once.
    w.socks.restart();
    let r = w.agent.send(
        "enroll",
        json!({"url": "https://www.notion.so", "card": true}),
    );
    assert_eq!(r["status"], "enrolled", "{r}");
    common::wait_for_audit(&w.agent, "network.proxy_up", |_| true);
    let events = w.agent.audit_events();
    assert_eq!(
        events.iter().filter(|e| *e == "network.proxy_down").count(),
        1,
        "{events:?}"
    );
    assert_eq!(alerts(&mut w.agent, &down).len(), 1);
    assert_eq!(alerts(&mut w.agent, "Tor is reachable again").len(), 1);
}

#[test]
fn with_a_proxy_a_destination_that_would_go_around_it_is_refused_at_start() {
    use pane_agent::config::{ImapConfig, NetworkConfig, ProxyUrl};
    use pane_agent::egress::Egress;
    use pane_agent::providers::addy::Addy;
    use pane_agent::providers::RetryPolicy;
    let proxied = Egress::unstored(&NetworkConfig {
        proxy: Some(ProxyUrl::parse("socks5h://127.0.0.1:9050").unwrap()),
    });
    let direct = Egress::direct();
    let addy = |base: &str, egress: &Egress| {
        Addy::new(
            base,
            "k",
            "anonaddy.me",
            "random_characters",
            RetryPolicy::default(),
            egress,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    for local in [
        "http://127.0.0.1:8080/api/v1",
        "https://localhost/api/v1",
        "https://192.168.1.10/api/v1",
        "https://[::1]/api/v1",
    ] {
        let err = addy(local, &proxied).unwrap_err();
        assert!(err.contains("is a local address"), "{local}: {err}");
    }
    let onion = format!("http://{}/api/v1", onion("addy"));
    assert!(addy(&onion, &proxied).is_ok());
    assert!(addy("https://app.addy.io/api/v1", &proxied).is_ok());
    let err = addy(&onion, &direct).unwrap_err();
    assert!(err.contains("needs [network] proxy"), "{err}");
    assert!(addy("http://127.0.0.1:8080/api/v1", &direct).is_ok());
    assert!(addy("http://mail.example/api/v1", &proxied).is_err());

    let imap = ImapConfig {
        host: "127.0.0.1".into(),
        ..ImapConfig::default()
    };
    let err = pane_agent::breach::imap::ImapSource::from_config(&imap, &proxied)
        .map(|r| r.map(|_| ()).unwrap_err().to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("is a local address")),
        "{err:?}"
    );
}

#[test]
fn doctor_checks_the_proxy_answers_and_says_signal_leaves_directly() {
    use common::sealed::doctor_row;
    let agent = Agent::init();
    let report = || String::from_utf8_lossy(&agent.cli(&["doctor"]).stdout).into_owned();
    let none = report();
    let row = doctor_row(&none, "outbound proxy").unwrap();
    assert!(row.starts_with("warn") && row.contains("none"), "{row}");
    let signal = doctor_row(&none, "signal traffic").unwrap();
    assert!(signal.contains("reaches Signal directly"), "{signal}");

    let mut socks = SocksServer::start(&[]);
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("proxy = \"\"", &format!("proxy = \"{}\"", socks.url())),
    );
    let row = doctor_row(&report(), "outbound proxy").unwrap();
    assert!(row.starts_with("pass") && row.contains("answers"), "{row}");
    socks.stop();
    let row = doctor_row(&report(), "outbound proxy").unwrap();
    assert!(
        row.starts_with("FAIL") && row.contains("does not answer"),
        "{row}"
    );
}

/// pane-signal reads the same `[network] proxy` when it starts and says in each health line
/// what its connections to Signal go through: `health` and doctor's `signal traffic` row show
/// what the running gateway reported, and a gateway that leaves directly while a proxy is set
/// (started before it was set, or too old to use it) is a failure. (The gateway's own side,
/// through a SOCKS server in front of Signal's mock server: `signal/e2e`, scenario 18.)
#[test]
fn doctor_and_health_say_what_the_running_gateway_reported() {
    use common::gateway::Gateway;
    use common::sealed::doctor_row;
    use pane_agent::gateway::protocol::{GatewayBuild, LinkHealth, Registration};
    const OWNER: &str = "0b5c6a5e-2f6e-4a7b-9d35-6a1c1f1f2c3d";
    let socks = SocksServer::start(&[]);
    let url = socks.url();
    let mut agent = Agent::init();
    agent.write_config(
        &pane_agent::config::TEMPLATE
            .replace("owner = \"\"", &format!("owner = \"{OWNER}\""))
            .replace("proxy = \"\"", &format!("proxy = \"{url}\"")),
    );
    let row = |agent: &Agent| {
        let out = agent.cli(&["doctor"]);
        doctor_row(&String::from_utf8_lossy(&out.stdout), "signal traffic").unwrap()
    };
    let unknown = row(&agent);
    assert!(
        unknown.starts_with("warn") && unknown.contains("no running gateway has reported"),
        "{unknown}"
    );
    agent.spawn();
    let mut gw = Gateway::connect(&agent, OWNER);
    let line = |proxy: Option<&str>| LinkHealth {
        connected: true,
        since: 1_765_116_000_000,
        last_received: None,
        last_sent: None,
        registration: Registration::Ok,
        detail: None,
        challenge: None,
        build: GatewayBuild::default(),
        proxy: proxy.map(str::to_string),
    };
    let reported = |want: &str| {
        common::wait_for(&format!("doctor: {want}"), || {
            let r = row(&agent);
            r.contains(want).then_some(r)
        })
    };

    gw.health(line(None));
    let direct = reported("reaching Signal directly");
    assert!(
        direct.starts_with("FAIL") && direct.contains(&url),
        "{direct}"
    );
    assert!(direct.contains("restart pane-signal"), "{direct}");
    let words = agent.send("health", json!({}));
    assert_eq!(words["signal"]["proxy"], Value::Null, "{words}");

    gw.health(line(Some(&url)));
    let through = reported("on a circuit of its own");
    assert!(
        through.starts_with("pass") && through.contains(&url),
        "{through}"
    );
    let h = agent.send("health", json!({}));
    assert_eq!(h["signal"]["proxy"], url.as_str(), "{h}");
}
