//! A small Chrome DevTools Protocol client for the dashboard's browser tests.
//!
//! [`Browser::launch`] starts a headless Chromium with a throwaway profile;
//! [`Browser::new_page`] opens a page that can be navigated, queried with
//! JavaScript, clicked and photographed. Everything is blocking and runs on
//! the caller's thread: each call sends one command over the browser's single
//! DevTools websocket, then reads messages until its answer arrives, noting on
//! the way the events that pages care about (loads, errors) and skipping the
//! rest. Pages may be used from several threads; their calls take turns.
//!
//! Chromium comes from `$WRAY_CHROMIUM` or `PATH`; on Debian, `apt-get install
//! -y chromium` provides it.

// Each test uses only some of these.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::env;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tungstenite::{Message, WebSocket};

/// How long one DevTools command, or one page load, may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one start of Chromium may take to listen for DevTools connections.
///
/// It takes under a second on an idle machine; the bound only catches a
/// start that hung, which the next of [`LAUNCH_WAYS`] then replaces.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How Chromium is started, in turn, until one start opens its DevTools
/// port: as found, then (should a start hang, as one did once on CI,
/// printing nothing) without the zygote that forks its renderers, then in
/// one process. Debian's `/usr/bin/chromium` is a shell script that reads
/// `/etc/chromium.d` first; the later starts run the browser itself
/// (`/usr/lib/chromium/chromium`) when it is there.
const LAUNCH_WAYS: [&[&str]; 3] = [&[], &["--no-zygote"], &["--no-zygote", "--single-process"]];
/// How long Chromium may take to shut down before it is killed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often polling loops look again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The binaries tried, in order, when `$WRAY_CHROMIUM` is not set.
const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];
/// The size of every page's viewport, in CSS pixels.
const VIEWPORT: (u32, u32) = (1400, 900);

/// A headless Chromium driven over the DevTools protocol.
///
/// The process and its temporary profile directory live until this value and
/// every [`Page`] opened from it have been dropped; then Chromium is closed
/// (killed if it takes over 5 s) and the directory removed.
pub struct Browser {
    shared: Arc<Shared>,
}

/// One page (a tab in its own window) of a [`Browser`]; closed on drop.
pub struct Page {
    shared: Arc<Shared>,
    target_id: String,
    session_id: String,
}

/// What a browser and its pages share.
struct Shared {
    connection: Mutex<Connection>,
    process: Process,
}

/// The Chromium process and its profile directory.
struct Process {
    child: Child,
    dir: TempDir,
}

/// The websocket to the browser, and what its events have told about pages.
struct Connection {
    socket: WebSocket<TcpStream>,
    last_id: u64,
    /// Per page, by DevTools session id.
    pages: HashMap<String, PageEvents>,
}

/// What one page's events have told so far.
#[derive(Default)]
struct PageEvents {
    /// The loader ids of the navigations whose `load` event has fired.
    loaded: HashSet<String>,
    /// Uncaught exceptions and console or log errors, oldest first.
    errors: Vec<String>,
}

impl Browser {
    /// Starts a headless Chromium and connects to it.
    ///
    /// The binary is `$WRAY_CHROMIUM` if set, else the first of `chromium`,
    /// `chromium-browser` and `google-chrome` found on `PATH`.
    pub fn launch() -> Result<Browser, String> {
        let binary = find_chromium()?;
        let direct = Path::new("/usr/lib/chromium/chromium");
        let mut failures = Vec::new();
        for (attempt, extra) in LAUNCH_WAYS.iter().enumerate() {
            let program = if attempt > 0 && executable(direct).is_some() {
                direct
            } else {
                &binary
            };
            let mut process = Process::start(program, extra)?;
            match process.devtools_address() {
                Ok((port, path)) => {
                    let socket = connect(port, &path)?;
                    let connection = Connection {
                        socket,
                        last_id: 0,
                        pages: HashMap::new(),
                    };
                    return Ok(Browser {
                        shared: Arc::new(Shared {
                            connection: Mutex::new(connection),
                            process,
                        }),
                    });
                }
                // Dropping `process` kills this start before the next one.
                Err(e) => failures.push(format!(
                    "start {} ({} {}): {e}",
                    attempt + 1,
                    program.display(),
                    extra.join(" ")
                )),
            }
        }
        Err(failures.join("\n"))
    }

