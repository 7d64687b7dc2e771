//! `pane-agent doctor`: the hosting checklist, checked. Prints a pass/warn/fail table with
//! the fix for each problem and exits non-zero when anything fails.
//!
//! Besides the host, it checks the seal (`docs/sealing.md`): an installation in clear is
//! warned about; on a sealed one, credential files still in clear, secrets in the
//! environment, and whether the kernel keyring can hold the key across a restart. Core dumps
//! must be off in the units either way.

use super::DataDirArg;
use crate::config::Config;
use crate::unix;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `doctor [--data-dir DIR] [--credentials DIR] [--unit-dir DIR]`
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    /// The data directory.
    pub data_dir: DataDirArg,
    /// The systemd credentials directory the units load (`LoadCredential=` sources).
    #[arg(long, default_value = "/etc/pane/credentials")]
    pub credentials: PathBuf,
    /// The directory the units are installed in (drop-ins in `<unit>.d/` included).
    #[arg(long, default_value = "/etc/systemd/system")]
    pub unit_dir: PathBuf,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Pass,
    /// Worth a look.
    Warn,
    /// Must be fixed.
    Fail,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (empty when it passed).
    pub fix: String,
}

fn check(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix: if status == Status::Pass {
            String::new()
        } else {
            fix.into()
        },
    }
}

/// Runs every check against the data dir.
pub fn run_checks(args: &DoctorArgs) -> anyhow::Result<Vec<Check>> {
    let data_dir = args.data_dir.resolve()?;
    let creds = args.credentials.as_path();
    let sealed = crate::seal::is_sealed_installation(&data_dir);
    let mut out = Vec::new();
    let config_path = data_dir.join("pane.toml");
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(_) if !config_path.exists() => Config::default(),
        Err(e) => {
            out.push(check(
                "config",
                Status::Fail,
                e.to_string(),
                "fix pane.toml (pane-agent init writes a commented one)",
            ));
            Config::default()
        }
    };
    out.push(seal_check(&data_dir));
    out.push(secret_check(&data_dir, creds, sealed));
    out.push(mode_check(
        "config file mode",
        &config_path,
        0o077,
        "chmod 600",
    ));
    out.push(data_dir_check(&data_dir));
    out.push(ownership_check(&data_dir, &config_path, creds));
    out.push(git_check(&data_dir));
    out.push(http_check(&config));
    out.push(ssh_check(Path::new("/etc/ssh")));
    out.push(clock_check());
    out.push(secret_age_check(
        &data_dir,
        creds,
        sealed,
        config.auth.rotation_days,
    ));
    out.push(gateway_check(&data_dir));
    out.push(log_forwarding_check(Path::new("/etc")));
    if sealed {
        out.push(clear_credentials_check(&data_dir, creds));
        out.push(environment_check(&args.unit_dir, &data_dir));
        out.push(keyring_check());
    }
    out.push(core_dump_check(&args.unit_dir));
    Ok(out)
}

/// Prints the table; returns true when nothing failed.
pub fn print(checks: &[Check]) -> bool {
    println!("{:<6} {:<24} DETAIL", "STATUS", "CHECK");
    for c in checks {
        let s = match c.status {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("{s:<6} {:<24} {}", c.name, c.detail);
        if !c.fix.is_empty() {
            println!("{:<6} {:<24} fix: {}", "", "", c.fix);
        }
    }
    !checks.iter().any(|c| c.status == Status::Fail)
}

/// Where the secret file is: the systemd credential (inside the unit, or in the credentials
/// directory at a console), else `<data-dir>/agent.secret`.
fn secret_path(data_dir: &Path, creds: &Path) -> PathBuf {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join("agent-secret"))
        .filter(|p| p.exists())
        .or_else(|| Some(creds.join("agent-secret")).filter(|p| p.exists()))
        .unwrap_or_else(|| data_dir.join("agent.secret"))
}

