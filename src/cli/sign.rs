//! `pane-agent sign CMD [key=value | key:=json ...]`: prints a signed envelope.

use super::{parse_pairs, CommandArgs};
use crate::auth::{Envelope, SecretSet};
use chrono::Utc;

/// Signs `CMD` with its arguments using the current secret.
pub fn sign(args: &CommandArgs) -> anyhow::Result<Envelope> {
    let data_dir = args.data_dir.resolve()?;
    let secrets = SecretSet::load(&data_dir, &[])?;
    let map = parse_pairs(&args.args)?;
    Ok(Envelope::sign(&secrets.current, Utc::now(), &args.cmd, map))
}