    /// Opens a blank page with a 1400×900 viewport, in a window of its own so
    /// that it is never a background tab (whose animation frames and timers
    /// Chromium pauses or throttles).
    pub fn new_page(&self) -> Result<Page, String> {
        let mut connection = self.shared.lock();
        let target = connection.call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank", "newWindow": true }),
            COMMAND_TIMEOUT,
        )?;
        let target_id = string_field(&target, "targetId")?;
        let session = connection.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
            COMMAND_TIMEOUT,
        )?;
        let session_id = string_field(&session, "sessionId")?;
        connection
            .pages
            .insert(session_id.clone(), PageEvents::default());
        drop(connection);
        // From here on, dropping `page` closes the target.
        let page = Page {
            shared: Arc::clone(&self.shared),
            target_id,
            session_id,
        };
        for domain in ["Page", "Runtime", "Log"] {
            page.call(&format!("{domain}.enable"), json!({}))?;
        }
        page.call("Page.setLifecycleEventsEnabled", json!({ "enabled": true }))?;
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": VIEWPORT.0,
                "height": VIEWPORT.1,
                "deviceScaleFactor": 1,
                "mobile": false,
            }),
        )?;
        Ok(page)
    }
}

impl Page {
    /// Navigates to `url` and waits for its `load` event (at most 60 s).
    ///
    /// A network failure (say, connection refused) is an error; an HTTP error
    /// status is not: the page shows what the server sent.
    pub fn goto(&self, url: &str) -> Result<(), String> {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let mut connection = self.shared.lock();
        let navigation = connection
            .call(
                Some(&self.session_id),
                "Page.navigate",
                json!({ "url": url }),
                COMMAND_TIMEOUT,
            )
            .map_err(|e| format!("navigating to {url}: {e}"))?;
        if let Some(error) = navigation["errorText"].as_str() {
            return Err(format!("navigating to {url}: {error}"));
        }
        // A same-document navigation (a new #fragment) has no loader and
        // fires no load event.
        let Some(loader) = navigation["loaderId"].as_str() else {
            return Ok(());
        };
        while !connection
            .pages
            .get(&self.session_id)
            .is_some_and(|page| page.loaded.contains(loader))
        {
            connection
                .next_message(deadline)
                .map_err(|e| format!("waiting for {url} to load: {e}"))?;
        }
        Ok(())
    }

    /// Evaluates `js` as a script in the page and returns its value as JSON,
    /// after awaiting it if it is a promise. A thrown exception (or a rejected
    /// promise) is an error that carries the exception's text.
    ///
    /// Values that JSON cannot hold (`undefined`, `NaN`, functions) come back
    /// as `null`; DOM nodes as `{}`.
    pub fn eval(&self, js: &str) -> Result<Value, String> {
        self.evaluate(js, COMMAND_TIMEOUT)
            .map_err(|e| format!("evaluating `{js}`: {e}"))
    }