fn secret_check(data_dir: &Path, creds: &Path, sealed: bool) -> Check {
    let name = "command secret";
    if let Ok(v) = std::env::var("AGENT_SECRET") {
        let len = v.trim().len();
        return if len >= 32 {
            check(name, Status::Pass, format!("AGENT_SECRET, {len} bytes"), "")
        } else {
            check(
                name,
                Status::Fail,
                format!("AGENT_SECRET is {len} bytes"),
                "use at least 32 random bytes: openssl rand -hex 32",
            )
        };
    }
    if sealed {
        // Its files, if any are left, are taken in at the next unseal: the row of the
        // credentials in clear names them.
        return check(
            name,
            Status::Pass,
            "inside the sealed store (seal.json)",
            "",
        );
    }
    // Under systemd the secret is a credential; at a console it sits in /etc/pane/credentials.
    let path = secret_path(data_dir, creds);
    let Ok(mode) = unix::mode_of(&path) else {
        return check(
            name,
            Status::Fail,
            format!("{} is missing", path.display()),
            "pane-agent init",
        );
    };
    let len = std::fs::read_to_string(&path)
        .map(|t| t.trim().len())
        .unwrap_or(0);
    if len < 32 {
        return check(
            name,
            Status::Fail,
            format!("{len} bytes"),
            "pane-agent rotate-secret (32 random bytes)",
        );
    }
    if mode & 0o077 != 0 {
        return check(
            name,
            Status::Fail,
            format!("{len} bytes, mode {mode:o}"),
            format!("chmod 600 {}", path.display()),
        );
    }
    check(
        name,
        Status::Pass,
        format!("{len} bytes, mode {mode:o}"),
        "",
    )
}

fn mode_check(name: &'static str, path: &Path, forbidden: u32, fix: &str) -> Check {
    match unix::mode_of(path) {
        Err(_) => check(
            name,
            Status::Pass,
            format!("{} absent: built-in defaults", path.display()),
            "",
        ),
        Ok(mode) if mode & forbidden != 0 => check(
            name,
            Status::Fail,
            format!("mode {mode:o}"),
            format!("{fix} {}", path.display()),
        ),
        Ok(mode) => check(name, Status::Pass, format!("mode {mode:o}"), ""),
    }
}

fn data_dir_check(data_dir: &Path) -> Check {
    let name = "data dir mode";
    match unix::mode_of(data_dir) {
        Err(_) => check(
            name,
            Status::Fail,
            format!("{} is missing", data_dir.display()),
            "pane-agent init",
        ),
        Ok(mode) if mode & 0o022 != 0 => check(
            name,
            Status::Fail,
            format!("mode {mode:o}: writable by others"),
            format!("chmod 700 {}", data_dir.display()),
        ),
        Ok(mode) if mode & 0o077 != 0 => check(
            name,
            Status::Warn,
            format!("mode {mode:o}: readable by others"),
            format!("chmod 700 {}", data_dir.display()),
        ),
        Ok(mode) => check(name, Status::Pass, format!("mode {mode:o}"), ""),
    }
}

/// The start-up check `run` makes ([`crate::ownership`]), on the same paths and on the
/// secret file this check reads, with every problem and its fix.
fn ownership_check(data_dir: &Path, config_path: &Path, creds: &Path) -> Check {
    let name = "ownership";
    let mut trusted = crate::ownership::start_paths(data_dir, Some(config_path));
    let secret = secret_path(data_dir, creds);
    if secret.exists() && !trusted.iter().any(|t| t.path == secret) {
        trusted.push(crate::ownership::Trusted {
            what: "secret",
            path: secret,
        });
    }
    let problems = crate::ownership::problems(&trusted);
    if problems.is_empty() {
        let names: Vec<&str> = trusted.iter().map(|t| t.what).collect();
        return check(
            name,
            Status::Pass,
            format!(
                "{} and the dirs above: this user's or root's",
                names.join(", ")
            ),
            "",
        );
    }
    let (found, fixes): (Vec<String>, Vec<String>) =
        problems.iter().map(|p| (p.found(), p.fix())).unzip();
    check(
        name,
        Status::Fail,
        format!("{}; run refuses to start", found.join("; ")),
        fixes.join("; "),
    )
}

fn git_check(data_dir: &Path) -> Check {
    let name = "secret outside git";
    let mut here: Option<PathBuf> = std::fs::canonicalize(data_dir).ok();
    while let Some(dir) = here {
        if dir.join(".git").exists() {
            return check(
                name,
                Status::Fail,
                format!("the data dir is inside the git work tree {}", dir.display()),
                "move the data dir out of any repository (--data-dir or PANE_DATA_DIR)",
            );
        }
        here = dir.parent().map(Path::to_path_buf);
    }
    check(name, Status::Pass, "not inside a git work tree", "")
}

