//! `pane-agent demo` through the binary, as a newcomer runs it: every step of the story is
//! on its output (the enroll with its alias, paused $0 card, placeholder identity and last
//! mile; the stranger's mail and the card attempt at the simulated providers; the sweep's
//! alerts and burn prompt on the phone, in words; the 👍; the alias deleted and the card
//! closed at the providers; the audit chain verified), the log stays quiet without `-v`, and
//! the temporary data dir is gone after. With `--keep`, the printed `pane-agent send` lines
//! work against the agent the story left, which holds what the story says.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn demo(tmp: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pane-agent"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", tmp)
        .env("TMPDIR", tmp)
        .arg("demo")
        .args(args);
    c
}

/// The text of the step headed `n. ` up to the next step (or the end).
fn step(out: &str, n: u32) -> &str {
    let head = format!("\n{n}. ");
    let at = out
        .find(&head)
        .unwrap_or_else(|| panic!("no step {n} in:\n{out}"));
    let rest = &out[at + 1..];
    let next = format!("\n{}. ", n + 1);
    match rest.find(&next) {
        Some(end) => &rest[..end],
        None => rest,
    }
}

/// The messages the phone showed in `text`, each whole (its first line after `📱 ┌ `, the
/// rest after `│ `).
fn phone(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(first) = line.trim_start().strip_prefix("📱 ┌ ") {
            out.push(first.to_string());
        } else if let (Some(m), Some(more)) = (out.last_mut(), line.trim_start().strip_prefix("│ "))
        {
            m.push('\n');
            m.push_str(more);
        }
    }
    out
}

/// Nothing in the data dir's parent is left but what the test put there.
fn assert_removed(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
}

#[test]
fn demo_tells_the_whole_story_in_words_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let out = demo(tmp.path(), &[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Quiet without -v: no log line, from the demo or its agent.
    assert!(stderr.trim().is_empty(), "log lines without -v: {stderr}");
    // Simulated, on loopback, and said so.
    for provider in ["SimpleLogin", "Privacy.com"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("simulated {provider}")))
            .unwrap_or_else(|| panic!("no simulated {provider} line: {stdout}"));
        assert!(line.contains("http://127.0.0.1:"), "{line}");
    }
    // Every message on the phone is words, never JSON.
    let all = phone(&stdout);
    assert!(all.len() >= 7, "{all:#?}");
    for m in &all {
        assert!(
            serde_json::from_str::<Value>(m).is_err(),
            "JSON on the phone: {m}"
        );
    }

    // 1. enroll: the alias, a paused $0 card, a placeholder identity, the last mile; and the
    // providers hold them.
    let one = step(&stdout, 1);
    let enrolled = phone(one);
    assert_eq!(enrolled.len(), 1, "{one}");
    let e = &enrolled[0];
    assert!(e.starts_with("✓ enroll: enrolled\nnotion · "), "{e}");
    let alias = e
        .lines()
        .nth(1)
        .and_then(|l| l.split(" · ").nth(1))
        .unwrap()
        .to_string();
    assert!(alias.ends_with("@simplelogin.com"), "{alias}");
    let last_four = e
        .lines()
        .nth(1)
        .and_then(|l| l.split("card ").nth(1))
        .map(|c| c[..4].to_string())
        .unwrap();
    assert!(e.contains(&format!("card {last_four} PAUSED")), "{e}");
    assert!(e.contains("\nidentity: ") && e.contains(" · born "), "{e}");
    assert!(
        e.contains(&format!("• Sign up at https://www.notion.so/ with {alias}")),
        "{e}"
    );
    assert!(e.contains("• The card is paused at 0.00"), "{e}");
    assert!(one.contains(&format!(
        "[simulated SimpleLogin] holds the alias {alias} (enabled: true)"
    )));
    assert!(one.contains(&format!(
        "[simulated Privacy.com] holds the card …{last_four}: PAUSED, spend limit $0, MERCHANT_LOCKED"
    )));

    // 2. A stranger's mail and a card attempt, at the simulated providers.
    let two = step(&stdout, 2);
    assert!(two.contains(&format!(
        "deals@shady-marketing.example sent mail to {alias}"
    )));
    assert!(two.contains(&format!(
        "SHADYSHOP LLC tried to charge $12.00 to the card …{last_four}"
    )));

    // 3. The sweep finds both: the burn prompt, an alert for each, the sweep's reply.
    let three = phone(step(&stdout, 3));
    let prompt = three
        .iter()
        .find(|m| m.starts_with("Approval needed ("))
        .unwrap_or_else(|| panic!("no burn prompt: {three:#?}"));
    assert!(
        prompt.contains(&format!(
            "expire context notion: deactivate and delete the alias {alias}, close the card ending {last_four}"
        )) && prompt.contains("react 👍"),
        "{prompt}"
    );
    let alerts: Vec<_> = three
        .iter()
        .filter(|m| m.starts_with("⚠ breach signal: notion ← "))
        .collect();
    assert_eq!(alerts.len(), 2, "{three:#?}");
    assert!(alerts
        .iter()
        .any(|a| a.contains("← shady-marketing.example (mail.sender)")));
    assert!(alerts
        .iter()
        .any(|a| a.contains("← SHADYSHOP LLC (card.attempt)")));
    assert!(alerts.iter().all(|a| a.contains("A burn is queued")));
    // SimpleLogin's activity log has no subject: none is quoted, rather than an empty one.
    assert!(
        alerts.iter().all(|a| !a.contains("subject \"\"")),
        "{alerts:#?}"
    );
    let swept = three
        .iter()
        .find(|m| m.starts_with("✓ sweep"))
        .unwrap_or_else(|| panic!("no sweep reply: {three:#?}"));
    assert!(swept.contains("2 new incident(s)"), "{swept}");

    // 4. 👍: the burn ran; the alias is gone and the card closed at the providers.
    let four = step(&stdout, 4);
    let burnt = phone(four);
    assert_eq!(burnt.len(), 1, "{four}");
    assert!(
        burnt[0].starts_with("✓ Approved: expire ran.\n✓ expire: expired")
            && burnt[0].contains(&format!("{alias} (deleted)"))
            && burnt[0].contains(&format!("card {last_four} CLOSED")),
        "{}",
        burnt[0]
    );
    assert!(four.contains(&format!("[simulated SimpleLogin] {alias} is deleted")));
    assert!(four.contains(&format!(
        "[simulated Privacy.com] the card …{last_four} is CLOSED"
    )));

    // 5. The audit chain verifies.
    let five = phone(step(&stdout, 5));
    assert_eq!(five.len(), 1, "{five:#?}");
    assert!(
        five[0].starts_with("✓ audit")
            && five[0].contains("verify: checked: ")
            && five[0].contains(" · ok: yes"),
        "{}",
        five[0]
    );
    assert!(stdout.contains("Demo finished in "), "{stdout}");
    assert_removed(tmp.path());
}

