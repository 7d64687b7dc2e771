//! Start-up checks ownership (issue 12, point 11): `run` refuses to start when the data dir,
//! the secret or the config belongs to another user, or when a directory above one is
//! writable by others without the sticky bit; `doctor` fails the `ownership` check with the
//! fix. These tests run as root (as CI does) so they can hand a file to another uid.

mod common;

use common::{cmd, Agent};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The uid of `nobody`: a user other than this one and root.
const OTHER_UID: u32 = 65534;

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `pane-agent run` on the agent's data dir and returns what it wrote to stderr once it
/// exits with a failure; panics if it starts instead.
fn run_refused(agent: &Agent) -> String {
    let mut c = cmd(&agent.dir);
    for (k, v) in &agent.env {
        c.env(k, v);
    }
    let mut child = c
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!status.success(), "run exited 0: {stderr}");
            return stderr;
        }
        if agent.socket().exists() || Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "run started anyway: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The poll interval of this bounded wait for the exit.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `doctor`'s `ownership` row and the fix line under it.
fn doctor_ownership(agent: &Agent) -> (bool, String) {
    let out = agent.cli(&["doctor"]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = report.lines().skip_while(|l| !l.contains(" ownership "));
    let row = lines
        .next()
        .unwrap_or_else(|| panic!("no ownership row: {report}"));
    let fix = lines.next().unwrap_or_default();
    (
        out.status.success(),
        format!(
            "{row}\n{}",
            if fix.trim_start().starts_with("fix:") {
                fix
            } else {
                ""
            }
        ),
    )
}

#[test]
fn a_data_dir_config_or_secret_owned_by_another_user_stops_the_start() {
    for (what, file) in [
        ("data dir", ""),
        ("config", "pane.toml"),
        ("secret", "agent.secret"),
    ] {
        let mut agent = Agent::init();
        let path = agent.dir.join(file);
        let path = if file.is_empty() {
            agent.dir.clone()
        } else {
            path
        };
        chown(&path, OTHER_UID);
        let stderr = run_refused(&agent);
        let owned = format!("{what} {} is owned by uid {OTHER_UID}", path.display());
        assert!(stderr.contains(&owned), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("chown 0 {}", path.display())),
            "{what}: {stderr}"
        );
        let (ok, doctor) = doctor_ownership(&agent);
        assert!(!ok, "{doctor}");
        assert!(
            doctor.starts_with("FAIL") && doctor.contains(&owned),
            "{doctor}"
        );
        assert!(
            doctor.contains(&format!("fix: chown 0 {}", path.display())),
            "{doctor}"
        );
        // Given back, it starts, and doctor passes the row.
        chown(&path, 0);
        agent.spawn();
        let (_, doctor) = doctor_ownership(&agent);
        assert!(doctor.starts_with("pass"), "{doctor}");
        agent.stop();
    }
}

#[test]
fn a_credential_secret_owned_by_another_user_stops_the_start() {
    let mut agent = Agent::init();
    let creds = agent.tmp.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    let secret = creds.join("agent-secret");
    std::fs::write(&secret, "d".repeat(64)).unwrap();
    chmod(&secret, 0o400);
    chown(&secret, OTHER_UID);
    agent
        .env
        .push(("CREDENTIALS_DIRECTORY".into(), creds.display().to_string()));
    let stderr = run_refused(&agent);
    assert!(
        stderr.contains(&format!(
            "secret {} is owned by uid {OTHER_UID}",
            secret.display()
        )),
        "{stderr}"
    );
    chown(&secret, 0);
    agent.spawn();
    agent.stop();
}

#[test]
fn a_directory_above_writable_by_others_stops_the_start_unless_sticky() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let dir = shared.join("pane");
    let out = cmd(&dir).args(["init", "--unsealed"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut agent = Agent {
        tmp,
        log: shared.join("agent.log"),
        dir,
        child: None,
        env: Vec::new(),
    };
    chmod(&shared, 0o777);
    let stderr = run_refused(&agent);
    let found = format!("{} has mode 777", shared.display());
    assert!(stderr.contains(&found), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod o-w {}", shared.display())),
        "{stderr}"
    );
    let (ok, doctor) = doctor_ownership(&agent);
    assert!(
        !ok && doctor.starts_with("FAIL") && doctor.contains(&found),
        "{doctor}"
    );
    // With the sticky bit (as /tmp has), nobody can swap what is not theirs: it starts.
    chmod(&shared, 0o1777);
    agent.spawn();
    let (_, doctor) = doctor_ownership(&agent);
    assert!(doctor.starts_with("pass"), "{doctor}");
    agent.stop();
    // A directory above owned by another user counts like the data dir itself.
    chmod(&shared, 0o755);
    chown(&shared, OTHER_UID);
    let stderr = run_refused(&agent);
    assert!(
        stderr.contains(&format!("{} is owned by uid {OTHER_UID}", shared.display())),
        "{stderr}"
    );
    chown(&shared, 0);
}

/// Issue 21: `secrets.reload` refuses an `agent.secret` owned by another user, as the start
/// does, and the daemon keeps the secrets it has.
#[test]
fn secrets_reload_refuses_a_secret_owned_by_another_user() {
    use pane_agent::auth::{Envelope, Secret};
    let agent = Agent::start();
    let old = agent.secret();
    let path = agent.dir.join("agent.secret");
    // Another user's secret, mode 0600 as the start asks: only its owner is wrong.
    let theirs = "t".repeat(48);
    std::fs::write(&path, &theirs).unwrap();
    chmod(&path, 0o600);
    chown(&path, OTHER_UID);
    let signed = |secret: &Secret, cmd: &str| {
        let env = Envelope::sign(secret, chrono::Utc::now(), cmd, Default::default());
        agent.raw(env.to_json().as_bytes())
    };
    let reply = signed(&old, "secrets.reload");
    let error = reply["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("is owned by uid {OTHER_UID}")) && error.contains("chown"),
        "{reply}"
    );
    assert!(reply.get("status").is_none(), "{reply}");
    // Nothing was reloaded: the old secret still works and theirs does not.
    assert!(signed(&old, "list").get("error").is_none());
    assert_eq!(
        signed(&Secret::new(&theirs), "list")["kind"],
        "bad_signature"
    );
    chown(&path, 0);
}

/// The previous secrets `rotate-secret` keeps and the MCP key are secrets the daemon accepts
/// too: one owned by another user stops the start, and `secrets.reload`, like `agent.secret`.
#[test]
fn previous_secrets_or_an_mcp_key_owned_by_another_user_are_refused() {
    let mut agent = Agent::start();
    for (file, made_by) in [
        ("previous.secrets", "rotate-secret"),
        ("mcp.key", "mcp-key"),
    ] {
        let out = agent.cli(&[made_by]);
        assert!(out.status.success(), "{made_by}: {out:?}");
        let path = agent.dir.join(file);
        assert!(path.exists(), "{made_by} made {file}");
        chown(&path, OTHER_UID);
        let reply = agent.send("secrets.reload", serde_json::json!({}));
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("is owned by uid {OTHER_UID}")) && error.contains(file),
            "reload with another user's {file}: {reply}"
        );
        agent.stop();
        let stderr = run_refused(&agent);
        assert!(
            stderr.contains(&format!("chown 0 {}", path.display())),
            "start with another user's {file}: {stderr}"
        );
        chown(&path, 0);
        agent.spawn();
    }
}
