//! systemd: readiness and watchdog notifications, secrets from `$CREDENTIALS_DIRECTORY`,
//! the units' hardening score (`systemd-analyze security --offline=true` at most 2.0), and
//! what a sealed installation needs of them: no core dumps, the core's persistent keyring
//! kept across restarts, and credential files that may be missing.

mod common;

use common::cmd;
use pane_agent::auth::{Envelope, Secret};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

/// A private state dir and a credentials dir holding `agent-secret` with `mode`, as systemd
/// would lay them out.
fn state_and_credentials(
    secret: &str,
    mode: u32,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let creds = tmp.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("agent-secret"), format!("{secret}\n")).unwrap();
    std::fs::set_permissions(
        creds.join("agent-secret"),
        std::fs::Permissions::from_mode(mode),
    )
    .unwrap();
    (tmp, dir, creds)
}

#[test]
fn notify_ready_and_watchdog_and_credentials() {
    let secret = "c".repeat(64);
    let (tmp, dir, creds) = state_and_credentials(&secret, 0o400);
    let notify_path = tmp.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = cmd(&dir)
        .arg("run")
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "200000")
        .env("CREDENTIALS_DIRECTORY", &creds)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && !(got.iter().any(|m| m == "READY=1") && got.iter().any(|m| m == "WATCHDOG=1"))
    {
        let mut buf = [0u8; 256];
        if let Ok(n) = notify.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert!(got.iter().any(|m| m == "READY=1"), "{got:?}");
    assert!(got.iter().any(|m| m == "WATCHDOG=1"), "{got:?}");
    // The secret came from the credential: a command signed with it is carried out.
    let env = Envelope::sign(
        &Secret::new(&secret),
        chrono::Utc::now(),
        "list",
        Default::default(),
    );
    let mut s = UnixStream::connect(dir.join("agent.sock")).unwrap();
    use std::io::{Read, Write};
    s.write_all(env.to_json().as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.contains("\"count\":0"), "{out}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

#[test]
fn units_are_hardened_to_2_0_or_better() {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("systemd-analyze is needed: apt-get install -y systemd (scripts/test installs it)");
    for unit in ["pane-agent.service", "pane-signal.service"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(unit);
        let out = std::process::Command::new(analyze)
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find_map(|l| l.split("exposure level for").nth(1))
            .and_then(|rest| rest.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no score for {unit}: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert!(score <= 2.0, "{unit} scores {score}");
    }
}

#[test]
fn the_core_unit_sets_a_descriptor_limit_that_holds_the_http_cap() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/pane-agent.service");
    let unit = std::fs::read_to_string(path).unwrap();
    let limit: u64 = unit
        .lines()
        .find_map(|l| l.trim().strip_prefix("LimitNOFILE="))
        .unwrap_or_else(|| panic!("pane-agent.service sets no LimitNOFILE"))
        .trim()
        .parse()
        .expect("LimitNOFILE is one number");
    let cap = pane_agent::config::Config::default().http.max_connections as u64;
    assert!(
        limit >= cap + pane_agent::channels::http_conn::RESERVED_DESCRIPTORS,
        "LimitNOFILE={limit} cannot hold [http] max_connections = {cap}"
    );
}

#[test]
fn rotate_secret_in_the_credentials_dir_is_picked_up_and_audited_at_restart() {
    use pane_agent::auth::Envelope;
    let old = "d".repeat(64);
    let (_tmp, dir, creds) = state_and_credentials(&old, 0o600);
    let start = || {
        let child = cmd(&dir)
            .arg("run")
            .env("CREDENTIALS_DIRECTORY", &creds)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(dir.join("agent.sock")).is_err() {
            assert!(Instant::now() < deadline);
            // The poll interval of this bounded wait for the socket.
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    };
    let ask = |secret: &str, cmd_name: &str, args: serde_json::Value| -> serde_json::Value {
        use std::io::{Read, Write};
        let env = Envelope::sign(
            &Secret::new(secret),
            chrono::Utc::now(),
            cmd_name,
            args.as_object().cloned().unwrap(),
        );
        let mut s = UnixStream::connect(dir.join("agent.sock")).unwrap();
        s.write_all(env.to_json().as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        serde_json::from_str(&out).unwrap()
    };
    let stop = |mut child: std::process::Child| {
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert!(child.wait().unwrap().success());
    };
    let child = start();
    assert!(ask(&old, "list", serde_json::json!({}))
        .get("error")
        .is_none());
    stop(child);

    let out = cmd(&dir)
        .args(["rotate-secret", "--credentials"])
        .arg(&creds)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("systemctl restart pane-agent"));
    let new = std::fs::read_to_string(creds.join("agent-secret"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(new, old);
    let child = start();
    for s in [&old, &new] {
        assert!(
            ask(s, "list", serde_json::json!({})).get("error").is_none(),
            "both accepted in the grace period"
        );
    }
    let audit = ask(&new, "audit", serde_json::json!({"limit": 1000}));
    let rotated = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "auth.rotated")
        .count();
    assert_eq!(rotated, 1, "{audit}");
    stop(child);
}

/// `systemd-analyze`, which CI installs.
fn analyze() -> &'static str {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("systemd-analyze is needed: apt-get install -y systemd (scripts/test installs it)")
}

/// The `Key=value` settings of one of the repository's units, in order.
fn unit_settings(unit: &str) -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(unit);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn units_forbid_core_dumps_keep_the_cores_keyring_and_let_credential_files_be_missing() {
    for unit in ["pane-agent.service", "pane-signal.service"] {
        let settings = unit_settings(unit);
        let get = |key: &str| -> Vec<&str> {
            settings
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("LimitCORE"), ["0"], "{unit}: core dumps must be off");
        // Every credential file is optional: a SetCredential= of the same name is systemd's
        // default when the file is missing (a sealed installation has none), and it is an
        // empty line, which the agent and the gateway read as no credential.
        let loaded = get("LoadCredential");
        assert!(!loaded.is_empty(), "{unit}");
        for load in loaded {
            let (id, _) = load.split_once(':').unwrap();
            assert!(
                get("SetCredential").contains(&format!("{id}:\\n").as_str()),
                "{unit}: LoadCredential={load} has no SetCredential={id}:\\n default"
            );
        }
        // systemd accepts every line (an empty SetCredential= value, for one, it ignores
        // with a warning, and the missing file would fail the start again).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(unit);
        let out = std::process::Command::new(analyze())
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        let complaints: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("is not executable"))
            .collect();
        assert!(complaints.is_empty(), "{unit}: {complaints:?}");
    }
    // The core keeps the host's user namespace, where the persistent keyring of its uid
    // outlives a restart; the gateway has one of its own, which keeps it out of that keyring.
    let private_users = |unit: &str| -> Vec<String> {
        unit_settings(unit)
            .into_iter()
            .filter(|(k, _)| k == "PrivateUsers")
            .map(|(_, v)| v)
            .collect()
    };
    assert_eq!(private_users("pane-agent.service"), Vec::<String>::new());
    assert_eq!(private_users("pane-signal.service"), ["yes"]);
}

/// A sealed installation made by `init` (a generated passphrase, the cheapest KDF), the
/// passphrase it printed.
fn sealed_install(dir: &std::path::Path) -> String {
    let out = cmd(dir)
        .args(["init", "--kdf-ms", "1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::sealed::printed_passphrase(&stdout)
        .unwrap_or_else(|| panic!("no passphrase in {stdout}"))
}

/// A daemon that is killed if the test fails before it stops it.
struct Running(std::process::Child);

impl Running {
    fn spawn(dir: &std::path::Path, creds: &std::path::Path) -> Running {
        let mut running = Running(
            cmd(dir)
                .arg("run")
                .env("CREDENTIALS_DIRECTORY", creds)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(dir.join("agent.sock")).is_err() {
            assert!(running.0.try_wait().unwrap().is_none(), "the agent exited");
            assert!(Instant::now() < deadline, "the agent did not listen");
            // The poll interval of this bounded wait for the socket.
            std::thread::sleep(Duration::from_millis(20));
        }
        running
    }

    /// SIGTERM; asserts a clean exit.
    fn stop(mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        assert!(self.0.wait().unwrap().success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_units_empty_credential_defaults_are_no_credential_to_the_agent() {
    // What systemd passes for a missing file: the unit's SetCredential= default, unescaped.
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    let defaults: Vec<(String, String)> = unit_settings("pane-agent.service")
        .into_iter()
        .filter(|(k, _)| k == "SetCredential")
        .map(|(_, v)| {
            let (name, value) = v.split_once(':').unwrap();
            (name.to_string(), value.replace("\\n", "\n"))
        })
        .collect();
    assert_eq!(defaults.len(), 3, "{defaults:?}");
    for (name, value) in &defaults {
        std::fs::write(creds.join(name), value).unwrap();
    }

    // A sealed installation starts, unseals with its passphrase (taking in none of them: the
    // vault keeps its own command secret), and signs and answers a command.
    let dir = tmp.path().join("sealed");
    let passphrase = sealed_install(&dir);
    let daemon = Running::spawn(&dir, &creds);
    let reply = common::sealed::unseal(cmd(&dir), &passphrase);
    assert_eq!(reply["status"], "unsealed", "{reply}");
    assert_eq!(reply["imported"], serde_json::json!([]), "{reply}");
    let out = cmd(&dir).args(["send", "list"]).output().unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["count"], 0, "{reply}");
    daemon.stop();

    // An installation in clear falls back to its agent.secret.
    let plain = tmp.path().join("plain");
    let init = cmd(&plain).args(["init", "--unsealed"]).output().unwrap();
    assert!(init.status.success());
    let secret = std::fs::read_to_string(plain.join("agent.secret")).unwrap();
    let daemon = Running::spawn(&plain, &creds);
    let env = Envelope::sign(
        &Secret::new(secret.trim()),
        chrono::Utc::now(),
        "list",
        Default::default(),
    );
    let reply = common::raw_at(&plain.join("agent.sock"), env.to_json().as_bytes());
    assert_eq!(reply["count"], 0, "{reply}");
    daemon.stop();
}
