//! `health`: the Signal link as the core knows it (the gateway's latest `health` line, whether
//! a gateway is connected at all, the last activity, the outage in progress), judged against
//! `[alerts]`: `✓ health: Signal link ok · connected since 14:02 · ...` or `✗ Signal
//! unusable: unlinked since 14:10 UTC — relink with ...`. A read: on every channel, the MCP
//! key's too (nothing of the owner's is in it).

use super::{Args, Cmd, Fast, Run, Spec};
use crate::health::LinkReport;
use crate::policy::tools::Tier;
use crate::reply::{internal, CommandError, Words};
use serde::Serialize;

/// `health` takes no arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Health;

/// What `health` answers: the link's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct HealthOutput(pub LinkReport);

impl Words for HealthOutput {
    fn words(&self, _cmd: &str) -> String {
        self.0.words()
    }
}

impl Cmd for Health {
    const SPECS: &'static [Spec] = &[Spec::new(
        "health",
        Tier::Read,
        true,
        &[],
        "the Signal link's health: connected, registered, last activity, what to do when it is not",
    )];

    fn parse(_name: &str, _args: &Args<'_>) -> Result<Health, CommandError> {
        Ok(Health)
    }

    /// The report, judged at the time the command arrived.
    fn run(self, fast: &Fast<'_>) -> Result<Run, CommandError> {
        let now = fast.inv.now.timestamp_millis().max(0) as u64;
        let report = fast.link.report(now).map_err(internal)?;
        Run::done(HealthOutput(report))
    }
}
