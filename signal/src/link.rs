//! `pane-signal link`: links the gateway as a secondary device of the owner's (or the bot's)
//! Signal account, showing the provisioning URL and its QR code in the terminal.
//!
//! On a sealed installation the store passphrase is the core's: `link` asks the running,
//! unsealed core for it ([`key_from_core`]).

use crate::lines::{LineReader, Read};
use crate::store;
use anyhow::{anyhow, bail, Context};
use pane_protocol::messages::{decode_line, CoreCommand};
use presage::libsignal_service::configuration::SignalServers;
use presage::store::StateStore;
use presage::Manager;
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// Links a new device in `<data-dir>/signal/`.
///
/// An existing registration is replaced only with `force` (linking clears it at once, as
/// presage does, since the old credentials stop working). A registration that cannot be
/// read is never replaced without `force` either.
pub async fn link(
    data_dir: &Path,
    passphrase: &str,
    device_name: String,
    force: bool,
) -> anyhow::Result<()> {
    store::ensure_signal_dir(data_dir)?;
    let path = store::store_path(data_dir);
    let store = store::open(&path, passphrase, true).await?;
    match store.load_registration_data().await {
        Ok(None) => {}
        Ok(Some(existing)) if !force => bail!(
            "{} already holds a linked device ({}, device {}); pass --replace to replace it \
             (the old link stops working)",
            path.display(),
            existing.service_ids.aci().service_id_string(),
            existing.device_id.unwrap_or_default()
        ),
        Ok(Some(_)) => {
            eprintln!("--replace: replacing the existing registration");
        }
        Err(e) if !force => {
            return Err(e).with_context(|| {
                format!(
                    "cannot read the registration in {}; nothing was changed (pass --force to \
                     replace it with a new link)",
                    path.display()
                )
            })
        }
        Err(e) => eprintln!("--force: replacing a registration that cannot be read ({e})"),
    }

    let (url_tx, url_rx) = futures::channel::oneshot::channel();
    let (linked, ()) = futures::future::join(
        Manager::link_secondary_device(store, SignalServers::Production, device_name, url_tx),
        async move {
            if let Ok(url) = url_rx.await {
                println!("In Signal on the phone: Settings > Linked devices > Link new device,");
                println!("and scan this QR code:\n");
                if let Err(e) = qr2term::print_qr(url.as_str()) {
                    eprintln!("(cannot draw the QR code: {e})");
                }
                println!("\nProvisioning URL (for a QR generator elsewhere): {url}");
            }
        },
    )
    .await;
    let manager = match linked {
        Ok(m) => m,
        Err(e) => {
            let text = format!("{e:#}");
            if let Some(why) = capability_refusal(&text) {
                bail!(why);
            }
            return Err(e).context("linking failed; run `pane-signal link` again");
        }
    };
    let data = manager.registration_data();
    println!(
        "Linked: account {} (ACI), device {}. Start the gateway with `pane-signal run`.",
        data.service_ids.aci().service_id_string(),
        data.device_id.unwrap_or_default()
    );
    Ok(())
}

/// What to say when Signal refused the link with 409: its server requires a device capability
/// this build does not announce (as signal-cli and gurk-rs users met when Signal added one).
fn capability_refusal(error: &str) -> Option<String> {
    let refused = error.contains("HTTP 409") || error.contains("409 Conflict");
    refused.then(|| {
        format!(
            "Signal refused to link this device (HTTP 409): it requires a device capability this \
             build of pane-signal does not announce (it announces: {}). Update the pinned presage \
             and libsignal-service revisions (docs/signal-gateway.md, \"Upgrading the pins\"), \
             rebuild, and link again",
            crate::health::capabilities().join(", ")
        )
    })
}

/// How long `link` waits for the core to hand over the store key.
const KEY_WAIT: Duration = Duration::from_secs(10);

/// The store passphrase of a sealed installation, from the core at `socket`: the first line
/// of a connection to a core that is running and unsealed. The connection is closed at once.
pub async fn key_from_core(socket: &Path) -> anyhow::Result<Zeroizing<String>> {
    let advice = "on a sealed installation the Signal store's passphrase is the core's: start \
                  `pane-agent run`, unseal it with `pane-agent unseal`, and run `pane-signal \
                  link` again (or give pane-signal the passphrase in PANE_SIGNAL_PASSPHRASE or \
                  the systemd credential signal-passphrase)";
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .with_context(|| {
            format!(
                "no store passphrase given, and the core is not reachable at {}; {advice}",
                socket.display()
            )
        })?;
    let (reader, _writer) = stream.into_split();
    let mut reader = LineReader::new(reader);
    let first = tokio::time::timeout(KEY_WAIT, reader.next_line()).await;
    let line = match first {
        Ok(Read::Line(line)) => line,
        Err(_) => bail!(
            "the core at {} handed over no store key within {} s: is it unsealed? {advice}",
            socket.display(),
            KEY_WAIT.as_secs()
        ),
        Ok(_) => bail!(
            "the core at {} closed the connection without a store key (it refuses a second \
             gateway: stop `pane-signal run` first); {advice}",
            socket.display()
        ),
    };
    match decode_line::<CoreCommand>(&line) {
        Ok(CoreCommand::StoreKey { passphrase }) => {
            Ok(Zeroizing::new(passphrase.expose().to_string()))
        }
        _ => Err(anyhow!(
            "the core at {} is not sealed (its first line was not a store key): give \
             pane-signal the passphrase in PANE_SIGNAL_PASSPHRASE or the systemd credential \
             signal-passphrase",
            socket.display()
        )),
    }
}

#[cfg(test)]
mod capability_tests {
    use super::capability_refusal;

    #[test]
    fn a_409_on_link_names_the_capabilities_and_the_cure() {
        let why = capability_refusal("libsignal-service error: Unexpected response: HTTP 409")
            .expect("a 409 is a refusal");
        assert!(
            why.contains("spqr") && why.contains("Upgrading the pins"),
            "{why}"
        );
        assert_eq!(capability_refusal("connection reset by peer"), None);
    }
}
