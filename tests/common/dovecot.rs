//! A real Dovecot IMAP server on loopback, for the breach monitor's integration tests.
//!
//! Needs the Debian package `dovecot-imapd` (which pulls in `dovecot-core`); the config written
//! here is for Dovecot 2.3 (Debian bookworm ships 2.3.19). The system service and `/etc/dovecot`
//! are never used: each [`Dovecot`] gets its own temporary directory holding
//!
//! ```text
//! dovecot.conf     the whole config (`dovecot -F -c dovecot.conf`, no includes)
//! users            passwd-file passdb with the one test user ({PLAIN} password)
//! run/             base_dir: master.pid and every UNIX socket
//! state/           state_dir
//! mail/<user>/     the user's Maildir; its root is INBOX
//! home/<user>/     the user's home (made by Dovecot when needed)
//! dovecot.log      Dovecot's own log (log_path and info_log_path)
//! dovecot.stderr   the child's stdout and stderr (config errors land here)
//! ```
//!
//! and a foreground `dovecot -F` child process listening on `127.0.0.1:<free port>` (IMAP only,
//! `imaps` disabled, no TLS, plain-text LOGIN allowed). So any number of servers can run side by
//! side, one per test. [`Dovecot::start_tls`] adds TLS: a test CA and a server certificate
//! made with `openssl` in the same directory (`ca.pem`, `server.pem`, `server.key`), `imaps`
//! on a second free port and STARTTLS on the plain one.
//!
//! Users and permissions. Dovecot refuses to run `imap-login` as root and refuses mail access
//! for uid 0, so when the tests run as root every Dovecot service user (internal, login, mail)
//! is `nobody`, the temp dir is made traversable (0711), the passwd-file world-readable and
//! the mail and home dirs owned by `nobody`. When they run as an ordinary user, every service
//! user is that user (Dovecot cannot switch users then). Chroots are switched off for
//! `imap-login` and `anvil` because a non-root master cannot chroot. As root, `nobody` must be
//! able to reach the temp dir, so keep TMPDIR at its default (`/tmp`); it must also be short,
//! as UNIX socket paths (in `run/`) are limited to 107 bytes.
//!
//! Pitfalls met on the way, all handled in the config below: `imaps` must be disabled
//! (`port = 0`) or every server tries to bind 993; by default a failed login from 127.0.0.1
//! makes every later login to that server wait 2-15 s (anvil's auth penalty, which
//! `login_trusted_networks` does not lift in 2.3), so the penalty socket is switched off;
//! the first greeting can be `* OK Waiting for authentication process to respond..`,
//! followed by the real one; readiness is therefore checked with a real LOGIN.
//!
//! Processes. The master runs in its own process group. [`Dovecot::stop`] and
//! [`Dovecot::restart`] shut it down cleanly (SIGTERM; the master takes about a second), drop
//! kills the whole group at once (SIGKILL).
//!
//! Talking to the server goes through [`ImapClient`], a tiny synchronous IMAP client (LOGIN,
//! APPEND with LITERAL+ literals, STATUS, any raw command, LOGOUT) also available to tests.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// A second user, for the `[network] proxy` tests: it shares the first user's mailbox, but
/// Dovecot lets it log in only from [`PROXY_NET`] (the test SOCKS server's outgoing address,
/// passdb `allow_nets`): a login from anywhere else is refused.
pub const PROXIED_USER: &str = "via-proxy@pane.test";
/// Where [`PROXIED_USER`] may log in from.
pub const PROXY_NET: &str = "127.0.0.2/32";
/// A name only the test SOCKS server resolves, on the server's certificate too.
pub const PROXIED_HOST: &str = "imap.pane-test.invalid";

/// How long [`Dovecot::start`] and [`Dovecot::restart`] wait for a working server.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping server gets to exit after SIGTERM before it is SIGKILLed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many messages [`Dovecot::append_many`] sends in one MULTIAPPEND command.
const APPEND_BATCH: usize = 500;

