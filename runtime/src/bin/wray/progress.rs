//! A live progress line at the bottom of the terminal: tasks finished,
//! running and pending, actors alive. Guest output goes above it: whoever
//! prints takes the terminal's lock, erases the line, prints, and draws it
//! again. It is shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wray_runtime::{OutputSink, OutputSource, Stream, TerminalSink};

/// The line and the lock on the terminal.
pub struct Progress {
    /// The text shown, empty when hidden.
    line: Mutex<String>,
}

const ERASE: &str = "\r\x1b[2K";

impl Progress {
    /// A progress line, if stderr is a terminal.
    pub fn new() -> Option<Arc<Progress>> {
        std::io::stderr().is_terminal().then(|| {
            Arc::new(Progress {
                line: Mutex::new(String::new()),
            })
        })
    }

    /// Shows `text` as the line.
    pub fn set(&self, text: String) {
        let mut line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{ERASE}{text}");
        let _ = err.flush();
        *line = text;
    }

    /// Removes the line for good.
    pub fn clear(&self) {
        self.set(String::new());
    }

    /// Runs `print` with the line erased, then draws it again.
    fn around(&self, print: impl FnOnce()) {
        let line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        if !line.is_empty() {
            let _ = write!(std::io::stderr().lock(), "{ERASE}");
        }
        print();
        if !line.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{line}");
            let _ = err.flush();
        }
    }

    /// Redraws the line from `counts` every 200 ms until `done` returns
    /// true, on a thread of its own; then clears it.
    pub fn follow(
        self: &Arc<Self>,
        mut text: impl FnMut() -> Option<String> + Send + 'static,
    ) -> ProgressThread {
        let me = self.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(t) = text() {
                    me.set(t);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            me.clear();
        });
        ProgressThread {
            stop,
            thread: Some(thread),
        }
    }
}

/// The thread redrawing a [`Progress`]; dropping it stops the thread and
/// clears the line.
pub struct ProgressThread {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ProgressThread {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The line's text: tasks by state, and actors alive when known.
pub fn describe(counts: [u64; 5], actors: Option<usize>) -> String {
    let [pending, running, finished, failed, cancelled] = counts;
    let mut s = format!("tasks: {finished} finished, {running} running, {pending} pending");
    if failed > 0 {
        s.push_str(&format!(", {failed} failed"));
    }
    if cancelled > 0 {
        s.push_str(&format!(", {cancelled} cancelled"));
    }
    if let Some(actors) = actors {
        s.push_str(&format!(" | actors: {actors} alive"));
    }
    s
}

/// Prints guest output as [`TerminalSink`] does, keeping the progress line
/// below it.
pub struct ProgressSink(pub Option<Arc<Progress>>);

impl OutputSink for ProgressSink {
    fn write(&self, source: &OutputSource, stream: Stream, bytes: &[u8]) {
        match &self.0 {
            Some(p) => p.around(|| TerminalSink.write(source, stream, bytes)),
            None => TerminalSink.write(source, stream, bytes),
        }
    }
}

/// Prints job log text (from a node) keeping the progress line below it.
pub fn print_above(progress: Option<&Progress>, text: &str) {
    let print = || {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    match progress {
        Some(p) => p.around(print),
        None => print(),
    }
}
