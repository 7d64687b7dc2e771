//! The relay on a sealed installation: the store key from the core, `seal`, the passphrase
//! kept out of logs and Debug, and nothing in clear in the gateway's own files.

use super::*;

struct Logs {
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> Logs {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        Logs {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

/// The ways `needle` could be written down: as it is, in hex (either case) and in base64
/// at each of the three alignments it can have inside a longer text.
fn spellings(needle: &str) -> Vec<String> {
    use base64::Engine;
    let bytes = needle.as_bytes();
    let mut out = vec![
        needle.to_string(),
        hex::encode(bytes),
        hex::encode_upper(bytes),
    ];
    for skip in 0..3 {
        let part = &bytes[skip..];
        let part = &part[..part.len() / 3 * 3];
        out.push(base64::engine::general_purpose::STANDARD_NO_PAD.encode(part));
        out.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(part));
    }
    out
}

/// A sealed installation: the gateway opens nothing and writes nothing before the core's
/// `store_key`; opens its store with exactly that key; on `seal` closes the device (and so
/// the store) and waits for the key again on a new connection, without exiting; and the
/// journal it left is read again with the key handed over next. Neither the passphrase nor
/// a body reaches the log.
#[tokio::test(flavor = "current_thread")]
async fn a_sealed_gateway_waits_for_the_key_and_forgets_it_on_seal() {
    let logs = Logs::capture();
    local(async {
        let key = "9f1c0d5e77a4b8e2c3f60a1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4";
        let body = "approve KQ7RM-XW2TD please";
        let mut h = Harness::new("sealed");
        h.start_sealed();
        let mut core = h.accept().await;
        assert!(core.quiet().await, "nothing is written before the key");
        assert!(h.seen.borrow().opened.is_empty(), "nothing is opened");
        core.say(&store_key(key)).await;
        h.until("opened with the key", |s| s.opened == [key] && s.live == 1)
            .await;
        h.device(DeviceEvent::Relay(received(1, body)));
        let first = core.line().await;
        assert_eq!(first, received(1, body));

        // The core seals: the device (and with it the store) is closed, the process goes on.
        core.say(&SEAL).await;
        h.until("the device closed", |s| s.live == 0).await;
        assert!(core.closed().await, "the sealed connection is given up");
        assert!(!h.relay.as_ref().unwrap().is_finished(), "it did not exit");
        let mut core = h.accept().await;
        assert!(core.quiet().await, "nothing written while sealed");
        assert_eq!(h.seen.borrow().opened.len(), 1, "not opened again yet");

        // Unsealed again: opened with the key, and the journal (sealed with a key derived
        // from it) is read again: the unacknowledged message comes again.
        core.say(&store_key(key)).await;
        h.until("opened again", |s| s.opened.len() == 2 && s.live == 1)
            .await;
        assert_eq!(core.line().await, first);
        core.ack(&first).await;
        h.stop().await;
    })
    .await;
    let logs = logs.text();
    assert!(
        logs.contains("waiting for the core to be unsealed"),
        "{logs}"
    );
    assert!(logs.contains("the core sealed"), "{logs}");
    for secret in ["9f1c0d5e77a4b8e2", "KQ7RM-XW2TD"] {
        assert!(!logs.contains(secret), "{secret} in the log:\n{logs}");
    }
}

/// `seal {}`, spelled once for the tests.
const SEAL: CoreCommand = CoreCommand::Seal {};

/// `seal` is obeyed while the relay is still trying to reach Signal (it reads the core's
/// lines while it waits to try again), and a connection after the first must begin with
/// the key too before anything is relayed on it.
#[tokio::test(flavor = "current_thread")]
async fn seal_is_heard_while_signal_is_out_of_reach_and_every_connection_needs_the_key() {
    local(async {
        let mut h = Harness::new("sealed-busy");
        h.seen.borrow_mut().unreachable = true;
        h.start_sealed();
        let mut core = h.accept().await;
        core.say(&store_key("k1")).await;
        h.until("opened", |s| s.live == 1).await;
        // Backing off from Signal: the seal still closes it at once.
        tokio::time::sleep(Duration::from_millis(300)).await;
        core.say(&SEAL).await;
        h.until("closed while reaching Signal", |s| s.live == 0)
            .await;

        h.seen.borrow_mut().unreachable = false;
        let mut core = h.accept().await;
        core.say(&store_key("k1")).await;
        h.until("opened again", |s| s.live == 1).await;
        h.device(DeviceEvent::Relay(received(3, "status")));
        let m = core.line().await;
        // The core goes away without sealing (killed): the store stays open, and the next
        // connection hears nothing until it has handed over the key.
        drop(core);
        let mut core = h.accept().await;
        assert!(core.quiet().await, "nothing before the key");
        assert_eq!(h.seen.borrow().live, 1, "still open");
        core.say(&store_key("k1")).await;
        assert_eq!(core.line().await, m, "then the journal, as ever");
        assert_eq!(h.seen.borrow().opened.len(), 2, "the same store");
        core.ack(&m).await;
        // Another key: the store is opened again with it (a real store then refuses it
        // unless it is its passphrase; the journal, empty here, would too).
        core.say(&store_key("k2")).await;
        h.until("opened with the new key", |s| {
            s.opened.last().map(String::as_str) == Some("k2") && s.live == 1
        })
        .await;
        h.stop().await;
    })
    .await
}

/// With a passphrase of its own (an unsealed installation), the core's `store_key` and
/// `seal` change nothing: the store stays open and messages go on.
#[tokio::test(flavor = "current_thread")]
async fn a_gateway_with_its_own_passphrase_ignores_store_key_and_seal() {
    local(async {
        let mut h = Harness::new("own-key");
        h.start();
        let mut core = h.accept().await;
        core.say(&store_key("the core's")).await;
        core.say(&SEAL).await;
        h.device(DeviceEvent::Relay(received(4, "list")));
        assert_eq!(core.line().await, received(4, "list"));
        let (opened, live) = {
            let seen = h.seen.borrow();
            (seen.opened.clone(), seen.live)
        };
        assert_eq!((opened, live), (vec![OWN.to_string()], 1));
        h.stop().await;
    })
    .await
}

/// Without a passphrase, a core that writes anything but `store_key` first is not sealed:
/// the gateway says so and stops, rather than wait for ever.
#[tokio::test(flavor = "current_thread")]
async fn a_core_that_is_not_sealed_is_named() {
    local(async {
        let mut h = Harness::new("not-sealed");
        h.start_sealed();
        let mut core = h.accept().await;
        core.say(&send("1", 10)).await;
        let relay = h.relay.take().unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), relay)
            .await
            .expect("it stops")
            .unwrap();
        assert!(
            matches!(result, Err(RelayError::NotSealed(_))),
            "{result:?}"
        );
        assert!(h.seen.borrow().opened.is_empty());
    })
    .await
}

