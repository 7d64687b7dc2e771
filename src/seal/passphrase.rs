//! Unseal passphrases: read from the terminal, or from standard input when that is not a
//! terminal (scripts, tests), never from argv or the environment; generated strong when the
//! owner does not type one; refused when typed too weak.

use super::SealError;
use std::io::{BufRead, IsTerminal};
use zeroize::Zeroizing;

/// The shortest passphrase an owner may type (NIST SP 800-63B favours length over
/// composition rules; a generated one is 29 characters).
pub const MIN_CHARS: usize = 16;
/// The fewest distinct characters in it (refuses `aaaaaaaaaaaaaaaa`).
pub const MIN_DISTINCT: usize = 8;
/// The longest accepted (the KDF takes any length; this bounds a pasted file).
pub const MAX_BYTES: usize = 1024;

/// Reads one passphrase: prompting on the terminal with `prompt` when standard input is
/// one, else one line of standard input (the trailing newline dropped).
pub fn read(prompt: &str) -> Result<Zeroizing<String>, SealError> {
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(prompt)
            .map_err(|e| SealError::Io(format!("cannot read the passphrase: {e}")))?;
        return Ok(Zeroizing::new(p));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| SealError::Io(format!("cannot read the passphrase from stdin: {e}")))?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    Ok(trimmed)
}

/// A new unseal passphrase: typed (and checked for strength), or, when the owner just
/// presses Enter, generated. True when it was generated (it must then be shown, once).
pub fn new_one() -> Result<(Zeroizing<String>, bool), SealError> {
    let typed = read("New unseal passphrase (Enter: generate one): ")?;
    if typed.is_empty() {
        return Ok((generate()?, true));
    }
    check_strength(&typed)?;
    Ok((typed, false))
}

/// True when `p` may be used as an unseal passphrase; else why not.
pub fn check_strength(p: &str) -> Result<(), SealError> {
    let chars = p.chars().count();
    let mut distinct: Vec<char> = p.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if p.len() > MAX_BYTES {
        return Err(SealError::WeakPassphrase(format!(
            "a passphrase is at most {MAX_BYTES} bytes"
        )));
    }
    if chars < MIN_CHARS || distinct.len() < MIN_DISTINCT {
        return Err(SealError::WeakPassphrase(format!(
            "a passphrase needs at least {MIN_CHARS} characters, {MIN_DISTINCT} of them different (this one has {chars}); press Enter to have one generated"
        )));
    }
    Ok(())
}

/// A new random passphrase: 25 characters from a 32-letter alphabet without look-alikes
/// (125 bits), in five groups of five, easy to type on a phone.
pub fn generate() -> Result<Zeroizing<String>, SealError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = Zeroizing::new([0u8; 25]);
    getrandom::fill(&mut bytes[..])
        .map_err(|e| SealError::Io(format!("no randomness for a passphrase: {e}")))?;
    let mut out = Zeroizing::new(String::with_capacity(29));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(ALPHABET[(*b & 31) as usize] as char);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("aaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(check_strength("correct horse battery staple").is_ok());
        let g = generate().unwrap();
        assert_eq!(g.len(), 29);
        assert!(check_strength(&g).is_ok());
        assert_ne!(*g, *generate().unwrap());
    }
}
