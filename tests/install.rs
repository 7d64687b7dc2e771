//! `provisioning/install.sh`, run the way a new owner runs it (`pane-agent demo`: tests/demo.rs).
//!
//! The installer runs for real (as root, as it requires), with every path it writes moved
//! into a temporary dir through its documented variables (`PANE_CRED_DIR`, `PANE_STATE_DIR`,
//! `PANE_UNIT_DIR`) and `--prefix`, from a scratch copy of the checkout whose
//! `target/release/pane-agent` is the binary under test (`--no-build`). A `systemctl` first
//! on `PATH` records its arguments, so nothing reaches the host's systemd even where it runs.
//! Standard input is not a terminal, so `pane-agent init` generates the unseal passphrase
//! and prints it, as it does when the owner presses Enter.

mod common;

use common::sealed::{doctor_row, printed_passphrase, unseal};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
        for file in [
            "Cargo.toml",
            "README.md",
            "provisioning/install.sh",
            "provisioning/tor-hidden-service.conf",
        ] {
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

    fn state(&self) -> PathBuf {
        self.path("var/lib/pane")
    }

    fn creds(&self) -> PathBuf {
        self.path("etc/pane/credentials")
    }

    fn bin(&self) -> PathBuf {
        self.path("usr/local-test/bin/pane-agent")
    }

    /// Runs the installer with `args`, every path it writes inside the temporary dir. None of
    /// the target dirs exists before the first run.
    fn run(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.path("shims").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .arg(self.path("checkout/provisioning/install.sh"))
            .args(["--no-build", "--prefix"])
            .arg(self.path("usr/local-test"))
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.tmp.path())
            // Left over in an operator's shell: the sealed install must not use it.
            .env("AGENT_SECRET", "s".repeat(64))
            .env("PANE_CRED_DIR", self.creds())
            .env("PANE_STATE_DIR", self.state())
            .env("PANE_UNIT_DIR", self.path("etc/systemd/system"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The installed `pane-agent` with a clean environment and `env`.
    fn agent(&self, env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(self.bin());
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.tmp.path())
            .env("PANE_DATA_DIR", self.state());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// `doctor` on what was installed (the scratch credentials and unit dirs): its report.
    fn doctor(&self, env: &[(&str, &str)]) -> String {
        let out = self
            .agent(env)
            .arg("doctor")
            .arg("--credentials")
            .arg(self.creds())
            .arg("--unit-dir")
            .arg(self.path("etc/systemd/system"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The row of `check` in a doctor report, with its fix line.
fn row(report: &str, check: &str) -> String {
    doctor_row(report, check).unwrap_or_else(|| panic!("no {check} row in:\n{report}"))
}

/// What every run installs, whatever the layout: the binaries, the README and the units
/// with /usr/local/ rewritten to the prefix, and systemd asked to load and enable the core
/// (or the owner told to).
fn check_common(install: &Install, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "install.sh failed:\n{stdout}\n{stderr}"
    );
    let prefix = install.path("usr/local-test");
    assert_eq!(mode(&install.bin()), 0o755);
    let version = Command::new(install.bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(version.status.success(), "{version:?}");
    assert_eq!(
        std::fs::read(prefix.join("share/doc/pane-agent/README.md")).unwrap(),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
    );
    // One torrc for both ways: the onion service and the outbound SOCKS port, isolated.
    let torrc =
        std::fs::read_to_string(prefix.join("share/doc/pane-agent/torrc-pane.conf")).unwrap();
    assert!(
        torrc.contains("\nHiddenServiceDir /var/lib/tor/pane/"),
        "{torrc}"
    );
    assert!(
        torrc.contains("\nSocksPort 127.0.0.1:9050 IsolateSOCKSAuth"),
        "{torrc}"
    );
    assert!(
        stdout.contains("[network] proxy = \"socks5h://127.0.0.1:9050\""),
        "{stdout}"
    );
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
    let asked = std::fs::read_to_string(install.path("systemctl.log")).unwrap_or_default();
    let runs = stdout.matches("pane-agent is installed").count();
    if Path::new("/run/systemd/system").is_dir() {
        assert!(
            asked.ends_with("daemon-reload\nenable pane-agent.service\n"),
            "{asked}"
        );
    } else {
        assert_eq!(asked, "");
        assert!(stderr.contains("systemd is not running here"), "{stderr}");
    }
    assert_eq!(runs, 1, "{stdout}");
    assert_eq!(mode(&install.state().join("pane.toml")), 0o600);
}

/// The installed daemon, killed if the test fails before it stops it.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the installed daemon on the state dir and waits for its control socket.
fn start_daemon(install: &Install) -> Daemon {
    let mut daemon = Daemon(
        install
            .agent(&[])
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = install.state().join("agent.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(daemon.0.try_wait().unwrap().is_none(), "the agent exited");
        assert!(Instant::now() < deadline, "the agent did not listen");
        // The poll interval of this bounded wait for the socket.
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

/// SIGTERM; asserts a clean exit.
fn stop_daemon(mut daemon: Daemon) {
    unsafe { libc::kill(daemon.0.id() as i32, libc::SIGTERM) };
    assert!(daemon.0.wait().unwrap().success());
}

#[test]
fn install_sh_makes_a_sealed_installation_that_its_printed_passphrase_unseals() {
    let install = Install::new();
    assert!(!install.path("etc").exists());
    let first = install.run(&[]);
    check_common(&install, &first);
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    let state = install.state();

    // Sealed: the key file and a sealed store, no secret in a file anywhere, and nothing in
    // the credentials dir of the unsealed layout (it is not even made).
    assert_eq!(mode(&state.join("seal.json")), 0o600);
    assert!(state.join("store").is_dir());
    assert!(!state.join("agent.secret").exists());
    assert!(
        !install.creds().exists(),
        "a sealed install writes no credential file"
    );
    // The provider keys' drop file: a private template the first unseal takes in.
    let keys = state.join("credentials/provider-keys");
    assert_eq!(mode(&state.join("credentials")), 0o700);
    assert_eq!(mode(&keys), 0o600);
    let template = std::fs::read_to_string(&keys).unwrap();
    assert!(
        template.contains("# ADDY_API_KEY=") && template.contains("# PANE_IMAP_PASSWORD="),
        "{template}"
    );
    // The passphrase, printed once, and the next steps: start, unseal, link.
    let passphrase = printed_passphrase(&stdout).unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(passphrase.len(), 29, "{passphrase}");
    for step in [
        "systemctl start pane-agent",
        "pane-agent unseal --data-dir",
        "pane-signal link --data-dir",
        "provider-keys",
    ] {
        assert!(stdout.contains(step), "{step}: {stdout}");
    }
    assert!(!stdout.contains("agent-secret"), "{stdout}");
    // The leftover AGENT_SECRET did not stop init from making the command secret.
    assert!(stdout.contains("made the command secret"), "{stdout}");

    // doctor accepts it: sealed, the units keep core dumps off, and the template is named as
    // a credential file still in clear until the first unseal.
    let report = install.doctor(&[]);
    assert!(!report.lines().any(|l| l.starts_with("FAIL")), "{report}");
    for check in [
        "sealed at rest",
        "command secret",
        "core dumps",
        "data dir mode",
    ] {
        assert!(row(&report, check).starts_with("pass"), "{check}: {report}");
    }
    let clear = row(&report, "credentials in clear");
    assert!(
        clear.starts_with("warn") && clear.contains(&keys.display().to_string()),
        "{clear}"
    );

    // The printed passphrase unseals it; the first unseal takes the provider keys in and
    // removes their file; the daemon then signs and answers for the console.
    std::fs::write(&keys, "ADDY_API_KEY=test-addy-key-0123456789\n").unwrap();
    let daemon = start_daemon(&install);
    let reply = unseal(install.agent(&[]), &passphrase);
    assert_eq!(reply["status"], "unsealed", "{reply}");
    assert!(
        reply["imported"].to_string().contains("provider-keys"),
        "{reply}"
    );
    assert!(!keys.exists(), "the imported provider keys are removed");
    let out = install.agent(&[]).args(["send", "list"]).output().unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["count"], 0, "{reply}");
    stop_daemon(daemon);
    assert!(row(&install.doctor(&[]), "credentials in clear").starts_with("pass"));

    // Again: nothing changes, no passphrase is printed, and the provider keys' template is
    // not written again (at the next unseal it would replace the keys taken in).
    let key_file = std::fs::read(state.join("seal.json")).unwrap();
    let config = std::fs::read(state.join("pane.toml")).unwrap();
    let second = install.run(&[]);
    check_common(&install, &second);
    let stdout = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(printed_passphrase(&stdout).is_none(), "{stdout}");
    assert!(
        stdout.contains("kept existing sealed installation"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(state.join("seal.json")).unwrap(), key_file);
    assert_eq!(std::fs::read(state.join("pane.toml")).unwrap(), config);
    assert!(!keys.exists(), "{stdout}");
    assert!(!install.creds().exists());

    // --unsealed cannot apply to it, and --recovery is for sealed installations only.
    let refused = install.run(&["--unsealed"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is a sealed installation"),
        "{refused:?}"
    );
    let refused = install.run(&["--unsealed", "--recovery"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
}

#[test]
fn install_sh_recovery_prints_a_second_passphrase_that_opens_the_same_key() {
    let install = Install::new();
    let out = install.run(&["--recovery"]);
    check_common(&install, &out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let recovery = stdout
        .lines()
        .find_map(|l| l.split("keep it apart from the other): ").nth(1))
        .unwrap_or_else(|| panic!("no recovery passphrase in {stdout}"))
        .trim()
        .to_string();
    assert_ne!(Some(recovery.clone()), printed_passphrase(&stdout));
    let key_file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(install.state().join("seal.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = key_file["wrappers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["passphrase", "recovery"]);
    let daemon = start_daemon(&install);
    let reply = unseal(install.agent(&[]), &recovery);
    assert_eq!(reply["status"], "unsealed", "{reply}");
    stop_daemon(daemon);
    assert!(row(&install.doctor(&[]), "sealed at rest").contains("passphrase or recovery"));
}

#[test]
fn install_sh_unsealed_keeps_the_layout_in_clear_and_a_rerun_does_not_seal_it() {
    let install = Install::new();
    let first = install.run(&["--unsealed"]);
    check_common(&install, &first);
    let creds = install.creds();
    let state = install.state();
    // The credentials: a private dir of root-owned 0600 files.
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
    let keys = std::fs::read_to_string(creds.join("provider-keys")).unwrap();
    assert!(
        keys.contains("# ADDY_API_KEY=") && keys.contains("# PANE_IMAP_PASSWORD="),
        "{keys}"
    );
    assert_eq!(std::fs::read(creds.join("previous-secrets")).unwrap(), b"");
    // init wrote the config in clear, and no second secret beside the credential.
    assert!(!state.join("seal.json").exists());
    assert!(!state.join("agent.secret").exists());
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(printed_passphrase(&stdout).is_none(), "{stdout}");
    assert!(stdout.contains("seal-init"), "{stdout}");
    // doctor accepts it, and says it is not sealed.
    let secret = std::fs::read_to_string(creds.join("agent-secret")).unwrap();
    let report = install.doctor(&[("AGENT_SECRET", secret.trim())]);
    assert!(!report.lines().any(|l| l.starts_with("FAIL")), "{report}");
    for check in [
        "command secret",
        "config file mode",
        "data dir mode",
        "core dumps",
    ] {
        assert!(row(&report, check).starts_with("pass"), "{check}: {report}");
    }
    let sealed = row(&report, "sealed at rest");
    assert!(
        sealed.starts_with("warn") && sealed.contains("seal-init"),
        "{sealed}"
    );

    // A loosened mode and an owner's edits: the second run tightens the one, keeps the other.
    let passphrase = std::fs::read(creds.join("signal-passphrase")).unwrap();
    let config = std::fs::read(state.join("pane.toml")).unwrap();
    std::fs::set_permissions(
        creds.join("agent-secret"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(creds.join("provider-keys"), "ADDY_API_KEY=mine\n").unwrap();
    let second = install.run(&["--unsealed"]);
    check_common(&install, &second);
    assert_eq!(mode(&creds.join("agent-secret")), 0o600);
    assert_eq!(
        std::fs::read_to_string(creds.join("agent-secret")).unwrap(),
        secret
    );
    assert_eq!(
        std::fs::read(creds.join("signal-passphrase")).unwrap(),
        passphrase
    );
    assert_eq!(
        std::fs::read_to_string(creds.join("provider-keys")).unwrap(),
        "ADDY_API_KEY=mine\n"
    );
    assert_eq!(std::fs::read(state.join("pane.toml")).unwrap(), config);
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

    // Without --unsealed, an installation in clear is kept as it is, with the way to seal it.
    let third = install.run(&[]);
    check_common(&install, &third);
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(
        stderr.contains("installation in clear") && stderr.contains("seal-init"),
        "{stderr}"
    );
    assert!(!state.join("seal.json").exists());
    assert!(!state.join("credentials").exists());
    assert_eq!(
        std::fs::read_to_string(creds.join("agent-secret")).unwrap(),
        secret
    );
}
