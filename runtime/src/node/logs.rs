//! Guest output kept for the state API: recent lines, searchable, and each
//! job's whole log for `wray job logs`.
//!
//! Memory is bounded three ways: the searchable lines (100,000), one job's
//! log (64 MiB; past it output is counted, not kept), and all jobs' logs
//! together ([`LogStore::with_total_limit`], 256 MiB by default). When the
//! total would pass its limit, the logs of ended jobs go first, oldest job
//! first (a trimmed log reads as empty); only when no ended job has any
//! left is a running job's new output dropped.
//!
//! A searchable line keeps who wrote it as the writer gave it (its
//! [`OutputSource`], typed ids and all): it is formatted for the API only
//! when served. Lines are shared (`Arc`), so a reader copies pointers under
//! the lock and filters and formats after releasing it.

use super::types::{LogLine, LogStream};
use crate::events::unix_ms;
use crate::exec::env::FORWARDED_JOB;
use crate::output::{OutputSink, OutputSource, SourceKind, Stream};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use wray_abi::{ActorId, TaskId};

/// Lines kept for searching, across jobs.
const LINES: usize = 100_000;
/// Bytes of one job's log kept; output past it is counted, not kept.
const JOB_LOG: usize = 64 << 20;
/// Bytes of all jobs' logs kept, by default.
pub const DEFAULT_TOTAL_LOGS: usize = 256 << 20;

/// One line of guest output, as kept.
pub(crate) struct Line {
    time_ms: u64,
    source: OutputSource,
    stream: Stream,
    /// Without its line end.
    text: Box<str>,
}

impl Line {
    /// The job it belongs to.
    pub fn job(&self) -> u64 {
        self.source.job
    }

    /// The task that wrote it.
    pub fn task(&self) -> Option<TaskId> {
        match self.source.kind {
            SourceKind::Task(t) => Some(t),
            _ => None,
        }
    }

    /// The actor that wrote it.
    pub fn actor(&self) -> Option<ActorId> {
        match self.source.kind {
            SourceKind::Actor(a) => Some(a),
            _ => None,
        }
    }

    /// The text, without its line end.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The line as the API shows it.
    pub fn to_api(&self) -> LogLine {
        LogLine {
            time_ms: self.time_ms,
            source: self.source.to_string(),
            job_id: job_name(self.source.job),
            task_id: self.task().map(|t| t.seq().to_string()),
            actor_id: self.actor().map(|a| a.seq().to_string()),
            stream: match self.stream {
                Stream::Stdout => LogStream::Stdout,
                Stream::Stderr => LogStream::Stderr,
            },
            text: self.text.to_string(),
        }
    }
}

#[derive(Default)]
struct JobLog {
    text: String,
    /// Bytes not kept: past a limit, or trimmed once the job ended.
    dropped: usize,
    ended: bool,
}

#[derive(Default)]
struct Inner {
    lines: VecDeque<Arc<Line>>,
    jobs: FxHashMap<u64, JobLog>,
    /// Bytes of every job's `text`.
    total: usize,
}

impl Inner {
    /// Makes room for `len` more bytes of job logs under `limit` by
    /// trimming ended jobs' logs, oldest first. False if there is none
    /// left to trim.
    fn make_room(&mut self, len: usize, limit: usize) -> bool {
        while self.total + len > limit {
            let oldest = self
                .jobs
                .iter()
                .filter(|(_, l)| l.ended && !l.text.is_empty())
                .map(|(id, _)| *id)
                .min();
            let Some(id) = oldest else {
                return false;
            };
            let log = self.jobs.get_mut(&id).expect("found above");
            self.total -= log.text.len();
            log.dropped += log.text.len();
            log.text = String::new();
        }
        true
    }
}

/// An [`OutputSink`] that keeps what it is given (see the module docs) and
/// passes it on to another sink (the terminal, say).
pub struct LogStore {
    next: Arc<dyn OutputSink>,
    inner: Mutex<Inner>,
    total_limit: usize,
}

impl LogStore {
    /// A store passing output on to `next`.
    pub fn new(next: Arc<dyn OutputSink>) -> LogStore {
        LogStore {
            next,
            inner: Mutex::default(),
            total_limit: DEFAULT_TOTAL_LOGS,
        }
    }

    /// Keeps at most `bytes` of all jobs' logs together (default 256 MiB).
    pub fn with_total_limit(mut self, bytes: usize) -> LogStore {
        self.total_limit = bytes;
        self
    }

    /// Marks job `job` ended: its log is the first to go when room is
    /// needed.
    pub fn job_ended(&self, job: u64) {
        self.lock().jobs.entry(job).or_default().ended = true;
    }

    /// Bytes of all jobs' logs kept now.
    pub fn total_bytes(&self) -> usize {
        self.lock().total
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
        let mut g = self.lock();
        if let Some(log) = g.jobs.remove(&job) {
            g.total -= log.text.len();
        }
        g.lines.retain(|l| l.job() != job);
    }

