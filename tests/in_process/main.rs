//! The gate and the workers in process, for their logic: the core that `pane-agent run`
//! starts (`pane_agent::assembly`), over a real store in a temporary dir and the memory
//! providers (`pane_agent::providers::memory`), driven by signed envelopes submitted to the
//! gate directly. No binary, socket or HTTP server: those stay with the process-level tests,
//! for what only the binary proves (sockets, signals, crashes, Dovecot, Chromium, MCP).
//!
//! Nothing here sleeps to wait for something: a test waits on the event (a provider call
//! made, a reply) or on a bounded poll of a condition.
//!
//! Time. Tests where time matters run on tokio's paused clock (`start_paused`), moved only
//! by the test (`tokio::time::advance`) while a [`harness::manual_clock`] guard lives: a
//! deadline of minutes or a cool-down of an hour passes in no wall time, at exactly the
//! moment the test chooses. Without the guard, tokio would move a paused clock by itself to
//! the next timer whenever every task waits, which here happens at every store flush (sled's
//! flusher is a thread): the clock would jump past a job's deadline at moments no test
//! chooses. Tests that hold a provider call until released without stepping time run on the
//! real clock, where every deadline is minutes away.

mod commands;
mod concurrency;
mod harness;
mod time;
