//! The owner stays in control while the world is slow, through the binary: the command path
//! (the gate) answers while provider calls hang; a lockdown stops jobs in flight before their
//! next provider call and cancels queued ones; two operations on one context never overlap
//! while different contexts run side by side; an envelope is judged at arrival; the systemd
//! watchdog keeps being fed. The providers are the local addy.io and Privacy.com servers of
//! `common::providers`, made to hang with `hold` (every request waits until `release`).

mod common;

use common::providers::{Fault, MockServer};
use common::{assert_error, count_requests, wait_for, wait_for_requests, Agent};
use pane_agent::auth::Envelope;
use serde_json::{json, Map, Value};
use std::time::Duration;

struct World {
    agent: Agent,
    aliases: MockServer,
    cards: MockServer,
}

fn world_with(env: &[(&str, String)]) -> World {
    let (agent, aliases, cards) =
        common::agent_with_providers(env, &common::unlimited_rates(pane_agent::config::TEMPLATE));
    World {
        agent,
        aliases,
        cards,
    }
}

fn world() -> World {
    world_with(&[])
}

/// Signs `cmd` `offset` ms from now and sends it: commands sent from several threads at once
/// must not be the same envelope (that is a replay).
fn send_at(agent: &Agent, offset: i64, cmd: &str, args: Value) -> Value {
    let ts = chrono::Utc::now() + chrono::Duration::milliseconds(offset);
    let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
    agent.raw(
        Envelope::sign(&agent.secret(), ts, cmd, args)
            .to_json()
            .as_bytes(),
    )
}

fn enroll(agent: &Agent, name: &str) -> Value {
    agent.send(
        "enroll",
        json!({"url": format!("https://{name}.example"), "alias": name}),
    )
}

#[test]
fn lockdown_list_status_audit_and_approve_answer_while_enrolls_hang() {
    let w = world();
    let a = &w.agent;
    assert!(enroll(a, "ready").get("error").is_none());
    let asked = a.send("card.fund", json!({"context": "ready", "limit": 25}));
    assert_eq!(asked["status"], "approval_required", "{asked}");

    w.aliases.hold();
    std::thread::scope(|s| {
        let hanging: Vec<_> = (0..4)
            .map(|i| s.spawn(move || enroll(a, &format!("slow{i}"))))
            .collect();
        wait_for_requests(&w.aliases, "POST /api/v1/aliases", 4);

        // Every one of these is answered while four enrolls wait on the alias provider.
        let list = a.send("list", json!({}));
        assert!(list["count"].as_u64().is_some(), "{list}");
        let status = a.send("status", json!({"context": "ready"}));
        assert_eq!(status["state"], "active", "{status}");
        let audit = a.send("audit", json!({"limit": 5}));
        assert!(audit["entries"].is_array(), "{audit}");
        let approved = a.send("approve", json!({"code": asked["code"]}));
        assert_eq!(approved["status"], "approved", "{approved}");
        assert_eq!(approved["result"]["card"]["state"], "OPEN", "{approved}");
        let locked = a.send("lockdown", json!({}));
        assert_eq!(locked["status"], "locked_down", "{locked}");
        assert_eq!(locked["stopping_jobs"].as_array().map(Vec::len), Some(4));
        assert!(
            hanging.iter().all(|h| !h.is_finished()),
            "the enrolls were still waiting on the provider"
        );

        w.aliases.release();
        for h in hanging {
            let r = h.join().unwrap();
            assert_error(&r, "locked_down");
        }
    });
}

