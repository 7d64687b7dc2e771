//! Headless Chromium driven over the DevTools protocol through `--remote-debugging-pipe`
//! (commands on fd 3, replies and events on fd 4, each a JSON message ended by a NUL byte), so
//! no port and no WebSocket client are needed. One page, emulated as a phone (a 360 px wide
//! viewport, touch, dark mode); every request any of its targets (the page, its service
//! worker) makes is recorded from `Network.requestWillBeSent`.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long one protocol call, or one wait for the page, may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The phone: CSS pixels and density of a common 360 px wide Android phone.
pub const PHONE_WIDTH: u32 = 360;
pub const PHONE_HEIGHT: u32 = 780;

/// Fails (never skips) when Chromium is missing.
pub fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the signer page tests need headless Chromium. \
         Run scripts/test, which installs it, or `apt-get install -y chromium`."
    );
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A running headless Chromium with one attached page.
pub struct Browser {
    child: Child,
    to_browser: File,
    from_browser: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Sessions of the page's workers (auto-attached), for their network events.
    pub worker_sessions: Vec<String>,
    /// Every request URL any attached target was about to send, in order.
    pub requests: Vec<String>,
    /// Every event, for failures' messages.
    pub events: Vec<Value>,
    pub profile: PathBuf,
    stderr: PathBuf,
}

impl Browser {
    /// Starts Chromium on `profile` (kept between launches: that is the phone's storage) and
    /// opens a blank page emulated as a phone.
    pub fn launch(profile: &Path) -> Browser {
        require_chromium();
        let home = profile.with_extension("home");
        std::fs::create_dir_all(&home).unwrap();
        let stderr = home.join(format!("stderr-{}.txt", std::process::id()));
        let (cmd_read, cmd_write) = pipe();
        let (out_read, out_write) = pipe();
        let (cr, ow) = (cmd_read.as_raw_fd(), out_write.as_raw_fd());
        let mut command = Command::new(CHROMIUM);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--disable-features=Translate,MediaRouter,OptimizationHints",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            // Its own process group, so the browser and all its helpers can be killed.
            .process_group(0);
        unsafe {
            command.pre_exec(move || {
                // Copies above any fd 3/4 first, so the dup2s cannot close each other's source.
                let a = libc::fcntl(cr, libc::F_DUPFD, 100);
                let b = libc::fcntl(ow, libc::F_DUPFD, 100);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        drop(cmd_read);
        drop(out_write);
        let (tx, rx) = mpsc::channel();
        let mut reader = File::from(out_read);
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buf = [0u8; 65536];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.iter().position(|b| *b == 0) {
                    let message: Vec<u8> = pending.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&message[..end]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            to_browser: File::from(cmd_write),
            from_browser: rx,
            next_id: 0,
            session: String::new(),
            worker_sessions: Vec::new(),
            requests: Vec::new(),
            events: Vec::new(),
            profile: profile.to_path_buf(),
            stderr,
        };
        let target = browser.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().unwrap().to_string();
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        for (method, params) in [
            ("Page.enable", json!({})),
            ("Runtime.enable", json!({})),
            ("Network.enable", json!({})),
            (
                "Target.setAutoAttach",
                json!({"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true}),
            ),
            (
                "Emulation.setDeviceMetricsOverride",
                json!({"width": PHONE_WIDTH, "height": PHONE_HEIGHT, "deviceScaleFactor": 2,
                       "mobile": true, "screenOrientation": {"type": "portraitPrimary", "angle": 0}}),
            ),
            (
                "Emulation.setTouchEmulationEnabled",
                json!({"enabled": true, "maxTouchPoints": 5}),
            ),
            (
                "Emulation.setEmulatedMedia",
                json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
            ),
        ] {
            browser.page(method, params);
        }
        // Service workers are targets of the browser, not of the page: attach to every new
        // target from the start (paused until its requests are watched).
        browser.call(
            None,
            "Target.setAutoAttach",
            json!({"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true}),
        );
        browser
    }

    /// Sends one protocol command and waits for its answer; events that arrive meanwhile are
    /// recorded. Panics with the error for a command the browser refuses.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params) {
            Ok(v) => v,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    pub fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.send(session, method, params);
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.from_browser.recv_timeout(left) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no answer in {CALL_TIMEOUT:?}; {}",
                        self.stderr_tail()
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("the browser went away; {}", self.stderr_tail()))
                }
            };
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(error.to_string());
                }
                return Ok(message["result"].clone());
            }
            if message.get("method").is_some() {
                self.event(message);
            }
        }
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{method}: cannot write to the browser: {e}"));
        self.next_id
    }

