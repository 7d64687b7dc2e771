//! Timers that start jobs: the cron schedule ([`crate::schedule`]) and, at start, the
//! schedules missed while the agent was down. Each due job is handed to the gate, which
//! starts it and answers at once; the timer never waits for the job's I/O.

use crate::gate::GateHandle;
use crate::schedule::{Job, LastRuns};
use crate::shutdown::Shutdown;
use chrono::Utc;

/// Runs the schedule until shutdown.
pub async fn run(
    jobs: Vec<(Job, cron::Schedule)>,
    last_runs: LastRuns,
    agent: GateHandle,
    mut shutdown: Shutdown,
) {
    let now = Utc::now();
    for (job, schedule) in &jobs {
        match last_runs.get(*job) {
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
                let _ = last_runs.start_counting(*job, now);
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