#[test]
fn an_enroll_in_flight_at_lockdown_makes_no_provider_call_after_it() {
    let w = world();
    let a = &w.agent;
    w.aliases.hold();
    std::thread::scope(|s| {
        let first = s.spawn(|| enroll(a, "notion"));
        wait_for_requests(&w.aliases, "POST /api/v1/aliases", 1);
        // Queued behind it on the same context: cancelled when its turn comes.
        let queued = s.spawn(|| a.send("alias.deactivate", json!({"context": "notion"})));
        wait_for("the queued job to start", || {
            a.audit()
                .iter()
                .any(|e| e["event"] == "job.started" && e["detail"]["cmd"] == "alias.deactivate")
                .then_some(())
        });
        let locked = a.send("lockdown", json!({}));
        assert_eq!(locked["status"], "locked_down", "{locked}");
        w.aliases.release();

        let r = first.join().unwrap();
        assert_error(&r, "locked_down");
        let r = queued.join().unwrap();
        assert_error(&r, "locked_down");
        assert!(r["error"].as_str().unwrap().contains("cancelled"), "{r}");
    });
    // The create that was already sent finished and was recorded; nothing came after it.
    assert_eq!(w.aliases.aliases().len(), 1);
    assert!(
        w.cards.requests().is_empty(),
        "no card request after the lockdown: {:?}",
        w.cards.requests()
    );
    let status = a.send("status", json!({"context": "notion"}));
    assert_eq!(status["state"], "enrolling", "{status}");
    assert!(status["alias"]["email"].is_string(), "{status}");
    let stops: Vec<Value> = a
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "action.error" && e["detail"]["kind"] == "locked_down")
        .collect();
    assert_eq!(stops.len(), 2, "both jobs audited as stopped: {stops:?}");
}

#[test]
fn two_operations_on_one_context_never_overlap_and_contexts_run_side_by_side() {
    let w = world();
    let a = &w.agent;
    for name in ["one", "two", "three"] {
        assert!(enroll(a, name).get("error").is_none());
    }
    w.aliases.set_latency(Some(Duration::from_millis(300)));

    w.aliases.reset_max_in_flight();
    std::thread::scope(|s| {
        let ops: Vec<_> = ["alias.deactivate", "alias.activate", "alias.deactivate"]
            .into_iter()
            .enumerate()
            .map(|(i, cmd)| {
                s.spawn(move || send_at(a, 1000 * i as i64, cmd, json!({"context": "one"})))
            })
            .collect();
        for op in ops {
            let r = op.join().unwrap();
            assert!(r.get("error").is_none(), "{r}");
        }
    });
    assert_eq!(
        w.aliases.max_in_flight(),
        1,
        "operations on one context overlapped"
    );

    w.aliases.reset_max_in_flight();
    std::thread::scope(|s| {
        let ops: Vec<_> = [
            ("alias.activate", "one"),
            ("alias.deactivate", "two"),
            ("alias.deactivate", "three"),
        ]
        .into_iter()
        .map(|(cmd, name)| s.spawn(move || a.send(cmd, json!({"context": name}))))
        .collect();
        for op in ops {
            let r = op.join().unwrap();
            assert!(r.get("error").is_none(), "{r}");
        }
    });
    assert!(
        w.aliases.max_in_flight() >= 2,
        "different contexts ran one after the other"
    );
}

#[test]
fn an_envelope_is_judged_against_the_time_it_arrived() {
    let w = world();
    let a = &w.agent;
    w.aliases.hold();
    std::thread::scope(|s| {
        let hanging: Vec<_> = (0..3)
            .map(|i| s.spawn(move || enroll(a, &format!("slow{i}"))))
            .collect();
        wait_for_requests(&w.aliases, "POST /api/v1/aliases", 3);
        // Signed 296 s ago: inside the 300 s window when it arrives, outside it 5 s later.
        let ts = chrono::Utc::now() - chrono::Duration::seconds(296);
        let env = Envelope::sign(&a.secret(), ts, "list", Map::new());
        let (answered, answer) = std::sync::mpsc::channel();
        let late = s.spawn(move || {
            let r = a.raw(env.to_json().as_bytes());
            let _ = answered.send(());
            r
        });
        // Its answer, or 5 s: an envelope that waits behind the hanging enrolls is judged
        // only once they are released below, past its window.
        let _ = answer.recv_timeout(Duration::from_secs(5));
        w.aliases.release();
        let r = late.join().unwrap();
        assert!(r.get("error").is_none(), "judged after its window: {r}");
        for h in hanging {
            h.join().unwrap();
        }
    });
}

