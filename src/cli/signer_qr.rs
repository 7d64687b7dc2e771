//! `pane-agent signer-qr`: shows the current command secret as a QR code in the terminal, so
//! the phone signer (`docs/signer.html`, or `/signer/` on the onion endpoint) can import it
//! once by scanning instead of 64 characters typed on a phone keyboard. The secret is on the
//! screen until Enter (or the end of stdin); then the screen and the scrollback are cleared.

use crate::auth::{Secret, SecretSet};
use std::io::{BufRead, Write};
use std::path::Path;

/// The command secret to show: read from the data dir, or on a sealed installation asked of
/// the unsealed daemon.
pub async fn current_secret(data_dir: &Path) -> anyhow::Result<Secret> {
    if crate::seal::is_sealed_installation(data_dir) {
        return super::sign::command_secret(data_dir).await;
    }
    Ok(SecretSet::load(data_dir, &[])?.current)
}

/// Clears the screen and, where the terminal supports it, the scrollback (`CSI 3 J`).
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J\x1b[3J";

/// Prints the QR code of the current secret to `out`, waits for a line (or EOF) on `input`,
/// then clears the screen. Notes for the owner go to `notes` (stderr in the binary).
pub fn signer_qr(
    secret: &Secret,
    out: &mut impl Write,
    notes: &mut impl Write,
    input: &mut impl BufRead,
) -> anyhow::Result<()> {
    let qr = qr2term::generate_qr_string(secret.as_text())
        .map_err(|e| anyhow::anyhow!("cannot make a QR code of the secret: {e}"))?;
    writeln!(
        notes,
        "This QR code is the command secret itself: let nobody else see or photograph it.\n\
         Scan it with the signer page on your phone (Import, then Scan QR code, or your\n\
         camera's reader and paste), choose a passphrase there, then press Enter here to\n\
         clear the screen."
    )?;
    out.write_all(qr.as_bytes())?;
    out.flush()?;
    let mut line = String::new();
    input.read_line(&mut line)?;
    out.write_all(CLEAR_SCREEN.as_bytes())?;
    out.flush()?;
    writeln!(notes, "Screen cleared.")?;
    Ok(())
}
