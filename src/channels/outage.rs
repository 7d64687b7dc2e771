//! The proxy's outages, told: when `[network] proxy` stops answering, the owner is told once
//! (an audited alert), however many calls fail meanwhile; when a connection goes through it
//! again, once more, and work goes on as before. Nothing waits for this: the calls fail at
//! once with the same words, and this only follows [`crate::egress::Egress::health`].

use crate::egress::{Egress, Health};
use crate::gate::GateHandle;
use crate::shutdown::Shutdown;

/// Follows the proxy's health until shutdown.
pub async fn watch(egress: Egress, gate: GateHandle, mut shutdown: Shutdown) {
    let Some(proxy) = egress.proxy() else {
        return;
    };
    let mut health = egress.health();
    let mut told_down = false;
    loop {
        tokio::select! {
            changed = health.changed() => if changed.is_err() { return },
            _ = shutdown.recv() => return,
        }
        let now = *health.borrow_and_update();
        match now {
            Health::Down if !told_down => {
                told_down = true;
                gate.notice_internal(
                    "network.proxy_down",
                    serde_json::json!({"proxy": proxy.to_string()}),
                    Some(format!(
                        "Tor is not reachable at {proxy} ([network] proxy): calls to the providers and the mailbox fail until it is back, and nothing goes out directly. You will be told when it is back."
                    )),
                )
                .await;
            }
            Health::Up if told_down => {
                told_down = false;
                gate.notice_internal(
                    "network.proxy_up",
                    serde_json::json!({"proxy": proxy.to_string()}),
                    Some(format!(
                        "Tor is reachable again at {proxy}: calls go through it as before. Anything that failed meanwhile can be tried again."
                    )),
                )
                .await;
            }
            _ => {}
        }
    }
}
