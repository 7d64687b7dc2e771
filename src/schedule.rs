//! Scheduled jobs on cron expressions: the breach sweep, the weekly digest, the secret
//! rotation reminder. A run missed while the agent was down runs once at start. The
//! scheduler only decides when; the agent actor runs the job and records when it last ran.

use crate::actors::agent::AgentHandle;
use crate::config::ScheduleConfig;
use crate::shutdown::Shutdown;
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

/// Runs the schedule until shutdown.
pub async fn run(
    jobs: Vec<(Job, cron::Schedule)>,
    meta: sled::Tree,
    agent: AgentHandle,
    mut shutdown: Shutdown,
) {
    let now = Utc::now();
    for (job, schedule) in &jobs {
        match last_run(&meta, *job) {
            Some(last) if schedule.after(&last).next().is_some_and(|due| due <= now) => {
                tracing::info!(
                    job = job.name(),
                    "running a schedule missed while the agent was down"
                );
                agent.run_job(*job).await;
            }
            Some(_) => {}
            None => {
                // First start: the schedule counts from now.
                let _ = meta.compare_and_swap(
                    job.last_run_key(),
                    None as Option<&[u8]>,
                    Some(now.to_rfc3339().as_bytes()),
                );
            }
        }
    }
    loop {
        let now = Utc::now();
        let next = jobs
            .iter()
            .filter_map(|(job, s)| s.after(&now).next().map(|t| (t, *job)))
            .min_by_key(|(t, _)| *t);
        let Some((when, job)) = next else {
            shutdown.recv().await;
            return;
        };
        let wait = (when - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => { agent.run_job(job).await; }
            _ = shutdown.recv() => return,
        }
    }
}