/// `store_key`'s passphrase never shows in `Debug`, nor do the keys derived from it.
#[test]
fn the_passphrase_and_its_keys_never_print() {
    let secret = "hunter2-but-longer-0f9e";
    let cmd = store_key(secret);
    for shown in [
        format!("{cmd:?}"),
        format!("{cmd:#?}"),
        format!("{:?}", StateKeys::derive(secret)),
        format!("{:?}", StateKeys::derive(secret).journal),
    ] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}

/// Nothing of the owner's is in clear on the gateway's disk: a journal entry an earlier
/// version wrote in clear is sealed when the store opens (and still relayed), new entries
/// are sealed from the start, and the sent-id log keeps no plain digest. No body, and not
/// the owner's ACI, is in any file under the state directory, whether in clear, in hex or
/// in base64.
#[tokio::test(flavor = "current_thread")]
async fn the_journal_and_the_sent_log_keep_nothing_in_clear() {
    local(async {
        let old_body = "legacy entry: approve ZX9QP-LM3RT";
        let new_body = "fresh entry: card.fund 25 for notion";
        let mut h = Harness::new("sealed-journal");
        let inbox = h.dir.join("inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        let legacy = inbox.join("00000000000000000000.json");
        std::fs::write(&legacy, encode_line(&received(1, old_body)).unwrap()).unwrap();
        // An earlier version's sent-id log, with a plain digest.
        let plain = content_digest(OWNER, 10, "reply");
        std::fs::write(h.dir.join("sent-ids"), format!("5 {plain}\n")).unwrap();
        h.start_sealed();
        let mut core = h.accept().await;
        core.say(&store_key("journal key")).await;
        assert_eq!(
            core.line().await,
            received(1, old_body),
            "migrated, still relayed"
        );
        assert!(!legacy.exists(), "the entry in clear is gone");
        assert!(inbox.join("00000000000000000000.sealed").exists());
        h.device(DeviceEvent::Relay(received(2, new_body)));
        assert_eq!(core.line().await, received(2, new_body));
        h.device(DeviceEvent::QueueEmpty);
        core.say(&send("5", 10)).await;
        assert_eq!(
            core.line().await,
            sent("5", 10),
            "the earlier log still counts"
        );
        assert!(h.seen.borrow().sent.is_empty());
        core.say(&send("6", 11)).await;
        assert_eq!(core.line().await, sent("6", 11));

        let mut needles = vec![plain.clone(), content_digest(OWNER, 11, "reply")];
        for text in [old_body, new_body, OWNER] {
            needles.extend(spellings(text));
        }
        let files = h.files();
        assert!(files.len() >= 3, "{files:?}");
        for (path, bytes) in &files {
            if path.extension().is_some_and(|e| e == "sock") {
                continue;
            }
            let text = String::from_utf8_lossy(bytes);
            for needle in &needles {
                assert!(
                    !text.contains(needle.as_str()),
                    "{needle} in {}",
                    path.display()
                );
            }
        }
        h.stop().await;
    })
    .await
}