/// A running (or stopped) Dovecot with one user whose INBOX starts empty.
pub struct Dovecot {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The server's directory (config, sockets, mail, logs); removed on drop.
    dir: tempfile::TempDir,
    /// The `dovecot -F` master process; `None` while stopped.
    child: Mutex<Option<Child>>,
    /// With TLS ([`Dovecot::start_tls`]): the implicit-TLS port and the test CA's certificate.
    pub tls: Option<TlsSetup>,
    /// Successful logins made by this harness itself (readiness probes, [`Dovecot::client`]).
    logins: AtomicUsize,
}

/// The TLS side of a [`Dovecot::start_tls`] server.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// The `imaps` port (implicit TLS); the plain port also offers STARTTLS.
    pub imaps_port: u16,
    /// The PEM certificate of the CA that issued the server's certificate (for `ca_file`).
    pub ca_file: PathBuf,
}

/// Why one attempt to launch Dovecot did not give a server.
enum LaunchError {
    /// Another process holds the port.
    AddrInUse,
}

impl Dovecot {
    /// Starts a new server with an empty INBOX on a free loopback port.
    pub fn start() -> Dovecot {
        Dovecot::start_with(false)
    }

    /// The same, with TLS: a certificate for `127.0.0.1` and `localhost` issued by a CA made
    /// for this server (with the `openssl` command), `imaps` on a second free port, and
    /// STARTTLS on the plain one (where plain-text LOGIN stays allowed, for the test client).
    pub fn start_tls() -> Dovecot {
        Dovecot::start_with(true)
    }

    fn start_with(tls: bool) -> Dovecot {
        check_version();
        let dir = tempfile::Builder::new()
            .prefix("dovecot-")
            .tempdir()
            .expect("create the Dovecot temp dir");
        let mut server = Dovecot {
            host: "127.0.0.1".to_string(),
            port: 0,
            user: "monitor@pane.test".to_string(),
            password: "pane-imap-secret".to_string(),
            dir,
            child: Mutex::new(None),
            tls: None,
            logins: AtomicUsize::new(0),
        };
        server.prepare_dirs();
        if tls {
            server.tls = Some(TlsSetup {
                imaps_port: 0,
                ca_file: make_certificates(server.dir.path()),
            });
        }
        // A port picked by binding :0 can be taken by someone else before Dovecot binds it.
        for _ in 0..10 {
            server.port = free_port();
            if let Some(tls) = server.tls.as_mut() {
                tls.imaps_port = free_port();
            }
            match server.launch() {
                Ok(child) => {
                    *server.lock_child() = Some(child);
                    // The INBOX exists from the start (Maildir creates it on first access).
                    server.status();
                    return server;
                }
                Err(LaunchError::AddrInUse) => continue,
            }
        }
        panic!("Dovecot: no free port after 10 tries\n{}", server.logs());
    }

