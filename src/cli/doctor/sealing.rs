//! The doctor's checks of sealing at rest (issue #23): the installation sealed, no
//! credential left in clear, no secret in the environment, the kernel keyring usable, core
//! dumps off in the units.

use super::{check, conf_files, Check, Status};
use crate::unix;
use std::path::{Path, PathBuf};

/// Whether the installation is sealed at rest, and whether its key file and store agree.
pub(super) fn seal_check(data_dir: &Path) -> Check {
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
pub(super) fn clear_credentials_check(data_dir: &Path, creds: &Path) -> Check {
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
pub(super) fn environment_check(unit_dir: &Path, data_dir: &Path) -> Check {
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
pub(super) fn keyring_check() -> Check {
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
pub(super) fn core_dump_check(unit_dir: &Path) -> Check {
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