#[test]
fn demo_verbose_shows_the_agents_log() {
    let tmp = tempfile::tempdir().unwrap();
    let out = demo(tmp.path(), &["-v"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pane-agent ready"), "{stderr}");
    assert_removed(tmp.path());
}

#[test]
fn demo_keep_leaves_an_agent_that_the_printed_send_lines_reach() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = demo(tmp.path(), &["--keep"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut sends = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no `ready` from demo --keep");
        let line = lines.next().expect("demo --keep ended early").unwrap();
        if line == "ready" {
            break;
        }
        if line.contains(" send --data-dir ") {
            sends.push(line.trim().to_string());
        }
    }
    assert!(sends.len() >= 4, "{sends:?}");
    let run = |line: &str| -> Value {
        let words: Vec<&str> = line.split_whitespace().collect();
        let out = Command::new(words[0])
            .args(&words[1..])
            .env_clear()
            .env("HOME", tmp.path())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{line}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let line_for = |cmd: &str| {
        sends
            .iter()
            .find(|l| {
                l.split_once(" send --data-dir ")
                    .and_then(|(_, rest)| rest.split_once(' '))
                    .is_some_and(|(_, c)| c.starts_with(cmd))
            })
            .unwrap_or_else(|| panic!("no `{cmd}` line in {sends:?}"))
            .clone()
    };
    // The context the story burnt is expired, with its two incidents.
    let status = run(&line_for("status context=notion"));
    assert_eq!(status["state"], "expired", "{status}");
    let incidents = run(&line_for("check-incidents"));
    assert_eq!(incidents["count"], 2, "{incidents}");
    // The chain verifies over everything the story did.
    let audit = run(&line_for("audit"));
    assert_eq!(audit["verify"]["ok"], true, "{audit}");
    // A new enroll reaches the simulated providers that are still up.
    let enrolled = run(&line_for("enroll url=https://github.com"));
    assert_eq!(enrolled["status"], "enrolled", "{enrolled}");
    assert_eq!(run(&line_for("list"))["count"], 2);
    // Funding asks the phone, which shows the prompt with its code (the reply does not).
    let asked = run(&line_for("card.fund context=github"));
    assert_eq!(asked["status"], "approval_required", "{asked}");
    assert!(asked.get("code").is_none(), "{asked}");
    let prompt = loop {
        assert!(Instant::now() < deadline, "no prompt on the phone");
        let line = lines.next().expect("demo --keep ended early").unwrap();
        if line.contains("📱 ┌ Approval needed") {
            break line;
        }
    };
    let at = prompt.find("`approve ").unwrap() + 9;
    let code = &prompt[at..at + 11];
    let approved = run(&line_for("approve code=").replace("CODE", code));
    assert!(approved.get("error").is_none(), "{approved}");
    let status = run(&line_for("status context=notion").replace("notion", "github"));
    assert_eq!(status["card"]["state"], "OPEN", "{status}");

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "{status}: {rest:?}");
    assert_removed(tmp.path());
}