    /// Stops the server cleanly (SIGTERM; SIGKILL after [`STOP_TIMEOUT`]) and waits until its
    /// port refuses connections. The mail is kept for [`Dovecot::restart`].
    pub fn stop(&mut self) {
        self.shutdown();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while port_accepts(&self.host, self.port) {
            assert!(
                Instant::now() < deadline,
                "Dovecot: port {} still accepts connections after stop\n{}",
                self.port,
                self.logs()
            );
            // The poll interval of this bounded wait for the port to close.
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again on the same port with the same mail (stopping it first if it
    /// is running).
    pub fn restart(&mut self) {
        self.relaunch();
    }

    /// `config` (a pane.toml) with `[breach.imap]` pointed at this server: plain IMAP on
    /// loopback.
    pub fn configure(&self, config: &str) -> String {
        self.configure_as(config, "none", self.port)
    }

    /// `config` with `[breach.imap]` pointed at this server over `tls` (`"tls"` on the imaps
    /// port, `"starttls"` or `"none"` on the plain one), trusting the server's test CA.
    pub fn configure_tls(&self, config: &str, tls: &str) -> String {
        let setup = self.tls.as_ref().expect("a server started with start_tls");
        let port = if tls == "tls" {
            setup.imaps_port
        } else {
            self.port
        };
        self.configure_as(config, tls, port).replace(
            "ca_file = \"\"",
            &format!("ca_file = \"{}\"", setup.ca_file.display()),
        )
    }

    fn configure_as(&self, config: &str, tls: &str, port: u16) -> String {
        config
            .replace("host = \"\"", &format!("host = \"{}\"", self.host))
            .replace("port = 993", &format!("port = {port}"))
            .replace("tls = \"tls\"", &format!("tls = \"{tls}\""))
            .replace("user = \"\"", &format!("user = \"{}\"", self.user))
    }

    /// Appends one RFC 5322 message (line endings normalised to CRLF) to INBOX.
    pub fn append(&self, raw_message: &str) {
        self.append_many(&[raw_message.to_string()]);
    }

    /// Appends many messages to INBOX over one connection, in order (MULTIAPPEND batches of
    /// [`APPEND_BATCH`] with non-synchronising literals: no round trip per message).
    pub fn append_many(&self, messages: &[String]) {
        let mut client = self.client();
        for batch in messages.chunks(APPEND_BATCH) {
            let batch: Vec<String> = batch.iter().map(|m| crlf(m)).collect();
            client
                .append("INBOX", &batch)
                .unwrap_or_else(|e| panic!("Dovecot APPEND failed: {e}\n{}", self.logs()));
        }
        client.logout();
    }

    /// Makes the server assign INBOX a new UIDVALIDITY: stops it, deletes the Maildir's
    /// `dovecot-uidlist` and index files (the messages stay, and get new UIDs from 1), and
    /// starts it again on the same port. Panics if the UIDVALIDITY did not change. The server
    /// must be running.
    pub fn reset_uidvalidity(&self) {
        let before = self.uidvalidity();
        self.shutdown();
        let maildir = self.maildir();
        for entry in fs::read_dir(&maildir).expect("read the Maildir") {
            let entry = entry.expect("read a Maildir entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            // `dovecot-uidvalidity*` (the mailbox list's UIDVALIDITY counter) is kept, so the
            // next value is a fresh one rather than one derived from the clock.
            if name == "dovecot-uidlist"
                || name.starts_with("dovecot.index")
                || name.starts_with("dovecot.list.index")
            {
                fs::remove_file(entry.path()).expect("remove a Dovecot index file");
            }
        }
        self.relaunch();
        let after = self.uidvalidity();
        assert_ne!(
            before,
            after,
            "Dovecot kept UIDVALIDITY {before} after the reset\n{}",
            self.logs()
        );
    }

    /// INBOX's UIDVALIDITY (STATUS INBOX (UIDVALIDITY)).
    pub fn uidvalidity(&self) -> u32 {
        self.status().uidvalidity
    }

    /// The number of messages in INBOX (STATUS INBOX (MESSAGES)).
    pub fn message_count(&self) -> u32 {
        self.status().messages
    }

    /// INBOX's STATUS: MESSAGES, UIDVALIDITY and UIDNEXT in one round trip.
    pub fn status(&self) -> InboxStatus {
        let mut client = self.client();
        let status = client
            .status("INBOX")
            .unwrap_or_else(|e| panic!("Dovecot STATUS failed: {e}\n{}", self.logs()));
        client.logout();
        status
    }

    /// A new connection, logged in as the test user.
    pub fn client(&self) -> ImapClient {
        let mut client = ImapClient::connect(&self.host, self.port, Duration::from_secs(5))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to Dovecot on {}:{}: {e}\n{}",
                    self.host,
                    self.port,
                    self.logs()
                )
            });
        client
            .login(&self.user, &self.password)
            .unwrap_or_else(|e| panic!("Dovecot LOGIN failed: {e}\n{}", self.logs()));
        self.logins.fetch_add(1, Ordering::SeqCst);
        client
    }

    /// How many logins this harness has made itself (readiness probes and [`Dovecot::client`],
    /// so every helper here that talks to the server): each is a `Login:` line in Dovecot's
    /// log, written a moment after the login. Logins by anyone else come on top.
    pub fn harness_logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }

