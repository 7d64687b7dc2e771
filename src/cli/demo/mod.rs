//! `pane-agent demo`: the quick start, the whole job in a few seconds. A real agent (`pane-agent
//! run`, its own sled store in a temporary dir) on the embedded defaults, pointed at simulated
//! SimpleLogin and Privacy.com servers on loopback (the servers the tests use, following the
//! providers' documented API shapes), with the owner's phone played by a simulated gateway that
//! prints what the phone would show, in the words Signal carries. The story: the owner enrolls
//! a site; a stranger mails its alias and someone tries its card; the sweep finds both; the
//! phone shows the alerts and the burn prompt; a 👍 burns the alias and the card; the audit
//! chain verifies. Nothing reaches the network. With `--keep` the agent and its simulated
//! world stay up and the `pane-agent send` lines to try next are printed.

mod world;

use crate::sim::phone::Shown;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use world::World;

/// `demo [-v] [--keep]`
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DemoArgs {
    /// Show the agent's log lines (quiet otherwise; the log is in the data dir).
    #[arg(short, long)]
    pub verbose: bool,
    /// Leave the agent and its simulated providers running (until Ctrl-C) and print commands
    /// to try next.
    #[arg(long)]
    pub keep: bool,
}

/// The site the story enrolls.
const SITE: &str = "https://www.notion.so";
/// The stranger who mails the alias.
const STRANGER: &str = "deals@shady-marketing.example";
/// The merchant who tries the card.
const MERCHANT: &str = "SHADYSHOP LLC";
/// How long the phone waits for any one message of the story.
const WITHIN: Duration = Duration::from_secs(10);

/// Prints a message as the phone shows it.
fn show(m: &Shown) {
    let mut lines = m.body.lines();
    println!("   📱 ┌ {}", lines.next().unwrap_or_default());
    for line in lines {
        println!("      │ {line}");
    }
}

/// Prints a step's heading.
fn step(n: u32, text: &str) {
    println!("\n{n}. {text}");
}

/// Prints what a simulated provider now holds.
fn sim(provider: &str, text: &str) {
    println!("   [simulated {provider}] {text}");
}

