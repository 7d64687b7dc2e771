//! The doctor's checks of the host around the agent: SSH password login, the clock, logs
//! forwarded off the machine.

use super::{check, conf_files, Check, Status};
use std::path::Path;

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

pub(super) fn clock_check() -> Check {
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
