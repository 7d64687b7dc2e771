//! `incident.ack {id}`: the owner has seen an incident (it stays in the record).

use super::{invalid, Args};
use crate::breach::incidents::Incidents;
use crate::reply::{internal, CommandError, ErrorKind};
use serde_json::{json, Value};

/// `incident.ack {id}`
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentAck {
    /// The incident's id (`i-` and 10 hex).
    pub id: String,
}

impl IncidentAck {
    /// Parses `{id}`.
    pub fn parse(args: &Args<'_>) -> Result<IncidentAck, CommandError> {
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
    pub fn apply(self, incidents: &Incidents) -> Result<Value, CommandError> {
        let mut incident = incidents
            .by_id(&self.id)
            .map_err(internal)?
            .ok_or_else(|| {
                CommandError::new(
                    ErrorKind::NotFound,
                    format!("incident not found: {}", self.id),
                )
            })?;
        incident.acked = true;
        incidents.put(&incident).map_err(internal)?;
        Ok(json!({"status": "acknowledged", "incident": incident.view()}))
    }
}
