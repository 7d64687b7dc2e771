//! The command line as operators use it: init, run's refusals to start, sign, send,
//! command, clean shutdown, and no secret in any output.

mod common;

use common::sealed::doctor_row;
use common::{cmd, Agent};
use pane_agent::auth::{Envelope, Secret, SecretSet};
use std::os::unix::fs::PermissionsExt;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &std::path::Path, m: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn init_creates_private_files_and_never_overwrites() {
    let agent = Agent::init();
    assert_eq!(mode(&agent.dir), 0o700);
    assert_eq!(mode(&agent.dir.join("pane.toml")), 0o600);
    assert_eq!(mode(&agent.dir.join("agent.secret")), 0o600);
    let secret = std::fs::read_to_string(agent.dir.join("agent.secret")).unwrap();
    let secret = secret.trim();
    assert_eq!(secret.len(), 64);
    assert!(hex::decode(secret).is_ok());
    let config = std::fs::read_to_string(agent.dir.join("pane.toml")).unwrap();
    assert_eq!(config, pane_agent::config::TEMPLATE);

    std::fs::write(agent.dir.join("pane.toml"), "# mine\n").unwrap();
    let out = cmd(&agent.dir)
        .args(["init", "--unsealed"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(agent.dir.join("pane.toml")).unwrap(),
        "# mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(agent.dir.join("agent.secret"))
            .unwrap()
            .trim(),
        secret
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept existing"));
}

#[test]
fn init_with_agent_secret_writes_no_secret_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let out = cmd(&dir)
        .args(["init", "--unsealed", "--data-dir"])
        .arg(&dir)
        .env("AGENT_SECRET", "s".repeat(40))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dir.join("agent.secret").exists());
    assert!(dir.join("pane.toml").exists());
}

