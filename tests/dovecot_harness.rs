//! Tests of the Dovecot test harness itself (`tests/common/dovecot.rs`): a real Dovecot IMAP
//! server per test, on loopback.

mod common;

use common::dovecot::{message, Dovecot, ImapClient};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn numbered(i: usize) -> String {
    message(
        &[
            ("From", "alerts@breach.example"),
            ("To", "monitor@pane.test"),
            ("Subject", &format!("breach {i}")),
            ("Message-ID", &format!("<breach-{i}@breach.example>")),
        ],
        &format!("Notice number {i}.\nSecond line."),
    )
}

#[test]
fn starts_empty_and_counts_appended_messages() {
    let server = Dovecot::start();
    assert_eq!(server.host, "127.0.0.1");
    assert_ne!(server.port, 0);
    assert_eq!(server.message_count(), 0);
    for i in 0..3 {
        server.append(&numbered(i));
    }
    assert_eq!(server.message_count(), 3);
    let status = server.status();
    assert_eq!(status.messages, 3);
    assert_eq!(status.uidnext, 4);
}

#[test]
fn uidvalidity_is_stable_across_restart() {
    let mut server = Dovecot::start();
    server.append(&numbered(1));
    let before = server.uidvalidity();
    let port = server.port;
    server.restart();
    assert_eq!(server.port, port);
    assert_eq!(server.uidvalidity(), before);
    assert_eq!(server.message_count(), 1);
}

#[test]
fn reset_uidvalidity_changes_it_and_keeps_the_messages() {
    let server = Dovecot::start();
    server.append_many(&(0..5).map(numbered).collect::<Vec<_>>());
    let before = server.status();
    assert_eq!(before.uidnext, 6);
    server.reset_uidvalidity();
    let after = server.status();
    assert_ne!(after.uidvalidity, before.uidvalidity);
    assert_eq!(after.messages, 5);
    // The messages were renumbered from 1 under the new UIDVALIDITY.
    assert_eq!(after.uidnext, 6);
    let mut client = server.client();
    client.command("SELECT INBOX").unwrap();
    let lines = client.command("UID FETCH 1:* (UID)").unwrap();
    let uids: Vec<&String> = lines.iter().filter(|l| l.contains("FETCH")).collect();
    assert_eq!(uids.len(), 5, "{lines:?}");
    assert!(uids[0].contains("UID 1)"), "{lines:?}");
    client.logout();
}

#[test]
fn stop_refuses_connections_and_restart_brings_the_mail_back() {
    let mut server = Dovecot::start();
    server.append(&numbered(1));
    server.append(&numbered(2));
    let uidvalidity = server.uidvalidity();
    server.stop();
    assert!(!server.is_running());
    let err = TcpStream::connect((server.host.as_str(), server.port)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    server.restart();
    assert!(server.is_running());
    assert_eq!(server.message_count(), 2);
    assert_eq!(server.uidvalidity(), uidvalidity);
}

#[test]
fn two_servers_run_in_parallel() {
    let a = Dovecot::start();
    let b = Dovecot::start();
    assert_ne!(a.port, b.port);
    a.append(&numbered(1));
    b.append(&numbered(1));
    b.append(&numbered(2));
    assert_eq!(a.message_count(), 1);
    assert_eq!(b.message_count(), 2);
}

#[test]
fn append_many_handles_thousands_of_messages() {
    let server = Dovecot::start();
    let messages: Vec<String> = (0..2_000).map(numbered).collect();
    let started = Instant::now();
    server.append_many(&messages);
    println!(
        "append_many: {} messages in {:?}",
        messages.len(),
        started.elapsed()
    );
    assert_eq!(server.message_count(), 2_000);
}

#[test]
fn raw_imap_fetches_headers_and_offers_idle() {
    let server = Dovecot::start();
    server.append(&message(
        &[
            ("From", "Leak Alerts <alerts@breach.example>"),
            ("To", "monitor@pane.test"),
            ("Subject", "Your data appeared in a breach"),
        ],
        "Details inside.",
    ));
    server.append(&message(
        &[("From", "second@breach.example"), ("To", "other@pane.test")],
        "LF-only body\nis sent as CRLF.\n",
    ));

    let mut imap = ImapClient::connect(&server.host, server.port, Duration::from_secs(5)).unwrap();
    assert!(imap.greeting.starts_with("* OK"), "{}", imap.greeting);
    let caps = imap.command("CAPABILITY").unwrap();
    let caps = caps.iter().find(|l| l.starts_with("* CAPABILITY")).unwrap();
    assert!(caps.split_whitespace().any(|c| c == "IDLE"), "{caps}");
    assert!(imap.login(&server.user, "wrong password").is_err());
    imap.login(&server.user, &server.password).unwrap();
    let selected = imap.command("SELECT INBOX").unwrap();
    assert!(selected.iter().any(|l| l == "* 2 EXISTS"), "{selected:?}");
    assert!(
        selected.iter().any(|l| l.contains("[UIDVALIDITY ")),
        "{selected:?}"
    );

    let lines = imap
        .command("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (FROM TO)])")
        .unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("* 1 FETCH (UID 1 "), "{lines:?}");
    assert!(
        lines[0].contains("From: Leak Alerts <alerts@breach.example>\r\nTo: monitor@pane.test\r\n"),
        "{lines:?}"
    );
    assert!(!lines[0].contains("Subject"), "{lines:?}");
    assert!(lines[1].starts_with("* 2 FETCH (UID 2 "), "{lines:?}");
    assert!(
        lines[1].contains("From: second@breach.example\r\nTo: other@pane.test\r\n"),
        "{lines:?}"
    );
    let body = imap.command("UID FETCH 2 (BODY.PEEK[TEXT])").unwrap();
    assert!(
        body[0].contains("LF-only body\r\nis sent as CRLF.\r\n"),
        "{body:?}"
    );
    imap.logout();
}

#[test]
fn idle_reports_a_new_message() {
    let server = Dovecot::start();
    server.append(&numbered(1));
    let mut imap = server.client();
    imap.command("SELECT INBOX").unwrap();
    let tag = imap.send("IDLE").unwrap();
    let cont = imap.read_line().unwrap();
    assert!(cont.starts_with('+'), "{cont}");

    server.append(&numbered(2));
    imap.set_timeout(Duration::from_secs(10)).unwrap();
    let started = Instant::now();
    loop {
        let line = imap.read_line().unwrap();
        if line == "* 2 EXISTS" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no EXISTS");
    }
    println!("IDLE saw the new message after {:?}", started.elapsed());
    imap.send_raw_line("DONE").unwrap();
    imap.read_response(&tag).unwrap();
    imap.logout();
}
