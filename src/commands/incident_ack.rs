//! `incident.ack {id}`: the owner has seen an incident (it stays in the record).

use super::args::{req, Kind};
use super::{invalid, Args, Cmd, Fast, Run, Spec};
use crate::breach::incidents::Incident;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, ErrorKind, Words};
use serde::{Serialize, Serializer};

/// `incident.ack {id}`
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentAck {
    /// The incident's id (`i-` and 10 hex).
    pub id: String,
}

/// What `incident.ack` answers: `{"status": "acknowledged", "incident": view}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledged(pub Incident);

impl Serialize for Acknowledged {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// `{"status": "acknowledged", "incident": view}`.
        #[derive(Serialize)]
        struct Shown {
            status: &'static str,
            incident: serde_json::Value,
        }
        Shown {
            status: "acknowledged",
            incident: self.0.view(),
        }
        .serialize(s)
    }
}

impl Words for Acknowledged {
    fn words(&self, cmd: &str) -> String {
        crate::words::fields_of(cmd, self)
    }
}

impl Cmd for IncidentAck {
    const SPECS: &'static [Spec] = &[Spec::new(
        "incident.ack",
        Tier::Write,
        true,
        &[req(
            "id",
            Kind::IncidentId,
            "the incident's id, as check-incidents gives it",
        )],
        "acknowledge an incident",
    )];

    fn parse(_name: &str, args: &Args<'_>) -> Result<IncidentAck, CommandError> {
        let id = args.string("id")?;
        let ok = id.len() == 12
            && id.starts_with("i-")
            && id[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(invalid("id must look like i-0123456789"));
        }
        Ok(IncidentAck { id })
    }

    /// Marks it acknowledged.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        let mut incident = fast
            .incidents
            .by_id(&self.id)
            .map_err(internal)?
            .ok_or_else(|| {
                CommandError::new(
                    ErrorKind::NotFound,
                    format!("incident not found: {}", self.id),
                )
            })?;
        incident.acked = true;
        fast.incidents.put(&incident).map_err(internal)?;
        Run::done(Acknowledged(incident))
    }
}
