//! Scheduled jobs on cron expressions: the breach sweep, the weekly digest, the secret
//! rotation reminder. A run missed while the agent was down runs once at start. The
//! scheduler only decides when; the agent actor runs the job and records when it last ran.

use crate::config::ScheduleConfig;
use crate::store::records::{Family, Time};
use crate::store::{Records, Store, StoreError};
use chrono::{DateTime, Utc};
use std::str::FromStr;

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Sweep every breach source.
    BreachSweep,
    /// Send the owner the week's incidents, pending approvals and expired contexts.
    WeeklyDigest,
    /// Remind the owner to rotate the command secret.
    SecretRotationReminder,
}

impl Job {
    /// The job's name in the config and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Job::BreachSweep => "breach_sweep",
            Job::WeeklyDigest => "weekly_digest",
            Job::SecretRotationReminder => "secret_rotation_reminder",
        }
    }
}

/// When each job last ran: `schedule.<job>.last_run`, RFC 3339.
const LAST_RUN: Family<Time> = Family::new("schedule.");

/// When each job last ran, as the agent recorded it: the one owner of those records, for the
/// gate (which runs the jobs) and the timers (which decide when). Clones share them.
#[derive(Clone)]
pub struct LastRuns {
    records: Records,
}

impl LastRuns {
    /// Uses the store's records.
    pub fn new(store: &Store) -> LastRuns {
        LastRuns {
            records: store.records(),
        }
    }

    /// When `job` last ran; None when it never did (or the record does not read).
    pub fn get(&self, job: Job) -> Option<DateTime<Utc>> {
        self.records
            .get_valid(&LAST_RUN.key_with(job.name(), ".last_run"))
            .ok()
            .flatten()
    }

    /// Records that `job` ran at `at`.
    pub fn record(&self, job: Job, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.records
            .set(&LAST_RUN.key_with(job.name(), ".last_run"), &at)?;
        Ok(())
    }

    /// At the first start: the schedule counts from `now`, unless a run is recorded.
    pub fn start_counting(&self, job: Job, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.records
            .set_if_absent(&LAST_RUN.key_with(job.name(), ".last_run"), &now)?;
        Ok(())
    }
}

/// Parses the configured schedules (empty expressions turn a job off).
pub fn jobs(config: &ScheduleConfig) -> Vec<(Job, cron::Schedule)> {
    [
        (Job::BreachSweep, &config.breach_sweep),
        (Job::WeeklyDigest, &config.weekly_digest),
        (
            Job::SecretRotationReminder,
            &config.secret_rotation_reminder,
        ),
    ]
    .into_iter()
    .filter(|(_, expr)| !expr.trim().is_empty())
    // The config was validated at start, so these parse.
    .filter_map(|(job, expr)| cron::Schedule::from_str(expr).ok().map(|s| (job, s)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TableId;

    /// The records read and write what older versions kept: RFC 3339 text at
    /// `schedule.<job>.last_run`.
    #[test]
    fn last_runs_keep_the_old_keys_and_text() {
        let store = Store::temporary().unwrap();
        let meta = store.table(TableId::Meta);
        let runs = LastRuns::new(&store);
        let then = "2026-11-01T10:00:00+00:00";
        meta.insert("schedule.weekly_digest.last_run", then)
            .unwrap();
        let read = runs.get(Job::WeeklyDigest).unwrap();
        assert_eq!(read.to_rfc3339(), then);
        runs.start_counting(Job::WeeklyDigest, Utc::now()).unwrap();
        assert_eq!(runs.get(Job::WeeklyDigest), Some(read));
        assert_eq!(runs.get(Job::BreachSweep), None);
        let now = Utc::now();
        runs.record(Job::BreachSweep, now).unwrap();
        let raw = meta.get("schedule.breach_sweep.last_run").unwrap().unwrap();
        assert_eq!(raw.as_ref(), now.to_rfc3339().as_bytes());
        meta.insert("schedule.secret_rotation_reminder.last_run", "garbage")
            .unwrap();
        assert_eq!(runs.get(Job::SecretRotationReminder), None);
    }
}