fn http_check(config: &Config) -> Check {
    let name = "http endpoint";
    match config.http.listen_addr() {
        Ok(None) => check(name, Status::Pass, "off", ""),
        Ok(Some(addr)) => check(name, Status::Pass, format!("{addr} (loopback only)"), ""),
        Err(e) => check(
            name,
            Status::Fail,
            e.to_string(),
            "listen on 127.0.0.1 behind a Tor onion service",
        ),
    }
}

/// The `*.conf` files of a drop-in directory, in name order (none when it is missing).
fn conf_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// sshd takes the first value it reads for a keyword; the drop-in directory comes first
/// where the main file includes it at the top (Debian's default).
pub fn ssh_check(etc_ssh: &Path) -> Check {
    let name = "ssh password login";
    let main = etc_ssh.join("sshd_config");
    if !main.exists() {
        return check(
            name,
            Status::Warn,
            "no sshd_config found",
            "if this host runs sshd, set PasswordAuthentication no",
        );
    }
    let mut files = conf_files(&etc_ssh.join("sshd_config.d"));
    files.push(main);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("PasswordAuthentication"))
            {
                let value = words.next().unwrap_or("").to_ascii_lowercase();
                return if value == "no" {
                    check(name, Status::Pass, format!("off ({})", f.display()), "")
                } else {
                    check(
                        name,
                        Status::Fail,
                        format!("PasswordAuthentication {value} in {}", f.display()),
                        "set PasswordAuthentication no and reload sshd",
                    )
                };
            }
        }
    }
    check(
        name,
        Status::Fail,
        "PasswordAuthentication not set (sshd's default is yes)",
        "set PasswordAuthentication no and reload sshd",
    )
}

fn clock_check() -> Check {
    let name = "clock synchronised";
    let out = std::process::Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .output();
    match out {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "yes" => {
            check(name, Status::Pass, "NTP synchronised", "")
        }
        Ok(o) if o.status.success() => check(
            name,
            Status::Fail,
            "not synchronised: commands are refused outside a 300 s window",
            "enable time sync: timedatectl set-ntp true (systemd-timesyncd or chrony)",
        ),
        _ => check(
            name,
            Status::Warn,
            "cannot tell (no timedatectl)",
            "make sure the clock is NTP-synchronised: commands need it within 300 s",
        ),
    }
}

fn secret_age_check(data_dir: &Path, creds: &Path, sealed: bool, rotation_days: u64) -> Check {
    let name = "secret age";
    let path = secret_path(data_dir, creds);
    let age = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .filter(|_| !sealed);
    let Some(age) = age else {
        let detail = if sealed {
            "unknown (the secret is inside the sealed store)"
        } else {
            "unknown (secret not in a file)"
        };
        return check(name, Status::Warn, detail, "rotate at least quarterly");
    };
    let days = age.as_secs() / 86_400;
    if days > rotation_days {
        check(
            name,
            Status::Warn,
            format!("{days} days old (policy: {rotation_days})"),
            "pane-agent rotate-secret",
        )
    } else {
        check(
            name,
            Status::Pass,
            format!("{days} days old (policy: {rotation_days})"),
            "",
        )
    }
}

fn gateway_check(data_dir: &Path) -> Check {
    let name = "signal gateway";
    let registered = data_dir.join("signal").exists();
    let agent_up = std::os::unix::net::UnixStream::connect(data_dir.join("agent.sock")).is_ok();
    let state = std::fs::read_to_string(data_dir.join("gateway.state")).unwrap_or_default();
    let connected = agent_up && state.starts_with("connected");
    match (registered, connected) {
        (true, true) => check(
            name,
            Status::Pass,
            format!(
                "registered and connected (since {})",
                state.split_whitespace().nth(1).unwrap_or("?")
            ),
            "",
        ),
        (true, false) if !agent_up => check(
            name,
            Status::Warn,
            "registered; the agent is not running",
            "systemctl start pane-agent pane-signal",
        ),
        (true, false) => check(
            name,
            Status::Warn,
            "registered, not connected to the agent",
            "systemctl start pane-signal; journalctl -u pane-signal",
        ),
        (false, _) => check(
            name,
            Status::Warn,
            "not linked yet",
            "pane-signal link, then set [signal] owner",
        ),
    }
}

