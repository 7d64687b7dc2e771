//! The data key held in the kernel's keyring across a crash-restart, so that systemd's
//! `Restart=on-failure` resumes the agent without the owner, while a reboot (which empties
//! every keyring) does not.
//!
//! The key goes into the persistent keyring of the service's uid (`keyctl_get_persistent`,
//! persistent-keyring(7)), which outlives the process but not the boot, as a `user` key named
//! after the installation, with a timeout ([`HOLD_FOR`]) that the unsealed agent renews: a
//! stopped or crashed agent's key is gone from the kernel at most that long afterwards, so a
//! restart within it (a crash, `systemctl restart`) resumes unsealed. Only a process of the
//! same uid can read it (one that could also read the key file and the store, though not the
//! agent's memory, which `PR_SET_DUMPABLE` 0 closes). `seal` removes it at once.

use crate::store::DataKey;
use linux_keyutils::{KeyError, KeyRing, KeyRingIdentifier};
use std::time::Duration;

/// How long the kernel keeps the key after the agent last renewed it.
pub const HOLD_FOR: Duration = Duration::from_secs(15 * 60);
/// How often the unsealed agent renews it.
pub const RENEW_EVERY: Duration = Duration::from_secs(5 * 60);

fn description(installation: &str) -> String {
    format!("pane-agent:{installation}")
}

fn keyring() -> Result<KeyRing, KeyError> {
    KeyRing::get_persistent(KeyRingIdentifier::Process)
}

/// Puts (or renews) the data key of `installation` in the keyring. Errors are the caller's
/// to report: without a keyring (a container that forbids `keyctl`), a restart needs the
/// owner, which is safe.
pub fn hold(installation: &str, key: &DataKey) -> Result<(), String> {
    let ring = keyring().map_err(|e| format!("no persistent keyring: {e}"))?;
    let k = ring
        .add_key(&description(installation), key.expose())
        .map_err(|e| format!("cannot add the key to the keyring: {e}"))?;
    k.set_timeout(HOLD_FOR.as_secs() as usize)
        .map_err(|e| format!("cannot set the key's timeout: {e}"))?;
    Ok(())
}

/// The data key of `installation`, if the keyring still holds it.
pub fn fetch(installation: &str) -> Option<DataKey> {
    let ring = keyring().ok()?;
    let key = ring.search(&description(installation)).ok()?;
    let bytes = zeroize::Zeroizing::new(key.read_to_vec().ok()?);
    DataKey::from_bytes(&bytes)
}

/// Removes the data key of `installation` from the keyring (nothing when it is not there).
/// True when one was removed.
pub fn forget(installation: &str) -> bool {
    let Ok(ring) = keyring() else {
        return false;
    };
    match ring.search(&description(installation)) {
        Ok(key) => key.invalidate().is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_key_comes_back_until_forgotten() {
        let installation = format!("test-{}", std::process::id());
        let key = DataKey::generate().unwrap();
        if let Err(e) = hold(&installation, &key) {
            panic!("the kernel keyring is not usable here: {e}");
        }
        assert_eq!(fetch(&installation).unwrap().expose(), key.expose());
        assert!(forget(&installation));
        assert!(fetch(&installation).is_none());
        assert!(!forget(&installation));
    }
}
