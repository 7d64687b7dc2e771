//! The gate answers while providers hang; a lockdown stops jobs in flight before their next
//! provider call; one context's work is serial while contexts run side by side. Provider
//! calls are held with the memory providers' hold until released: no sleeps, and the real
//! clock (see the note on time in `main.rs`).

use crate::harness::{assert_error, within, World};
use serde_json::json;

#[tokio::test]
async fn lockdown_answers_while_a_create_is_held_and_the_job_stops_before_its_next_call() {
    let w = World::start();
    w.aliases.controls().hold();
    let enroll = w.spawn_send(
        "enroll",
        json!({"url": "https://notion.so", "alias": "notion"}),
    );
    within(
        "the alias create",
        w.aliases.controls().wait_for("create", 1),
    )
    .await;

    // All of these are answered while the alias provider holds the create.
    let list = w.send("list", json!({})).await;
    assert!(list["count"].as_u64().is_some(), "{list}");
    let status = w.send("status", json!({"context": "notion"})).await;
    assert_eq!(status["state"], "enrolling", "{status}");
    let locked = w.send("lockdown", json!({})).await;
    assert_eq!(locked["status"], "locked_down", "{locked}");
    assert_eq!(
        locked["stopping_jobs"].as_array().map(Vec::len),
        Some(1),
        "{locked}"
    );
    assert!(
        !enroll.is_finished(),
        "the enroll still waits on the provider"
    );
    assert_eq!(
        w.aliases.controls().calls().len(),
        1,
        "only the create so far"
    );

    w.aliases.controls().release();
    let r = within("the enroll's reply", enroll).await.unwrap();
    assert_error(&r, "locked_down");
    // The create already made finished and was kept; nothing came after it.
    assert_eq!(w.aliases.aliases().len(), 1);
    assert!(
        w.cards.controls().calls().is_empty(),
        "no card call after the lockdown: {:?}",
        w.cards.controls().calls()
    );
    let status = w.send("status", json!({"context": "notion"})).await;
    assert_eq!(status["state"], "enrolling", "{status}");
    assert!(status["alias"]["email"].is_string(), "{status}");
    w.stop().await;
}

#[tokio::test]
async fn one_contexts_work_is_serial_while_contexts_run_side_by_side() {
    let w = World::start();
    for name in ["one", "two"] {
        w.enroll(name).await;
    }
    let aliases = w.aliases.controls();
    aliases.hold();
    aliases.reset_max_in_flight();
    let first = w.spawn_send("alias.deactivate", json!({"context": "one"}));
    within("one's first change", aliases.wait_for("set_active", 1)).await;
    let second = w.spawn_send("alias.activate", json!({"context": "one"}));
    let other = w.spawn_send("alias.deactivate", json!({"context": "two"}));
    // Two's change reaches the provider while one's first is held: side by side.
    within("two's change", aliases.wait_for("set_active", 2)).await;
    // One's second change was handed to the job runner too (a bounded poll of the audit
    // log), and waits its turn behind the first.
    within("three jobs started", async {
        loop {
            let started = w
                .audit_events()
                .await
                .iter()
                .filter(|e| *e == "job.started")
                .count();
            // Two enrolls, and the three changes.
            if started >= 5 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(aliases.count("set_active"), 2, "one's second change waits");
    assert!(!second.is_finished());

    aliases.release();
    for (what, job) in [("first", first), ("second", second), ("other", other)] {
        let r = within(what, job).await.unwrap();
        assert!(r.get("error").is_none(), "{what}: {r}");
    }
    assert_eq!(aliases.count("set_active"), 3);
    assert_eq!(
        aliases.max_in_flight(),
        2,
        "one context's two changes never overlapped; the two contexts did"
    );
    // The aliases in the order they were made: one's, then two's.
    let states: Vec<bool> = w.aliases.aliases().iter().map(|a| a.active).collect();
    // One was deactivated then activated again (in that order); two is deactivated.
    assert_eq!(states, vec![true, false], "{:?}", w.aliases.aliases());
    w.stop().await;
}
