//! `pane-agent check-incidents`: the incidents as the prototype printed them, one line each
//! (`⚠  2026-11-22T10:00  notion  ←  evil.example`), asked of the running daemon.

use super::{send::send, CommandArgs, DataDirArg};
use serde_json::Value;

/// Signs `check-incidents`, delivers it, and returns the lines to print (or the error reply).
pub async fn check_incidents(data_dir: &DataDirArg) -> anyhow::Result<Result<Vec<String>, Value>> {
    let args = CommandArgs {
        data_dir: data_dir.clone(),
        cmd: "check-incidents".into(),
        args: Vec::new(),
    };
    let reply = send(&args).await?;
    if reply.get("error").is_some() {
        return Ok(Err(reply));
    }
    let lines: Vec<String> = reply["lines"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        return Ok(Ok(vec!["no incidents logged".to_string()]));
    }
    Ok(Ok(lines))
}
