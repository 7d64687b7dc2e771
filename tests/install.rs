//! `provisioning/install.sh` and `pane-agent demo`, run the way a new owner runs them.
//!
//! The installer runs for real (as root, as it requires), with every path it writes moved
//! into a temporary dir through its documented variables (`PANE_CRED_DIR`, `PANE_STATE_DIR`,
//! `PANE_UNIT_DIR`) and `--prefix`, from a scratch copy of the checkout whose
//! `target/release/pane-agent` is the binary under test (`--no-build`). A `systemctl` first
//! on `PATH` records its arguments, so nothing reaches the host's systemd even where it runs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A scratch checkout, the install's target dirs and the `systemctl` record, all under one
/// temporary dir.
struct Install {
    tmp: tempfile::TempDir,
}

impl Install {
    fn new() -> Install {
        let tmp = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"));
        let checkout = tmp.path().join("checkout");
        for dir in ["provisioning", "systemd", "target/release"] {
            std::fs::create_dir_all(checkout.join(dir)).unwrap();
        }
        for file in ["Cargo.toml", "README.md", "provisioning/install.sh"] {
            std::fs::copy(src.join(file), checkout.join(file)).unwrap();
        }
        for unit in std::fs::read_dir(src.join("systemd")).unwrap() {
            let unit = unit.unwrap().path();
            std::fs::copy(
                &unit,
                checkout.join("systemd").join(unit.file_name().unwrap()),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_pane-agent"),
            checkout.join("target/release/pane-agent"),
        )
        .unwrap();
        let shims = tmp.path().join("shims");
        std::fs::create_dir(&shims).unwrap();
        let systemctl = shims.join("systemctl");
        std::fs::write(
            &systemctl,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\n",
                tmp.path().join("systemctl.log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        Install { tmp }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Runs the installer with every path it writes inside the temporary dir. None of the
    /// target dirs exists before the first run.
    fn run(&self) -> Output {
        let path = format!(
            "{}:{}",
            self.path("shims").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .arg(self.path("checkout/provisioning/install.sh"))
            .args(["--no-build", "--prefix"])
            .arg(self.path("usr/local-test"))
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.tmp.path())
            .env("PANE_CRED_DIR", self.path("etc/pane/credentials"))
            .env("PANE_STATE_DIR", self.path("var/lib/pane"))
            .env("PANE_UNIT_DIR", self.path("etc/systemd/system"))
            .output()
            .unwrap()
    }
}

/// Checks what a run installed; `template_keys`: provider-keys still holds the template.
fn check_installed(install: &Install, out: &Output, template_keys: bool) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "install.sh failed:\n{stdout}\n{stderr}"
    );
    let prefix = install.path("usr/local-test");
    let bin = prefix.join("bin/pane-agent");
    assert_eq!(mode(&bin), 0o755);
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(version.status.success(), "{version:?}");
    assert_eq!(
        std::fs::read(prefix.join("share/doc/pane-agent/README.md")).unwrap(),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
    );
    // The units, with /usr/local/ rewritten to the prefix.
    let units = install.path("etc/systemd/system");
    for name in ["pane-agent.service", "pane-signal.service"] {
        let unit = units.join(name);
        assert_eq!(mode(&unit), 0o644, "{name}");
        let text = std::fs::read_to_string(&unit).unwrap();
        assert!(!text.contains("/usr/local/"), "{name}: {text}");
        assert!(
            text.contains(&format!("{}/bin/", prefix.display())),
            "{name}: {text}"
        );
    }
    // The credentials: a private dir of root-owned 0600 files.
    let creds = install.path("etc/pane/credentials");
    assert_eq!(mode(&creds), 0o700);
    for name in [
        "agent-secret",
        "provider-keys",
        "signal-passphrase",
        "previous-secrets",
    ] {
        let file = creds.join(name);
        assert_eq!(mode(&file), 0o600, "{name}");
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&file).unwrap()),
            0
        );
    }
    for name in ["agent-secret", "signal-passphrase"] {
        let text = std::fs::read_to_string(creds.join(name)).unwrap();
        let hex = text.trim_end();
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}: {text:?}"
        );
    }
    if template_keys {
        let keys = std::fs::read_to_string(creds.join("provider-keys")).unwrap();
        assert!(
            keys.contains("# ADDY_API_KEY=") && keys.contains("# PANE_IMAP_PASSWORD="),
            "{keys}"
        );
    }
    assert_eq!(std::fs::read(creds.join("previous-secrets")).unwrap(), b"");
    // init wrote the config, and no second secret beside the credential.
    let state = install.path("var/lib/pane");
    assert_eq!(mode(&state.join("pane.toml")), 0o600);
    assert!(!state.join("agent.secret").exists());
    // systemd is either asked to load and enable the unit, or the owner is told to.
    let asked = std::fs::read_to_string(install.path("systemctl.log")).unwrap_or_default();
    if Path::new("/run/systemd/system").is_dir() {
        assert_eq!(asked, "daemon-reload\nenable pane-agent.service\n");
    } else {
        assert_eq!(asked, "");
        assert!(stderr.contains("systemd is not running here"), "{stderr}");
    }
    // The daemon's own check accepts what was installed.
    let agent_secret = std::fs::read_to_string(creds.join("agent-secret")).unwrap();
    let doctor = Command::new(&bin)
        .args(["doctor", "--data-dir"])
        .arg(&state)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AGENT_SECRET", agent_secret.trim())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&doctor.stdout);
    for check in ["command secret", "config file mode", "data dir mode"] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("pass") && l.contains(check)),
            "{check}: {report}"
        );
    }
    assert!(!report.lines().any(|l| l.starts_with("fail")), "{report}");
}

