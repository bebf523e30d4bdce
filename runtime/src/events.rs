//! What happened: a bounded record of every task and actor call, counters by
//! state, and per-function latency histograms.
//!
//! The scheduler and the actor loop report each call's lifecycle here
//! (submitted, started, ended); the state API, the dashboard, the metrics
//! and the timeline read it. One mutex guards the records: each event is an
//! update of a few nanoseconds, taken once per transition, never across an
//! `await`. The oldest records are dropped past
//! [`Builder::history`](crate::Builder::history); the counters are
//! cumulative and survive that.
//!
//! Readers never scan under that mutex. The records live in chunks of
//! 256 (`CHUNK`) behind `Arc`s, so a reader's snapshot (`Records`) is a copy of
//! a few hundred pointers (one per chunk, for 100,000 records), taken in
//! microseconds; it filters, counts and serialises after the lock is
//! released. A writer that finds its chunk shared with a snapshot still
//! alive copies that chunk first (`Arc::make_mut`), once per chunk and
//! snapshot: the records in a snapshot never change, and a writer waits
//! for a reader only while it copies those pointers.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wray_abi::wire::ErrorRecord;
use wray_abi::{ActorId, ErrorKind, TaskId};

/// Where a task or actor call is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Waiting for its arguments or a CPU slot.
    Pending,
    /// An attempt is running (computing, or waiting in `get`).
    Running,
    /// Done; its results are stored.
    Finished,
    /// Failed for good.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Answered from the memo table without running (a pure call whose
    /// result was stored before: `docs/memo.md`).
    Memoized,
}

/// How many states there are: the length of the counts by state.
pub const STATES: usize = 6;

impl TaskState {
    /// Every state, in lifecycle order.
    pub const ALL: [TaskState; STATES] = [
        TaskState::Pending,
        TaskState::Running,
        TaskState::Finished,
        TaskState::Failed,
        TaskState::Cancelled,
        TaskState::Memoized,
    ];

    /// The name the APIs use (`FINISHED`...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Running => "RUNNING",
            TaskState::Finished => "FINISHED",
            TaskState::Failed => "FAILED",
            TaskState::Cancelled => "CANCELLED",
            TaskState::Memoized => "MEMOIZED",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names, in any case.
    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    fn ended(self) -> bool {
        matches!(
            self,
            TaskState::Finished | TaskState::Failed | TaskState::Cancelled | TaskState::Memoized
        )
    }
}

/// What kind of call a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskKind {
    /// A remote function.
    Task,
    /// A method call on an actor.
    ActorMethod,
}

/// What became of a memoized call's result (`docs/memo.md`), for the task
/// list: whether it was answered from the memo table, stored in it, or why
/// not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoNote {
    /// Answered from the memo table; it did not run.
    Hit,
    /// It ran, and its result was stored.
    Stored,
    /// It ran and read the clock or random numbers: not stored.
    ReadClockOrRandom,
    /// It failed: not stored (its retries ran as usual).
    Failed,
    /// Its result holds object references: not stored.
    HoldsRefs,
    /// Its result is larger than the memo table: not stored.
    TooLarge,
}

impl MemoNote {
    /// The words the APIs use.
    pub fn as_str(self) -> &'static str {
        match self {
            MemoNote::Hit => "hit",
            MemoNote::Stored => "stored",
            MemoNote::ReadClockOrRandom => "not stored: it read the clock or random numbers",
            MemoNote::Failed => "not stored: it failed",
            MemoNote::HoldsRefs => "not stored: its result holds object references",
            MemoNote::TooLarge => "not stored: its result is larger than the memo table",
        }
    }
}