    /// How many IMAP sessions of this server are in IDLE now, from their process titles
    /// (`verbose_proctitle`: `dovecot/imap [user ip IDLE]`); the server's processes are the
    /// ones in the master's process group.
    pub fn idling(&self) -> usize {
        let Some(group) = self.lock_child().as_ref().map(|c| c.id().to_string()) else {
            return 0;
        };
        let Ok(entries) = fs::read_dir("/proc") else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| {
                // /proc/<pid>/stat: `pid (comm) state ppid pgrp ...`; comm may hold spaces.
                let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
                after_comm.split_whitespace().nth(2) == Some(group.as_str())
            })
            .filter(|e| {
                let title = fs::read(e.path().join("cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&title).contains(" IDLE]")
            })
            .count()
    }

    /// `host:port`, for configs.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The user's Maildir (its root is INBOX).
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join(&self.user)
    }

    /// Whether the server process is running (not stopped).
    pub fn is_running(&self) -> bool {
        self.lock_child().is_some()
    }

    /// Dovecot's log and the child's stderr, for panic messages.
    pub fn logs(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- dovecot.log ---\n{}--- dovecot stderr ---\n{}",
            read("dovecot.log"),
            read("dovecot.stderr")
        )
    }

    // --- internals ---------------------------------------------------------------------------

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the directory layout and the passdb file (the config is written per launch).
    fn prepare_dirs(&self) {
        let root = self.dir.path();
        let run_as = RunAs::get();
        for sub in ["run", "state", "mail", "home"] {
            fs::create_dir(root.join(sub)).expect("create a Dovecot dir");
        }
        let users = root.join("users");
        fs::write(
            &users,
            format!(
                "{}:{{PLAIN}}{}\n{PROXIED_USER}:{{PLAIN}}{}::::::allow_nets={PROXY_NET}\n",
                self.user, self.password, self.password
            ),
        )
        .expect("write the passwd-file");
        if run_as.as_root {
            // Dovecot's services run as `nobody`: let them reach their files.
            set_mode(root, 0o711);
            set_mode(&users, 0o644);
            for sub in ["mail", "home"] {
                std::os::unix::fs::chown(root.join(sub), Some(run_as.uid), Some(run_as.gid))
                    .expect("chown a Dovecot dir");
            }
        }
    }

    fn write_config(&self) {
        let root = self.dir.path();
        let d = root.display();
        let run_as = RunAs::get();
        let config = format!(
            r#"# Written by tests/common/dovecot.rs for Dovecot 2.3; see that file.
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = pane-test
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log

{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
# A failed login is answered without the 2 s delay (within ~0.5 s).
auth_failure_delay = 0

default_internal_user = {name}
default_internal_group = {group}
default_login_user = {name}
first_valid_uid = 1
first_valid_gid = 0

# Every user reads the one test mailbox (PROXIED_USER is the same mailbox from elsewhere).
mail_location = maildir:{d}/mail/{user}
mail_fsync = never
# Process titles name each session's command: `Dovecot::idling` reads IDLE from them.
verbose_proctitle = yes
# IDLE is driven by inotify; this is the fallback poll.
mailbox_idle_check_interval = 1 secs

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}

service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
  # Without this socket auth keeps no per-IP penalty: after a failed login every later
  # login from 127.0.0.1 would wait 2-15 s (login_trusted_networks does not lift it in 2.3).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"#,
            name = run_as.name,
            user = self.user,
            group = run_as.group,
            uid = run_as.uid,
            gid = run_as.gid,
            port = self.port,
            ssl = match &self.tls {
                Some(_) => format!(
                    "ssl = yes\nssl_cert = <{d}/server.pem\nssl_key = <{d}/server.key\nssl_min_protocol = TLSv1.2"
                ),
                None => "ssl = no".to_string(),
            },
            imaps_port = self.tls.as_ref().map_or(0, |t| t.imaps_port),
        );
        fs::write(root.join("dovecot.conf"), config).expect("write dovecot.conf");
    }

    /// Starts `dovecot -F` on `self.port` and waits until a LOGIN works.
    // Every path either returns the child or reaps it (`wait()` after `end_group`); the lint
    // cannot follow that.
    #[allow(clippy::zombie_processes)]
    fn launch(&self) -> Result<Child, LaunchError> {
        let root = self.dir.path();
        self.write_config();
        let log = root.join("dovecot.log");
        let err = root.join("dovecot.stderr");
        let (log_len, err_len) = (file_len(&log), file_len(&err));
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&err)
            .expect("open dovecot.stderr");
        let mut child = Command::new(dovecot_bin())
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            // Its own process group, so that stopping it also ends every Dovecot service.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("clone the stderr file"))
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e} (apt-get install dovecot-imapd)",
                    dovecot_bin()
                )
            });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if has_exited(&child) {
                end_group(&child, false);
                let status = child.wait();
                let new_output = read_from(&log, log_len) + &read_from(&err, err_len);
                if new_output.contains("Address already in use") {
                    return Err(LaunchError::AddrInUse);
                }
                panic!(
                    "Dovecot exited during startup on port {} ({status:?})\n{}",
                    self.port,
                    self.logs()
                );
            }
            if self.probe().is_ok() {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                end_group(&child, false);
                let _ = child.wait();
                panic!(
                    "Dovecot did not accept an IMAP login on {}:{} within {:?}\n{}",
                    self.host,
                    self.port,
                    START_TIMEOUT,
                    self.logs()
                );
            }
            // The poll interval of this bounded wait for a working server.
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Connect, read the `* OK` greeting, LOGIN, LOGOUT.
    fn probe(&self) -> io::Result<()> {
        let mut client = ImapClient::connect(&self.host, self.port, Duration::from_secs(2))?;
        client.login(&self.user, &self.password)?;
        self.logins.fetch_add(1, Ordering::SeqCst);
        client.logout();
        Ok(())
    }

    /// Stops the server if running, cleanly (the master's SIGTERM shutdown takes about a
    /// second); does not wait for the port to close.
    fn shutdown(&self) {
        if let Some(mut child) = self.lock_child().take() {
            end_group(&child, true);
            let _ = child.wait();
        }
    }

    /// Stops the server if running, then starts it on the same port.
    fn relaunch(&self) {
        self.shutdown();
        // Leftover processes of the old server may hold the port for a moment.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.launch() {
                Ok(child) => {
                    *self.lock_child() = Some(child);
                    return;
                }
                Err(LaunchError::AddrInUse) if Instant::now() < deadline => {
                    // The pause between tries of this bounded retry.
                    thread::sleep(Duration::from_millis(100));
                }
                Err(LaunchError::AddrInUse) => panic!(
                    "Dovecot: port {} stayed in use, cannot restart\n{}",
                    self.port,
                    self.logs()
                ),
            }
        }
    }
}

