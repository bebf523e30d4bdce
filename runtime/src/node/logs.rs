//! Guest output kept for the state API: recent lines, searchable, and each
//! job's whole log for `wray job logs`.

use crate::events::unix_ms;
use crate::output::{OutputSink, OutputSource, SourceKind, Stream};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Lines kept for searching, across jobs.
const LINES: usize = 100_000;
/// Bytes of one job's log kept; output past it is counted, not kept.
const JOB_LOG: usize = 64 << 20;

/// One line of guest output.
#[derive(Clone, Debug, Serialize)]
pub struct LogLine {
    /// When it was written, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Who wrote it (`say_hello task=12`, `Counter actor=3`, a driver's
    /// module name).
    pub source: String,
    /// The job it belongs to (`job-3`; `host` for the host's own work).
    pub job_id: String,
    /// The task that wrote it.
    pub task_id: Option<String>,
    /// The actor that wrote it.
    pub actor_id: Option<String>,
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    /// The text, without its line end.
    pub text: String,
}

#[derive(Default)]
struct JobLog {
    text: String,
    dropped: usize,
}

#[derive(Default)]
struct Inner {
    lines: VecDeque<LogLine>,
    jobs: FxHashMap<u64, JobLog>,
}

/// An [`OutputSink`] that keeps what it is given (see the module docs) and
/// passes it on to another sink (the terminal, say).
pub struct LogStore {
    next: Arc<dyn OutputSink>,
    inner: Mutex<Inner>,
}

impl LogStore {
    /// A store passing output on to `next`.
    pub fn new(next: Arc<dyn OutputSink>) -> LogStore {
        LogStore {
            next,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Job `job`'s log from byte `offset`: the text, the offset after it.
    pub fn job_log(&self, job: u64, offset: usize) -> (String, usize) {
        let g = self.lock();
        let Some(log) = g.jobs.get(&job) else {
            return (String::new(), 0);
        };
        let mut from = offset.min(log.text.len());
        while !log.text.is_char_boundary(from) {
            from -= 1;
        }
        (log.text[from..].to_string(), log.text.len())
    }

    /// Forgets job `job`'s log and its lines.
    pub fn forget_job(&self, job: u64) {
        let name = job_name(job);
        let mut g = self.lock();
        g.jobs.remove(&job);
        g.lines.retain(|l| l.job_id != name);
    }

    /// The lines `keep` accepts, the last `limit` of them, oldest first;
    /// and how many it accepted.
    pub fn lines(
        &self,
        mut keep: impl FnMut(&LogLine) -> bool,
        limit: usize,
    ) -> (usize, Vec<LogLine>) {
        let g = self.lock();
        let mut total = 0;
        let mut out = Vec::new();
        for l in g.lines.iter().rev() {
            if keep(l) {
                if out.len() < limit {
                    out.push(l.clone());
                }
                total += 1;
            }
        }
        out.reverse();
        (total, out)
    }
}

/// How the APIs name job `job`.
pub(crate) fn job_name(job: u64) -> String {
    if job == 0 {
        "host".into()
    } else {
        format!("job-{job}")
    }
}

impl OutputSink for LogStore {
    fn write(&self, source: &OutputSource, stream: Stream, bytes: &[u8]) {
        self.next.write(source, stream, bytes);
        let text = String::from_utf8_lossy(bytes);
        let (task_id, actor_id) = match source.kind {
            SourceKind::Driver => (None, None),
            SourceKind::Task(t) => (Some(t.seq().to_string()), None),
            SourceKind::Actor(a) => (None, Some(a.seq().to_string())),
        };
        let label = source.to_string();
        let mut g = self.lock();
        let log = g.jobs.entry(source.job).or_default();
        let piece = if source.is_driver() {
            text.to_string()
        } else {
            format!("({label}) {text}")
        };
        if log.text.len() + piece.len() <= JOB_LOG {
            log.text.push_str(&piece);
        } else {
            log.dropped += piece.len();
        }
        let time_ms = unix_ms();
        let job_id = job_name(source.job);
        for line in text.split_inclusive('\n') {
            if g.lines.len() == LINES {
                g.lines.pop_front();
            }
            g.lines.push_back(LogLine {
                time_ms,
                source: label.clone(),
                job_id: job_id.clone(),
                task_id: task_id.clone(),
                actor_id: actor_id.clone(),
                stream: match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                },
                text: line.trim_end_matches(['\n', '\r']).to_string(),
            });
        }
    }
}