/// One task or actor call, as recorded.
#[derive(Clone, Debug)]
pub struct TaskRecord {
    /// Its id.
    pub id: TaskId,
    /// The function, or `Class.method`.
    pub function: Arc<str>,
    /// A task or an actor method.
    pub kind: TaskKind,
    /// The job (driver run) it belongs to; 0 for the host's own work.
    pub job: u64,
    /// The task that submitted it, if a task did.
    pub parent: Option<TaskId>,
    /// The actor it was called on.
    pub actor: Option<ActorId>,
    /// Where it is in its life.
    pub state: TaskState,
    /// Attempts started.
    pub attempts: u32,
    /// When it was submitted, started its last attempt, and ended:
    /// microseconds since the runtime started (0: not yet).
    pub submitted_us: u64,
    /// See `submitted_us`.
    pub started_us: u64,
    /// See `submitted_us`.
    pub ended_us: u64,
    /// The worker thread that ran its last attempt (from 0).
    pub worker: u32,
    /// The other node of the cluster its last attempt was placed on, if
    /// any (`None`: this node).
    pub node: Option<u32>,
    /// Why it failed.
    pub error: Option<Arc<ErrorRecord>>,
    /// Why its last attempt that was retried failed (kept when a later
    /// attempt succeeds).
    pub retried: Option<Arc<ErrorRecord>>,
    /// For a memoized call: answered from the memo table, stored, or why not.
    pub memo: Option<MemoNote>,
}

/// Latency buckets of the per-function histograms, in seconds (Prometheus
/// `le` bounds; the last bucket, `+Inf`, is implicit).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 10.0,
];

/// Run times of one function's finished attempts.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Cumulative counts per bound of [`LATENCY_BUCKETS`].
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    /// All observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (b, le) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= le {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Records per chunk: a snapshot costs one `Arc` per chunk, and a write to
/// a chunk a snapshot shares copies this many records.
const CHUNK: usize = 256;

/// A run of [`CHUNK`] slots, shared with the snapshots taken since it was
/// last written.
type Chunk = Arc<[Option<TaskRecord>]>;

fn empty_chunk() -> Chunk {
    std::iter::repeat_with(|| None).take(CHUNK).collect()
}

/// The records, by sequence number: ids are handed out in order (tasks and
/// actors share the counter, so some slots stay empty), so a record is
/// found by subtraction, with no hashing on the per-task path.
///
/// The window of slots starts at `head` in `chunks[0]` and is `len` slots
/// long; slots past it are empty, and those before `head` in the first
/// chunk are dropped records, gone with their chunk.
#[derive(Default)]
struct Inner {
    /// The sequence number of the window's first slot.
    base: u64,
    head: usize,
    len: usize,
    chunks: VecDeque<Chunk>,
    /// Calls in each state now (pending, running) or ever (the ended ones).
    counts: [u64; STATES],
    latency: FxHashMap<Arc<str>, Histogram>,
}

impl Inner {
    /// Slot `i` of the window, to write (copying its chunk first if a
    /// snapshot shares it).
    fn slot_mut(&mut self, i: usize) -> &mut Option<TaskRecord> {
        let p = self.head + i;
        &mut Arc::make_mut(&mut self.chunks[p / CHUNK])[p % CHUNK]
    }

    fn get_mut(&mut self, id: TaskId) -> Option<&mut TaskRecord> {
        let i = usize::try_from(id.seq().checked_sub(self.base)?).ok()?;
        if i >= self.len {
            return None;
        }
        let p = self.head + i;
        // Read before writing: an id outside the records (an actor's, or
        // a dropped one) must not copy a shared chunk.
        self.chunks[p / CHUNK][p % CHUNK].as_ref()?;
        self.slot_mut(i).as_mut()
    }

    /// Makes the window `len` slots long (the new ones empty).
    fn grow(&mut self, len: usize) {
        while self.chunks.len() * CHUNK < self.head + len {
            self.chunks.push_back(empty_chunk());
        }
        self.len = self.len.max(len);
    }

    /// Drops every slot.
    fn clear(&mut self) {
        while self.len > 0 {
            self.pop();
        }
    }

