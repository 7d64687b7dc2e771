//! `pane-agent doctor`: the hosting checklist, checked. Prints a pass/warn/fail table with
//! the fix for each problem and exits non-zero when anything fails.
//!
//! Besides the host, it checks the seal (`docs/sealing.md`): an installation in clear is
//! warned about; on a sealed one, credential files still in clear, secrets in the
//! environment, and whether the kernel keyring can hold the key across a restart. Core dumps
//! must be off in the units either way.

mod host;
mod link;
mod network;
mod sealing;

use super::DataDirArg;
use crate::config::Config;
use crate::unix;
use host::clock_check;
pub use host::{log_forwarding_check, ssh_check};
use sealing::{
    clear_credentials_check, core_dump_check, environment_check, keyring_check, seal_check,
};
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

pub(super) fn check(
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
    out.push(link::link_check(&data_dir));
    out.push(network::proxy_check(&config));
    out.push(network::signal_egress_check(&config, &data_dir));
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
pub(super) fn conf_files(dir: &Path) -> Vec<PathBuf> {
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