impl Drop for Dovecot {
    /// Kills the whole server at once (SIGKILL): nothing is kept, so no clean shutdown.
    fn drop(&mut self) {
        if let Some(mut child) = self.lock_child().take() {
            end_group(&child, false);
            let _ = child.wait();
        }
    }
}

/// The answer to STATUS INBOX (MESSAGES UIDVALIDITY UIDNEXT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxStatus {
    pub messages: u32,
    pub uidvalidity: u32,
    pub uidnext: u32,
}

/// Builds a message: headers given as (name, value) pairs in order, then a short body.
/// Lines end in CRLF.
pub fn message(headers: &[(&str, &str)], body: &str) -> String {
    let mut out = String::new();
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&crlf(body));
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

/// `text` with every line ending (LF or CRLF) made CRLF.
pub fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

// --- the IMAP client ---------------------------------------------------------------------------

/// A minimal synchronous IMAP client: one command at a time, tagged `t1`, `t2`, ...
/// Response lines are returned with their literals inlined (`{n}\r\n` + n bytes).
pub struct ImapClient {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    next_tag: u32,
    /// The server greeting (the last `* OK` line before the first command).
    pub greeting: String,
}

impl ImapClient {
    /// Connects and reads the greeting. Dovecot may first send `* OK Waiting for
    /// authentication process to respond..` and the real greeting once auth is up.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<ImapClient> {
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other("no address"))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        let mut client = ImapClient {
            reader: BufReader::new(stream.try_clone()?),
            writer: BufWriter::with_capacity(256 * 1024, stream),
            next_tag: 1,
            greeting: String::new(),
        };
        loop {
            let line = client.read_line()?;
            if !line.starts_with("* OK") {
                return Err(io::Error::other(format!("bad IMAP greeting: {line}")));
            }
            let waiting = line.contains("Waiting for authentication");
            client.greeting = line;
            if !waiting {
                break;
            }
        }
        // Later commands may take longer than the connect timeout (big APPENDs, IDLE).
        client.set_timeout(Duration::from_secs(60))?;
        Ok(client)
    }

    /// Sets the read timeout for the following responses.
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(Some(timeout))
    }

    pub fn login(&mut self, user: &str, password: &str) -> io::Result<()> {
        self.command(&format!("LOGIN {} {}", quote(user), quote(password)))
            .map(|_| ())
    }

    /// Sends `<tag> <cmd>` and returns the untagged lines of the response; `Err` on NO/BAD.
    pub fn command(&mut self, cmd: &str) -> io::Result<Vec<String>> {
        let tag = self.send(cmd)?;
        self.read_response(&tag)
    }

    /// Sends `<tag> <cmd>` without reading the response; returns the tag.
    pub fn send(&mut self, cmd: &str) -> io::Result<String> {
        let tag = self.tag();
        write!(self.writer, "{tag} {cmd}\r\n")?;
        self.writer.flush()?;
        Ok(tag)
    }

    /// Writes a raw line (CRLF added), e.g. `DONE` to end IDLE.
    pub fn send_raw_line(&mut self, line: &str) -> io::Result<()> {
        write!(self.writer, "{line}\r\n")?;
        self.writer.flush()
    }

    /// Reads lines up to the tagged completion for `tag`; returns the untagged ones.
    pub fn read_response(&mut self, tag: &str) -> io::Result<Vec<String>> {
        let mut untagged = Vec::new();
        loop {
            let line = self.read_line()?;
            if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                return if rest.starts_with("OK") {
                    Ok(untagged)
                } else {
                    Err(io::Error::other(format!("{tag} {rest}")))
                };
            }
            if line == "+" || line.starts_with("+ ") {
                // e.g. IDLE: use send() and read_line() for commands that continue.
                return Err(io::Error::other(format!(
                    "unexpected continuation request for {tag}: {line}"
                )));
            }
            untagged.push(line);
        }
    }

    /// APPENDs `messages` (used as given) to `mailbox` in one MULTIAPPEND command with
    /// LITERAL+ literals, so the whole batch goes out without waiting for the server.
    pub fn append(&mut self, mailbox: &str, messages: &[String]) -> io::Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let tag = self.tag();
        write!(self.writer, "{tag} APPEND {}", quote(mailbox))?;
        for msg in messages {
            write!(self.writer, " {{{}+}}\r\n", msg.len())?;
            self.writer.write_all(msg.as_bytes())?;
        }
        self.writer.write_all(b"\r\n")?;
        self.writer.flush()?;
        self.read_response(&tag).map(|_| ())
    }

    /// STATUS `mailbox` (MESSAGES UIDVALIDITY UIDNEXT).
    pub fn status(&mut self, mailbox: &str) -> io::Result<InboxStatus> {
        let lines = self.command(&format!(
            "STATUS {} (MESSAGES UIDVALIDITY UIDNEXT)",
            quote(mailbox)
        ))?;
        let line = lines
            .iter()
            .find(|l| l.starts_with("* STATUS "))
            .ok_or_else(|| io::Error::other(format!("no STATUS in {lines:?}")))?;
        let items = line
            .rsplit_once('(')
            .map(|(_, items)| items.trim_end_matches(')'))
            .ok_or_else(|| io::Error::other(format!("bad STATUS line {line}")))?;
        let words: Vec<&str> = items.split_whitespace().collect();
        let get = |name: &str| -> io::Result<u32> {
            words
                .chunks(2)
                .find(|pair| pair[0].eq_ignore_ascii_case(name))
                .and_then(|pair| pair.get(1)?.parse().ok())
                .ok_or_else(|| io::Error::other(format!("no {name} in {line}")))
        };
        Ok(InboxStatus {
            messages: get("MESSAGES")?,
            uidvalidity: get("UIDVALIDITY")?,
            uidnext: get("UIDNEXT")?,
        })
    }

    /// LOGOUT and close; errors are ignored (the server may already be gone).
    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
        let _ = self.writer.get_ref().shutdown(Shutdown::Both);
    }

    /// Reads one response line without its CRLF, with any literals inlined.
    pub fn read_line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        loop {
            let start = buf.len();
            if self.reader.read_until(b'\n', &mut buf)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "IMAP server closed the connection",
                ));
            }
            match literal_len(&buf[start..]) {
                Some(n) => {
                    let from = buf.len();
                    buf.resize(from + n, 0);
                    self.reader.read_exact(&mut buf[from..])?;
                }
                None => break,
            }
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn tag(&mut self) -> String {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        tag
    }
}