    /// Drops the oldest slot.
    fn pop(&mut self) {
        if let Some(r) = &self.chunks[0][self.head]
            && !r.state.ended()
        {
            self.counts[r.state as usize] -= 1;
        }
        self.base += 1;
        self.head += 1;
        self.len -= 1;
        if self.head == CHUNK {
            self.chunks.pop_front();
            self.head = 0;
        }
    }

    #[cfg(any(feature = "node", test))] // read by the node only
    fn snapshot(&self) -> Records {
        Records {
            chunks: self.chunks.iter().cloned().collect(),
            head: self.head,
            len: self.len,
        }
    }
}

/// The records as they were when it was taken, oldest first: read without
/// holding the lock of [`Events`], and cheap to take (see the module docs).
#[cfg(any(feature = "node", test))] // read by the node only
pub(crate) struct Records {
    chunks: Vec<Chunk>,
    head: usize,
    len: usize,
}

#[cfg(any(feature = "node", test))] // read by the node only
impl Records {
    /// Every record, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &TaskRecord> {
        let end = self.head + self.len;
        self.chunks
            .iter()
            .enumerate()
            .flat_map(move |(k, c)| {
                let from = if k == 0 { self.head } else { 0 };
                let to = end.saturating_sub(k * CHUNK).min(CHUNK);
                c[from.min(to)..to].iter()
            })
            .filter_map(Option::as_ref)
    }
}

