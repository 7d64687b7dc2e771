//! Scheduled jobs on cron expressions: the breach sweep, the weekly digest, the secret
//! rotation reminder. A run missed while the agent was down runs once at start. The
//! scheduler only decides when; the agent actor runs the job and records when it last ran.

use crate::config::ScheduleConfig;
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

    /// The store key of its last run.
    pub fn last_run_key(self) -> String {
        format!("schedule.{}.last_run", self.name())
    }
}

/// When each job last ran, as the agent recorded it.
pub fn last_run(meta: &sled::Tree, job: Job) -> Option<DateTime<Utc>> {
    let bytes = meta.get(job.last_run_key()).ok()??;
    let text = std::str::from_utf8(&bytes).ok()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
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