/// The length of the literal `{n}` (or `{n+}`) a response line ends with, if any.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = std::str::from_utf8(line).ok()?;
    let inner = line.trim_end_matches(['\r', '\n']).strip_suffix('}')?;
    let (_, n) = inner.rsplit_once('{')?;
    n.trim_end_matches('+').parse().ok()
}

/// An IMAP quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

// --- processes, users, ports ---------------------------------------------------------------

/// Who Dovecot's services run as (see the module docs).
struct RunAs {
    as_root: bool,
    name: String,
    group: String,
    uid: u32,
    gid: u32,
}

impl RunAs {
    fn get() -> &'static RunAs {
        static RUN_AS: OnceLock<RunAs> = OnceLock::new();
        RUN_AS.get_or_init(|| {
            // SAFETY: getuid has no preconditions.
            let as_root = unsafe { libc::getuid() } == 0;
            let (name, uid, gid) = if as_root {
                user_by_name("nobody").expect("no user `nobody` to run Dovecot's services as")
            } else {
                // SAFETY: getuid has no preconditions.
                user_by_uid(unsafe { libc::getuid() }).expect("the current user has no name")
            };
            let group = group_name(gid).unwrap_or_else(|| panic!("gid {gid} has no name"));
            RunAs {
                as_root,
                name,
                group,
                uid,
                gid,
            }
        })
    }
}

