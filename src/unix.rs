//! Small Unix facts the agent checks before it trusts a file or a peer.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The effective uid of this process: the only uid allowed on the agent's sockets.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The permission bits (`0o777` part) of `path`, following symlinks.
pub fn mode_of(path: &Path) -> io::Result<u32> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o7777)
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Keeps `len` bytes at `ptr` out of swap (`mlock`), where the platform allows it: a key in
/// memory is never written to disk by paging. Best effort: an unprivileged process may have
/// no lockable memory left (`RLIMIT_MEMLOCK`), and the key is still zeroed when dropped.
pub fn lock_memory(ptr: *const u8, len: usize) {
    // SAFETY: mlock only reads the address range, which the caller owns for `len` bytes.
    let r = unsafe { libc::mlock(ptr as *const libc::c_void, len) };
    if r != 0 {
        tracing::debug!("mlock refused; the key stays unlocked in memory");
    }
}

/// Undoes [`lock_memory`] (before the memory is freed).
pub fn unlock_memory(ptr: *const u8, len: usize) {
    // SAFETY: as for mlock; unlocking a range that was not locked is harmless.
    unsafe { libc::munlock(ptr as *const libc::c_void, len) };
}

/// Makes this process undumpable: no core dump, and no other process of the same uid may
/// attach to it or read its memory through /proc (`PR_SET_DUMPABLE` 0), and the core size
/// limit 0. Called first thing by the daemon, which holds keys once unsealed.
pub fn forbid_core_dumps() -> io::Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on this process with valid arguments.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes `content` to `path` atomically with mode 0600: a temporary file beside it, synced,
/// renamed over `path`, and the directory synced, so a crash leaves the old file or the new
/// one, never half of either.
pub fn write_private_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