#[test]
fn install_sh_installs_into_dirs_that_do_not_exist_yet_and_again_changes_nothing() {
    let install = Install::new();
    assert!(!install.path("etc").exists());
    let first = install.run();
    check_installed(&install, &first, true);
    let creds = install.path("etc/pane/credentials");
    let secret = std::fs::read(creds.join("agent-secret")).unwrap();
    let passphrase = std::fs::read(creds.join("signal-passphrase")).unwrap();
    let config = std::fs::read(install.path("var/lib/pane/pane.toml")).unwrap();
    // A loosened mode and an owner's edits: the second run tightens the one, keeps the other.
    std::fs::set_permissions(
        creds.join("agent-secret"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(creds.join("provider-keys"), "ADDY_API_KEY=mine\n").unwrap();
    let second = install.run();
    check_installed(&install, &second, false);
    assert_eq!(std::fs::read(creds.join("agent-secret")).unwrap(), secret);
    assert_eq!(
        std::fs::read(creds.join("signal-passphrase")).unwrap(),
        passphrase
    );
    assert_eq!(
        std::fs::read_to_string(creds.join("provider-keys")).unwrap(),
        "ADDY_API_KEY=mine\n"
    );
    assert_eq!(
        std::fs::read(install.path("var/lib/pane/pane.toml")).unwrap(),
        config
    );
    let stdout = String::from_utf8_lossy(&second.stdout);
    for kept in [
        "agent-secret",
        "provider-keys",
        "signal-passphrase",
        "pane.toml",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("==> kept existing") && l.contains(kept)),
            "{kept}: {stdout}"
        );
    }
}

/// The exchanges `pane-agent demo` printed: each command sent (`→ envelope`) with the reply
/// it got (`← reply`, pretty-printed over several lines).
fn exchanges(stdout: &str) -> Vec<(serde_json::Value, serde_json::Value)> {
    let mut out = Vec::new();
    let mut lines = stdout.lines();
    while let Some(line) = lines.next() {
        let Some(sent) = line.strip_prefix("→ ") else {
            continue;
        };
        let sent: serde_json::Value = serde_json::from_str(sent).unwrap();
        let mut reply = String::new();
        for line in lines.by_ref() {
            if line.is_empty() {
                break;
            }
            reply.push_str(line.strip_prefix("← ").unwrap_or(line));
            reply.push('\n');
        }
        out.push((sent, serde_json::from_str(&reply).unwrap()));
    }
    out
}

#[test]
fn demo_answers_its_signed_commands_and_verifies_the_audit_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pane-agent"))
        .arg("demo")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", tmp.path())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exchanges = exchanges(&stdout);
    let cmds: Vec<&str> = exchanges
        .iter()
        .map(|(sent, _)| sent["cmd"].as_str().unwrap())
        .collect();
    assert_eq!(
        cmds,
        ["list", "status", "revoke", "grant", "approve", "audit"],
        "{stdout}"
    );
    for (sent, reply) in &exchanges {
        // Each command went out signed, and none was refused.
        let sig = sent["sig"].as_str().unwrap();
        assert!(
            sig.len() == 64 && sig.bytes().all(|b| b.is_ascii_hexdigit()),
            "{sent}"
        );
        if sent["cmd"] == "status" {
            // The demo asks about a context that does not exist, to show a clear refusal.
            assert_eq!(reply["kind"], "not_found", "{reply}");
        } else {
            assert!(reply.get("error").is_none(), "{sent} → {reply}");
        }
    }
    assert_eq!(exchanges[0].1["count"], 0, "{stdout}");
    // The grant waited for an approval, and its code approved it.
    let code = exchanges[3].1["code"].as_str().unwrap();
    assert_eq!(exchanges[4].0["args"]["code"], code);
    // The audit chain verifies, over the entries the demo's commands wrote.
    let audit = &exchanges[5].1;
    assert_eq!(audit["verify"]["ok"], true, "{audit}");
    assert!(audit["verify"]["first_bad_seq"].is_null(), "{audit}");
    assert!(audit["verify"]["checked"].as_u64().unwrap() >= 6, "{audit}");
    assert!(
        stdout.contains("demo finished; its data dir was removed"),
        "{stdout}"
    );
    // The throwaway data dir was made under TMPDIR and is gone.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
