//! Guest output: captured per instance, bounded, and streamed to a sink.
//!
//! Each instance's WASI stdout and stderr write into one [`Capture`]. A
//! driver's output passes through as written; a task's or actor's output is
//! cut into lines so the sink can prefix each with its source, like Ray's
//! `(f pid=..)` lines, without interleaving half-lines of concurrent tasks.
//! The capture counts bytes against the instance's output limit (the write
//! that crosses it traps the guest) and keeps the tail of stderr for error
//! reports.

use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wray_abi::{ActorId, TaskId};

/// How much of stderr an error report keeps.
const STDERR_TAIL: usize = 2048;
/// A line longer than this is emitted in pieces.
const MAX_LINE: usize = 16 << 10;

/// Which stream a guest wrote to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Who wrote output.
#[derive(Clone, Debug)]
pub struct OutputSource {
    /// The function, the actor type, or the driver's module name.
    pub name: Arc<str>,
    /// What kind of instance wrote it.
    pub kind: SourceKind,
    /// The job it works for (0: the host's own work).
    pub job: u64,
}

/// The kinds of instance that write output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A driver: its output is passed through unprefixed.
    Driver,
    /// A task.
    Task(TaskId),
    /// An actor.
    Actor(ActorId),
}

impl OutputSource {
    /// Whether this is a driver.
    pub fn is_driver(&self) -> bool {
        self.kind == SourceKind::Driver
    }
}

impl fmt::Display for OutputSource {
    /// `say_hello task=12`, `Counter actor=3`, or the driver's name; in a
    /// cluster, with the node that ran it: `say_hello task=12 node=2`. A
    /// name comes from the guest's export names: control characters in it
    /// are shown escaped (`\n`, `\u{1b}`), so it can neither start a line
    /// of its own (forging another task's prefix) nor drive the terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Printable(&self.name);
        let (what, seq, node) = match self.kind {
            SourceKind::Driver => return write!(f, "{name}"),
            SourceKind::Task(t) => ("task", t.seq(), t.node()),
            SourceKind::Actor(a) => ("actor", a.seq(), a.node()),
        };
        write!(f, "{name} {what}={seq}")?;
        if node != 0 {
            write!(f, " node={node}")?;
        }
        Ok(())
    }
}

/// A name shown with its control characters escaped.
struct Printable<'a>(&'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Receives guest output. Implementations must be cheap: they run on the
/// guest's thread, in the middle of its `write`.
pub trait OutputSink: Send + Sync + 'static {
    /// A driver's bytes as written, or one whole line (ending in `\n`) of a
    /// task or actor.
    fn write(&self, source: &OutputSource, stream: Stream, bytes: &[u8]);
}

/// Prints output on the process's stdout and stderr: drivers' as is, tasks'
/// and actors' as `(label) line`.
#[derive(Debug, Default)]
pub struct TerminalSink;

impl OutputSink for TerminalSink {
    fn write(&self, source: &OutputSource, stream: Stream, bytes: &[u8]) {
        fn emit(mut w: impl Write, source: &OutputSource, bytes: &[u8]) {
            // A closed terminal is not the guest's failure; drop the output.
            let _ = if source.is_driver() {
                w.write_all(bytes).and_then(|()| w.flush())
            } else {
                write!(w, "({source}) ").and_then(|()| w.write_all(bytes))
            };
        }
        match stream {
            Stream::Stdout => emit(std::io::stdout().lock(), source, bytes),
            Stream::Stderr => emit(std::io::stderr().lock(), source, bytes),
        }
    }
}

/// Discards all output.
#[derive(Debug, Default)]
pub struct NullSink;

impl OutputSink for NullSink {
    fn write(&self, _: &OutputSource, _: Stream, _: &[u8]) {}
}

/// The guest wrote more than its output limit.
#[derive(Debug, thiserror::Error)]
#[error("output limit of {limit} bytes exceeded")]
pub(crate) struct OutputLimitExceeded {
    pub limit: usize,
}

struct State {
    source: OutputSource,
    sink: Arc<dyn OutputSink>,
    partial: [Vec<u8>; 2],
    written: usize,
    limit: usize,
    stderr_tail: VecDeque<u8>,
}

impl State {
    fn write(&mut self, stream: Stream, mut bytes: &[u8]) -> StreamResult<()> {
        if self.written.saturating_add(bytes.len()) > self.limit {
            return Err(StreamError::Trap(wasmtime::Error::new(
                OutputLimitExceeded { limit: self.limit },
            )));
        }
        self.written += bytes.len();
        if stream == Stream::Stderr {
            let keep = bytes.len().min(STDERR_TAIL);
            let over = (self.stderr_tail.len() + keep).saturating_sub(STDERR_TAIL);
            self.stderr_tail.drain(..over);
            self.stderr_tail.extend(&bytes[bytes.len() - keep..]);
        }
        if self.source.is_driver() {
            self.sink.write(&self.source, stream, bytes);
            return Ok(());
        }
        let buf = &mut self.partial[stream as usize];
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            let (line, rest) = bytes.split_at(nl + 1);
            if buf.is_empty() {
                self.sink.write(&self.source, stream, line);
            } else {
                buf.extend_from_slice(line);
                self.sink.write(&self.source, stream, buf);
                buf.clear();
            }
            bytes = rest;
        }
        buf.extend_from_slice(bytes);
        if buf.len() >= MAX_LINE {
            buf.push(b'\n');
            self.sink.write(&self.source, stream, buf);
            buf.clear();
        }
        Ok(())
    }

    fn flush_partial(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let buf = &mut self.partial[stream as usize];
            if !buf.is_empty() {
                buf.push(b'\n');
                self.sink.write(&self.source, stream, buf);
                buf.clear();
            }
        }
    }
}