/// Runs the demonstration, printing to stdout; with `--keep`, runs until Ctrl-C or SIGTERM.
pub async fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let verbose = args.verbose;
    let started = Instant::now();
    let mut world = tokio::task::spawn_blocking(move || story(verbose)).await??;
    if args.keep {
        return keep(world).await;
    }
    world.stop_agent()?;
    let dir = world.dir.display().to_string();
    drop(world);
    println!(
        "\nDemo finished in {:.1} s: the agent stopped, the simulated providers stopped, {dir} was removed.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The story, step by step; returns the world as it ends.
fn story(verbose: bool) -> anyhow::Result<World> {
    let mut w = World::start(verbose, show)?;
    println!("pane-agent demo: a real agent (pane-agent run) on its embedded defaults, with its own store in");
    println!(
        "{}. Everything it talks to is SIMULATED on this machine, from the code the tests use:",
        w.dir.display()
    );
    println!(
        "  simulated SimpleLogin  {}  (aliases, activity logs: the documented API's shapes)",
        w.aliases.base
    );
    println!(
        "  simulated Privacy.com  {}  (cards, transactions)",
        w.cards.base
    );
    println!(
        "  simulated phone        the owner's Signal on {}",
        w.dir.join("gateway.sock").display()
    );
    println!("Nothing reaches the network. 📱 lines are what the owner's phone shows.");

    step(
        1,
        &format!("The owner signs `enroll url={SITE}` on the phone and sends it over Signal."),
    );
    let envelope = w.sign("enroll", json!({"url": SITE}));
    w.phone.say(&envelope)?;
    w.phone
        .wait_for("the enroll reply", WITHIN, |b| b.starts_with("✓ enroll"))?;
    let alias = only(&w.aliases.aliases(), "alias")?;
    let alias_email = text(&alias, "email")?;
    sim(
        "SimpleLogin",
        &format!(
            "holds the alias {alias_email} (enabled: {}), note: {}",
            alias["enabled"],
            alias["note"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
        ),
    );
    let card = only(&w.cards.cards(), "card")?;
    let card_token = text(&card, "token")?;
    let last_four = text(&card, "last_four")?;
    sim(
        "Privacy.com",
        &format!(
            "holds the card …{last_four}: {}, spend limit ${}, {}",
            text(&card, "state")?,
            card["spend_limit"].as_i64().unwrap_or_default() / 100,
            text(&card, "type")?
        ),
    );

    step(
        2,
        "The world moves: a stranger mails the alias, and someone tries the card.",
    );
    w.aliases.add_activity(&alias_email, "forward", STRANGER);
    sim(
        "SimpleLogin",
        &format!("{STRANGER} sent mail to {alias_email}: its activity log now says so"),
    );
    w.cards
        .add_card_transaction(&card_token, 1200, MERCHANT, "CARD_PAUSED", None);
    sim(
        "Privacy.com",
        &format!("{MERCHANT} tried to charge $12.00 to the card …{last_four}: declined, the card is paused"),
    );

    step(
        3,
        "The breach sweep (hourly on a real agent; here the owner sends `sweep`).",
    );
    let envelope = w.sign("sweep", json!({}));
    w.phone.say(&envelope)?;
    let prompt = w
        .phone
        .wait_for("the burn prompt", WITHIN, |b| b.contains("react 👍"))?;
    for _ in 0..2 {
        w.phone
            .wait_for("an alert", WITHIN, |b| b.starts_with("⚠ breach signal"))?;
    }
    w.phone
        .wait_for("the sweep's reply", WITHIN, |b| b.starts_with("✓ sweep"))?;

    step(4, "The owner reacts 👍 to the burn prompt.");
    w.phone.react("👍", &prompt)?;
    w.phone.wait_for("the burn's result", WITHIN, |b| {
        b.starts_with("✓ Approved: expire ran")
    })?;
    if w.aliases
        .aliases()
        .iter()
        .any(|a| a["email"] == alias_email)
    {
        anyhow::bail!("the burn ran, yet SimpleLogin still holds {alias_email}");
    }
    sim(
        "SimpleLogin",
        &format!("{alias_email} is deleted: mail to it bounces"),
    );
    let card = only(&w.cards.cards(), "card")?;
    sim(
        "Privacy.com",
        &format!("the card …{last_four} is {}", text(&card, "state")?),
    );

    step(
        5,
        "The owner checks the audit log's hash chain: `audit limit:=1 verify:=true`.",
    );
    let envelope = w.sign("audit", json!({"limit": 1, "verify": true}));
    w.phone.say(&envelope)?;
    w.phone
        .wait_for("the audit reply", WITHIN, |b| b.starts_with("✓ audit"))?;
    Ok(w)
}

/// The one object a simulated provider holds, or why the story cannot go on.
fn only(objects: &[Value], what: &str) -> anyhow::Result<Value> {
    match objects {
        [one] => Ok(one.clone()),
        _ => anyhow::bail!(
            "the simulated provider holds {} {what}s, not one",
            objects.len()
        ),
    }
}

/// A string field of a simulated provider's object.
fn text(object: &Value, field: &str) -> anyhow::Result<String> {
    object[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the simulated provider's object has no {field}"))
}

/// `--keep`: prints what to try, shows what the phone receives, and waits for Ctrl-C or
/// SIGTERM; then stops everything.
async fn keep(world: World) -> anyhow::Result<()> {
    let exe = world.exe.display().to_string();
    let dir = world.dir.display().to_string();
    println!("\nThe agent and its simulated providers keep running; Ctrl-C ends the demo and removes {dir}.");
    println!("Try, from another terminal (what the phone receives keeps appearing here):");
    for line in [
        "list",
        "status context=notion",
        "check-incidents",
        "audit limit:=5 verify:=true",
        "enroll url=https://github.com",
        "card.fund context=github limit=25",
    ] {
        println!("  {exe} send --data-dir {dir} {line}");
    }
    println!("card.fund asks the phone: answer with the code its prompt shows,");
    println!("  {exe} send --data-dir {dir} approve code=CODE");
    println!("ready");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let phone = tokio::task::spawn_blocking(move || {
        let mut world = world;
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            if let Err(e) = world.phone.pump(Duration::from_millis(200)) {
                eprintln!("demo: the phone lost the agent: {e}");
                break;
            }
        }
        world
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut world = phone.await?;
    world.stop_agent()?;
    drop(world);
    println!("demo stopped; {dir} was removed");
    Ok(())
}
