//! Sealed installations through the binary: unsealing with a passphrase on standard input,
//! the passphrase `init` printed, and reading `doctor`'s report.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `unseal` (a `pane-agent` command with its data dir and environment set) with
/// `passphrase` as its one line of standard input: the daemon's reply.
pub fn unseal(mut command: Command, passphrase: &str) -> Value {
    let mut child = command
        .arg("unseal")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{passphrase}").unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "unseal printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The unseal passphrase `init` printed, if it printed one.
pub fn printed_passphrase(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.split("it is not stored anywhere): ").nth(1))
        .map(|p| p.trim().to_string())
}

/// The row of `check` in a `doctor` report, with its fix line when it has one; None when
/// the report has no such row.
pub fn doctor_row(report: &str, check: &str) -> Option<String> {
    let mut lines = report.lines();
    while let Some(line) = lines.next() {
        if line.get(7..).is_some_and(|rest| rest.starts_with(check)) {
            let mut row = line.to_string();
            if let Some(next) = lines.next().filter(|l| l.trim_start().starts_with("fix:")) {
                row.push('\n');
                row.push_str(next);
            }
            return Some(row);
        }
    }
    None
}
