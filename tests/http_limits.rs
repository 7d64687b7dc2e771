//! The HTTP endpoint under slow and stalled clients (a Tor onion service lets anyone
//! connect): a flood of half-open connections leaves the control socket, the gateway socket
//! and `/healthz` answering and the daemon's file descriptors unexhausted; a body that stops
//! short of its `Content-Length` is dropped; SIGTERM ends the daemon in bounded time with
//! connections held; a connection cap the descriptor limit cannot serve is refused at start.
//!
//! The daemon runs with 1024 open files at most, systemd's default soft limit, whatever
//! limit this test process raised for itself to hold the connections.

mod common;

use common::{cmd, Agent};
use pane_agent::gateway::protocol::{decode_line, encode_line, CoreCommand, GatewayEvent};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

const OWNER: &str = "5b1e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
/// systemd's default soft limit of open files for a service.
const DAEMON_NOFILE: u64 = 1024;
/// Half-open connections held in the flood test: more than the daemon could open.
const FLOOD: usize = 1100;

/// Raises this process's soft limit of open files to its hard limit (the flood holds more
/// than the usual 1024).
fn raise_own_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, owned struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        r.rlim_cur = r.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
    }
    r.rlim_cur
}

/// An initialised agent with the HTTP endpoint on, the owner set, and `[http]` settings
/// replaced as `(template line, replacement)`; the daemon is not started.
fn agent_with_http(replace: &[(&str, &str)]) -> (Agent, SocketAddr) {
    let agent = Agent::init();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = pane_agent::config::TEMPLATE
        .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace("owner = \"\"", &format!("owner = \"{OWNER}\""));
    for (from, to) in replace {
        assert!(config.contains(from), "the template has no {from}");
        config = config.replace(from, to);
    }
    agent.write_config(&config);
    (agent, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `pane-agent run` with at most `nofile` open files, as systemd would start it.
fn run_limited(agent: &Agent, nofile: u64) -> std::process::Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&agent.log)
        .unwrap();
    let mut c = cmd(&agent.dir);
    c.arg("run").stdout(Stdio::null()).stderr(log);
    // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let mut r = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            r.rlim_cur = nofile.min(r.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

/// Starts the daemon with systemd's default descriptor limit and waits until it answers.
fn spawn_limited(agent: &mut Agent) {
    let child = run_limited(agent, DAEMON_NOFILE).spawn().unwrap();
    agent.child = Some(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(agent.socket()).is_err() {
        if let Some(status) = agent.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("agent exited early ({status}): {}", agent.logs());
        }
        assert!(
            Instant::now() < deadline,
            "agent not ready: {}",
            agent.logs()
        );
        // The poll interval of this bounded wait for the socket.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Opens `n` connections that each send part of a request head and stall (Slowloris).
fn half_open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            continue;
        };
        if s.write_all(b"POST /command HTTP/1.1\r\nHost: pane\r\nX-Pad: ")
            .is_ok()
        {
            held.push(s);
        }
    }
    held
}

/// `GET /healthz` on a fresh connection: the status line and body, or why not.
fn healthz(addr: SocketAddr, wait: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, wait).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: pane\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The control socket answers `list` within `wait`.
fn control_answers(agent: &Agent, wait: Duration) -> Result<Value, String> {
    let env = agent.envelope("list", json!({})).to_json();
    let mut s = UnixStream::connect(agent.socket()).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(env.as_bytes()).map_err(|e| e.to_string())?;
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    serde_json::from_str(&out).map_err(|e| format!("{e}: {out:?}"))
}

/// The owner's signed `list` over the gateway socket is answered there within `wait`.
fn gateway_answers(agent: &Agent, wait: Duration) -> Result<String, String> {
    let s = UnixStream::connect(agent.dir.join("gateway.sock")).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut writer = s.try_clone().unwrap();
    let mut reader = BufReader::new(s);
    let event = GatewayEvent::Received {
        id: None,
        expire_timer: 0,
        sender: OWNER.into(),
        device: 1,
        timestamp: 1,
        body: agent.envelope("list", json!({})).to_json(),
        sealed: true,
    };
    writer
        .write_all(encode_line(&event).unwrap().as_bytes())
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("the gateway socket closed".into()),
            Ok(_) => {
                let CoreCommand::Send { id, body, .. } =
                    decode_line(&line).map_err(|e| e.to_string())?
                else {
                    continue;
                };
                let sent = encode_line(&GatewayEvent::Sent {
                    id,
                    timestamp: None,
                })
                .unwrap();
                let _ = writer.write_all(sent.as_bytes());
                return Ok(body);
            }
            Err(_) => continue,
        }
    }
    Err("no reply over the gateway".into())
}