#[test]
fn the_watchdog_is_fed_while_enrolls_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let w = world_with(&[
        ("NOTIFY_SOCKET", path.display().to_string()),
        // Pinged every half of this: 100 ms.
        ("WATCHDOG_USEC", "200000".into()),
    ]);
    let a = &w.agent;
    w.aliases.hold();
    std::thread::scope(|s| {
        let hanging: Vec<_> = (0..4)
            .map(|i| s.spawn(move || enroll(a, &format!("slow{i}"))))
            .collect();
        wait_for_requests(&w.aliases, "POST /api/v1/aliases", 4);
        // Drain what came before the enrolls hung (only what is queued now: pings keep
        // coming, so a blocking drain could go on for ever), then count pings while they hang.
        let mut buf = [0u8; 256];
        socket.set_nonblocking(true).unwrap();
        while socket.recv(&mut buf).is_ok() {}
        socket.set_nonblocking(false).unwrap();
        let mut pings = 0;
        for _ in 0..30 {
            if let Ok(n) = socket.recv(&mut buf) {
                if &buf[..n] == b"WATCHDOG=1" {
                    pings += 1;
                }
            }
        }
        assert!(
            pings >= 5,
            "the watchdog was fed {pings} times while enrolls hung"
        );
        assert!(hanging.iter().all(|h| !h.is_finished()));
        w.aliases.release();
        for h in hanging {
            h.join().unwrap();
        }
    });
}

/// Security round 3, point 2: the lockdown ticket is checked before every attempt of a
/// provider call, not once before the retry loop. A create answered 429 (Retry-After: 2) is
/// not sent again after a lockdown that came while it waited.
#[test]
fn a_create_waiting_to_retry_after_a_429_is_not_sent_again_after_a_lockdown() {
    let w = world();
    let a = &w.agent;
    w.aliases
        .push_fault_for("POST", "/api/v1/aliases", Fault::rate_limited(2));
    std::thread::scope(|s| {
        let enrolling = s.spawn(|| enroll(a, "notion"));
        wait_for_requests(&w.aliases, "POST /api/v1/aliases", 1);
        let locked = a.send("lockdown", json!({}));
        assert_eq!(locked["status"], "locked_down", "{locked}");
        // The job ends when its retry loop does: without the check, after the retry.
        let r = enrolling.join().unwrap();
        assert_error(&r, "locked_down");
    });
    let creates = count_requests(&w.aliases, "POST /api/v1/aliases");
    assert_eq!(
        creates,
        1,
        "no retry after the lockdown: {:?}",
        w.aliases.requests()
    );
    assert!(w.aliases.aliases().is_empty(), "no alias was made");
}

/// The same for a card change: a `PATCH` that opens a card with $25, answered 429, is not
/// retried once the owner has pressed the panic button.
#[test]
fn an_approved_fund_waiting_to_retry_is_not_sent_again_after_a_lockdown() {
    let w = world();
    let a = &w.agent;
    assert!(enroll(a, "notion").get("error").is_none());
    let asked = a.send("card.fund", json!({"context": "notion", "limit": 25}));
    assert_eq!(asked["status"], "approval_required", "{asked}");
    w.cards
        .push_fault_for("PATCH", "/v1/cards", Fault::rate_limited(2));
    std::thread::scope(|s| {
        let approving = s.spawn(|| a.send("approve", json!({"code": asked["code"]})));
        wait_for_requests(&w.cards, "PATCH /v1/cards", 1);
        let locked = a.send("lockdown", json!({}));
        assert_eq!(locked["status"], "locked_down", "{locked}");
        let r = approving.join().unwrap();
        assert!(
            r.to_string().contains("locked_down") || r.to_string().contains("locked down"),
            "{r}"
        );
    });
    let patches = count_requests(&w.cards, "PATCH /v1/cards");
    assert_eq!(
        patches,
        1,
        "no retry after the lockdown: {:?}",
        w.cards.requests()
    );
    let card = &w.cards.cards()[0];
    assert_ne!(
        card["state"], "OPEN",
        "the card stayed closed to spending: {card}"
    );
}