    fn event(&mut self, message: Value) {
        match message["method"].as_str().unwrap_or_default() {
            "Network.requestWillBeSent" => {
                let session = message["sessionId"].as_str().unwrap_or_default();
                let ours =
                    session == self.session || self.worker_sessions.iter().any(|s| s == session);
                if let (true, Some(url)) = (ours, message["params"]["request"]["url"].as_str()) {
                    self.requests.push(url.to_string());
                }
            }
            "Target.attachedToTarget" => {
                // Workers (the page's service worker among them) have their requests watched;
                // the browser's own targets (its WebUI) are let run and left alone.
                let params = &message["params"];
                let session = params["sessionId"].as_str().unwrap_or_default().to_string();
                let kind = params["targetInfo"]["type"].as_str().unwrap_or_default();
                if matches!(kind, "service_worker" | "worker" | "shared_worker") {
                    self.send(Some(&session), "Network.enable", json!({}));
                    self.worker_sessions.push(session.clone());
                }
                self.send(Some(&session), "Runtime.runIfWaitingForDebugger", json!({}));
            }
            _ => {}
        }
        self.events.push(message);
    }

    /// A command to the page.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value; panics
    /// with the exception for a script that throws.
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true,
                   "userGesture": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page (no timing is asserted: the deadline is
    /// only there so a broken page fails instead of hanging).
    pub fn wait_for(&mut self, expression: &str) {
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let r = self.page(
                "Runtime.evaluate",
                json!({"expression": format!("!!({expression})"), "returnByValue": true}),
            );
            if r["result"]["value"] == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let status = self.text("#status");
                panic!("the page never got to {expression}; status {status:?}");
            }
            // The poll interval of this bounded wait.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens `url` and waits until the new page has settled into a state.
    pub fn open(&mut self, url: &str) {
        self.eval("window.__previousPage = true");
        self.page("Page.navigate", json!({"url": url}));
        self.wait_for_new_page();
    }

    /// Reloads, as the owner pulling down on the page does.
    pub fn reload(&mut self) {
        self.eval("window.__previousPage = true");
        self.page("Page.reload", json!({"ignoreCache": false}));
        self.wait_for_new_page();
    }

    /// The old document is gone (it carried the marker) and the new one has a state.
    fn wait_for_new_page(&mut self) {
        self.wait_for(
            "!window.__previousPage && document.readyState === 'complete' && document.body \
             && ['setup', 'locked', 'unlocked'].includes(document.body.dataset.state)",
        );
    }

    /// The page's `data-state` (setup, locked, unlocked).
    pub fn state(&mut self) -> String {
        self.eval("document.body.dataset.state")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "(function(){{var e=document.querySelector({}); return e ? (e.value !== undefined && e.tagName !== 'BUTTON' ? e.value : e.textContent) : ''}})()",
            json!(selector)
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub fn visible(&mut self, selector: &str) -> bool {
        self.eval(&format!(
            "(function(){{var e=document.querySelector({}); return !!e && e.getClientRects().length > 0}})()",
            json!(selector)
        )) == json!(true)
    }

    /// A finger tap on the element: scrolled into view, then a touch start and end at its
    /// centre; returns once the browser has turned that into the click the page listens for
    /// (and the page's click handlers have run).
    pub fn tap(&mut self, selector: &str) {
        let rect = self.eval(&format!(
            "(function(){{var e=document.querySelector({s}); if(!e) return null; e.scrollIntoView({{block:'center'}}); var r=e.getBoundingClientRect(); if (!(r.width > 0)) return null; window.__tapped = false; e.addEventListener('click', function () {{ window.__tapped = true; }}, {{once: true}}); return [r.x + r.width/2, r.y + r.height/2]}})()",
            s = json!(selector)
        ));
        let (x, y) = match (rect[0].as_f64(), rect[1].as_f64()) {
            (Some(x), Some(y)) => (x, y),
            _ => panic!("nothing visible to tap at {selector}"),
        };
        let point = json!([{"x": x, "y": y, "radiusX": 4, "radiusY": 4, "force": 1, "id": 1}]);
        self.page(
            "Input.dispatchTouchEvent",
            json!({"type": "touchStart", "touchPoints": point}),
        );
        self.page(
            "Input.dispatchTouchEvent",
            json!({"type": "touchEnd", "touchPoints": []}),
        );
        self.wait_for("window.__tapped === true");
    }

    /// Types `text` into the field as a keyboard (or a paste) would.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.eval(&format!(
            "(function(){{var e=document.querySelector({}); e.focus(); e.value='';}})()",
            json!(selector)
        ));
        self.page("Input.insertText", json!({"text": text}));
    }

    /// A PNG of the page as the phone shows it, `full` for the whole scroll height.
    pub fn screenshot(&mut self, full: bool) -> Vec<u8> {
        use base64::Engine as _;
        let r = self.page(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": full}),
        );
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())
            .unwrap()
    }

    /// Lets pending events (requests of a service worker, say) arrive and be recorded.
    pub fn drain_events(&mut self) {
        self.page("Runtime.evaluate", json!({"expression": "1"}));
        while let Ok(m) = self.from_browser.recv_timeout(Duration::from_millis(200)) {
            if m.get("method").is_some() {
                self.event(m);
            }
        }
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "chromium stderr tail:\n{}",
            lines[lines.len().saturating_sub(15)..].join("\n")
        )
    }

    /// Closes the browser cleanly (so its storage is written out) and waits for it.
    pub fn close(mut self) {
        let _ = self.try_call(None, "Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            // The poll interval of this bounded wait for the exit.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
