//! What takes time, on tokio's paused clock moved by the test alone
//! ([`crate::harness::manual_clock`]): a job past its deadline, a provider's 429 cool-down.
//! Minutes and hours pass in no wall time, and exactly when the test says.

use crate::harness::{assert_error, config, manual_clock, World};
use pane_agent::providers::ProviderError;
use serde_json::json;
use std::time::Duration;
use tokio::time::{advance, Instant};

#[tokio::test(start_paused = true)]
async fn a_job_past_its_deadline_ends_with_deadline_exceeded_in_no_wall_time() {
    let _clock = manual_clock();
    let wall = std::time::Instant::now();
    let mut config = config();
    config.jobs.deadline_secs = 90;
    let w = World::with(config);
    w.aliases.controls().hold();
    let start = Instant::now();
    let enroll = w.spawn_send(
        "enroll",
        json!({"url": "https://notion.so", "alias": "notion"}),
    );
    w.aliases.controls().wait_for("create", 1).await;

    advance(Duration::from_secs(89)).await;
    // The gate answers meanwhile, and the job is still waiting on the provider.
    let status = w.send("status", json!({"context": "notion"})).await;
    assert_eq!(status["state"], "enrolling", "{status}");
    assert!(!enroll.is_finished(), "ended before its deadline");

    advance(Duration::from_secs(1)).await;
    let r = enroll.await.unwrap();
    assert_error(&r, "deadline_exceeded");
    assert!(r["error"].as_str().unwrap().contains("90 s"), "{r}");
    assert!(start.elapsed() >= Duration::from_secs(90));
    assert_eq!(w.aliases.controls().count("create"), 1);
    assert!(
        w.aliases.aliases().is_empty(),
        "the held create never finished"
    );
    assert!(
        w.cards.controls().calls().is_empty(),
        "no card call after the deadline"
    );
    // The context waits for reconciliation, its alias intent open.
    let status = w.send("status", json!({"context": "notion"})).await;
    assert_eq!(status["state"], "enrolling", "{status}");
    w.aliases.controls().release();
    w.stop().await;
    assert!(
        wall.elapsed() < Duration::from_secs(30),
        "90 s of deadline took {:?} of wall time",
        wall.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_cools_only_its_own_provider_down_for_as_long_as_it_asked() {
    const COOL_DOWN: Duration = Duration::from_secs(3600);
    let _clock = manual_clock();
    let wall = std::time::Instant::now();
    let mut config = config();
    // Far past the cool-down: a job waiting it out is not ended by its deadline.
    config.jobs.deadline_secs = 24 * 3600;
    let w = World::with(config);
    for name in ["notion", "other"] {
        w.enroll(name).await;
    }

    let aliases = w.aliases.controls();
    aliases.fail_next(ProviderError::RateLimited {
        provider: "memory",
        retry_after_secs: COOL_DOWN.as_secs(),
    });
    let limited = w.spawn_send("alias.deactivate", json!({"context": "notion"}));
    aliases.wait_for("set_active", 1).await;
    let made = aliases.calls();
    let limited_at = made.last().unwrap().at;

    // The card provider is not slowed by the alias provider's 429: no time passes. (Another
    // context: this one's work waits its turn behind the refused change.)
    let r = w.send("card.pause", json!({"context": "other"})).await;
    assert!(r.get("error").is_none(), "{r}");
    assert_eq!(w.cards.controls().calls().last().unwrap().at, limited_at);

    // The alias provider is not called again before the cool-down is over, not even to
    // read back the alias whose change was refused (which the job does next).
    advance(COOL_DOWN - Duration::from_secs(1)).await;
    let status = w.send("status", json!({"context": "notion"})).await;
    assert!(status.get("error").is_none(), "the gate answers: {status}");
    assert_eq!(
        aliases.calls(),
        made,
        "the alias provider was called in its cool-down"
    );
    assert!(!limited.is_finished());

    advance(Duration::from_secs(1)).await;
    let r = limited.await.unwrap();
    assert_error(&r, "rate_limited");
    let read_back = aliases.calls().last().unwrap().clone();
    assert_eq!(read_back.op, "get");
    assert_eq!(read_back.at - limited_at, COOL_DOWN);
    assert!(
        w.aliases.aliases()[0].active,
        "the refused change was not made"
    );

    let r = w
        .send("alias.deactivate", json!({"context": "notion"}))
        .await;
    assert!(r.get("error").is_none(), "{r}");
    assert!(!w.aliases.aliases()[0].active);
    w.stop().await;
    assert!(
        wall.elapsed() < Duration::from_secs(30),
        "{:?}",
        wall.elapsed()
    );
}
