//! A live progress line at the bottom of the terminal: tasks finished,
//! running and pending, actors alive. Guest output goes above it: whoever
//! prints takes the terminal's lock, erases the line, prints, and draws it
//! again. It is shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wray_runtime::events::STATES;
use wray_runtime::{OutputSink, OutputSource, Stream, TerminalSink};

/// The line and the lock on the terminal.
pub struct Progress {
    /// The text shown (empty when hidden), and the terminal it is drawn on.
    line: Mutex<Line>,
}

struct Line {
    text: String,
    term: Box<dyn Write + Send>,
}

const ERASE: &str = "\r\x1b[2K";

impl Progress {
    /// A progress line, if stderr is a terminal.
    pub fn new() -> Option<Arc<Progress>> {
        std::io::stderr()
            .is_terminal()
            .then(|| Arc::new(Progress::on(Box::new(std::io::stderr()))))
    }

    /// A progress line drawn on `term`.
    fn on(term: Box<dyn Write + Send>) -> Progress {
        Progress {
            line: Mutex::new(Line {
                text: String::new(),
                term,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Line> {
        self.line.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shows `text` as the line.
    pub fn set(&self, text: String) {
        let mut line = self.lock();
        let _ = write!(line.term, "{ERASE}{text}");
        let _ = line.term.flush();
        line.text = text;
    }

    /// Removes the line for good.
    pub fn clear(&self) {
        self.set(String::new());
    }

    /// Runs `print` with the line erased, then draws it again.
    fn around(&self, print: impl FnOnce()) {
        let mut line = self.lock();
        let Line { text, term } = &mut *line;
        if !text.is_empty() {
            let _ = write!(term, "{ERASE}");
            let _ = term.flush();
        }
        print();
        if !text.is_empty() {
            let _ = write!(term, "{text}");
            let _ = term.flush();
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
pub fn describe(counts: [u64; STATES], actors: Option<usize>) -> String {
    let [pending, running, finished, failed, cancelled, memoized] = counts;
    let mut s = format!("tasks: {finished} finished, {running} running, {pending} pending");
    if memoized > 0 {
        s.push_str(&format!(", {memoized} memoized"));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal that records what is written to it, shared with the test.
    #[derive(Clone, Default)]
    struct Screen(Arc<Mutex<Vec<u8>>>);

    impl Write for Screen {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Screen {
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    #[test]
    fn output_goes_above_the_line_which_is_drawn_again_below_it() {
        let screen = Screen::default();
        let p = Progress::on(Box::new(screen.clone()));
        // Hidden: output passes untouched.
        p.around(|| screen.clone().write_all(b"early\n").unwrap());
        assert_eq!(screen.take(), "early\n");
        p.set(describe([1, 2, 3, 0, 0, 0], None));
        assert_eq!(
            screen.take(),
            format!("{ERASE}tasks: 3 finished, 2 running, 1 pending")
        );
        p.around(|| screen.clone().write_all(b"(f) hi\n").unwrap());
        assert_eq!(
            screen.take(),
            format!("{ERASE}(f) hi\ntasks: 3 finished, 2 running, 1 pending"),
            "erased, printed, drawn again"
        );
        p.clear();
        assert_eq!(screen.take(), ERASE);
        p.around(|| screen.clone().write_all(b"late\n").unwrap());
        assert_eq!(screen.take(), "late\n", "cleared for good");
    }

    #[test]
    fn the_line_names_failures_and_actors_only_when_there_are_some() {
        assert_eq!(
            describe([0, 0, 5, 0, 0, 0], None),
            "tasks: 5 finished, 0 running, 0 pending"
        );
        assert_eq!(
            describe([1, 0, 5, 2, 3, 0], Some(4)),
            "tasks: 5 finished, 0 running, 1 pending, 2 failed, 3 cancelled | actors: 4 alive"
        );
        assert_eq!(
            describe([0, 0, 5, 0, 0, 7], None),
            "tasks: 5 finished, 0 running, 0 pending, 7 memoized"
        );
    }
}
