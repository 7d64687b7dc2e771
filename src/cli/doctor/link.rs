//! The Signal link's health as the running agent last judged it: `<data-dir>/link.state`,
//! which the gate writes whenever the verdict changes (the store is locked, and sealed,
//! while the agent runs).

use super::{check, Check, Status};
use crate::health::Problem;
use serde_json::Value;
use std::path::Path;

/// `<data-dir>/link.state`, when the agent has written one that reads.
pub fn last_state(data_dir: &Path) -> Option<Value> {
    std::fs::read_to_string(data_dir.join(crate::gate::LINK_STATE_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
}

/// `signal link`: pass while Signal works (or is not in use), fail while it is unusable,
/// warn when nothing is known.
pub fn link_check(data_dir: &Path) -> Check {
    let name = "signal link";
    let agent_up = std::os::unix::net::UnixStream::connect(data_dir.join("agent.sock")).is_ok();
    let Some(state) = last_state(data_dir) else {
        return check(
            name,
            Status::Warn,
            "no health known yet (the agent has not run unsealed with this version)",
            "start the agent (and unseal it); then run doctor again",
        );
    };
    let problem: Option<Problem> = serde_json::from_value(state["problem"].clone()).ok();
    let since = state["since"].as_str().unwrap_or("?");
    let (status, detail, fix) = match (state["status"].as_str(), problem) {
        (Some("unusable"), Some(p)) => (
            Status::Fail,
            format!("Signal unusable: {} since {since}", p.what()),
            p.fix().to_string(),
        ),
        (Some("ok"), _) => {
            let connected = state["signal"]["since"].as_str().unwrap_or("?");
            (
                Status::Pass,
                format!("ok (connected since {connected})"),
                String::new(),
            )
        }
        (Some("not_configured"), _) => (
            Status::Pass,
            "not in use ([signal] owner is not set)".to_string(),
            String::new(),
        ),
        _ => (
            Status::Warn,
            "unknown: the gateway has not reported its health".to_string(),
            "update pane-signal; journalctl -u pane-signal".to_string(),
        ),
    };
    if agent_up {
        check(name, status, detail, fix)
    } else {
        check(
            name,
            Status::Warn,
            format!("the agent is not running; when it last ran: {detail}"),
            "systemctl start pane-agent",
        )
    }
}