    /// Evaluates `js_condition` every 50 ms until its value is truthy, and
    /// returns that value. After `timeout`, fails naming the condition and
    /// its last value or exception.
    pub fn wait_for(&self, js_condition: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let last = match self.evaluate(js_condition, left.max(POLL_INTERVAL)) {
                Ok(value) if truthy(&value) => return Ok(value),
                Ok(value) => format!("value: {value}"),
                Err(error) => format!("error: {error}"),
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {timeout:?} waiting for `{js_condition}`; last {last}"
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Clicks the first element matching `css_selector`, with the DOM's
    /// `click()`. Fails if no element matches.
    pub fn click(&self, css_selector: &str) -> Result<(), String> {
        // A JSON string is also a JavaScript string literal.
        let selector = Value::from(css_selector);
        let js = format!(
            "(() => {{ const el = document.querySelector({selector}); \
             if (!el) throw new Error('no element matches ' + {selector}); \
             el.click(); }})()"
        );
        self.evaluate(&js, COMMAND_TIMEOUT)
            .map(drop)
            .map_err(|e| format!("clicking `{css_selector}`: {e}"))
    }

    /// Saves a PNG of the page's viewport to `path`, creating its parent
    /// directories.
    pub fn screenshot(&self, path: &Path) -> Result<(), String> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        let png = decode_base64(&string_field(&shot, "data")?)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        fs::write(path, png).map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// The page's uncaught exceptions and console or log errors so far, oldest
    /// first (a failed resource load counts).
    pub fn console_errors(&self) -> Vec<String> {
        // A round trip to the page delivers every event it sent before. If it
        // fails, the errors already seen are still the best answer there is.
        let _ = self.call("Runtime.evaluate", json!({ "expression": "0" }));
        self.shared
            .lock()
            .pages
            .get(&self.session_id)
            .map(|page| page.errors.clone())
            .unwrap_or_default()
    }

    /// Sends a command to this page and waits (at most 60 s) for its result.
    fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.shared
            .lock()
            .call(Some(&self.session_id), method, params, COMMAND_TIMEOUT)
    }

    /// Evaluates `js`, waiting at most `timeout`; an exception is an error
    /// with its text alone.
    fn evaluate(&self, js: &str, timeout: Duration) -> Result<Value, String> {
        let params = json!({ "expression": js, "returnByValue": true, "awaitPromise": true });
        let mut reply =
            self.shared
                .lock()
                .call(Some(&self.session_id), "Runtime.evaluate", params, timeout)?;
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(exception_text(details));
        }
        Ok(reply["result"]
            .get_mut("value")
            .map(Value::take)
            .unwrap_or_default())
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let mut connection = self.shared.lock();
        connection.pages.remove(&self.session_id);
        // Best effort, without waiting: whichever call reads the answer skips it.
        let _ = connection.send(
            None,
            "Target.closeTarget",
            json!({ "targetId": self.target_id }),
        );
    }
}

