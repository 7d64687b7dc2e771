//! `check-incidents`: every breach incident, strongest signal first, as records (each with its
//! plain-sentence `summary`) and as the prototype's lines (`⚠  2026-11-22T10:00  notion  ←
//! evil.example`) followed by that sentence.

use super::Args;
use crate::breach::incidents::{Incident, Incidents};
use crate::reply::{internal, CommandError};
use serde_json::{json, Value};

/// `check-incidents` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckIncidents;

/// One incident as a line: first seen to the minute, context, sender domain (or merchant),
/// and what happened in words ([`Incident::describe`]).
pub fn line(i: &Incident) -> String {
    let when: String = i.first_seen.chars().take(16).collect();
    let ack = if i.acked { "  (acknowledged)" } else { "" };
    format!(
        "⚠  {when}  {}  ←  {}{ack}  —  {}",
        i.context,
        i.sender_domain,
        i.describe()
    )
}

impl CheckIncidents {
    /// Parses the (empty) arguments.
    pub fn parse(_args: &Args<'_>) -> Result<CheckIncidents, CommandError> {
        Ok(CheckIncidents)
    }

    /// Lists the incidents, strongest first. A queued burn is named by its approval's
    /// reference (`burn_code`), never its code, on every channel.
    pub fn apply(self, incidents: &Incidents) -> Result<Value, CommandError> {
        let mut all = incidents.all().map_err(internal)?;
        // Strongest signal first; oldest first within a rank (the sort is stable).
        all.sort_by_key(|i| std::cmp::Reverse(i.effective_kind().rank()));
        let lines: Vec<String> = all.iter().map(line).collect();
        let views: Vec<Value> = all.iter().map(Incident::view).collect();
        Ok(json!({"count": all.len(), "incidents": views, "lines": lines}))
    }
}
