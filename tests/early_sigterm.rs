//! A SIGTERM that comes as soon as the control socket answers (when a supervisor, a script or
//! a test takes the daemon for started) stops it cleanly, with exit status 0, instead of
//! killing it with the signal's default action: the daemon listens for the signals before it
//! starts anything (before the store opens), and a signal that came during the start is acted
//! on as soon as the start is done. (One that comes before the process has run any code of
//! its own can only take the default action.)

mod common;

use common::{cmd, Agent};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn a_sigterm_at_any_moment_of_the_start_stops_the_daemon_cleanly() {
    let agent = Agent::init();
    // Delays after the control socket first accepted a connection, in microseconds.
    let delays: Vec<u64> = (0..20).map(|i| i * 250).collect();
    let mut failures = Vec::new();
    for delay in delays {
        let mut child = cmd(&agent.dir)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the daemon");
        let socket = agent.socket();
        let ready_by = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < ready_by, "the daemon did not start");
            // Poll interval of the bounded wait for the socket (tight: the race is short).
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_micros(delay));
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            // Poll interval of the bounded wait for the exit.
            std::thread::sleep(Duration::from_millis(10));
        };
        match status {
            Some(s) if s.success() => {}
            Some(s) => failures.push(format!("SIGTERM {delay} µs after the socket answered: {s}")),
            None => failures.push(format!(
                "SIGTERM {delay} µs after the socket answered: still running 20 s later"
            )),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