/// The daemon's open file descriptors, from /proc.
fn open_fds(agent: &Agent) -> usize {
    let pid = agent.child.as_ref().unwrap().id();
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn half_open_connections_leave_the_sockets_and_healthz_answering() {
    assert!(raise_own_nofile() >= 4096, "the test needs 4096 open files");
    // A short header timeout, so that the connections queued behind the cap get their turn
    // (and are closed) quickly.
    let (mut agent, addr) =
        agent_with_http(&[("header_timeout_secs = 10", "header_timeout_secs = 2")]);
    spawn_limited(&mut agent);
    let held = half_open(addr, FLOOD);
    assert!(held.len() >= 1000, "only {} connections opened", held.len());

    // While they are held: the control socket and the gateway answer at once.
    let wait = Duration::from_secs(10);
    let list = control_answers(&agent, wait)
        .unwrap_or_else(|e| panic!("the control socket did not answer: {e}: {}", agent.logs()));
    assert_eq!(list["count"], 0, "{list}");
    let list = gateway_answers(&agent, wait)
        .unwrap_or_else(|e| panic!("the gateway did not answer: {e}: {}", agent.logs()));
    assert_eq!(list, "No contexts yet: `enroll` one.", "{list}");
    let fds = open_fds(&agent);
    assert!(
        fds < DAEMON_NOFILE as usize - 64,
        "{fds} descriptors open, near the limit of {DAEMON_NOFILE}"
    );

    // /healthz on a fresh connection: past the cap it waits in the listen queue until the
    // connections ahead of it are served or timed out (about FLOOD / 256 header timeouts).
    let reply = healthz(addr, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("/healthz did not answer: {e}: {}", agent.logs()));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""status":"ok""#), "{reply}");
    // And the control socket still answers, the flood still held on this side.
    assert!(control_answers(&agent, wait).is_ok());
    drop(held);
    agent.stop();
}

#[test]
fn a_body_that_stops_short_of_its_content_length_is_dropped() {
    let (mut agent, addr) = agent_with_http(&[("body_timeout_secs = 10", "body_timeout_secs = 1")]);
    spawn_limited(&mut agent);
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"POST /command HTTP/1.1\r\nHost: pane\r\nContent-Type: application/json\r\n\
          Content-Length: 200\r\n\r\n{\"ts\":",
    )
    .unwrap();
    // The daemon answers 408 and closes the connection; the bound is far above the timeout.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = String::new();
    let read = s.read_to_string(&mut out);
    assert!(
        read.is_ok(),
        "the stalled connection is still open after 30 s ({read:?}, {out:?})"
    );
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains("\"kind\":\"timeout\""), "{out}");
    // A whole request on a fresh connection is served as usual.
    let reply = healthz(addr, Duration::from_secs(10)).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    agent.stop();
}

#[test]
fn a_connection_that_moves_nothing_is_closed_after_the_idle_timeout() {
    // The header timeout is far away: only the idle timeout can close this one.
    let (mut agent, addr) = agent_with_http(&[
        ("header_timeout_secs = 10", "header_timeout_secs = 600"),
        ("idle_timeout_secs = 60", "idle_timeout_secs = 1"),
    ]);
    spawn_limited(&mut agent);
    let mut quiet = TcpStream::connect(addr).unwrap();
    quiet
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = Vec::new();
    let read = quiet.read_to_end(&mut out);
    assert!(
        read.is_ok(),
        "a silent connection is still open after 30 s ({read:?})"
    );
    // A request that is answered at once is not cut.
    let reply = healthz(addr, Duration::from_secs(10)).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    agent.stop();
}

#[test]
fn sigterm_ends_the_daemon_in_bounded_time_with_connections_held() {
    // Timeouts far longer than the bound: only the shutdown's own deadline can end these.
    let (mut agent, addr) = agent_with_http(&[
        ("header_timeout_secs = 10", "header_timeout_secs = 600"),
        ("body_timeout_secs = 10", "body_timeout_secs = 600"),
        ("idle_timeout_secs = 60", "idle_timeout_secs = 600"),
    ]);
    spawn_limited(&mut agent);
    let mut held = half_open(addr, 50);
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"POST /command HTTP/1.1\r\nHost: pane\r\nContent-Length: 200\r\n\r\n{")
        .unwrap();
    held.push(stalled);
    // The daemon has them: /healthz still answers beside them.
    assert!(healthz(addr, Duration::from_secs(10))
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    let mut child = agent.child.take().unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "still running 20 s after SIGTERM with connections held: {}",
                agent.logs()
            );
        }
        // The poll interval of this bounded wait for the exit.
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}: {}", agent.logs());
    drop(held);
}

#[test]
fn a_connection_cap_the_descriptor_limit_cannot_serve_is_refused_at_start() {
    let (mut agent, _) = agent_with_http(&[("max_connections = 256", "max_connections = 2000")]);
    agent.child = Some(run_limited(&agent, DAEMON_NOFILE).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = agent.child.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            UnixStream::connect(agent.socket()).is_err(),
            "started with a cap it cannot serve: {}",
            agent.logs()
        );
        assert!(Instant::now() < deadline, "neither started nor refused");
        // The poll interval of this bounded wait for the exit.
        std::thread::sleep(Duration::from_millis(20));
    };
    agent.child = None;
    let logs = agent.logs();
    assert!(!status.success(), "{logs}");
    assert!(logs.contains("max_connections"), "{logs}");
    assert!(logs.contains("LimitNOFILE"), "{logs}");
}
