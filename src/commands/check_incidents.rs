//! `check-incidents`: every breach incident, as records and as the prototype's lines
//! (`⚠  2026-11-22T10:00  notion  ←  evil.example`).

use super::Args;
use crate::breach::incidents::{Incident, Incidents};
use crate::reply::{internal, CommandError};
use serde_json::{json, Value};

/// `check-incidents` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckIncidents;

/// One incident as a line: first seen to the minute, context, sender domain.
pub fn line(i: &Incident) -> String {
    let when: String = i.first_seen.chars().take(16).collect();
    let ack = if i.acked { "  (acknowledged)" } else { "" };
    format!("⚠  {when}  {}  ←  {}{ack}", i.context, i.sender_domain)
}

impl CheckIncidents {
    /// Parses the (empty) arguments.
    pub fn parse(args: &Args<'_>) -> Result<CheckIncidents, CommandError> {
        args.only(&[])?;
        Ok(CheckIncidents)
    }

    /// Lists the incidents, oldest first.
    pub fn apply(self, incidents: &Incidents) -> Result<Value, CommandError> {
        let all = incidents.all().map_err(internal)?;
        let lines: Vec<String> = all.iter().map(line).collect();
        Ok(json!({"count": all.len(), "incidents": all, "lines": lines}))
    }
}
