//! What every job carries from the gate to the worker that runs it: its id, the lockdown
//! generation it was authorised under, and its deadline.
//!
//! The gate never waits for a job. A `lockdown` trips the [`LockdownSwitch`]; from then on a
//! job authorised before it fails its next [`Ticket::check`], which the workers make before
//! every provider call that changes something, and before a queued job starts. A create that
//! was already sent finishes, is recorded and audited; the step after it fails as locked down.

use crate::reply::{CommandError, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The lockdown generation, shared by the gate (which trips it) and every worker (which
/// checks it).
#[derive(Clone, Debug, Default)]
pub struct LockdownSwitch(Arc<AtomicU64>);

impl LockdownSwitch {
    /// The current generation: how many lockdowns there have been since start.
    pub fn generation(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// A lockdown: every job authorised before now stops at its next check.
    pub fn trip(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// One job's credentials with the workers.
#[derive(Clone, Debug)]
pub struct Ticket {
    id: u64,
    generation: u64,
    switch: LockdownSwitch,
    deadline: Duration,
}

impl Ticket {
    /// A ticket for job `id`, authorised now, to finish within `deadline`.
    pub fn new(id: u64, switch: &LockdownSwitch, deadline: Duration) -> Ticket {
        Ticket {
            id,
            generation: switch.generation(),
            switch: switch.clone(),
            deadline,
        }
    }

    /// The job's id (the audit log's `job` field).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How long the job may run in all.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Refuses when a lockdown came after the job was authorised.
    pub fn check(&self) -> Result<(), CommandError> {
        if self.switch.generation() == self.generation {
            Ok(())
        } else {
            Err(CommandError::new(
                ErrorKind::LockedDown,
                "locked down: this job was authorised before the lockdown and was stopped before its next provider call",
            ))
        }
    }

    /// Runs `work` within the deadline; past it, a clear error (the work is dropped where it
    /// stands, and an intent it opened stays for reconciliation).
    pub async fn within_deadline<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, CommandError>>,
    ) -> Result<T, CommandError> {
        match tokio::time::timeout(self.deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(CommandError::new(
                ErrorKind::DeadlineExceeded,
                format!(
                    "deadline passed: the job did not finish within {} s ([jobs] deadline_secs); anything it started is reconciled by the next try or at start",
                    self.deadline.as_secs()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lockdown_stops_tickets_issued_before_it_only() {
        let switch = LockdownSwitch::default();
        let before = Ticket::new(1, &switch, Duration::from_secs(5));
        assert!(before.check().is_ok());
        switch.trip();
        assert_eq!(before.check().unwrap_err().kind, ErrorKind::LockedDown);
        let after = Ticket::new(2, &switch, Duration::from_secs(5));
        assert!(after.check().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_past_its_deadline_ends_with_a_clear_error() {
        let ticket = Ticket::new(1, &LockdownSwitch::default(), Duration::from_secs(3));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        };
        let err = ticket.within_deadline(slow).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::DeadlineExceeded);
        assert!(err.message.contains("3 s"));
    }
}