/// The runtime's record of calls (see the module docs).
pub(crate) struct Events {
    /// Jobs standing here for a program's job (a call or actor another
    /// node placed here): the calls made within them are listed under
    /// the program's. `any_programs` is set once there were some, so a
    /// node alone never looks them up on the per-call path.
    programs: dashmap::DashMap<u64, u64>,
    any_programs: std::sync::atomic::AtomicBool,
    started: Instant,
    #[cfg_attr(not(feature = "node"), allow(dead_code))] // read by the node only
    started_unix_ms: u64,
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Events {
    pub fn new(capacity: usize) -> Events {
        Events {
            programs: Default::default(),
            any_programs: Default::default(),
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            capacity,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Microseconds since the runtime started.
    pub fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Milliseconds since the Unix epoch of a `*_us` time (0 stays 0).
    #[cfg(feature = "node")] // read by the node only
    pub fn unix_ms(&self, us: u64) -> u64 {
        if us == 0 {
            0
        } else {
            self.started_unix_ms + us / 1000
        }
    }

    /// When the runtime started, in milliseconds since the Unix epoch.
    #[cfg(feature = "node")] // read by the node only
    pub fn started_unix_ms(&self) -> u64 {
        self.started_unix_ms
    }

    /// Lists the calls made within `job` under job `program` (none: 0).
    #[cfg_attr(not(feature = "node"), allow(dead_code))] // set by the node only
    pub fn stand_for(&self, job: u64, program: u64) {
        if program == 0 {
            self.programs.remove(&job);
        } else {
            self.programs.insert(job, program);
            self.any_programs.store(true, Ordering::Relaxed);
        }
    }

    /// The job whose program `job` stands for here: `job` itself unless
    /// it stands for another's ([`stand_for`](Self::stand_for)).
    pub fn program(&self, job: u64) -> u64 {
        if !self.any_programs.load(Ordering::Relaxed) {
            return job;
        }
        self.programs.get(&job).map_or(job, |p| *p)
    }

    /// A call was submitted.
    pub fn submitted(
        &self,
        id: TaskId,
        function: Arc<str>,
        kind: TaskKind,
        job: u64,
        parent: Option<TaskId>,
        actor: Option<ActorId>,
    ) {
        self.record(id, function, kind, job, parent, actor, TaskState::Pending);
    }

    /// A task was answered from the memo table as it was submitted: one
    /// record, already ended, under one lock.
    pub fn memoized(&self, id: TaskId, function: Arc<str>, job: u64, parent: Option<TaskId>) {
        self.record(
            id,
            function,
            TaskKind::Task,
            job,
            parent,
            None,
            TaskState::Memoized,
        );
    }

    #[allow(clippy::too_many_arguments)] // a record's fields
    fn record(
        &self,
        id: TaskId,
        function: Arc<str>,
        kind: TaskKind,
        job: u64,
        parent: Option<TaskId>,
        actor: Option<ActorId>,
        state: TaskState,
    ) {
        let now = self.now_us();
        let memoized = state == TaskState::Memoized;
        // A call made within a call placed here is its program's; the
        // call placed here stays under the job standing for it.
        let job = match parent {
            Some(_) => self.program(job),
            None => job,
        };
        let rec = TaskRecord {
            id,
            function,
            kind,
            job,
            parent,
            actor,
            state,
            attempts: 0,
            submitted_us: now,
            started_us: 0,
            ended_us: if memoized { now } else { 0 },
            worker: 0,
            node: None,
            error: None,
            retried: None,
            memo: memoized.then_some(MemoNote::Hit),
        };
        let seq = id.seq();
        let mut g = self.lock();
        if g.len == 0 {
            g.base = seq;
        }
        let Some(i) = seq.checked_sub(g.base) else {
            // Older than every record kept: already dropped.
            return;
        };
        // Far ahead (many actors made meanwhile): every record kept is
        // older than the window that starts here.
        if i >= 2 * self.capacity as u64 {
            g.clear();
            g.base = seq;
        }
        let i = (seq - g.base) as usize;
        g.grow(i + 1);
        g.counts[state as usize] += 1;
        *g.slot_mut(i) = Some(rec);
        while g.len > self.capacity {
            g.pop();
        }
    }

    /// An attempt of call `id` started on this thread.
    pub fn started(&self, id: TaskId) {
        let now = self.now_us();
        let worker = worker_index();
        let mut g = self.lock();
        let Some(r) = g.get_mut(id) else {
            return;
        };
        let from = r.state;
        r.state = TaskState::Running;
        r.attempts += 1;
        r.started_us = now;
        r.worker = worker;
        g.counts[from as usize] -= 1;
        g.counts[TaskState::Running as usize] += 1;
    }

    /// The attempt of `id` starting now runs on node `node` of the
    /// cluster (`None`: here).
    pub fn placed(&self, id: TaskId, node: Option<u32>) {
        let mut g = self.lock();
        if let Some(r) = g.get_mut(id) {
            r.node = node;
        }
    }

    /// An attempt that failed (`why`) will be tried again.
    pub fn retrying(&self, id: TaskId, why: &ErrorRecord) {
        let mut g = self.lock();
        if let Some(r) = g.get_mut(id)
            && r.state == TaskState::Running
        {
            r.retried = Some(Arc::new(why.clone()));
            r.state = TaskState::Pending;
            g.counts[TaskState::Running as usize] -= 1;
            g.counts[TaskState::Pending as usize] += 1;
        }
    }

    /// Call `id` ended: finished, or failed with `error`.
    pub fn ended(&self, id: TaskId, error: Option<&ErrorRecord>) {
        self.ended_noting(id, error, None);
    }

    /// Call `id` ended, and `memo` says what became of its result in the
    /// memo table ([`MemoNote::Hit`]: answered from it, so `Memoized`).
    pub fn ended_noting(&self, id: TaskId, error: Option<&ErrorRecord>, memo: Option<MemoNote>) {
        let now = self.now_us();
        let state = match error {
            None if memo == Some(MemoNote::Hit) => TaskState::Memoized,
            None => TaskState::Finished,
            Some(e) if e.kind == ErrorKind::Cancelled => TaskState::Cancelled,
            Some(_) => TaskState::Failed,
        };
        let mut g = self.lock();
        g.counts[state as usize] += 1;
        let Some(r) = g.get_mut(id) else {
            return;
        };
        let from = r.state;
        r.state = state;
        r.ended_us = now;
        r.error = error.map(|e| Arc::new(e.clone()));
        r.memo = memo;
        let ran = (r.started_us > 0).then(|| now.saturating_sub(r.started_us));
        let function = r.function.clone();
        g.counts[from as usize] -= 1;
        if let (Some(us), None, false) = (ran, error, state == TaskState::Memoized) {
            g.latency
                .entry(function)
                .or_default()
                .observe(us as f64 / 1e6);
        }
    }

    /// Calls in each state ([`TaskState::ALL`] order): now, for pending and
    /// running; since the start, for the others.
    pub fn counts(&self) -> [u64; STATES] {
        self.lock().counts
    }

    /// The records now, to read without the lock (see the module docs).
    #[cfg(any(feature = "node", test))] // read by the node only
    pub fn records(&self) -> Records {
        self.lock().snapshot()
    }

    /// The records `keep` accepts, newest first, after skipping `offset`
    /// of them, at most `limit`; and how many it accepted in all.
    #[cfg(any(feature = "node", test))] // read by the node only
    pub fn tasks(
        &self,
        mut keep: impl FnMut(&TaskRecord) -> bool,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<TaskRecord>) {
        let records = self.records();
        let mut total = 0;
        let mut out = Vec::new();
        for r in records.iter().rev() {
            if keep(r) {
                if total >= offset && out.len() < limit {
                    out.push(r.clone());
                }
                total += 1;
            }
        }
        (total, out)
    }

    /// The per-function latency histograms.
    #[cfg(any(feature = "node", test))] // read by the node only
    pub fn latency(&self) -> Vec<(Arc<str>, Histogram)> {
        let g = self.lock();
        let mut v: Vec<_> = g
            .latency
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A small number naming the current thread (for the timeline's rows).
fn worker_index() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    thread_local! {
        static INDEX: Cell<u32> = const { Cell::new(u32::MAX) };
    }
    INDEX.with(|i| {
        if i.get() == u32::MAX {
            i.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        i.get()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TaskId {
        TaskId::new(0, n)
    }

    #[test]
    fn states_are_counted_through_the_lifecycle() {
        let ev = Events::new(10);
        ev.submitted(id(1), "f".into(), TaskKind::Task, 1, None, None);
        ev.submitted(id(2), "f".into(), TaskKind::Task, 1, Some(id(1)), None);
        assert_eq!(ev.counts(), [2, 0, 0, 0, 0, 0]);
        ev.started(id(1));
        let lost = ErrorRecord::new(ErrorKind::WorkerFailure, "f", "its node left");
        ev.retrying(id(1), &lost);
        ev.started(id(1));
        assert_eq!(ev.counts(), [1, 1, 0, 0, 0, 0]);
        ev.ended(id(1), None);
        let cancelled = ErrorRecord::new(ErrorKind::Cancelled, "f", "x");
        ev.ended(id(2), Some(&cancelled));
        assert_eq!(ev.counts(), [0, 0, 1, 0, 1, 0]);
        let (total, recs) = ev.tasks(|_| true, 0, 10);
        assert_eq!(total, 2);
        assert_eq!(recs[0].id, id(2), "newest first");
        assert_eq!(recs[1].attempts, 2);
        assert_eq!(recs[1].state, TaskState::Finished);
        assert!(recs[1].error.is_none());
        let retried = recs[1].retried.as_deref().map(|e| e.kind);
        assert_eq!(
            retried,
            Some(ErrorKind::WorkerFailure),
            "kept once it succeeded"
        );
        assert_eq!(ev.latency()[0].1.count, 1);
    }

    #[test]
    fn memo_hits_are_their_own_state() {
        let ev = Events::new(10);
        ev.memoized(id(1), "f".into(), 1, None);
        ev.submitted(id(2), "f".into(), TaskKind::Task, 1, None, None);
        ev.ended_noting(id(2), None, Some(MemoNote::Hit));
        ev.submitted(id(3), "f".into(), TaskKind::Task, 1, None, None);
        ev.started(id(3));
        ev.ended_noting(id(3), None, Some(MemoNote::ReadClockOrRandom));
        assert_eq!(ev.counts(), [0, 0, 1, 0, 0, 2]);
        let (_, recs) = ev.tasks(|_| true, 0, 10);
        assert_eq!(recs[2].state, TaskState::Memoized);
        assert_eq!(recs[2].memo, Some(MemoNote::Hit));
        assert_eq!(recs[2].ended_us, recs[2].submitted_us);
        assert_eq!(recs[1].state, TaskState::Memoized);
        assert_eq!(recs[0].state, TaskState::Finished);
        assert_eq!(recs[0].memo, Some(MemoNote::ReadClockOrRandom));
        assert_eq!(ev.latency()[0].1.count, 1, "only the call that ran");
    }

    #[test]
    fn a_snapshot_keeps_what_it_saw_while_writers_go_on() {
        let ev = Events::new(1000);
        let n = 2 * CHUNK as u64 + 10;
        for i in 1..=n {
            ev.submitted(id(i), "f".into(), TaskKind::Task, 1, None, None);
        }
        let before = ev.records();
        for i in 1..=n {
            ev.started(id(i));
            ev.ended(id(i), None);
        }
        ev.submitted(id(n + 1), "f".into(), TaskKind::Task, 1, None, None);
        assert_eq!(before.iter().count() as u64, n);
        assert!(before.iter().all(|r| r.state == TaskState::Pending));
        let after = ev.records();
        let finished = after.iter().filter(|r| r.state == TaskState::Finished);
        assert_eq!(finished.count() as u64, n);
        assert_eq!(after.iter().next_back().unwrap().id, id(n + 1));
    }

    #[test]
    fn the_window_crosses_chunks_as_the_oldest_records_go() {
        let cap = CHUNK + CHUNK / 2;
        let ev = Events::new(cap);
        let n = 4 * CHUNK as u64 + 7;
        // Every third id is another kind of call's: its slot stays empty.
        let kept = |i: &u64| !i.is_multiple_of(3);
        for i in (1..=n).filter(kept) {
            ev.submitted(id(i), "f".into(), TaskKind::Task, 1, None, None);
        }
        let records = ev.records();
        let seqs: Vec<u64> = records.iter().map(|r| r.id.seq()).collect();
        let want: Vec<u64> = (n - cap as u64 + 1..=n).filter(kept).collect();
        assert_eq!(seqs, want);
        let newest_first: Vec<u64> = records.iter().rev().map(|r| r.id.seq()).collect();
        assert_eq!(newest_first, want.into_iter().rev().collect::<Vec<_>>());
        assert_eq!(
            ev.counts()[0],
            seqs.len() as u64,
            "dropped records left the count"
        );
    }

    #[test]
    fn the_oldest_records_go_past_the_capacity() {
        let ev = Events::new(3);
        for n in 1..=5 {
            ev.submitted(id(n), "f".into(), TaskKind::Task, 1, None, None);
        }
        let (total, recs) = ev.tasks(|_| true, 0, 10);
        assert_eq!(total, 3);
        assert_eq!(recs.last().unwrap().id, id(3));
        // Dropped pending records leave the pending count.
        assert_eq!(ev.counts()[0], 3);
        // A dropped record's end still counts.
        ev.ended(id(1), None);
        assert_eq!(ev.counts()[2], 1);
        let (total, page) = ev.tasks(|r| r.id != id(4), 1, 1);
        assert_eq!((total, page[0].id), (2, id(3)));
        // Out of order and far ahead.
        ev.submitted(id(2), "f".into(), TaskKind::Task, 1, None, None);
        assert_eq!(ev.tasks(|_| true, 0, 10).0, 3, "too old to keep");
        ev.submitted(id(1000), "f".into(), TaskKind::Task, 1, None, None);
        ev.submitted(id(1001), "f".into(), TaskKind::Task, 1, None, None);
        let (total, recs) = ev.tasks(|_| true, 0, 10);
        assert_eq!((total, recs[0].id, recs[1].id), (2, id(1001), id(1000)));
        assert_eq!(
            ev.counts()[0],
            2,
            "the dropped pending records left the count"
        );
    }
}
