//! `pane-agent doctor`: the hosting checklist, checked. Prints a pass/warn/fail table with
//! the fix for each problem and exits non-zero when anything fails.

use super::DataDirArg;
use crate::config::Config;
use crate::unix;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
pub fn run_checks(dir: &DataDirArg) -> anyhow::Result<Vec<Check>> {
    let data_dir = dir.resolve()?;
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
    out.push(secret_check(&data_dir));
    out.push(mode_check(
        "config file mode",
        &config_path,
        0o077,
        "chmod 600",
    ));
    out.push(data_dir_check(&data_dir));
    out.push(ownership_check(&data_dir, &config_path));
    out.push(git_check(&data_dir));
    out.push(http_check(&config));
    out.push(ssh_check(Path::new("/etc/ssh")));
    out.push(clock_check());
    out.push(secret_age_check(&data_dir, config.auth.rotation_days));
    out.push(gateway_check(&data_dir));
    out.push(log_forwarding_check(Path::new("/etc")));
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

/// Where the secret file is: the systemd credential (inside the unit, or in
/// /etc/pane/credentials at a console), else `<data-dir>/agent.secret`.
fn secret_path(data_dir: &Path) -> PathBuf {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join("agent-secret"))
        .filter(|p| p.exists())
        .or_else(|| {
            Some(PathBuf::from("/etc/pane/credentials/agent-secret")).filter(|p| p.exists())
        })
        .unwrap_or_else(|| data_dir.join("agent.secret"))
}

fn secret_check(data_dir: &Path) -> Check {
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
    // Under systemd the secret is a credential; at a console it sits in /etc/pane/credentials.
    let path = secret_path(data_dir);
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
fn ownership_check(data_dir: &Path, config_path: &Path) -> Check {
    let name = "ownership";
    let mut trusted = crate::ownership::start_paths(data_dir, Some(config_path));
    let secret = secret_path(data_dir);
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
    let mut files: Vec<PathBuf> = std::fs::read_dir(etc_ssh.join("sshd_config.d"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
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

fn secret_age_check(data_dir: &Path, rotation_days: u64) -> Check {
    let name = "secret age";
    let path = secret_path(data_dir);
    let Some(age) = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
    else {
        return check(
            name,
            Status::Warn,
            "unknown (secret not in a file)",
            "rotate at least quarterly",
        );
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
