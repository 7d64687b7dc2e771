//! Who owns what the daemon trusts at start: the data dir, the command secret and the config.
//!
//! Modes alone are not enough: a file the agent trusts that belongs to another user can be
//! rewritten by that user whatever its mode says, and a file under a directory that others
//! can write to (without the sticky bit, which keeps them from renaming what they do not own)
//! can be swapped for another one. So each trusted path, and every directory above it, must
//! belong to this user or to root, and no directory above it may be writable by others
//! unless it is sticky (as `/tmp` is). `run` refuses to start otherwise, and `doctor` shows the
//! same problems with their fixes.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a trusted path cannot be trusted, with the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} (fix: {})", self.found(), self.fix())]
pub enum OwnershipError {
    /// The path (or a directory above it) belongs to someone other than this user and root.
    OwnedByOther {
        /// Which trusted thing this is about ("data dir", "secret", "config", or a
        /// "directory above ..." of one).
        what: String,
        /// The path owned by someone else.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        euid: u32,
    },
    /// A directory above a trusted path is writable by others and not sticky.
    ParentWritable {
        /// "directory above the data dir ..." and the like.
        what: String,
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl OwnershipError {
    /// What is wrong, and why it matters.
    pub fn found(&self) -> String {
        match self {
            OwnershipError::OwnedByOther {
                what,
                path,
                owner,
                euid,
            } => format!(
                "{what} {} is owned by uid {owner}, not by this user (uid {euid}) or root: that user could change it",
                path.display()
            ),
            OwnershipError::ParentWritable { what, path, mode } => format!(
                "{what} {} has mode {mode:o}: others can write to it and it is not sticky, so they could swap what is in it",
                path.display()
            ),
        }
    }

    /// The command that fixes it.
    pub fn fix(&self) -> String {
        match self {
            OwnershipError::OwnedByOther { path, euid, .. } => {
                format!("chown {euid} {}", path.display())
            }
            OwnershipError::ParentWritable { path, .. } => format!(
                "chmod o-w {} (or chmod +t {} if others must write there)",
                path.display(),
                path.display()
            ),
        }
    }
}

/// A path the daemon trusts, named for the messages.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// "data dir", "secret", "config", "previous secrets" or "MCP key".
    pub what: &'static str,
    /// Where it is.
    pub path: PathBuf,
}

/// The paths `run` trusts for `data_dir` and `config` (when given): the data dir, the
/// config, the command secret's file where [`crate::auth::SecretSet::load`] reads one
/// (none when `AGENT_SECRET` is set), and the other files a secret is accepted from: the
/// previous secrets `rotate-secret` keeps and the MCP key. Paths that do not exist are left
/// out.
pub fn start_paths(data_dir: &Path, config: Option<&Path>) -> Vec<Trusted> {
    let mut out = vec![Trusted {
        what: "data dir",
        path: data_dir.to_path_buf(),
    }];
    if let Some(config) = config {
        out.push(Trusted {
            what: "config",
            path: config.to_path_buf(),
        });
    }
    if let Some(secret) = secret_file(data_dir) {
        out.push(Trusted {
            what: "secret",
            path: secret,
        });
    }
    // Whoever owns one of these could have a secret of theirs accepted just the same.
    out.push(Trusted {
        what: "previous secrets",
        path: data_dir.join(crate::auth::secret::ROTATED_FILE),
    });
    out.push(Trusted {
        what: "MCP key",
        path: crate::auth::mcp_key::path(data_dir),
    });
    out.retain(|t| t.path.exists());
    out
}

/// The file the command secret is read from, in the order `SecretSet::load` tries them.
fn secret_file(data_dir: &Path) -> Option<PathBuf> {
    if std::env::var("AGENT_SECRET").is_ok_and(|v| !v.trim().is_empty()) {
        return None;
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let credential = PathBuf::from(dir).join("agent-secret");
        if credential.exists() {
            return Some(credential);
        }
    }
    Some(data_dir.join("agent.secret"))
}

/// Every problem with `trusted`, for this process's user: the paths themselves, then every
/// directory above each (each directory once).
pub fn problems(trusted: &[Trusted]) -> Vec<OwnershipError> {
    let euid = crate::unix::euid();
    let mut out = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for t in trusted {
        // The real path: a symlink's target is what gets read.
        let path = std::fs::canonicalize(&t.path).unwrap_or_else(|_| t.path.clone());
        if !seen.contains(&path) {
            if let Some(problem) = check_owner(t.what.to_string(), &path, euid) {
                out.push(problem);
            }
            seen.push(path.clone());
        }
        for dir in path.ancestors().skip(1) {
            if seen.iter().any(|s| s == dir) {
                continue;
            }
            seen.push(dir.to_path_buf());
            let what = format!("directory above the {} {}:", t.what, t.path.display());
            if let Some(problem) = check_owner(what.clone(), dir, euid) {
                out.push(problem);
            }
            if let Ok(meta) = std::fs::metadata(dir) {
                let mode = meta.mode() & 0o7777;
                if mode & 0o002 != 0 && mode & 0o1000 == 0 {
                    out.push(OwnershipError::ParentWritable {
                        what,
                        path: dir.to_path_buf(),
                        mode,
                    });
                }
            }
        }
    }
    out
}

fn check_owner(what: String, path: &Path, euid: u32) -> Option<OwnershipError> {
    let owner = std::fs::metadata(path).ok()?.uid();
    (owner != euid && owner != 0).then(|| OwnershipError::OwnedByOther {
        what,
        path: path.to_path_buf(),
        owner,
        euid,
    })
}

/// The start-up check `run` makes: the first problem with what it trusts, if any.
pub fn check_start(data_dir: &Path, config: Option<&Path>) -> Result<(), OwnershipError> {
    match problems(&start_paths(data_dir, config)).into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// The check `secrets.reload` makes before it reads the secrets again: the data dir and the
/// files secrets are read from, as at start (the config is not read again). A secret another user can
/// rewrite is no secret whenever it is read, so a reload refuses what the start refuses.
pub fn check_reload(data_dir: &Path) -> Result<(), OwnershipError> {
    check_start(data_dir, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_parent_writable_by_others_counts_unless_sticky() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().join("shared");
        let dir = parent.join("pane");
        std::fs::create_dir_all(&dir).unwrap();
        let trusted = [Trusted {
            what: "data dir",
            path: dir.clone(),
        }];
        assert_eq!(problems(&trusted), vec![]);
        set_mode(&parent, 0o777);
        let found = problems(&trusted);
        assert_eq!(found.len(), 1, "{found:?}");
        let text = found[0].to_string();
        assert!(
            text.contains("has mode 777") && text.contains("chmod o-w"),
            "{text}"
        );
        set_mode(&parent, 0o1777);
        assert_eq!(problems(&trusted), vec![]);
    }

    #[test]
    fn only_existing_paths_are_checked_and_agent_secret_has_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = start_paths(tmp.path(), Some(&tmp.path().join("absent.toml")));
        let names: Vec<&str> = paths.iter().map(|t| t.what).collect();
        assert_eq!(names, ["data dir"]);
    }
}