/// Syslog forwarding (`@host`, `@@host`, `omfwd`) or a journal upload target.
pub fn log_forwarding_check(etc: &Path) -> Check {
    let name = "logs stay local";
    let mut files = vec![etc.join("rsyslog.conf")];
    if let Ok(d) = std::fs::read_dir(etc.join("rsyslog.d")) {
        files.extend(d.flatten().map(|e| e.path()));
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            let forwards = line.contains("omfwd")
                || line
                    .split_whitespace()
                    .nth(1)
                    .is_some_and(|t| t.starts_with('@'));
            if forwards {
                return check(
                    name,
                    Status::Fail,
                    format!("{} forwards logs: {line}", f.display()),
                    "remove the forwarding rule: logs stay on this host",
                );
            }
        }
    }
    let upload = etc.join("systemd/journal-upload.conf");
    let text = std::fs::read_to_string(&upload).unwrap_or_default();
    if text
        .lines()
        .map(str::trim)
        .any(|l| l.starts_with("URL=") && l.len() > 4)
    {
        return check(
            name,
            Status::Fail,
            format!("{} uploads the journal", upload.display()),
            "disable systemd-journal-upload",
        );
    }
    check(
        name,
        Status::Pass,
        "no syslog forwarding or journal upload found",
        "",
    )
}

/// Whether the installation is sealed at rest, and whether its key file and store agree.
fn seal_check(data_dir: &Path) -> Check {
    use crate::seal::keyfile::{KeyFile, WrapperKind, SEALED_MARKER};
    let name = "sealed at rest";
    if crate::cli::seal_init::interrupted(data_dir) {
        return check(
            name,
            Status::Fail,
            "a `pane-agent seal-init` was cut off: run refuses to start",
            format!(
                "pane-agent seal-init --data-dir {} (again: it finishes the conversion or starts it over)",
                data_dir.display()
            ),
        );
    }
    let file = match KeyFile::load(data_dir) {
        Ok(file) => file,
        Err(e) => {
            return check(
                name,
                Status::Fail,
                e.to_string(),
                "restore seal.json from your backup: the store cannot be opened without it",
            )
        }
    };
    let Some(file) = file else {
        if data_dir.join(SEALED_MARKER).exists() {
            return check(
                name,
                Status::Fail,
                "the store is sealed but seal.json is missing: run refuses to start",
                "restore seal.json from your backup: the store cannot be opened without it",
            );
        }
        let fix = if data_dir.join("store").exists() {
            format!(
                "stop the agent, then pane-agent seal-init --data-dir {} (docs/sealing.md); then rotate the provider keys and the command secret",
                data_dir.display()
            )
        } else {
            "a new installation: pane-agent init makes a sealed one; one made with --unsealed: start the agent once (it makes the store), stop it, then pane-agent seal-init (docs/sealing.md)".to_string()
        };
        return check(
            name,
            Status::Warn,
            "no: the store and the secrets can be read by whoever gets the disk or a backup",
            fix,
        );
    };
    let path = data_dir.join(crate::seal::SEAL_FILE);
    let kinds: Vec<&str> = file
        .wrappers
        .iter()
        .map(|w| match w.kind {
            WrapperKind::Passphrase => "passphrase",
            WrapperKind::Recovery => "recovery",
        })
        .collect();
    let kdf = &file.wrappers[0].kdf;
    let detail = format!(
        "yes: {} opens with {}; Argon2id {} MiB x {} passes",
        path.display(),
        kinds.join(" or "),
        kdf.m_kib / 1024,
        kdf.t
    );
    match unix::mode_of(&path) {
        Ok(mode) if mode & 0o077 != 0 => check(
            name,
            Status::Warn,
            format!("{detail}; mode {mode:o}"),
            format!("chmod 600 {}", path.display()),
        ),
        _ => check(name, Status::Pass, detail, ""),
    }
}

/// A file that holds something (an empty one, or one of blanks, is not taken in).
fn holds_text(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.len() == 0 {
        return false;
    }
    // Unreadable here (not root): it is there and not empty, which is enough to say so.
    std::fs::read(path).map_or(true, |b| b.iter().any(|c| !c.is_ascii_whitespace()))
}

