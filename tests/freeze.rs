//! A burst of concurrent jobs never freezes the agent (security round 3, point 1). Every job
//! step flushes the store; sled 0.34's `flush_async` deadlocks when several run at once
//! (spacejam/sled#1308), which froze the daemon for good under ten concurrent enrolls: the
//! panic button (`lockdown`) then answered nothing and SIGTERM was ignored. Through the binary,
//! against local addy.io and Privacy.com servers that answer at once: rounds of 50 enrolls sent
//! together, with `status` and `lockdown` asked in the middle of each burst and answered, and a
//! SIGTERM in the middle of the last burst that stops the daemon cleanly.

mod common;

use common::providers::MockServer;
use common::Agent;
use pane_agent::auth::Envelope;
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const BURST: usize = 50;
/// Far longer than any answer takes on a loaded machine, far shorter than "for good".
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

fn world() -> (Agent, MockServer, MockServer) {
    // Room for every job of a burst at the providers at once, so that they all reach the
    // store together.
    let config = common::unlimited_rates(pane_agent::config::TEMPLATE)
        .replace("concurrency = 10", "concurrency = 64");
    // Sealed at rest, as `init` makes an installation: every record is sealed on its way to
    // the flusher; the restart after SIGTERM resumes from the kernel keyring.
    common::sealed_agent_with_providers(&[], &config)
}

/// Sends `cmd` signed `offset` ms from now; None when no answer came within `ANSWER_WITHIN`
/// (a frozen daemon), instead of a panic deep in a helper thread.
fn ask(agent: &Agent, offset: i64, cmd: &str, args: Value) -> Option<Value> {
    match try_ask(agent, offset, cmd, &args) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("`{cmd}` got no answer: {e}");
            None
        }
    }
}

fn try_ask(agent: &Agent, offset: i64, cmd: &str, args: &Value) -> Result<Value, String> {
    let ts = chrono::Utc::now() + chrono::Duration::milliseconds(offset);
    let args: Map<String, Value> = args.as_object().cloned().unwrap_or_default();
    let envelope = Envelope::sign(&agent.secret(), ts, cmd, args).to_json();
    let mut s = UnixStream::connect(agent.socket()).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(ANSWER_WITHIN))
        .map_err(|e| e.to_string())?;
    s.write_all(envelope.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    serde_json::from_str(&out).map_err(|e| format!("reply {out:?}: {e}"))
}

/// Fires `BURST` enrolls at once (named `{round}-{i}`), and while they run asks `during`
/// (each must be answered); returns the enrolls' answers (None: never answered).
fn burst(agent: &Agent, round: usize, during: &[(&str, Value)]) -> Vec<Option<Value>> {
    std::thread::scope(|s| {
        let jobs: Vec<_> = (0..BURST)
            .map(|i| {
                s.spawn(move || {
                    let name = format!("r{round}-{i}");
                    ask(
                        agent,
                        i as i64,
                        "enroll",
                        json!({"url": format!("https://{name}.example"), "alias": name}),
                    )
                })
            })
            .collect();
        for (n, (cmd, args)) in during.iter().enumerate() {
            let answer = ask(agent, 1000 + n as i64, cmd, args.clone());
            assert!(
                answer.is_some(),
                "round {round}: `{cmd}` got no answer within {} s while {BURST} enrolls ran: the agent froze. Log tail: {}",
                ANSWER_WITHIN.as_secs(),
                tail(&agent.logs())
            );
        }
        jobs.into_iter().map(|j| j.join().unwrap_or(None)).collect()
    })
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[test]
fn fifty_concurrent_enrolls_never_freeze_the_agent_and_lockdown_and_sigterm_answer() {
    let (mut agent, aliases, _cards) = world();
    for round in 0..3 {
        let answers = burst(&agent, round, &[("status", json!({"context": "nope"}))]);
        let unanswered = answers.iter().filter(|a| a.is_none()).count();
        assert_eq!(
            unanswered,
            0,
            "round {round}: {unanswered} of {BURST} enrolls never answered: the agent froze. Log tail: {}",
            tail(&agent.logs())
        );
        for a in answers.iter().flatten() {
            assert!(a.get("error").is_none(), "round {round}: {a}");
        }
    }
    assert_eq!(
        aliases.aliases().len(),
        3 * BURST,
        "every enroll made its alias once"
    );

    // SIGTERM in the middle of a burst stops the daemon cleanly and soon.
    let child = agent.child.take().expect("the daemon runs");
    let pid = child.id() as i32;
    let mut child = child;
    let made = common::count_requests(&aliases, "POST /api/v1/aliases");
    std::thread::scope(|s| {
        let a = &agent;
        let jobs: Vec<_> = (0..BURST)
            .map(|i| {
                s.spawn(move || {
                    let name = format!("t-{i}");
                    ask(
                        a,
                        i as i64,
                        "enroll",
                        json!({"url": format!("https://{name}.example"), "alias": name}),
                    )
                })
            })
            .collect();
        // In the middle of the burst: its first enroll has reached the alias provider.
        common::wait_for_requests(&aliases, "POST /api/v1/aliases", made + 1);
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            // The poll interval of this bounded wait for the exit.
            std::thread::sleep(Duration::from_millis(20));
        };
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for j in jobs {
            let _ = j.join();
        }
        let status = status.unwrap_or_else(|| {
            panic!(
                "the daemon ignored SIGTERM for 30 s during a burst: frozen. Log tail: {}",
                tail(&agent.logs())
            )
        });
        assert!(status.success(), "clean exit after SIGTERM: {status}");
    });

    // It comes back with everything it acknowledged, and the panic button answers in the
    // middle of the next burst; every enroll of it is answered (done, or stopped by it).
    agent.spawn();
    let list = ask(&agent, 0, "list", json!({})).expect("list answered after the restart");
    assert!(
        list["count"].as_u64().unwrap_or(0) >= (3 * BURST) as u64,
        "{}",
        list["count"]
    );
    let answers = burst(
        &agent,
        4,
        &[
            ("lockdown", json!({})),
            ("status", json!({"context": "nope"})),
        ],
    );
    assert!(
        answers.iter().all(Option::is_some),
        "every enroll of the locked-down burst was answered. Log tail: {}",
        tail(&agent.logs())
    );
    let locked = ask(&agent, 0, "lockdown", json!({})).expect("lockdown answered");
    assert_eq!(locked["status"], "locked_down", "{locked}");
    agent.stop();
}
