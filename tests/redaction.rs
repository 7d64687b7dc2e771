//! Known secrets never reach a reply, the audit log, the store or the daemon's log, in any of
//! the forms an attacker (or a chatty provider) can put them in: any length, upper case, split
//! by dashes or spaces or across the fields of one object, base64 and URL-encoded; and values
//! under fields whose names say they hold a secret are always redacted.

mod common;

use base64::Engine;
use common::providers::{self, Fault};
use common::{assert_error, Agent};
use serde_json::{json, Value};

/// An IMAP password of 7 characters, with characters URL encoding changes.
const IMAP_PASSWORD: &str = "p@s%w0r";
/// An addy.io key, as the provider-keys credential holds it.
const ADDY_KEY: &str = "8kd93hf7q2mzp01xv6yt4ncw5bl2as9e";

/// The forms of [`IMAP_PASSWORD`] the review used, by name.
fn imap_password_forms() -> Vec<(&'static str, String)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    vec![
        ("verbatim", IMAP_PASSWORD.to_string()),
        ("upper case", IMAP_PASSWORD.to_uppercase()),
        ("dashed", "p@s-%w0-r".to_string()),
        ("spaced", "p@s %w0 r".to_string()),
        ("mixed", "P@S %W-0R".to_string()),
        ("base64", b64.encode(IMAP_PASSWORD)),
        (
            "base64 of user:password",
            b64.encode(format!("owner:{IMAP_PASSWORD}")),
        ),
        (
            "base64url",
            b64url.encode(format!("imap {IMAP_PASSWORD} end")),
        ),
        ("url-encoded", "p%40s%25w0r".to_string()),
        ("url-encoded, lower-case hex", "p%40s%25w0r".to_lowercase()),
        (
            "url-encoded in a query",
            "user=owner&pass=p%40s%25w0r&x=1".to_string(),
        ),
    ]
}

/// Everything the agent wrote that someone could read: its audit log (through `audit`), the
/// store's files and the daemon's log.
fn everything_written(agent: &Agent) -> String {
    let mut all = serde_json::to_string(&agent.audit()).unwrap();
    all.push_str(&agent.logs());
    for entry in walk(&agent.dir.join("store")) {
        all.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    all
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The `envelope.accepted` audit entries' `args`, for the command `cmd`.
fn audited_args(agent: &Agent, cmd: &str) -> Vec<Value> {
    agent
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "envelope.accepted" && e["detail"]["cmd"] == cmd)
        .map(|e| e["detail"]["args"].clone())
        .collect()
}

#[test]
fn a_short_known_secret_in_any_form_reaches_no_reply_and_nothing_written() {
    let mut agent = Agent::init();
    agent
        .env
        .push(("PANE_IMAP_PASSWORD".into(), IMAP_PASSWORD.into()));
    agent.spawn();
    let forms = imap_password_forms();
    for (name, form) in &forms {
        // `status` quotes a context name it refuses; `note` is audited with the envelope.
        let reply = agent.send("status", json!({ "context": form }));
        assert_error(&reply, "invalid_args");
        let text = reply.to_string();
        assert!(!text.contains(form.as_str()), "{name}: {text}");
        assert!(text.contains("[redacted]"), "{name}: {text}");
        assert_error(
            &agent.send("frob", json!({ "note": form })),
            "unknown_command",
        );
    }
    // Split across the fields of one object.
    agent.send("frob", json!({"a": "p@s", "b": "%w0r"}));
    agent.send("frob", json!({"list": ["x", "p@s%", "w0r", "y"]}));
    let split = audited_args(&agent, "frob");
    assert!(
        split.contains(&json!({"a": "[redacted]", "b": "[redacted]"})),
        "{split:?}"
    );
    assert!(
        split.contains(&json!({"list": ["x", "[redacted]", "[redacted]", "y"]})),
        "{split:?}"
    );
    let written = everything_written(&agent);
    for (name, form) in &forms {
        assert!(
            !written.contains(form.as_str()),
            "{name} ({form}) was written"
        );
    }
    assert!(
        !written.contains("%w0r"),
        "a piece of the split secret was written"
    );
}

#[test]
fn fields_named_for_secrets_are_redacted_whatever_they_hold() {
    let mut agent = Agent::start();
    let fields = [
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "api-key",
        "x-api-key",
        "apiKey",
        "client_secret",
        "private_key",
        "privateKey",
        "passwd",
        "pwd",
        "pin",
        "otp",
        "cookie",
        "session_token",
        "credentials",
        "auth_token",
        "Secret-Key",
        "bearer",
    ];
    let args: serde_json::Map<String, Value> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.to_string(), json!(format!("v{i}x"))))
        .collect();
    assert_error(&agent.send("frob", Value::Object(args)), "unknown_command");
    let audited = audited_args(&agent, "frob");
    assert_eq!(audited.len(), 1, "{audited:?}");
    for (i, field) in fields.iter().enumerate() {
        assert_eq!(audited[0][field], "[redacted]", "{field}: {}", audited[0]);
        let value = format!("\"v{i}x\"");
        assert!(!everything_written(&agent).contains(&value), "{field}");
    }
    // Names that only look alike are kept: redaction does not swallow ordinary fields.
    agent.send(
        "frob",
        json!({"tokens_used": 3, "pinned": "yes", "keyboard": "qwerty"}),
    );
    let kept = audited_args(&agent, "frob");
    assert_eq!(
        kept[1],
        json!({"tokens_used": 3, "pinned": "yes", "keyboard": "qwerty"}),
        "{kept:?}"
    );
    agent.stop();
}