/// Credential files of a sealed installation that are still in clear: the data dir's own,
/// its drop directory (both taken in and removed at the next unseal), and the units'
/// credentials directory (loaded at every start, never removed by the agent).
fn clear_credentials_check(data_dir: &Path, creds: &Path) -> Check {
    let name = "credentials in clear";
    let mut pending: Vec<PathBuf> = [
        "agent.secret",
        crate::auth::secret::ROTATED_FILE,
        crate::auth::mcp_key::MCP_KEY_FILE,
    ]
    .iter()
    .map(|f| data_dir.join(f))
    .collect();
    let drop_dir = data_dir.join(crate::seal::vault::DROP_DIR);
    let listed = |dir: &Path| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    };
    pending.extend(listed(&drop_dir));
    pending.retain(|p| holds_text(p));
    let mut loaded = listed(creds);
    loaded.retain(|p| holds_text(p));
    if pending.is_empty() && loaded.is_empty() {
        return check(
            name,
            Status::Pass,
            format!(
                "none: no credential file in {} or {}",
                data_dir.display(),
                creds.display()
            ),
            "",
        );
    }
    let shown = |files: &[PathBuf]| {
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut found = Vec::new();
    let mut fixes = Vec::new();
    if !pending.is_empty() {
        found.push(format!(
            "{} (taken into the sealed store and removed at the next unseal)",
            shown(&pending)
        ));
        fixes.push(
            "unseal now (pane-agent unseal), or send secrets.reload to a running unsealed agent"
                .to_string(),
        );
    }
    if !loaded.is_empty() {
        found.push(format!(
            "{} (the units load them at every start; they stay in clear)",
            shown(&loaded)
        ));
        let mut fix = format!(
            "once the unsealed agent has taken them in, remove them from {}",
            creds.display()
        );
        if loaded.iter().any(|p| p.ends_with("signal-passphrase")) {
            fix.push_str(&format!(
                "; signal-passphrase first goes to {} so that the core keeps it sealed and hands it to pane-signal",
                drop_dir.join("signal-passphrase").display()
            ));
        }
        fixes.push(fix);
    }
    check(name, Status::Warn, found.join("; "), fixes.join("; "))
}