/// The output of one instance.
#[derive(Clone)]
pub(crate) struct Capture {
    state: Arc<Mutex<State>>,
}

impl Capture {
    pub fn new(source: OutputSource, sink: Arc<dyn OutputSink>, limit: usize) -> Capture {
        Capture {
            state: Arc::new(Mutex::new(State {
                source,
                sink,
                partial: [Vec::new(), Vec::new()],
                written: 0,
                limit,
                stderr_tail: VecDeque::new(),
            })),
        }
    }

    /// The WASI stream writing into this capture.
    pub fn stream(&self, stream: Stream) -> GuestStream {
        GuestStream {
            capture: self.clone(),
            stream,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent (if partial) data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Emits any unfinished lines; call when a call ends.
    pub fn flush(&self) {
        self.lock().flush_partial();
    }

    /// The last bytes written to stderr, as text.
    pub fn stderr_tail(&self) -> String {
        let s = self.lock();
        let (a, b) = s.stderr_tail.as_slices();
        let mut v = Vec::with_capacity(a.len() + b.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// One of an instance's output streams, as WASI sees it.
#[derive(Clone)]
pub(crate) struct GuestStream {
    capture: Capture,
    stream: Stream,
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.capture.lock().write(self.stream, &bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = self.capture.lock().write(self.stream, buf);
        std::task::Poll::Ready(r.map(|()| buf.len()).map_err(std::io::Error::other))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<(Stream, String)>>);

    impl OutputSink for Collect {
        fn write(&self, _: &OutputSource, stream: Stream, bytes: &[u8]) {
            let s = String::from_utf8_lossy(bytes).into_owned();
            self.0.lock().unwrap().push((stream, s));
        }
    }

    #[test]
    fn a_name_cannot_forge_a_prefix_or_drive_the_terminal() {
        let source = OutputSource {
            name: "f\n(other task=9) forged \u{1b}[2J".into(),
            job: 0,
            kind: SourceKind::Task(TaskId::new(0, 4)),
        };
        let shown = source.to_string();
        assert_eq!(shown, "f\\n(other task=9) forged \\u{1b}[2J task=4");
        assert!(!shown.chars().any(char::is_control), "{shown}");
    }

    fn capture(is_driver: bool, limit: usize) -> (Capture, Arc<Collect>) {
        let sink = Arc::new(Collect::default());
        let source = OutputSource {
            name: "t".into(),
            job: 0,
            kind: if is_driver {
                SourceKind::Driver
            } else {
                SourceKind::Task(TaskId::new(0, 1))
            },
        };
        (Capture::new(source, sink.clone(), limit), sink)
    }

    #[test]
    fn task_output_is_cut_into_whole_lines() {
        let (c, sink) = capture(false, 1 << 20);
        let mut out = c.stream(Stream::Stdout);
        OutputStream::write(&mut out, Bytes::from_static(b"hel")).unwrap();
        OutputStream::write(&mut out, Bytes::from_static(b"lo\nwor")).unwrap();
        OutputStream::write(&mut out, Bytes::from_static(b"ld\nand\nmore")).unwrap();
        c.flush();
        let lines: Vec<String> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect();
        assert_eq!(lines, ["hello\n", "world\n", "and\n", "more\n"]);
    }

    #[test]
    fn output_past_the_limit_traps_and_stderr_tail_is_kept() {
        let (c, _) = capture(true, 10);
        let mut err = c.stream(Stream::Stderr);
        OutputStream::write(&mut err, Bytes::from_static(b"0123456")).unwrap();
        let e = OutputStream::write(&mut err, Bytes::from_static(b"789ab")).unwrap_err();
        assert!(matches!(e, StreamError::Trap(ref t) if t.is::<OutputLimitExceeded>()));
        assert_eq!(c.stderr_tail(), "0123456");
        let (c, _) = capture(false, usize::MAX);
        let mut err = c.stream(Stream::Stderr);
        OutputStream::write(&mut err, Bytes::from(vec![b'x'; 3 * STDERR_TAIL])).unwrap();
        OutputStream::write(&mut err, Bytes::from_static(b"end")).unwrap();
        let tail = c.stderr_tail();
        assert_eq!(tail.len(), STDERR_TAIL);
        assert!(tail.ends_with("xend"));
    }
}
