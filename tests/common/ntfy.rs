//! A local ntfy-compatible server (https://docs.ntfy.sh/publish/): every POST to a topic is
//! a message, its body the text, `Title`, `Priority` and `Tags` in headers; it answers as
//! ntfy does (200 with the message as JSON), or 503 for the next requests a test asks to fail.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request the server got.
#[derive(Debug, Clone)]
pub struct Post {
    /// `POST /topic`.
    pub line: String,
    /// Its headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: String,
    /// The answer's status.
    pub status: u16,
    /// Where the connection came from (127.0.0.2: through the test SOCKS proxy).
    pub peer: std::net::IpAddr,
}

impl Post {
    /// The header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The server; it lives as long as the test process.
pub struct Ntfy {
    /// The topic's URL, for `[alerts] fallback_url`.
    pub url: String,
    /// The port it listens on (at 127.0.0.1).
    pub port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
    failing: Arc<AtomicUsize>,
}

impl Ntfy {
    /// Listens on a free loopback port; the topic is `pane-alerts`.
    pub fn start() -> Ntfy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/pane-alerts", listener.local_addr().unwrap());
        let port = listener.local_addr().unwrap().port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicUsize::new(0));
        let (p, f) = (posts.clone(), failing.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (p, f) = (p.clone(), f.clone());
                std::thread::spawn(move || serve(stream, &p, &f));
            }
        });
        Ntfy {
            url,
            port,
            posts,
            failing,
        }
    }

    /// Every request so far, answered or failed.
    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    /// The requests answered 200: the messages published.
    pub fn published(&self) -> Vec<Post> {
        self.posts()
            .into_iter()
            .filter(|p| p.status == 200)
            .collect()
    }

    /// Answers the next `n` requests with 503.
    pub fn fail_next(&self, n: usize) {
        self.failing.store(n, Ordering::SeqCst);
    }
}

fn serve(stream: TcpStream, posts: &Mutex<Vec<Post>>, failing: &AtomicUsize) {
    let peer = stream.peer_addr().unwrap().ip();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let fail = failing
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail { 503 } else { 200 };
    let body = String::from_utf8_lossy(&body).into_owned();
    let answer = if fail {
        r#"{"code":50301,"http":503,"error":"service unavailable"}"#.to_string()
    } else {
        serde_json::json!({"id": "abc123", "time": 1, "event": "message", "topic": "pane-alerts", "message": body}).to_string()
    };
    posts.lock().unwrap().push(Post {
        line: line.trim().to_string(),
        headers,
        body,
        status,
        peer,
    });
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        if fail { "Service Unavailable" } else { "OK" },
        answer.len()
    );
}