/// A provider error that quotes the key back (upper-cased, dashed, whole) reaches the reply
/// redacted, also when the key came from the `provider-keys` credential, as install.sh sets
/// the service up, rather than from the environment.
#[test]
fn a_provider_error_quoting_its_key_is_redacted_when_the_key_is_a_credential() {
    let addy = providers::addy(ADDY_KEY);
    let mut agent = Agent::init();
    let creds = agent.tmp.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(
        creds.join("provider-keys"),
        format!("# addy.io\nADDY_API_KEY={ADDY_KEY}\n"),
    )
    .unwrap();
    agent
        .env
        .push(("CREDENTIALS_DIRECTORY".into(), creds.display().to_string()));
    agent.env.push(("ADDY_BASE_URL".into(), addy.base.clone()));
    agent.spawn();
    let dashed: String = ADDY_KEY
        .as_bytes()
        .chunks(8)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("-");
    let quotes = [
        ADDY_KEY.to_string(),
        ADDY_KEY.to_uppercase(),
        dashed,
        ADDY_KEY[..16].to_string() + " " + &ADDY_KEY[16..],
    ];
    for (i, quoted) in quotes.iter().enumerate() {
        addy.push_fault(Fault::Status {
            status: 422,
            body: json!({"message": format!("The alias could not be made for key {quoted}.")}),
            retry_after: None,
        });
        let reply = agent.send(
            "enroll",
            json!({"url": format!("https://site{i}.example"), "alias": format!("site{i}")}),
        );
        let text = reply.to_string();
        assert!(reply["error"].is_string(), "{text}");
        assert!(
            text.contains("could not be made for key [redacted]"),
            "{text}"
        );
        assert!(!text.contains(quoted.as_str()), "{text}");
    }
    // A long message is cut to 200 characters by the client, here inside the key: what is
    // left of it (24 of its 32 characters, too short to look like a key) goes too.
    let long = format!("{} key {ADDY_KEY} was refused", "x".repeat(171));
    addy.push_fault(Fault::Status {
        status: 422,
        body: json!({ "message": long }),
        retry_after: None,
    });
    let reply = agent.send(
        "enroll",
        json!({"url": "https://cut.example", "alias": "cut"}),
    );
    let text = reply.to_string();
    assert!(text.contains(" key [redacted]"), "{text}");
    assert!(!text.contains(&ADDY_KEY[..8]), "{text}");
    let written = everything_written(&agent).to_lowercase();
    assert!(!written.contains(&ADDY_KEY[..16]), "the key was written");
    agent.stop();
}
