//! A small client of Chromium's DevTools protocol for the dashboard tests: a real
//! headless Chromium, one page in it, JavaScript evaluated in that page (so a test reads
//! the DOM as it is now, after the page's own script changed it), and everything the page
//! logged: console calls, uncaught exceptions, and the browser's own log entries (a
//! content-security-policy violation, a failed fetch).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long one DevTools answer may take.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// What the page logged, in order: `console.<level>: text`, `exception: …`,
    /// `log <source>/<level>: text`.
    pub log: Vec<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts headless `chromium` with a fresh profile and attaches to its blank page.
    pub fn start(chromium: &Path) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir()?;
        let child = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", chromium.display()))?;
        // Chromium writes the port it chose into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let start = Instant::now();
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file).ok().and_then(|t| t.lines().next()?.parse().ok()) {
                break port;
            }
            if start.elapsed() > ANSWER_LIMIT {
                bail!("chromium wrote no {} within {ANSWER_LIMIT:?}", port_file.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let page = page_socket_url(port)?;
        let (socket, _) = tungstenite::connect(page.as_str()).with_context(|| format!("connecting to {page}"))?;
        if let MaybeTlsStream::Plain(s) = socket.get_ref() {
            s.set_read_timeout(Some(ANSWER_LIMIT))?;
        }
        let mut browser = Browser { child, _profile: profile, socket, next_id: 0, log: Vec::new() };
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(domain, json!({}))?;
        }
        Ok(browser)
    }

    /// Sends one command and waits for its answer, keeping the events that arrive
    /// meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::Text(request.into())).with_context(|| format!("sending {method}"))?;
        loop {
            let message = self.socket.read().with_context(|| format!("waiting for the answer to {method}"))?;
            let Message::Text(text) = message else { continue };
            let v: Value = serde_json::from_str(text.as_str())?;
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    bail!("{method}: {e}");
                }
                return Ok(v["result"].clone());
            }
            self.keep_event(&v);
        }
    }

    fn keep_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> =
                    p["args"].as_array().into_iter().flatten().map(|a| a["value"].to_string()).collect();
                self.log.push(format!("console.{}: {}", p["type"].as_str().unwrap_or("?"), args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => self.log.push(format!("exception: {}", p["exceptionDetails"])),
            Some("Log.entryAdded") => {
                let e = &p["entry"];
                self.log.push(format!(
                    "log {}/{}: {} {}",
                    e["source"].as_str().unwrap_or("?"),
                    e["level"].as_str().unwrap_or("?"),
                    e["text"].as_str().unwrap_or(""),
                    e["url"].as_str().unwrap_or("")
                ));
            }
            _ => {}
        }
    }

    /// The value of `expression` in the page (a promise is awaited); an exception is an
    /// error naming it.
    pub fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("{expression}: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Opens `url` in the page and waits until it has loaded.
    pub fn goto(&mut self, url: &str) -> anyhow::Result<()> {
        let r = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(e) = r.get("errorText") {
            bail!("opening {url}: {e}");
        }
        self.wait_for(&format!("document.readyState === 'complete' && location.href === {}", json!(url)), ANSWER_LIMIT)
            .with_context(|| format!("loading {url}"))?;
        Ok(())
    }

    /// Evaluates `condition` every 200 ms until it is true, at most `limit`.
    pub fn wait_for(&mut self, condition: &str, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if self.eval(condition)? == Value::Bool(true) {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!("still not true after {limit:?}: {condition}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The DevTools WebSocket address of the browser's first page.
fn page_socket_url(port: u16) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        let o = Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}/json/list"))
            .output()?;
        let targets: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if let Some(url) = targets.iter().find(|t| t["type"] == "page").and_then(|t| t["webSocketDebuggerUrl"].as_str())
        {
            return Ok(url.to_string());
        }
        if start.elapsed() > ANSWER_LIMIT {
            bail!("chromium on port {port} lists no page: {}", String::from_utf8_lossy(&o.stdout));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
