//! A real headless Chromium (Debian's `chromium`), driven over the DevTools
//! protocol: open a page, evaluate JavaScript in it, wait for a condition
//! (bounded), take a screenshot. For the end-to-end tests and `bench web`.
//! `scripts/test` installs Chromium; when CI runs (`CI=true`) a missing
//! browser fails the test instead of skipping it.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

#[derive(Debug)]
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next: u64,
    _profile: tempfile::TempDir,
}

/// One tab.
#[derive(Debug)]
pub struct Page {
    session: String,
}

/// The browser to use: `$CHROMIUM`, else Debian's.
fn program() -> Option<String> {
    let candidates = [std::env::var("CHROMIUM").unwrap_or_default(), "/usr/bin/chromium".into(), "/usr/bin/chromium-browser".into()];
    candidates.into_iter().find(|c| !c.is_empty() && std::path::Path::new(c).exists())
}

impl Browser {
    /// Starts Chromium, or says why it cannot (a test then returns early,
    /// unless CI runs, where it fails).
    pub fn start() -> Option<Browser> {
        let Some(program) = program() else {
            assert!(std::env::var("CI").is_err(), "Chromium is missing (scripts/test installs Debian's chromium)");
            eprintln!("skipped: no Chromium (run scripts/test, which installs it)");
            return None;
        };
        let profile = tempfile::tempdir().expect("profile");
        let mut child = Command::new(program)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("chromium's DevTools address");
        let host = url.trim_start_matches("ws://").split('/').next().expect("host").to_string();
        let stream = TcpStream::connect(&host).expect("connect to chromium");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools websocket");
        Some(Browser { child, ws, next: 0, _profile: profile })
    }

    /// Sends a command (to a tab's session, or the browser) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params) {
            Ok(v) => v,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// [`Browser::call`], with the protocol's error as an `Err`.
    fn try_call(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).expect("send to chromium");
        loop {
            let m = self.ws.read().expect("read from chromium");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).expect("DevTools JSON");
            if v["id"] == json!(id) {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    /// Opens `url` in a new tab.
    pub fn open(&mut self, url: &str) -> Page {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}));
        let page = Page { session: attached["sessionId"].as_str().expect("session").to_string() };
        self.call(Some(&page.session), "Page.enable", json!({}));
        self.call(Some(&page.session), "Page.navigate", json!({"url": url}));
        page
    }

    pub fn navigate(&mut self, page: &Page, url: &str) {
        self.call(Some(&page.session), "Page.navigate", json!({"url": url}));
    }

    /// The value of a JavaScript expression in the page.
    /// (null when the expression made the page navigate away before it answered: a click on a link).
    pub fn eval(&mut self, page: &Page, expr: &str) -> Value {
        let params = json!({"expression": expr, "returnByValue": true, "awaitPromise": true});
        match self.try_call(Some(&page.session), "Runtime.evaluate", params) {
            Ok(r) => r["result"]["value"].clone(),
            Err(e) if e["message"].as_str().is_some_and(|m| m.contains("navigated") || m.contains("context")) => Value::Null,
            Err(e) => panic!("Runtime.evaluate: {e}"),
        }
    }

    /// Waits (bounded) until `expr` is truthy and returns its value.
    pub fn wait_for(&mut self, page: &Page, expr: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.eval(page, &format!("(() => {{ try {{ return {expr}; }} catch (e) {{ return null; }} }})()"));
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            let text = self.eval(page, "document.body ? document.body.innerText.slice(0, 400) : ''");
            assert!(Instant::now() < deadline, "waited 60 s for `{expr}`; the page says: {text}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A PNG of the page as it is, in base64.
    pub fn screenshot_base64(&mut self, page: &Page) -> String {
        let r = self.call(Some(&page.session), "Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": false}));
        r["data"].as_str().expect("data").to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
