//! `check-incidents`: every breach incident, strongest signal first, as records (each with its
//! plain-sentence `summary`) and as the prototype's lines (`⚠  2026-11-22T10:00  notion  ←
//! evil.example`) followed by that sentence.

use super::{Args, Cmd, Fast, Run, Spec};
use crate::breach::incidents::Incident;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, Words};
use crate::words::lines::single;
use serde::{Serialize, Serializer};

/// `check-incidents` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckIncidents;

/// What `check-incidents` answers: `{"count", "incidents": [view, ...], "lines": [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentsOutput(pub Vec<Incident>);

impl Serialize for IncidentsOutput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// `{"count", "incidents": [view, ...], "lines": [...]}`.
        #[derive(Serialize)]
        struct Shown {
            count: usize,
            incidents: Vec<serde_json::Value>,
            lines: Vec<String>,
        }
        Shown {
            count: self.0.len(),
            incidents: self.0.iter().map(Incident::view).collect(),
            lines: self.0.iter().map(line).collect(),
        }
        .serialize(s)
    }
}

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

impl Words for IncidentsOutput {
    /// One line per incident, strongest first, in the words of its summary, with its id (for
    /// `incident.ack`) and the burn it queued.
    fn words(&self, _cmd: &str) -> String {
        if self.0.is_empty() {
            return "✓ No incidents.".to_string();
        }
        let mut out = match self.0.len() {
            1 => "1 incident:".to_string(),
            n => format!("{n} incidents, strongest first:"),
        };
        for i in &self.0 {
            out.push_str(&format!("\n• {} ({}", single(&i.describe()), single(&i.id)));
            if i.acked {
                out.push_str(", acknowledged");
            }
            if let Some(reference) = &i.burn_code {
                out.push_str(&format!(
                    "; burn queued: approval {}, answer its prompt",
                    single(reference)
                ));
            }
            out.push(')');
        }
        out
    }
}

impl Cmd for CheckIncidents {
    const SPECS: &'static [Spec] = &[Spec::new(
        "check-incidents",
        Tier::Read,
        true,
        &[],
        "list breach incidents",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<CheckIncidents, CommandError> {
        Ok(CheckIncidents)
    }

    /// Lists the incidents, strongest first. A queued burn is named by its approval's
    /// reference (`burn_code`), never its code, on every channel.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        let mut all = fast.incidents.all().map_err(internal)?;
        // Strongest signal first; oldest first within a rank (the sort is stable).
        all.sort_by_key(|i| std::cmp::Reverse(i.effective_kind().rank()));
        Run::done(IncidentsOutput(all))
    }
}