/// The settings of an installed unit, its drop-ins (`<unit>.d/*.conf`, in name order) after
/// it, as `(key, value)` pairs in the order systemd reads them. None when it is not there.
fn unit_settings(unit_dir: &Path, unit: &str) -> Option<Vec<(String, String)>> {
    let main = unit_dir.join(unit);
    let text = std::fs::read_to_string(&main).ok()?;
    let mut texts = vec![text];
    let drop_ins = conf_files(&unit_dir.join(format!("{unit}.d")));
    texts.extend(
        drop_ins
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok()),
    );
    Some(
        texts
            .iter()
            .flat_map(|t| t.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// Secrets in the environment of a sealed installation: in this shell (which starts
/// `pane-agent run` when it runs by hand) or in the core's unit (`Environment=`, and the
/// names set in an `EnvironmentFile=`). The agent reads such a key before the sealed one.
fn environment_check(unit_dir: &Path, data_dir: &Path) -> Check {
    let name = "secrets in environment";
    let vars = crate::cli::run::SECRET_ENV_VARS;
    let mut found: Vec<String> = vars
        .iter()
        .filter(|v| std::env::var(v).is_ok_and(|x| !x.trim().is_empty()))
        .map(|v| format!("{v} (this shell)"))
        .collect();
    let unit = "pane-agent.service";
    for (key, value) in unit_settings(unit_dir, unit).unwrap_or_default() {
        let names: Vec<String> = match key.as_str() {
            "Environment" => value
                .split_whitespace()
                .filter_map(|a| a.trim_matches('"').split_once('='))
                .map(|(k, _)| k.to_string())
                .collect(),
            "EnvironmentFile" => {
                let path = value.trim_start_matches('-');
                std::fs::read_to_string(path)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().trim_start_matches("export ").split_once('='))
                    .map(|(k, _)| k.trim().to_string())
                    .collect()
            }
            _ => continue,
        };
        for n in names.iter().filter(|n| vars.contains(&n.as_str())) {
            found.push(format!("{n} ({unit}, {key}=)"));
        }
    }
    if found.is_empty() {
        return check(
            name,
            Status::Pass,
            "no secret variable set here or in pane-agent.service",
            "",
        );
    }
    check(
        name,
        Status::Warn,
        format!(
            "{}: a key there is read before the sealed one, and sits in clear",
            found.join(", ")
        ),
        format!(
            "remove them; the command secret is in the sealed store, and provider keys go in {} (NAME=value lines), taken into it at the next unseal",
            data_dir
                .join(crate::seal::vault::DROP_DIR)
                .join("provider-keys")
                .display()
        ),
    )
}

/// Whether the kernel's persistent keyring holds a key here: a key is put in, read back and
/// removed, as the unsealed agent does with its data key (`seal::keyring`).
fn keyring_check() -> Check {
    use crate::seal::keyring;
    let name = "kernel keyring";
    let fix = "allow the keyctl and add_key system calls (a container's seccomp profile may forbid them), or unseal after every restart";
    let probe = crate::store::DataKey::generate();
    let mut nonce = [0u8; 6];
    let id = getrandom::fill(&mut nonce)
        .map(|_| format!("doctor-{}-{}", std::process::id(), hex::encode(nonce)));
    let (Ok(probe), Ok(id)) = (probe, id) else {
        return check(name, Status::Warn, "no randomness to make a probe key", fix);
    };
    if let Err(e) = keyring::hold(&id, &probe) {
        return check(
            name,
            Status::Warn,
            format!("not usable ({e}): every restart, a crash's too, needs the owner's unseal"),
            fix,
        );
    }
    let back = keyring::fetch(&id);
    keyring::forget(&id);
    match back {
        Some(k) if k.expose() == probe.expose() => check(
            name,
            Status::Pass,
            format!(
                "the persistent keyring holds a key: a crash-restart resumes unsealed (held {} min after the last renewal)",
                keyring::HOLD_FOR.as_secs() / 60
            ),
            "",
        ),
        _ => check(
            name,
            Status::Warn,
            "a key put in the persistent keyring did not come back: every restart needs the owner's unseal",
            fix,
        ),
    }
}

/// Core dumps off in the installed units (`LimitCORE=0`): the agent holds keys in memory,
/// the gateway the Signal keys. The agent also turns them off itself at start.
fn core_dump_check(unit_dir: &Path) -> Check {
    let name = "core dumps";
    let units = ["pane-agent.service", "pane-signal.service"];
    let mut off = Vec::new();
    let mut on = Vec::new();
    for unit in units {
        let Some(settings) = unit_settings(unit_dir, unit) else {
            continue;
        };
        // The last assignment wins; an empty one resets to the default.
        let limit = settings
            .iter()
            .rev()
            .find(|(k, _)| k == "LimitCORE")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if matches!(limit, "0" | "0:0") {
            off.push(unit);
        } else {
            on.push(format!(
                "{unit}: {}",
                if limit.is_empty() {
                    "no LimitCORE (the default allows them)".to_string()
                } else {
                    format!("LimitCORE={limit}")
                }
            ));
        }
    }
    let fix = "set LimitCORE=0 under [Service] in each unit (systemd/*.service have it), then systemctl daemon-reload and restart them";
    if !on.is_empty() {
        return check(name, Status::Warn, on.join("; "), fix);
    }
    if off.is_empty() {
        return check(
            name,
            Status::Warn,
            format!(
                "no pane-agent unit in {} (pane-agent turns them off itself at start)",
                unit_dir.display()
            ),
            "under systemd, install the units from systemd/ (they set LimitCORE=0), or point --unit-dir at where yours are",
        );
    }
    check(
        name,
        Status::Pass,
        format!("LimitCORE=0 in {}", off.join(" and ")),
        "",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_and_log_rules() {
        let t = tempfile::tempdir().unwrap();
        let ssh = t.path().join("ssh");
        std::fs::create_dir_all(ssh.join("sshd_config.d")).unwrap();
        std::fs::write(
            ssh.join("sshd_config"),
            "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\n",
        )
        .unwrap();
        assert_eq!(ssh_check(&ssh).status, Status::Fail);
        std::fs::write(
            ssh.join("sshd_config.d/10-hardening.conf"),
            "PasswordAuthentication no\n",
        )
        .unwrap();
        assert_eq!(
            ssh_check(&ssh).status,
            Status::Pass,
            "the drop-in is read first"
        );
        let etc = t.path().join("etc");
        std::fs::create_dir_all(etc.join("rsyslog.d")).unwrap();
        assert_eq!(log_forwarding_check(&etc).status, Status::Pass);
        std::fs::write(
            etc.join("rsyslog.d/50-remote.conf"),
            "*.* @@logs.example.net:514\n",
        )
        .unwrap();
        assert_eq!(log_forwarding_check(&etc).status, Status::Fail);
    }
}