    /// The lines `keep` accepts, the last `limit` of them, oldest first,
    /// as the API shows them; and how many it accepted. `keep` runs, and
    /// the lines are formatted, after the lock is released.
    pub(crate) fn lines(
        &self,
        mut keep: impl FnMut(&Line) -> bool,
        limit: usize,
    ) -> (usize, Vec<LogLine>) {
        let all: Vec<Arc<Line>> = self.lock().lines.iter().cloned().collect();
        let mut total = 0;
        let mut out = Vec::new();
        for l in all.iter().rev() {
            if keep(l) {
                if out.len() < limit {
                    out.push(l.to_api());
                }
                total += 1;
            }
        }
        out.reverse();
        (total, out)
    }
}

/// How the APIs name job `job`: `host`, `job-3`, or `node-2` for the
/// calls a program on node 2 placed here.
pub(crate) fn job_name(job: u64) -> String {
    if job == 0 {
        "host".into()
    } else if job & FORWARDED_JOB != 0 {
        // A call another node placed here: its program's job is there.
        format!("node-{}", (job & !FORWARDED_JOB) >> 32)
    } else {
        format!("job-{job}")
    }
}

impl OutputSink for LogStore {
    fn write(&self, source: &OutputSource, stream: Stream, bytes: &[u8]) {
        self.next.write(source, stream, bytes);
        let text = String::from_utf8_lossy(bytes);
        let piece = if source.is_driver() {
            text.to_string()
        } else {
            format!("({source}) {text}")
        };
        let time_ms = unix_ms();
        let lines: Vec<Arc<Line>> = text
            .split_inclusive('\n')
            .map(|line| {
                Arc::new(Line {
                    time_ms,
                    source: source.clone(),
                    stream,
                    text: line.trim_end_matches(['\n', '\r']).into(),
                })
            })
            .collect();
        let mut g = self.lock();
        let own = g.jobs.get(&source.job).map_or(0, |l| l.text.len());
        let kept = own + piece.len() <= JOB_LOG && g.make_room(piece.len(), self.total_limit);
        let log = g.jobs.entry(source.job).or_default();
        if kept {
            log.text.push_str(&piece);
            g.total += piece.len();
        } else {
            log.dropped += piece.len();
        }
        for line in lines {
            if g.lines.len() == LINES {
                g.lines.pop_front();
            }
            g.lines.push_back(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NullSink;

    fn driver(job: u64) -> OutputSource {
        OutputSource {
            name: "d".into(),
            kind: SourceKind::Driver,
            job,
        }
    }

    #[test]
    fn lines_keep_typed_ids_and_are_formatted_when_served() {
        let logs = LogStore::new(Arc::new(NullSink));
        let task = OutputSource {
            name: "f".into(),
            kind: SourceKind::Task(TaskId::new(0, 7)),
            job: 2,
        };
        let actor = OutputSource {
            name: "C".into(),
            kind: SourceKind::Actor(ActorId::new(0, 9)),
            job: 2,
        };
        logs.write(&task, Stream::Stdout, b"one\ntwo\r\n");
        logs.write(&actor, Stream::Stderr, b"three\n");
        logs.write(&driver(3), Stream::Stdout, b"four\n");
        let (total, lines) = logs.lines(|l| l.job() == 2, 2);
        assert_eq!(total, 3);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["two", "three"], "the last two, oldest first");
        assert_eq!(lines[0].source, "f task=7");
        assert_eq!(lines[0].task_id.as_deref(), Some("7"));
        assert_eq!(lines[0].job_id, "job-2");
        assert_eq!(lines[1].actor_id.as_deref(), Some("9"));
        assert_eq!(lines[1].stream, LogStream::Stderr);
        let (_, mine) = logs.lines(|l| l.task().is_some_and(|t| t.seq() == 7), 10);
        assert_eq!(mine.len(), 2);
        logs.forget_job(2);
        assert_eq!(logs.lines(|_| true, 10).0, 1);
    }

    #[test]
    fn ended_jobs_logs_go_first_oldest_first_under_the_total() {
        let logs = LogStore::new(Arc::new(NullSink)).with_total_limit(100);
        let line = [b'x'; 40];
        logs.write(&driver(1), Stream::Stdout, &line);
        logs.write(&driver(2), Stream::Stdout, &line);
        logs.job_ended(1);
        logs.job_ended(2);
        assert_eq!(logs.total_bytes(), 80);
        // Job 3 needs room: job 1, the oldest ended, goes; job 2 stays.
        logs.write(&driver(3), Stream::Stdout, &line);
        assert_eq!(logs.job_log(1, 0).0, "");
        assert_eq!(logs.job_log(2, 0).0.len(), 40);
        assert_eq!(logs.total_bytes(), 80);
        // Then job 2; then, with no ended job left, job 3's new output is
        // dropped, and the total never passes the limit.
        for _ in 0..3 {
            logs.write(&driver(3), Stream::Stdout, &line);
        }
        assert_eq!(logs.job_log(2, 0).0, "");
        assert_eq!(logs.job_log(3, 0).0.len(), 80);
        assert!(logs.total_bytes() <= 100);
        logs.forget_job(3);
        assert_eq!(logs.total_bytes(), 0);
    }
}
