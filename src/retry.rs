//! The one backoff the agent uses, built on backon's exponential backoff with jitter:
//! provider requests retried a bounded number of times, and reconnect loops (the Signal
//! device, the core socket, IMAP IDLE) that wait longer after each failure up to a cap.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;

/// Waits between attempts: doubling from `min` up to `max`, each with jitter.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    /// At most `retries` waits (so `retries + 1` attempts in all).
    pub fn bounded(min: Duration, max: Duration, retries: usize) -> Backoff {
        Backoff::from(
            ExponentialBuilder::new()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_max_times(retries)
                .with_jitter(),
            max,
        )
    }

    /// As many waits as it takes (a reconnect loop, which ends on shutdown).
    pub fn forever(min: Duration, max: Duration) -> Backoff {
        Backoff::from(
            ExponentialBuilder::new()
                .with_min_delay(min)
                .with_max_delay(max)
                .without_max_times()
                .with_jitter(),
            max,
        )
    }

    fn from(builder: ExponentialBuilder, max: Duration) -> Backoff {
        Backoff {
            delays: builder.build(),
            builder,
            max,
        }
    }

    /// The next wait, never over the cap (jitter included); None when the retries are used
    /// up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.delays.next().map(|d| d.min(self.max))
    }

    /// After a success: the next failure starts again from the shortest wait.
    pub fn reset(&mut self) {
        self.delays = self.builder.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_gives_up_and_reset_starts_over() {
        let mut b = Backoff::bounded(Duration::from_millis(10), Duration::from_millis(40), 3);
        let waits: Vec<Duration> = std::iter::from_fn(|| b.next_delay()).collect();
        assert_eq!(waits.len(), 3);
        // Jitter adds at most the delay itself (10-20 ms), and the cap holds (40 ms).
        assert!(waits[0] >= Duration::from_millis(10) && waits[0] <= Duration::from_millis(20));
        assert!(
            waits.iter().all(|w| *w <= Duration::from_millis(40)),
            "{waits:?}"
        );
        b.reset();
        assert!(b
            .next_delay()
            .is_some_and(|d| d <= Duration::from_millis(20)));
    }

    #[test]
    fn forever_never_runs_out_and_stays_under_its_cap() {
        let mut b = Backoff::forever(Duration::from_millis(200), Duration::from_secs(30));
        for _ in 0..100 {
            let d = b.next_delay().unwrap();
            assert!(d <= Duration::from_secs(30), "{d:?}");
        }
    }
}