#[test]
fn run_refuses_unsafe_setups_with_a_clear_message() {
    let run = |agent: &Agent, env: &[(&str, &str)]| {
        let mut c = cmd(&agent.dir);
        c.arg("run");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(!out.status.success(), "must refuse: {}", stderr(&out));
        stderr(&out)
    };
    let agent = Agent::init();
    let msg = run(&agent, &[("AGENT_SECRET", "short-secret")]);
    assert!(msg.contains("at least 32 bytes"), "{msg}");
    assert!(
        !msg.contains("short-secret"),
        "the secret itself is never printed: {msg}"
    );

    chmod(&agent.dir.join("agent.secret"), 0o644);
    let msg = run(&agent, &[]);
    assert!(
        msg.contains("agent.secret") && msg.contains("chmod 600"),
        "{msg}"
    );
    chmod(&agent.dir.join("agent.secret"), 0o600);

    chmod(&agent.dir.join("pane.toml"), 0o644);
    let msg = run(&agent, &[]);
    assert!(
        msg.contains("pane.toml") && msg.contains("owner only"),
        "{msg}"
    );
    chmod(&agent.dir.join("pane.toml"), 0o600);

    chmod(&agent.dir, 0o707);
    let msg = run(&agent, &[]);
    assert!(msg.contains("writable by group or others"), "{msg}");
    chmod(&agent.dir, 0o700);

    std::fs::write(agent.dir.join("agent.secret"), "tooshort\n").unwrap();
    let msg = run(&agent, &[]);
    assert!(msg.contains("at least 32 bytes"), "{msg}");

    std::fs::write(agent.dir.join("pane.toml"), "[approvals]\ntimeout = 5\n").unwrap();
    let msg = run(&agent, &[("AGENT_SECRET", &"k".repeat(64))]);
    assert!(
        msg.contains("invalid config") && msg.contains("timeout"),
        "{msg}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let out = cmd(&missing).arg("run").output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("pane-agent init"), "{}", stderr(&out));
}

#[test]
fn sign_send_and_command_through_the_binary() {
    let mut agent = Agent::start();
    let out = agent.cli(&["sign", "status", "context=notion", "n:=5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let env = Envelope::parse(text.trim().as_bytes()).unwrap();
    let secrets = SecretSet::load(&agent.dir, &[]).unwrap();
    assert!(env.signature_valid(&secrets));
    assert_eq!(
        serde_json::Value::Object(env.args.clone()),
        serde_json::json!({"context": "notion", "n": 5})
    );

    let out = agent.cli(&["send", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["count"], 0);

    let out = agent.cli(&["send", "status", "context=notion"]);
    assert_eq!(out.status.code(), Some(1), "an error reply exits non-zero");
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["error"], "context not found: notion");

    // A pre-signed envelope, as over SSH.
    let signed = agent.envelope("help", serde_json::json!({})).to_json();
    let out = agent.cli(&["command", &signed]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = agent.cli(&["command", &signed]);
    assert_eq!(out.status.code(), Some(1), "replay");
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed"));
    let out = agent.cli(&["command", "{not json"]);
    assert_eq!(out.status.code(), Some(1));

    // Clean shutdown: exit 0, socket removed, store flushed.
    agent.stop();
    assert!(!agent.socket().exists());
    let out = agent.cli(&["send", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the agent"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_secret_in_logs_replies_or_audit() {
    let mut agent = Agent::init();
    let provider_key = "addy_live_Zq8e0cZr1VQ7tqs2o0RgWm6yKxWb4NhuX9pT";
    agent.env.push(("ADDY_API_KEY".into(), provider_key.into()));
    agent.spawn();
    let secret = agent.secret().as_text();
    let mut everything = String::new();
    for (cmd, args) in [
        ("list", serde_json::json!({})),
        ("status", serde_json::json!({"context": secret.clone()})),
        (
            "status",
            serde_json::json!({"context": "x", "note": format!("key {provider_key}")}),
        ),
        (
            "help",
            serde_json::json!({"card": "4111 1111 1111 1111", "cvv": "737"}),
        ),
        ("grant", serde_json::json!({"tool": "list"})),
    ] {
        everything.push_str(&agent.send(cmd, args).to_string());
    }
    everything.push_str(&agent.raw(b"{\"bad\": true}").to_string());
    everything.push_str(&serde_json::Value::Array(agent.audit()).to_string());
    for args in [vec!["sign", "list"], vec!["send", "list"]] {
        let out = agent.cli(&args);
        everything.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    agent.stop();
    everything.push_str(&agent.logs());
    assert!(
        agent.logs().contains("pane-agent ready"),
        "the log was captured"
    );
    for needle in [
        secret.as_str(),
        provider_key,
        "4111 1111 1111 1111",
        "\"737\"",
    ] {
        assert!(!everything.contains(needle), "{needle} leaked");
    }
    // Not even a piece of a secret.
    for key in [secret.as_str(), provider_key] {
        for i in 0..key.len() - 16 {
            assert!(
                !everything.contains(&key[i..i + 16]),
                "part of a secret leaked"
            );
        }
    }
}

#[test]
fn control_socket_serves_only_the_agents_own_uid() {
    if unsafe { libc::geteuid() } != 0 {
        // Needs root to run a client as another uid; CI runs as root.
        eprintln!("skipped: not root");
        return;
    }
    use std::os::unix::process::CommandExt;
    let agent = Agent::start();
    // Open the file modes so only the peer-credential check stands in the way.
    chmod(&agent.dir, 0o755);
    chmod(&agent.socket(), 0o777);
    let signed = agent.envelope("lockdown", serde_json::json!({})).to_json();
    let out = std::process::Command::new(common::bin())
        .args(["command", "--data-dir"])
        .arg(&agent.dir)
        .arg(&signed)
        .env_clear()
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    chmod(&agent.dir, 0o700);
    assert!(!out.status.success(), "another uid must get no reply");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("locked_down"));
    // Nothing happened, and the envelope is still unused.
    assert_eq!(agent.raw(signed.as_bytes())["status"], "locked_down");
    assert!(
        agent.logs().contains("refused a peer with another uid"),
        "{}",
        agent.logs()
    );
}

#[test]
fn rotate_secret_keeps_the_old_one_for_the_grace_period_and_audits_it() {
    let mut agent = Agent::start();
    let old = agent.secret();
    let out = agent.cli(&["rotate-secret"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("reloaded"), "{text}");
    let new = agent.secret();
    assert_ne!(old, new);
    assert_eq!(mode(&agent.dir.join("agent.secret")), 0o600);
    assert_eq!(mode(&agent.dir.join("previous.secrets")), 0o600);
    // Both sign for now.
    for secret in [&old, &new] {
        let env = Envelope::sign(secret, chrono::Utc::now(), "list", Default::default());
        assert!(agent.raw(env.to_json().as_bytes()).get("error").is_none());
    }
    let rotated: Vec<serde_json::Value> = agent
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "auth.rotated")
        .collect();
    assert_eq!(rotated.len(), 1);
    let logged = serde_json::Value::Array(agent.audit()).to_string() + &agent.logs() + &text;
    for s in [old.as_text(), new.as_text()] {
        assert!(!logged.contains(&s[..16]), "a secret leaked");
    }
    // Past the grace period the old one is refused.
    let body = std::fs::read_to_string(agent.dir.join("previous.secrets")).unwrap();
    let (_, secret) = body.trim().split_once(' ').unwrap();
    std::fs::write(
        agent.dir.join("previous.secrets"),
        format!("{} {secret}\n", chrono::Utc::now().timestamp() - 1),
    )
    .unwrap();
    agent.restart();
    let env = Envelope::sign(&old, chrono::Utc::now(), "list", Default::default());
    assert_eq!(agent.raw(env.to_json().as_bytes())["kind"], "bad_signature");
}

/// `secrets.reload` signed with `secret`, over the control socket: the reply, checked.
fn reload_signed_with(agent: &Agent, secret: &Secret) -> serde_json::Value {
    let env = Envelope::sign(
        secret,
        chrono::Utc::now(),
        "secrets.reload",
        Default::default(),
    );
    let r = agent.raw(env.to_json().as_bytes());
    assert_eq!(r["status"], "reloaded", "{r}");
    r
}

/// `list` signed with `secret` now, over the control socket: the reply.
fn list_signed_with(agent: &Agent, secret: &Secret) -> serde_json::Value {
    let env = Envelope::sign(secret, chrono::Utc::now(), "list", Default::default());
    agent.raw(env.to_json().as_bytes())
}

#[test]
fn a_rotated_secret_is_refused_by_the_running_daemon_once_its_grace_ends() {
    let agent = Agent::start();
    let old = agent.secret();
    // A rotation whose grace ends a few seconds from now, laid out as rotate-secret does it:
    // the old secret in previous.secrets with its expiry, a new one in agent.secret, and the
    // daemon told to reload.
    let expires = chrono::Utc::now().timestamp() + 5;
    let previous = agent.dir.join("previous.secrets");
    std::fs::write(&previous, format!("{expires} {}\n", old.as_text())).unwrap();
    chmod(&previous, 0o600);
    std::fs::write(
        agent.dir.join("agent.secret"),
        format!("{}\n", "e".repeat(64)),
    )
    .unwrap();
    let r = reload_signed_with(&agent, &old);
    // Loaded while still in its grace (the load skips expired lines).
    assert_eq!(r["accepted_secrets"], 2, "{r}");
    let new = agent.secret();
    // No restart and no reload from here on: the same daemon must stop accepting it. (Four
    // tries a second for 20 s stay inside the read tier's 120 a minute.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut accepted = 0;
    loop {
        let r = list_signed_with(&agent, &old);
        if r["kind"] == "bad_signature" {
            break;
        }
        assert!(r.get("error").is_none(), "{r}");
        accepted += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "the old secret is still accepted long after its grace ended"
        );
        // The poll interval of this bounded wait for the grace's end (wall clock).
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(accepted > 0, "the old secret was accepted during its grace");
    assert!(chrono::Utc::now().timestamp() >= expires, "refused early");
    assert!(list_signed_with(&agent, &new).get("error").is_none());
}

/// Rotates with `extra` arguments and checks the old secret is refused at once by the
/// running daemon, the new one accepted, and the old one kept nowhere.
fn rotate_with_zero_grace(agent: &Agent, extra: &[&str]) {
    let old = agent.secret();
    assert!(list_signed_with(agent, &old).get("error").is_none());
    let mut args = vec!["rotate-secret"];
    args.extend_from_slice(extra);
    let out = agent.cli(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("refused from now on"), "{text}");
    assert!(text.contains("reloaded"), "{text}");
    assert_eq!(list_signed_with(agent, &old)["kind"], "bad_signature");
    assert!(list_signed_with(agent, &agent.secret())
        .get("error")
        .is_none());
    let kept = std::fs::read_to_string(agent.dir.join("previous.secrets")).unwrap_or_default();
    assert!(!kept.contains(&old.as_text()), "the stolen secret is kept");
}

#[test]
fn a_zero_grace_refuses_the_old_secret_at_once() {
    let mut agent = Agent::init();
    agent.write_config(
        &pane_agent::config::TEMPLATE.replace("rotation_grace_days = 7", "rotation_grace_days = 0"),
    );
    agent.spawn();
    rotate_with_zero_grace(&agent, &[]);
}

#[test]
fn rotate_secret_reads_the_config_given_with_config() {
    // The data dir's pane.toml keeps the default grace of 7 days; the daemon's config, given
    // with --config, says 0.
    let agent = Agent::start();
    let config = agent.tmp.path().join("daemon.toml");
    std::fs::write(
        &config,
        pane_agent::config::TEMPLATE.replace("rotation_grace_days = 7", "rotation_grace_days = 0"),
    )
    .unwrap();
    chmod(&config, 0o600);
    rotate_with_zero_grace(&agent, &["--config", config.to_str().unwrap()]);
}

#[test]
fn a_reloaded_secret_is_redacted_from_replies_the_audit_log_and_the_log() {
    // A passphrase, not hex: only the redactor's list of known secrets can find it (no
    // secret-shaped pattern matches it).
    let passphrase = "correct-horse-battery-staple-for-pane";
    let mut agent = Agent::start();
    let old = agent.secret();
    std::fs::write(
        agent.dir.join("previous.secrets"),
        format!(
            "{} {}\n",
            chrono::Utc::now().timestamp() + 3600,
            old.as_text()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        agent.dir.join("previous.secrets"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(agent.dir.join("agent.secret"), format!("{passphrase}\n")).unwrap();
    reload_signed_with(&agent, &old);
    // The owner pastes the new secret where it does not belong.
    let new = agent.secret();
    let mut args = serde_json::Map::new();
    args.insert("context".into(), serde_json::json!(passphrase));
    let env = Envelope::sign(&new, chrono::Utc::now(), "status", args);
    let r = agent.raw(env.to_json().as_bytes());
    assert_eq!(r["kind"], "not_found", "{r}");
    assert!(r["error"].as_str().unwrap().contains("[redacted]"), "{r}");
    let audit = serde_json::Value::Array(agent.audit()).to_string();
    assert!(audit.contains("[redacted]"), "{audit}");
    let everything = r.to_string() + &audit + &agent.logs();
    assert!(!everything.contains(passphrase), "the new secret leaked");
    // `audit` redacts what it shows, so look at the store itself too: every file under it.
    agent.stop();
    common::assert_not_in_store(&agent.dir, passphrase, "the new secret");
}

#[test]
fn doctor_prints_the_checklist_and_fails_on_real_problems() {
    let agent = Agent::init();
    let out = agent.cli(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for name in [
        "command secret",
        "config file mode",
        "data dir mode",
        "secret outside git",
        "http endpoint",
        "ssh password login",
        "clock synchronised",
        "secret age",
        "signal gateway",
        "logs stay local",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("pass") && l.contains("command secret")),
        "{text}"
    );
    assert_eq!(
        out.status.success(),
        !text.contains("FAIL"),
        "exit code follows the table"
    );

    chmod(&agent.dir.join("agent.secret"), 0o644);
    let out = agent.cli(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success());
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("command secret")),
        "{text}"
    );
    assert!(text.contains("chmod 600"), "{text}");
    chmod(&agent.dir.join("agent.secret"), 0o600);

    // A data dir inside a git work tree.
    std::fs::create_dir(agent.tmp.path().join(".git")).unwrap();
    let out = agent.cli(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success());
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("secret outside git")),
        "{text}"
    );
}

/// A sealed installation made by `init` (a generated passphrase, the cheapest KDF `init`
/// allows), in a temporary dir with empty credentials and unit dirs beside it.
fn sealed_init() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pane");
    let out = cmd(&dir)
        .args(["init", "--kdf-ms", "1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("seal.json").exists());
    for d in ["creds", "units"] {
        std::fs::create_dir(tmp.path().join(d)).unwrap();
    }
    (tmp, dir)
}

/// `doctor` on `dir` with the credentials and unit dirs beside it (never the host's), and
/// `env`: its report.
fn doctor_at(dir: &std::path::Path, env: &[(&str, &str)]) -> String {
    let base = dir.parent().unwrap();
    let mut c = cmd(dir);
    c.arg("doctor")
        .arg("--credentials")
        .arg(base.join("creds"))
        .arg("--unit-dir")
        .arg(base.join("units"));
    for (k, v) in env {
        c.env(k, v);
    }
    String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
}

#[test]
fn doctor_warns_about_an_installation_in_clear_and_passes_it_once_sealed() {
    let mut agent = Agent::init();
    for d in ["creds", "units"] {
        std::fs::create_dir(agent.tmp.path().join(d)).unwrap();
    }
    let report = doctor_at(&agent.dir, &[]);
    let sealed = doctor_row(&report, "sealed at rest").unwrap_or_else(|| panic!("{report}"));
    assert!(
        sealed.starts_with("warn") && sealed.contains("fix:") && sealed.contains("seal-init"),
        "{sealed}"
    );
    // What only a sealed installation has is not asked of one in clear.
    for check in [
        "credentials in clear",
        "secrets in environment",
        "kernel keyring",
    ] {
        assert!(doctor_row(&report, check).is_none(), "{check}: {report}");
    }

    // Sealed in place (the store exists once the agent has run): the row passes, the
    // command secret is in the sealed store, and agent.secret was taken in and removed.
    agent.spawn();
    agent.stop();
    let out = cmd(&agent.dir)
        .args(["seal-init", "--kdf-ms", "1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = doctor_at(&agent.dir, &[]);
    for (check, detail) in [
        ("sealed at rest", "opens with passphrase"),
        ("command secret", "inside the sealed store"),
        ("credentials in clear", "none"),
    ] {
        let row = doctor_row(&report, check).unwrap_or_else(|| panic!("{check}: {report}"));
        assert!(row.starts_with("pass") && row.contains(detail), "{row}");
    }

    // Its key file lost while the store is sealed: the agent refuses to start, and doctor
    // fails the row with the fix.
    let key_file = agent.dir.join("seal.json");
    std::fs::rename(&key_file, agent.tmp.path().join("seal.json.away")).unwrap();
    let out = cmd(&agent.dir)
        .arg("doctor")
        .arg("--unit-dir")
        .arg(agent.tmp.path().join("units"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{report}");
    let row = doctor_row(&report, "sealed at rest").unwrap();
    assert!(
        row.starts_with("FAIL") && row.contains("seal.json is missing") && row.contains("backup"),
        "{row}"
    );
}

#[test]
fn doctor_names_the_credential_files_a_sealed_installation_still_has_in_clear() {
    let (tmp, dir) = sealed_init();
    let creds = tmp.path().join("creds");
    let row = |report: &str| doctor_row(report, "credentials in clear").unwrap();
    assert!(row(&doctor_at(&dir, &[])).starts_with("pass"));

    let values = [
        "ADDY_API_KEY=addy-value-0123456789",
        "mcp-value-0123456789abcdef0123456789",
        "secret-value-0123456789abcdef0123456789",
        "signal-value-0123456789abcdef",
    ];
    std::fs::create_dir(dir.join("credentials")).unwrap();
    std::fs::write(dir.join("credentials/provider-keys"), values[0]).unwrap();
    std::fs::write(dir.join("mcp.key"), values[1]).unwrap();
    std::fs::write(creds.join("agent-secret"), values[2]).unwrap();
    std::fs::write(creds.join("signal-passphrase"), values[3]).unwrap();
    // Empty, or only a newline (the units' default for a missing file): nothing to take in.
    std::fs::write(creds.join("previous-secrets"), "").unwrap();
    std::fs::write(dir.join("previous.secrets"), "\n").unwrap();
    let report = doctor_at(&dir, &[]);
    let found = row(&report);
    assert!(found.starts_with("warn"), "{found}");
    for path in [
        dir.join("credentials/provider-keys"),
        dir.join("mcp.key"),
        creds.join("agent-secret"),
        creds.join("signal-passphrase"),
    ] {
        assert!(found.contains(&path.display().to_string()), "{found}");
    }
    for empty in [creds.join("previous-secrets"), dir.join("previous.secrets")] {
        assert!(!found.contains(&empty.display().to_string()), "{found}");
    }
    assert!(found.contains("unseal"), "{found}");
    assert!(
        found.contains(&format!("remove them from {}", creds.display())),
        "{found}"
    );
    assert!(
        found.contains(
            &dir.join("credentials/signal-passphrase")
                .display()
                .to_string()
        ),
        "{found}"
    );
    for value in values {
        assert!(!report.contains(value), "doctor printed a secret: {report}");
    }
}

#[test]
fn doctor_warns_about_secrets_in_the_environment_of_a_sealed_installation() {
    let (tmp, dir) = sealed_init();
    let row = |report: &str| doctor_row(report, "secrets in environment").unwrap();
    assert!(row(&doctor_at(&dir, &[])).starts_with("pass"));

    // In the shell doctor (and a `pane-agent run` by hand) starts from.
    let report = doctor_at(&dir, &[("ADDY_API_KEY", "addy-env-value-0123456789")]);
    let found = row(&report);
    assert!(
        found.starts_with("warn") && found.contains("ADDY_API_KEY (this shell)"),
        "{found}"
    );
    assert!(found.contains("provider-keys"), "{found}");
    assert!(!report.contains("addy-env-value"), "{report}");

    // In the core's unit, directly and through an environment file.
    let env_file = tmp.path().join("pane.env");
    std::fs::write(&env_file, "HIBP_API_KEY=hibp-value\nRUST_LOG=info\n").unwrap();
    std::fs::write(
        tmp.path().join("units/pane-agent.service"),
        format!(
            "[Service]\nEnvironment=RUST_LOG=debug \"PRIVACY_API_KEY=privacy-value\"\nEnvironmentFile=-{}\nLimitCORE=0\n",
            env_file.display()
        ),
    )
    .unwrap();
    let report = doctor_at(&dir, &[]);
    let found = row(&report);
    assert!(found.starts_with("warn"), "{found}");
    assert!(
        found.contains("PRIVACY_API_KEY (pane-agent.service, Environment=)"),
        "{found}"
    );
    assert!(
        found.contains("HIBP_API_KEY (pane-agent.service, EnvironmentFile=)"),
        "{found}"
    );
    assert!(!found.contains("RUST_LOG"), "{found}");
}

/// Makes `add_key` and `keyctl` fail with EPERM in the child, as the default seccomp
/// profile of a container does.
#[cfg(target_arch = "x86_64")]
fn without_keyctl(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf: 0,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let filter = [
        // seccomp_data: nr at offset 0, arch at 4.
        stmt(load, 4),
        jeq(AUDIT_ARCH_X86_64, 1),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(load, 0),
        jeq(libc::SYS_keyctl as u32, 2),
        jeq(libc::SYS_add_key as u32, 1),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ];
    // SAFETY: the closure makes two prctl calls on the child's own memory, no allocation.
    unsafe {
        command.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn doctor_checks_that_the_kernel_keyring_can_hold_the_key_across_a_restart() {
    let (_tmp, dir) = sealed_init();
    let row = doctor_row(&doctor_at(&dir, &[]), "kernel keyring").unwrap();
    assert!(
        row.starts_with("pass") && row.contains("crash-restart resumes"),
        "{row}"
    );

    // Where keyctl is forbidden, a restart needs the owner: doctor says so, with the fix.
    let base = dir.parent().unwrap();
    let mut c = cmd(&dir);
    c.arg("doctor")
        .arg("--credentials")
        .arg(base.join("creds"))
        .arg("--unit-dir")
        .arg(base.join("units"));
    without_keyctl(&mut c);
    let report = String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned();
    let row = doctor_row(&report, "kernel keyring").unwrap();
    assert!(
        row.starts_with("warn") && row.contains("not usable") && row.contains("keyctl"),
        "{row}"
    );
}

#[test]
fn doctor_checks_that_the_units_turn_core_dumps_off() {
    let agent = Agent::init();
    let units = agent.tmp.path().join("units");
    std::fs::create_dir(&units).unwrap();
    std::fs::create_dir(agent.tmp.path().join("creds")).unwrap();
    let row = || doctor_row(&doctor_at(&agent.dir, &[]), "core dumps").unwrap();
    // No unit installed there: it cannot tell.
    let found = row();
    assert!(
        found.starts_with("warn") && found.contains("no pane-agent unit"),
        "{found}"
    );
    // The repository's units: both turn them off.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    for unit in ["pane-agent.service", "pane-signal.service"] {
        std::fs::copy(repo.join(unit), units.join(unit)).unwrap();
    }
    let found = row();
    assert!(
        found.starts_with("pass")
            && found.contains("LimitCORE=0 in pane-agent.service and pane-signal.service"),
        "{found}"
    );
    // A drop-in that turns them back on, and a unit without the setting.
    std::fs::create_dir(units.join("pane-agent.service.d")).unwrap();
    std::fs::write(
        units.join("pane-agent.service.d/override.conf"),
        "[Service]\nLimitCORE=infinity\n",
    )
    .unwrap();
    let unit = std::fs::read_to_string(repo.join("pane-signal.service")).unwrap();
    std::fs::write(
        units.join("pane-signal.service"),
        unit.replace("LimitCORE=0\n", ""),
    )
    .unwrap();
    let found = row();
    assert!(found.starts_with("warn"), "{found}");
    assert!(
        found.contains("pane-agent.service: LimitCORE=infinity")
            && found.contains("pane-signal.service: no LimitCORE"),
        "{found}"
    );
    assert!(found.contains("fix: set LimitCORE=0"), "{found}");
}