fn user_by_name(name: &str) -> Option<(String, u32, u32)> {
    let cname = std::ffi::CString::new(name).ok()?;
    passwd_entry(|pwd, buf, len, result| {
        // SAFETY: all pointers are valid for the call; buf has len bytes.
        unsafe { libc::getpwnam_r(cname.as_ptr(), pwd, buf, len, result) }
    })
}

fn user_by_uid(uid: u32) -> Option<(String, u32, u32)> {
    passwd_entry(|pwd, buf, len, result| {
        // SAFETY: all pointers are valid for the call; buf has len bytes.
        unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) }
    })
}

/// Runs a `getpw*_r` lookup; returns (name, uid, gid).
fn passwd_entry(
    lookup: impl Fn(
        *mut libc::passwd,
        *mut libc::c_char,
        libc::size_t,
        *mut *mut libc::passwd,
    ) -> libc::c_int,
) -> Option<(String, u32, u32)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value to be overwritten.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = lookup(&mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points at a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some((name.to_string_lossy().into_owned(), pwd.pw_uid, pwd.pw_gid))
}

fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero group is a valid value to be overwritten.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf has buf.len() bytes.
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points at a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(grp.gr_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The `dovecot` binary: `/usr/sbin/dovecot` (not on a non-root PATH), else from PATH.
fn dovecot_bin() -> &'static str {
    if Path::new("/usr/sbin/dovecot").exists() {
        "/usr/sbin/dovecot"
    } else {
        "dovecot"
    }
}