impl Shared {
    /// The connection; a panic elsewhere while it was held leaves it usable.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Process {
    /// Starts `binary` headless, with `extra` flags, a throwaway profile and
    /// its output going to a log file in it.
    fn start(binary: &Path, extra: &[&str]) -> Result<Process, String> {
        let dir = tempfile::Builder::new()
            .prefix("wray-chromium-")
            .tempdir()
            .map_err(|e| format!("creating a profile directory for Chromium: {e}"))?;
        let log = File::create(dir.path().join("chromium.log"))
            .map_err(|e| format!("creating Chromium's log file: {e}"))?;
        let log_too = log
            .try_clone()
            .map_err(|e| format!("sharing Chromium's log file: {e}"))?;
        let mut user_data_dir = OsString::from("--user-data-dir=");
        user_data_dir.push(dir.path().join("profile"));
        let child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                // Nothing that could wait on a desktop service or a network.
                "--password-store=basic",
                "--disable-breakpad",
                "--disable-background-networking",
                "--disable-component-update",
                "--remote-debugging-port=0",
            ])
            .args(extra)
            .arg(user_data_dir)
            .args(["--window-size=1400,900", "about:blank"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_too)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        Ok(Process { child, dir })
    }

    /// Waits for Chromium to write the port and path it listens on to
    /// `DevToolsActivePort` in its profile, and returns them.
    fn devtools_address(&mut self) -> Result<(u16, String), String> {
        let file = self.dir.path().join("profile").join("DevToolsActivePort");
        let deadline = Instant::now() + LAUNCH_TIMEOUT;
        loop {
            // The port, a newline, then the browser target's path.
            if let Ok(text) = fs::read_to_string(&file)
                && let Some((port, path)) = text.split_once('\n')
                && let Ok(port) = port.parse::<u16>()
                && path.starts_with("/devtools/browser/")
            {
                return Ok((port, path.trim_end().to_owned()));
            }
            let status = self
                .child
                .try_wait()
                .map_err(|e| format!("checking on Chromium: {e}"))?;
            if let Some(status) = status {
                return Err(format!(
                    "Chromium exited ({status}) before it was ready; its output:\n{}",
                    self.log()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Chromium did not open its DevTools port within {LAUNCH_TIMEOUT:?}; \
                     its output:\n{}\nits processes:\n{}",
                    self.log(),
                    self.processes()
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Chromium's processes (those naming its profile) with their state and
    /// where in the kernel each waits, for error messages about a hang.
    fn processes(&self) -> String {
        let listing = Command::new("ps")
            .args(["-eo", "pid,ppid,stat,wchan:24,etime,time,args"])
            .output();
        let Ok(listing) = listing else {
            return "(ps is not available)".into();
        };
        let profile = self.dir.path().to_string_lossy().into_owned();
        let text = String::from_utf8_lossy(&listing.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let ours: Vec<&str> = lines.filter(|line| line.contains(&profile)).collect();
        let mut out = format!("{header}\n{}", ours.join("\n"));
        out.truncate(out.floor_char_boundary(4000));
        out
    }

    /// The end of what Chromium printed, for error messages.
    fn log(&self) -> String {
        let text = fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closed this way, Chromium stops its helper processes before it
        // exits, so that none is still writing to the profile when that is
        // removed. (Killed, it leaves them to notice by themselves.)
        if self.lock().send(None, "Browser.close", json!({})).is_ok() {
            let deadline = Instant::now() + CLOSE_TIMEOUT;
            while matches!(self.process.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(POLL_INTERVAL);
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Errors mean it has exited already. The profile is removed after this.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Connection {
    /// Sends a command, to a page's session or (with `None`) to the browser,
    /// and returns its id.
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<u64, String> {
        self.last_id += 1;
        let mut command = json!({ "id": self.last_id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = session.into();
        }
        self.socket
            .send(Message::text(command.to_string()))
            .map_err(|e| format!("sending {method} to Chromium: {e}"))?;
        Ok(self.last_id)
    }

    /// Sends a command and waits at most `timeout` for its result.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let id = self.send(session, method, params)?;
        let deadline = Instant::now() + timeout;
        loop {
            let mut message = self
                .next_message(deadline)
                .map_err(|e| format!("waiting for the result of {method}: {e}"))?;
            if message["id"] != id {
                continue;
            }
            if let Some(error) = message.get("error") {
                return Err(match (error["message"].as_str(), error["data"].as_str()) {
                    (Some(text), Some(data)) => format!("{method} failed: {text} ({data})"),
                    (Some(text), None) => format!("{method} failed: {text}"),
                    _ => format!("{method} failed: {error}"),
                });
            }
            return Ok(message["result"].take());
        }
    }

    /// Reads the next message from the browser, by `deadline`, after noting
    /// what it tells about a page.
    fn next_message(&mut self, deadline: Instant) -> Result<Value, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timed out".to_owned());
            }
            self.socket
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|e| format!("setting a read timeout: {e}"))?;
            let text = match self.socket.read() {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(_)) => return Err("Chromium closed the connection".to_owned()),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("reading from Chromium: {e}")),
            };
            let message: Value = serde_json::from_str(&text)
                .map_err(|e| format!("Chromium sent invalid JSON ({e}): {text}"))?;
            self.note(&message);
            return Ok(message);
        }
    }

    /// Records what an event tells about one of our pages.
    fn note(&mut self, message: &Value) {
        let (Some(method), Some(session)) =
            (message["method"].as_str(), message["sessionId"].as_str())
        else {
            return;
        };
        let Some(page) = self.pages.get_mut(session) else {
            return;
        };
        let params = &message["params"];
        match method {
            "Page.lifecycleEvent" if params["name"] == "load" => {
                if let Some(loader) = params["loaderId"].as_str() {
                    page.loaded.insert(loader.to_owned());
                }
            }
            "Runtime.exceptionThrown" => {
                page.errors
                    .push(exception_text(&params["exceptionDetails"]));
            }
            "Runtime.consoleAPICalled" if params["type"] == "error" => {
                let empty = Vec::new();
                let args = params["args"].as_array().unwrap_or(&empty);
                let words: Vec<String> = args.iter().map(remote_object_text).collect();
                page.errors
                    .push(format!("console.error: {}", words.join(" ")));
            }
            "Log.entryAdded" if params["entry"]["level"] == "error" => {
                let entry = &params["entry"];
                let text = entry["text"].as_str().unwrap_or_default();
                page.errors.push(match entry["url"].as_str() {
                    Some(url) => format!("{text} ({url})"),
                    None => text.to_owned(),
                });
            }
            _ => {}
        }
    }
}

/// Finds the Chromium binary: `$WRAY_CHROMIUM` (a path, or a name to look up
/// on `PATH`) if set, else the first of [`CHROMIUM_NAMES`] on `PATH`.
fn find_chromium() -> Result<PathBuf, String> {
    const INSTALL: &str = "install it with `apt-get install -y chromium` (Debian) \
                           or set WRAY_CHROMIUM to a Chromium or Chrome binary";
    match env::var_os("WRAY_CHROMIUM").filter(|given| !given.is_empty()) {
        Some(given) => executable(Path::new(&given)).ok_or_else(|| {
            format!(
                "WRAY_CHROMIUM={} is not an executable file; {INSTALL}",
                given.display()
            )
        }),
        None => CHROMIUM_NAMES
            .iter()
            .find_map(|name| executable(Path::new(name)))
            .ok_or_else(|| {
                format!(
                    "no Chromium found: none of {} is on PATH; {INSTALL}",
                    CHROMIUM_NAMES.join(", ")
                )
            }),
    }
}

/// `program` if it is a path to an executable file; a bare name is looked up
/// on `PATH`.
fn executable(program: &Path) -> Option<PathBuf> {
    let is_executable = |path: &Path| {
        fs::metadata(path)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 {
        return is_executable(program).then(|| program.to_owned());
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| is_executable(path))
}

/// Opens the DevTools websocket at `path` on the local `port`.
fn connect(port: u16, path: &str) -> Result<WebSocket<TcpStream>, String> {
    let url = format!("ws://127.0.0.1:{port}{path}");
    let stream = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("connecting to Chromium at {url}: {e}"))?;
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(COMMAND_TIMEOUT)))
        .map_err(|e| format!("configuring the connection to Chromium: {e}"))?;
    let (socket, _response) = tungstenite::client(url.as_str(), stream)
        .map_err(|e| format!("opening the DevTools websocket {url}: {e}"))?;
    Ok(socket)
}

/// The string field `name` of a command's result.
fn string_field(result: &Value, name: &str) -> Result<String, String> {
    result[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("Chromium's answer has no string `{name}`: {result}"))
}

/// The text of a thrown exception: for an `Error`, its message and stack.
fn exception_text(details: &Value) -> String {
    match details.get("exception") {
        Some(exception) => remote_object_text(exception),
        None => details["text"].as_str().unwrap_or("exception").to_owned(),
    }
}

/// A JavaScript value as DevTools describes it, as text: strings as they
/// are, other JSON values as JSON, anything else by its description.
fn remote_object_text(object: &Value) -> String {
    match object.get("value") {
        Some(Value::String(text)) => text.clone(),
        Some(value) => value.to_string(),
        None => object["description"]
            .as_str()
            .or(object["type"].as_str())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Whether JavaScript would take `value` as true.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Decodes standard, padded base64 (as DevTools sends binary data).
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("invalid byte {c:#04x} in base64 data")),
        };
        // At most 14 bits wait to be written out; the mask drops older ones.
        buffer = (buffer << 6 | u32::from(sextet)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    Ok(bytes)
}
