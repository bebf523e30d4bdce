//! Guest output kept for the state API: recent lines, searchable, and each
//! job's whole log for `wray job logs`.
//!
//! Memory is bounded three ways: the searchable lines (100,000), one job's
//! log (64 MiB; past it output is counted, not kept), and all jobs' logs
//! together ([`LogStore::with_total_limit`], 256 MiB by default). When the
//! total would pass its limit, the logs of ended jobs go first, oldest job
//! first (a trimmed log reads as empty); only when no ended job has any
//! left is a running job's new output dropped.

use super::types::{LogLine, LogStream};
use crate::events::unix_ms;
use crate::output::{OutputSink, OutputSource, SourceKind, Stream};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Lines kept for searching, across jobs.
const LINES: usize = 100_000;
/// Bytes of one job's log kept; output past it is counted, not kept.
const JOB_LOG: usize = 64 << 20;
/// Bytes of all jobs' logs kept, by default.
pub const DEFAULT_TOTAL_LOGS: usize = 256 << 20;

#[derive(Default)]
struct JobLog {
    text: String,
    /// Bytes not kept: past a limit, or trimmed once the job ended.
    dropped: usize,
    ended: bool,
}

#[derive(Default)]
struct Inner {
    lines: VecDeque<LogLine>,
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
        let name = job_name(job);
        let mut g = self.lock();
        if let Some(log) = g.jobs.remove(&job) {
            g.total -= log.text.len();
        }
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
        let piece = if source.is_driver() {
            text.to_string()
        } else {
            format!("({label}) {text}")
        };
        let own = g.jobs.get(&source.job).map_or(0, |l| l.text.len());
        let kept = own + piece.len() <= JOB_LOG && g.make_room(piece.len(), self.total_limit);
        let log = g.jobs.entry(source.job).or_default();
        if kept {
            log.text.push_str(&piece);
            g.total += piece.len();
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
                    Stream::Stdout => LogStream::Stdout,
                    Stream::Stderr => LogStream::Stderr,
                },
                text: line.trim_end_matches(['\n', '\r']).to_string(),
            });
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