/// Panics unless the installed Dovecot is 2.3.x, the version the config is written for.
fn check_version() {
    static VERSION: OnceLock<String> = OnceLock::new();
    let version = VERSION.get_or_init(|| {
        let out = Command::new(dovecot_bin())
            .arg("--version")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{} --version`: {e}; install the Debian package dovecot-imapd",
                    dovecot_bin()
                )
            });
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    assert!(
        version.starts_with("2.3."),
        "tests/common/dovecot.rs writes a Dovecot 2.3 config, but `dovecot --version` says {version:?}"
    );
}

/// Ends a Dovecot started in its own process group: with `graceful`, SIGTERM to the master
/// and up to [`STOP_TIMEOUT`] for it to exit; then SIGKILL to whatever is left of the group.
/// The caller then reaps the master with `wait()`; until then its pid (the group id) cannot
/// be reused, so the group signalled is surely ours.
fn end_group(child: &Child, graceful: bool) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    if graceful {
        // SAFETY: kill has no memory-safety preconditions; pid is our unreaped child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !has_exited(child) && Instant::now() < deadline {
            // The poll interval of this bounded wait for the exit.
            thread::sleep(Duration::from_millis(20));
        }
    }
    // SAFETY: as above; -pid is the process group the master leads.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

/// Whether our child has exited, without reaping it (waitid with WNOWAIT).
fn has_exited(child: &Child) -> bool {
    let pid = libc::id_t::from(child.id());
    // SAFETY: an all-zero siginfo_t is valid; waitid only writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: info is a valid siginfo_t for waitid to fill.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: waitid succeeded, so info holds a SIGCHLD siginfo (si_pid 0 if still running).
    rc != 0 || unsafe { info.si_pid() } != 0
}

/// A port that was free a moment ago.
/// Makes, in `dir`, a CA (`ca.pem`) and a server certificate it issued (`server.pem`,
/// `server.key`) for `127.0.0.1` and `localhost`, valid for two days, with the `openssl`
/// command. Returns the CA certificate's path.
fn make_certificates(dir: &Path) -> PathBuf {
    let conf = dir.join("openssl.cnf");
    fs::write(
        &conf,
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = pane test\n\
         [ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n\
         [server]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost, DNS:imap.pane-test.invalid\n\
         authorityKeyIdentifier = keyid\n",
    )
    .expect("write openssl.cnf");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl: {e} (apt-get install openssl)"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-config",
        "openssl.cnf",
        "-extensions",
        "ca",
    ];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=pane test CA",
    ]);
    run(&ca);
    let mut csr = vec!["req", "-new", "-config", "openssl.cnf"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "openssl.cnf",
        "-extensions",
        "server",
        "-out",
        "server.pem",
    ]);
    dir.join("ca.pem")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn port_accepts(host: &str, port: u16) -> bool {
    let Some(addr) = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return false;
    };
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The text of `path` from byte `offset` on ("" if unreadable).
fn read_from(path: &Path, offset: u64) -> String {
    let text = fs::read(path).unwrap_or_default();
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    String::from_utf8_lossy(text.get(offset..).unwrap_or_default()).into_owned()
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod a Dovecot path");
}

/// A mail as addy.io forwards it to the mailbox: from addy.io, to `alias`, with the original
/// sender in `X-AnonAddy-Original-Sender`.
pub fn addy_mail(alias: &str, sender: &str, subject: &str) -> String {
    message(
        &[
            ("From", "\"Forwarded\" <noreply@anonaddy.me>"),
            ("To", alias),
            ("X-AnonAddy-Original-Sender", sender),
            ("Subject", subject),
            (
                "Message-ID",
                &format!("<{}.{}@test>", subject.replace(' ', "-"), sender),
            ),
        ],
        "body",
    )
}
