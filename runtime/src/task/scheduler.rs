//! Tasks: submission, dependency resolution, CPU slots, attempts, retries.
//!
//! The per-task path is: [`submit_task`] names the return objects (pending)
//! and queues the task for its slots as data; once they are granted, [`run`]
//! runs it (a task whose arguments are not ready is spawned at once and
//! queues when they are); `run` runs one attempt in a fresh instance
//! ([`execute`]); the outcome resolves the return objects and wakes their
//! waiters. The slots an attempt releases as its store is dropped usually go
//! to the next task in line: that task is handed to the same `run`, which
//! runs it next ([`Next`]), so a line of tasks costs one tokio task per
//! worker, not one per task. Only a grant made elsewhere (a task submitted
//! while a slot is free, a slot given back by a `get`) spawns a `run`.
//!
//! Two global locks are on that path, each held for a few field updates and
//! never across an `await`: the slot dispatcher's and the call record's
//! (`events`).
//!
//! # Task lifecycle
//!
//! `pending` (waiting for arguments) -> `queued` (waiting for a CPU slot) ->
//! `running` -> finished or failed, with a failed attempt going back to
//! `queued` while retries remain. A task whose argument failed never runs: it
//! fails with [`ErrorKind::DependencyFailed`] and the cause chained. A
//! cancelled task never runs, or is interrupted, and is not retried.
//!
//! # Retries (Ray's rules)
//!
//! System failures ([`ErrorKind::is_system_failure`]) are retried up to
//! `max_retries` times (default 3; -1 without limit). Guest failures (errors,
//! panics, traps, limits) are retried only when `retry_exceptions` is set,
//! within the same budget. Every attempt runs in a fresh instance.

use crate::api::runtime::Shared;
use crate::config::Config;
use crate::events::TaskKind;
use crate::exec::instance::{self, CancelToken, InstanceSpec, InstanceState, Origin};
use crate::exec::module::{Code, Module};
use crate::exec::slots::{Grant, Need};
use crate::objects::blob::{Blob, Bytes};
use crate::objects::store::{Entry, Lineage, Resolved};
use crate::output::{OutputSource, SourceKind};
use dashmap::DashMap;
use rustc_hash::FxBuildHasher;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use wasmtime::{ModuleExport, Store};
use wray_abi::wire::{self, ErrorRecord, Options, TaskSpec};
use wray_abi::{ErrorKind, ObjectId, Status, TaskId, export};

/// Most return values one task may have.
pub(crate) const MAX_RETURNS: u32 = 16;
/// Inline argument values at least this large are stored as objects, by
/// content: passing the same large value to many tasks stores it once.
pub(crate) const INLINE_PUT_MIN: usize = 64 << 10;

/// Largest task spec a guest may submit.
pub(crate) fn max_spec_len(config: &Config) -> usize {
    config.max_object_size.saturating_add(1 << 20)
}

/// An argument as the task will receive it.
pub(crate) enum TaskArg {
    /// A value passed inline.
    Value(Arc<Blob>),
    /// An object whose value is resolved before the task runs.
    Ref(ObjectId),
}

/// Object references held on behalf of someone (a pending task), released
/// when dropped.
pub(crate) struct HeldRefs {
    rt: Arc<Shared>,
    ids: Vec<ObjectId>,
}

impl HeldRefs {
    pub fn new(rt: &Arc<Shared>) -> HeldRefs {
        HeldRefs {
            rt: rt.clone(),
            ids: Vec::new(),
        }
    }

    /// Takes a new reference to `id`; false if the object does not exist.
    pub fn retain(&mut self, id: ObjectId) -> bool {
        let ok = self.rt.objects.retain(&id);
        if ok {
            self.ids.push(id);
        }
        ok
    }

    /// Takes over a reference already counted for us.
    pub fn adopt(&mut self, id: ObjectId) {
        self.ids.push(id);
    }
}

impl Drop for HeldRefs {
    fn drop(&mut self) {
        self.rt.objects.release_all(&self.ids);
    }
}

/// A task's retry, time and memory policy, defaults applied.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub max_retries: i32,
    pub retry_exceptions: bool,
    pub timeout: Option<Duration>,
    pub memory_limit: u64,
    /// Results may be made again even if the task reads a clock or random
    /// numbers.
    pub allow_recompute: bool,
}

impl Policy {
    pub fn new(options: &Options, config: &Config) -> Policy {
        Policy {
            max_retries: options.max_retries.unwrap_or(config.max_retries),
            retry_exceptions: options.retry_exceptions.unwrap_or(false),
            timeout: options
                .timeout_ms
                .map(Duration::from_millis)
                .or(config.task_timeout),
            memory_limit: options
                .memory_limit
                .unwrap_or(config.memory_limit)
                .min(crate::exec::engine::MAX_WASM32_MEMORY),
            allow_recompute: options.allow_recompute.unwrap_or(false),
        }
    }

    /// Whether a failed attempt number `attempt` (from 1) is tried again.
    fn retries(&self, rec: &ErrorRecord, attempt: u32) -> bool {
        let retryable = match rec.kind {
            ErrorKind::Cancelled | ErrorKind::DependencyFailed | ErrorKind::InvalidModule => false,
            k if k.is_system_failure() => true,
            _ => self.retry_exceptions,
        };
        retryable && (self.max_retries < 0 || attempt <= self.max_retries as u32)
    }
}

/// What a caller asks to run: everything but where.
pub(crate) struct Submission {
    /// The function (the module's shared copy of the name, when it has one).
    pub function: Arc<str>,
    pub args: Vec<TaskArg>,
    /// The objects the arguments name, held until the task ends.
    pub _held: HeldRefs,
    pub num_returns: u32,
    pub options: Options,
    pub parent: Option<TaskId>,
    /// 1 for tasks submitted by a driver or the host, parent's depth + 1
    /// for nested ones.
    pub depth: u32,
    /// The job the submitter belongs to (0: the host).
    pub job: u64,
}

impl Submission {
    /// A submission from the host: one result, default depth, no parent,
    /// no job.
    pub fn host(function: Arc<str>, args: Vec<TaskArg>, held: HeldRefs, options: Options) -> Self {
        Submission {
            function,
            args,
            _held: held,
            num_returns: 1,
            options,
            parent: None,
            depth: 1,
            job: 0,
        }
    }

    /// Builds a submission from a guest's spec, holding every object it
    /// names. Fails with the status to return to the guest.
    pub fn from_guest(spec: &TaskSpec<'_>, st: &mut InstanceState) -> Result<Submission, Status> {
        let rt = st.rt.clone();
        let mut held = HeldRefs::new(&rt);
        let mut args = Vec::with_capacity(spec.args.len());
        for arg in &spec.args {
            match *arg {
                wire::Arg::Value { bytes, refs } => {
                    if bytes.len() > rt.config.max_object_size {
                        return Err(Status::TooLarge);
                    }
                    let contained: Vec<ObjectId> = refs
                        .chunks_exact(ObjectId::LEN)
                        .map(|c| ObjectId::from_slice(c).expect("chunks have the id's length"))
                        .collect();
                    for id in &contained {
                        if !st.refs.knows(id) || !held.retain(*id) {
                            return Err(Status::NotFound);
                        }
                    }
                    let blob = rt.objects.blob(bytes, contained);
                    if bytes.len() >= INLINE_PUT_MIN {
                        let id = rt.objects.put(blob);
                        held.adopt(id);
                        args.push(TaskArg::Ref(id));
                    } else {
                        args.push(TaskArg::Value(blob));
                    }
                }
                wire::Arg::Ref(id) => {
                    if !st.refs.knows(&id) || !held.retain(id) {
                        return Err(Status::NotFound);
                    }
                    args.push(TaskArg::Ref(id));
                }
            }
        }
        let function = match st.module.task(spec.function) {
            Some((name, _)) => name,
            None => spec.function.into(),
        };
        Ok(Submission {
            function,
            args,
            _held: held,
            num_returns: spec.num_returns,
            options: spec.options.clone(),
            parent: st.origin.task,
            depth: st.origin.depth + 1,
            job: st.origin.job,
        })
    }
}

/// What the runtime knows of a task (or actor call) that has not finished.
pub(crate) struct TaskHandle {
    pub cancel: Arc<CancelToken>,
    children: Children,
    /// Whether this is an actor call (its instance is the actor's).
    pub actor_call: bool,
    /// The job it belongs to.
    pub job: u64,
    /// The task while it waits as data for its first slots, taken by
    /// whoever spawns its `run`: its start when the slots are granted, or
    /// a cancel, so that it fails at once instead of when its turn comes.
    queued: Mutex<Option<Weak<Task>>>,
}

impl TaskHandle {
    pub fn new(actor_call: bool, job: u64) -> TaskHandle {
        TaskHandle {
            cancel: Arc::new(CancelToken::default()),
            children: Children::default(),
            actor_call,
            job,
            queued: Mutex::new(None),
        }
    }

    /// Takes the right to spawn the task queued as data: `Some` once.
    fn claim(&self) -> Option<Weak<Task>> {
        self.queued.lock().expect("not poisoned").take()
    }

    /// Cancels the call; a task waiting as data for its slots is spawned
    /// now, and fails at once.
    pub fn cancel_task(&self, rt: &Arc<Shared>) {
        self.cancel.cancel();
        if let Some(task) = self.claim().as_ref().and_then(Weak::upgrade) {
            rt.spawner.spawn(run(rt.clone(), task, None));
        }
    }
}

/// The tasks a task submitted, for a recursive cancel.
///
/// A finished child's handle is dropped, and its entry is pruned when the
/// list would grow: a driver that submits tasks for hours keeps only the
/// ones still alive, and each submission still costs O(1) amortized (the
/// list doubles when pruning frees less than half of it).
#[derive(Default)]
struct Children(Mutex<Vec<(TaskId, Weak<TaskHandle>)>>);

impl Children {
    fn push(&self, id: TaskId, child: &Arc<TaskHandle>) {
        let mut v = self.0.lock().expect("not poisoned");
        if v.len() == v.capacity() {
            v.retain(|(_, c)| c.strong_count() > 0);
            if v.len() >= v.capacity() / 2 {
                let more = v.capacity().max(4);
                v.reserve_exact(more);
            }
        }
        v.push((id, Arc::downgrade(child)));
    }

    /// The children whose handles are still alive. A finished task's
    /// handle can outlive it (its results may keep it, to make them
    /// again), so the caller looks each up in the task table.
    fn ids(&self) -> Vec<TaskId> {
        let v = self.0.lock().expect("not poisoned");
        v.iter()
            .filter(|(_, c)| c.strong_count() > 0)
            .map(|(id, _)| *id)
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
}

/// Tasks that have not finished, by id.
pub(crate) type TaskTable = DashMap<TaskId, Arc<TaskHandle>, FxBuildHasher>;

/// Submits a task of `module`; returns the ids of its return values, each
/// held once on the caller's behalf.
pub(crate) fn submit_task(rt: &Arc<Shared>, module: Module, sub: Submission) -> Vec<ObjectId> {
    let id = rt.ids.next_task();
    let returns: Vec<ObjectId> = (0..sub.num_returns)
        .map(|i| ObjectId::for_return(id, i))
        .collect();
    for r in &returns {
        rt.objects.create_pending(*r);
    }
    rt.events.submitted(
        id,
        sub.function.clone(),
        TaskKind::Task,
        sub.job,
        sub.parent,
        None,
    );
    // A call that cannot run fails at once, without entering the table.
    let refuse = |rec: ErrorRecord| {
        rt.events.ended(id, Some(&rec));
        fail_all(rt, &returns, rec);
        returns.clone()
    };
    let Some((function, export)) = module.task(&sub.function) else {
        return refuse(ErrorRecord::new(
            ErrorKind::InvalidModule,
            &*sub.function,
            format!(
                "module `{}` has no remote function `{}` (no export `{}{}`)",
                module.name(),
                sub.function,
                export::TASK_PREFIX,
                sub.function
            ),
        ));
    };
    let max_depth = rt.config.max_call_depth();
    if sub.depth > max_depth {
        return refuse(ErrorRecord::new(
            ErrorKind::CallDepth,
            &*function,
            format!(
                "nested {} deep, past the limit of {max_depth} (half the {} call slots, \
                 each held by a parent waiting on its child): recurse less deeply, or raise \
                 --call-slots",
                sub.depth, rt.config.call_slots
            ),
        ));
    }
    let sub = Submission { function, ..sub };
    let handle = Arc::new(TaskHandle::new(false, sub.job));
    if let Some(parent) = sub.parent.and_then(|p| rt.tasks.get(&p)) {
        parent.children.push(id, &handle);
    }
    rt.tasks.insert(id, handle.clone());
    let task = Arc::new(Task::new(
        rt,
        id,
        module,
        export,
        returns.clone(),
        handle,
        sub,
    ));
    // Tasks whose arguments have values join the CPU queue now, as data
    // (nothing is spawned until their slots are granted), so they start in
    // submission order; the others join when their arguments are ready.
    let ready = task.sub.args.iter().all(|a| match a {
        TaskArg::Value(_) => true,
        TaskArg::Ref(id) => rt
            .objects
            .get(id)
            .is_some_and(|e| matches!(e.state(), Some(Resolved::Ready(_)))),
    });
    if ready {
        let (need, depth) = (task.need(), task.sub.depth);
        *task.handle.queued.lock().expect("not poisoned") = Some(Arc::downgrade(&task));
        let rt2 = rt.clone();
        let start = move |grant: Grant| {
            // Cancelled meanwhile, it was spawned then: the grant goes back.
            if task.handle.claim().is_none() {
                return Some(grant);
            }
            start_granted(rt2, Next { task, grant });
            None
        };
        rt.slots.start(need, depth, Box::new(start));
    } else {
        tokio::spawn(run(rt.clone(), task, None));
    }
    returns
}

/// Cancels the task that makes object `id` (and, if `recursive`, the tasks
/// it submitted). False when no unfinished task makes it.
pub(crate) fn cancel(rt: &Arc<Shared>, id: &ObjectId, recursive: bool) -> bool {
    let Some((task, _)) = id.task_return() else {
        return false;
    };
    let mut work = vec![task];
    let mut found = false;
    while let Some(t) = work.pop() {
        let Some(h) = rt.tasks.get(&t).map(|h| h.clone()) else {
            continue;
        };
        found = true;
        h.cancel_task(rt);
        if recursive {
            work.extend(h.children.ids());
        }
    }
    found
}

impl Task {
    fn new(
        rt: &Shared,
        id: TaskId,
        module: Module,
        export: ModuleExport,
        returns: Vec<ObjectId>,
        handle: Arc<TaskHandle>,
        sub: Submission,
    ) -> Task {
        Task {
            id,
            module,
            export,
            returns,
            policy: Policy::new(&sub.options, &rt.config),
            handle,
            sub,
            deterministic: AtomicBool::new(false),
            recomputing: tokio::sync::Mutex::new(()),
        }
    }

    /// What the task needs to start: nested tasks may use the call slots
    /// kept from top-level ones.
    fn need(&self) -> Need {
        Need::task(self.sub.parent.is_some())
    }

    /// The error of a task cancelled before it ran.
    fn cancelled(&self) -> ErrorRecord {
        let mut rec = ErrorRecord::new(
            ErrorKind::Cancelled,
            &*self.sub.function,
            "the task was cancelled before it ran",
        );
        rec.task = self.id;
        rec
    }
}

fn fail_all(rt: &Shared, returns: &[ObjectId], rec: ErrorRecord) {
    let rec = Arc::new(rec);
    for r in returns {
        rt.objects.resolve(*r, Resolved::Failed(rec.clone()));
    }
}

/// A submitted task; once it succeeded, the lineage of its results.
pub(crate) struct Task {
    id: TaskId,
    module: Module,
    export: ModuleExport,
    returns: Vec<ObjectId>,
    policy: Policy,
    handle: Arc<TaskHandle>,
    sub: Submission,
    /// Whether its last successful attempt read no clock and no random
    /// numbers (so running it again gives the same bytes).
    deterministic: AtomicBool,
    /// Serializes recomputations of its results.
    recomputing: tokio::sync::Mutex<()>,
}

/// Runs a task to its end: arguments, attempts, results; then the tasks
/// handed to it as its last attempt ended, one after another.
/// `first`: the slots of its first attempt, when it was queued for them.
async fn run(rt: Arc<Shared>, task: Arc<Task>, first: Option<Grant>) {
    let (mut task, mut first) = (task, first);
    loop {
        let mut next = None;
        let outcome = run_attempts(&rt, &task, first, &mut next).await;
        conclude(&rt, &task, outcome);
        let Some(next) = next else { return };
        // A line of short tasks must not keep this worker from the rest
        // of its queue: yield once tokio's budget for this poll is spent.
        tokio::task::consume_budget().await;
        (task, first) = (next.task, Some(next.grant));
    }
}

/// A task granted its slots when the store of another task's finished
/// attempt was dropped (releasing them) on this thread: that task's
/// [`run`] runs it next, in the same tokio task, instead of spawning one
/// per task.
struct Next {
    task: Arc<Task>,
    grant: Grant,
}

thread_local! {
    /// `Some` while a finished attempt's store is dropped on this thread:
    /// room for one start its released slots grant.
    static HANDOFF: RefCell<Option<Option<Next>>> = const { RefCell::new(None) };
}

/// Drops a finished attempt's store, catching the start (if any) that its
/// released slots grant on this thread.
fn drop_catching_next(store: Store<InstanceState>) -> Option<Next> {
    /// Closes the window even if the drop panics.
    struct Window;
    impl Drop for Window {
        fn drop(&mut self) {
            HANDOFF.with_borrow_mut(|h| *h = None);
        }
    }
    HANDOFF.with_borrow_mut(|h| *h = Some(None));
    let _window = Window;
    instance::drop_store(store);
    HANDOFF.with_borrow_mut(|h| h.take().flatten())
}

/// Runs a task whose slots were granted: next on this thread if a finished
/// attempt's store is being dropped here (see [`drop_catching_next`]), on a
/// tokio task of its own otherwise.
fn start_granted(rt: Arc<Shared>, next: Next) {
    let refused = HANDOFF.with_borrow_mut(|h| match h {
        Some(room @ None) => {
            *room = Some(next);
            None
        }
        _ => Some(next),
    });
    if let Some(Next { task, grant }) = refused {
        let spawner = rt.spawner.clone();
        spawner.spawn(run(rt, task, Some(grant)));
    }
}

/// Records a task's end and stores its results (or its error).
fn conclude(rt: &Arc<Shared>, task: &Arc<Task>, outcome: Result<Finished, ErrorRecord>) {
    // Finished before its results are visible: whoever sees a result sees
    // the task done.
    rt.tasks.remove(&task.id);
    rt.events.ended(task.id, outcome.as_ref().err());
    match outcome {
        Ok(Finished {
            values,
            held,
            deterministic,
        }) => {
            task.deterministic.store(deterministic, Ordering::Relaxed);
            for (id, blob) in task.returns.iter().zip(values) {
                // A value that never leaves memory is never made again:
                // the task (and its arguments) can go now.
                if blob.spillable()
                    && let Some(entry) = rt.objects.get(id)
                {
                    entry.set_lineage(task.clone());
                }
                rt.objects.resolve(*id, Resolved::Ready(blob));
            }
            // The stored values now hold what they refer to.
            drop(held);
        }
        Err(rec) => fail_all(rt, &task.returns, rec),
    }
}

/// An argument ready for a call: its blob, and its bytes pinned in memory.
#[derive(Clone)]
pub(crate) struct ArgValue {
    pub blob: Arc<Blob>,
    pub bytes: Bytes,
}

/// An argument whose value exists (its bytes may be on disk, or lost).
pub(crate) struct ReadyArg {
    blob: Arc<Blob>,
    /// The object it came from; `None` for an inline value (never spilled).
    object: Option<(ObjectId, Arc<Entry>)>,
}

impl ReadyArg {
    /// The bytes if they are in memory, pinned there (no I/O).
    fn pinned(&self) -> Option<ArgValue> {
        Some(ArgValue {
            bytes: self.blob.loaded()?,
            blob: self.blob.clone(),
        })
    }

    /// The bytes, read back or made again if need be; pinned in memory.
    async fn load(
        &self,
        rt: &Arc<Shared>,
        i: usize,
        function: &str,
    ) -> Result<ArgValue, ErrorRecord> {
        let Some((id, entry)) = &self.object else {
            return Ok(self.pinned().expect("inline values are never spilled"));
        };
        let bytes = read(rt, id, entry, &self.blob).await.map_err(|cause| {
            let rec = ErrorRecord::new(
                ErrorKind::DependencyFailed,
                function,
                format!("argument {i} could not be read, so the call did not run"),
            );
            rec.caused_by(Arc::new(cause))
        })?;
        Ok(ArgValue {
            blob: self.blob.clone(),
            bytes,
        })
    }
}

/// Waits for every argument of `function` and reads it into memory.
pub(crate) async fn resolve_args(
    rt: &Arc<Shared>,
    args: &[TaskArg],
    function: &str,
) -> Result<Vec<ArgValue>, ErrorRecord> {
    let ready = ready_args(rt, args, function).await?;
    let mut out = Vec::with_capacity(ready.len());
    for (i, a) in ready.iter().enumerate() {
        out.push(a.load(rt, i, function).await?);
    }
    Ok(out)
}

/// Every argument, if each already has a value (the common case: no wait).
fn ready_now(rt: &Shared, args: &[TaskArg]) -> Option<Vec<ReadyArg>> {
    args.iter()
        .map(|arg| match arg {
            TaskArg::Value(blob) => Some(ReadyArg {
                blob: blob.clone(),
                object: None,
            }),
            TaskArg::Ref(id) => {
                let entry = rt.objects.get(id)?;
                let Some(Resolved::Ready(blob)) = entry.state() else {
                    return None;
                };
                Some(ReadyArg {
                    blob: blob.clone(),
                    object: Some((*id, entry.clone())),
                })
            }
        })
        .collect()
}

/// Waits until every argument of `function` has a value (without reading
/// it: a queued task pins nothing in memory).
async fn ready_args(
    rt: &Arc<Shared>,
    args: &[TaskArg],
    function: &str,
) -> Result<Vec<ReadyArg>, ErrorRecord> {
    let mut out = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        out.push(match arg {
            TaskArg::Value(blob) => ReadyArg {
                blob: blob.clone(),
                object: None,
            },
            TaskArg::Ref(id) => ready_arg(rt, id, i, function).await?,
        });
    }
    Ok(out)
}

/// Waits for argument `i` (the object `id`) of `function`: its value, or the
/// error the caller fails with (its cause chained).
async fn ready_arg(
    rt: &Arc<Shared>,
    id: &ObjectId,
    i: usize,
    function: &str,
) -> Result<ReadyArg, ErrorRecord> {
    let Some(entry) = rt.objects.get(id) else {
        let msg = format!("argument {i} (object {}) no longer exists", id.short());
        return Err(ErrorRecord::new(ErrorKind::ObjectLost, function, msg));
    };
    match entry.resolved().await {
        Resolved::Ready(blob) => Ok(ReadyArg {
            blob,
            object: Some((*id, entry)),
        }),
        Resolved::Failed(cause) => {
            let mut rec = ErrorRecord::new(
                ErrorKind::DependencyFailed,
                function,
                format!("argument {i} failed, so the call did not run"),
            );
            rec = rec.caused_by(cause);
            Err(rec)
        }
    }
}

/// `granted`, or the slots of `task` once its turn comes; fails if the
/// task is cancelled while it waits.
async fn slots_for(
    rt: &Arc<Shared>,
    task: &Task,
    granted: Option<Grant>,
) -> Result<Grant, ErrorRecord> {
    if let Some(g) = granted {
        return Ok(g);
    }
    let ticket = rt.slots.enqueue(task.need(), task.sub.depth);
    tokio::select! {
        g = ticket.grant() => Ok(g),
        () = task.handle.cancel.cancelled() => Err(task.cancelled()),
    }
}

/// A CPU grant for one attempt of `task` (`first`, if it has one
/// already), with its arguments pinned in memory. Arguments on disk (or
/// lost) are read without holding the grant, so a read that must run
/// another task (lineage) cannot starve it.
async fn grant_with_args(
    rt: &Arc<Shared>,
    task: &Task,
    args: &[ReadyArg],
    first: Option<Grant>,
) -> Result<(Grant, Vec<ArgValue>), ErrorRecord> {
    let grant = slots_for(rt, task, first).await?;
    // Every argument in memory: the common case.
    if let Some(values) = args.iter().map(ReadyArg::pinned).collect() {
        return Ok((grant, values));
    }
    Box::pin(grant_with_spilled_args(rt, task, args, grant)).await
}

/// [`grant_with_args`] once some argument is not in memory: read it back,
/// or make it again, starting with `grant` in hand.
async fn grant_with_spilled_args(
    rt: &Arc<Shared>,
    task: &Task,
    args: &[ReadyArg],
    grant: Grant,
) -> Result<(Grant, Vec<ArgValue>), ErrorRecord> {
    let function = &*task.sub.function;
    // Arguments made again by their lineage while this task held no slot.
    let mut remade: Vec<Option<ArgValue>> = vec![None; args.len()];
    let mut granted = Some(grant);
    loop {
        let grant = slots_for(rt, task, granted.take()).await?;
        // Holding the slot, read spilled arguments back: at most one task
        // per slot has its arguments in memory, so reading never outgrows
        // the store.
        let mut values = Vec::with_capacity(args.len());
        let mut lost = None;
        for (i, a) in args.iter().enumerate() {
            if let Some(v) = remade[i].take().or_else(|| a.pinned()) {
                values.push(v);
                continue;
            }
            let read = tokio::select! {
                r = a.blob.load() => r,
                () = task.handle.cancel.cancelled() => return Err(task.cancelled()),
            };
            match read {
                Ok(bytes) => values.push(ArgValue {
                    blob: a.blob.clone(),
                    bytes,
                }),
                Err(_) => {
                    lost = Some(i);
                    break;
                }
            }
        }
        let Some(i) = lost else {
            rt.objects.trim();
            return Ok((grant, values));
        };
        // A lost argument is made again by a task of its own, which needs
        // a slot: give this one back meanwhile.
        drop((grant, values));
        remade[i] = Some(tokio::select! {
            v = args[i].load(rt, i, function) => v?,
            () = task.handle.cancel.cancelled() => return Err(task.cancelled()),
        });
    }
}

/// The bytes of object `id` (whose entry holds `blob`): from memory, from
/// its spill file, or, if they are lost, made again by the task that made
/// them (its lineage), when that task is deterministic.
pub(crate) async fn read(
    rt: &Arc<Shared>,
    id: &ObjectId,
    entry: &Entry,
    blob: &Arc<Blob>,
) -> Result<Bytes, ErrorRecord> {
    let lost = match blob.load().await {
        Ok(bytes) => {
            rt.objects.trim();
            return Ok(bytes);
        }
        Err(lost) => lost,
    };
    let object_lost = |why: String| {
        let mut rec = ErrorRecord::new(
            ErrorKind::ObjectLost,
            "",
            format!("object {} is lost ({}): {why}", id.short(), lost.why),
        );
        if let Some((task, _)) = id.task_return() {
            rec.task = task;
        }
        rec
    };
    let Some(task) = entry.lineage() else {
        return Err(object_lost(
            "it was not made by a task (objects from `put` cannot be made again)".into(),
        ));
    };
    recompute(rt, task).await.map_err(|cause| {
        let rec = object_lost(format!(
            "making it again with `{}` failed",
            task.sub.function
        ));
        rec.caused_by(Arc::new(cause))
    })?;
    // Restored in memory; it may have spilled again since.
    blob.load()
        .await
        .map_err(|again| object_lost(format!("it was lost again after being made: {}", again.why)))
}

/// Runs `task` again to restore its lost results. Boxed: it recurses
/// through the task's own arguments.
fn recompute<'a>(
    rt: &'a Arc<Shared>,
    task: &'a Lineage,
) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ErrorRecord>> + Send + 'a>> {
    Box::pin(async move {
        let function = &*task.sub.function;
        let _one_at_a_time = task.recomputing.lock().await;
        let blobs: Vec<Arc<Blob>> = task
            .returns
            .iter()
            .filter_map(|id| match rt.objects.get(id)?.state() {
                Some(Resolved::Ready(b)) => Some(b.clone()),
                _ => None,
            })
            .collect();
        if blobs.iter().all(|b| !b.is_lost()) {
            return Ok(()); // Somebody restored them meanwhile.
        }
        if !task.deterministic.load(Ordering::Relaxed) && !task.policy.allow_recompute {
            return Err(ErrorRecord::new(
                ErrorKind::ObjectLost,
                function,
                "the task read the clock or random numbers, so running it again may give other \
                 results; allow it with the `allow_recompute` option if that is safe",
            ));
        }
        let args = resolve_args(rt, &task.sub.args, function).await?;
        let grant = rt.slots.enqueue(task.need(), task.sub.depth).grant().await;
        let (finished, next) = Box::pin(execute(rt, task, args, grant)).await;
        spawn_next(rt, next);
        let finished = finished?;
        for (blob, value) in blobs.iter().zip(&finished.values) {
            let bytes = value.loaded().expect("fresh results are in memory");
            if blob.is_lost() && !blob.restore(&bytes) {
                return Err(ErrorRecord::new(
                    ErrorKind::ObjectLost,
                    function,
                    "running the task again gave different bytes: it is not deterministic",
                ));
            }
        }
        Ok(())
    })
}

/// A successful attempt: its return values, and references to the objects
/// they refer to, held until the values are stored.
pub(crate) struct Finished {
    pub values: Vec<Arc<Blob>>,
    pub held: HeldRefs,
    /// Whether the attempt read no clock and no random numbers.
    pub deterministic: bool,
}

/// A task's attempts until one succeeds or no retry remains. `next`
/// receives the task handed over as the last attempt's store was dropped.
async fn run_attempts(
    rt: &Arc<Shared>,
    task: &Task,
    mut first: Option<Grant>,
    next: &mut Option<Next>,
) -> Result<Finished, ErrorRecord> {
    let with_id = |mut rec: ErrorRecord| {
        rec.task = task.id;
        rec
    };
    if task.handle.cancel.is_cancelled() {
        return Err(task.cancelled());
    }
    let args = match ready_now(rt, &task.sub.args) {
        Some(args) => args,
        None => {
            // Never wait holding slots (a task queued with its slots had
            // every argument, so this is only defensive).
            first = None;
            // Boxed, as every wait off the common path: the spawned future
            // of a task stays small.
            let function = &*task.sub.function;
            Box::pin(async {
                tokio::select! {
                    a = ready_args(rt, &task.sub.args, function) => a.map_err(with_id),
                    () = task.handle.cancel.cancelled() => Err(task.cancelled()),
                }
            })
            .await?
        }
    };
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (grant, values) = grant_with_args(rt, task, &args, first.take())
            .await
            .map_err(with_id)?;
        // Boxed: the attempt's state (store, instantiation, fiber call) is
        // large, and only running tasks need it; the spawned future of a
        // queued task stays small.
        rt.events.started(task.id);
        let (outcome, handed) = Box::pin(execute(rt, task, values, grant)).await;
        match outcome {
            Ok(finished) => {
                *next = handed;
                return Ok(finished);
            }
            Err(rec) => {
                let mut rec = with_id(rec);
                rec.attempts = attempt;
                // An injected fault ends with its attempt.
                task.handle.cancel.clear_fault();
                if task.handle.cancel.is_cancelled() || !task.policy.retries(&rec, attempt) {
                    *next = handed;
                    return Err(rec);
                }
                // The retry waits for slots: whoever was handed the slots
                // this attempt gave back starts now, on its own.
                spawn_next(rt, handed);
                rt.events.retrying(task.id);
            }
        }
    }
}

/// One attempt: a fresh instance, one call, its results; and the task
/// handed over as the instance's slots were released (see [`Next`]).
async fn execute(
    rt: &Arc<Shared>,
    task: &Task,
    args: Vec<ArgValue>,
    grant: Grant,
) -> (Result<Finished, ErrorRecord>, Option<Next>) {
    let function = &*task.sub.function;
    let source = OutputSource {
        name: task.sub.function.clone(),
        kind: SourceKind::Task(task.id),
        job: task.sub.job,
    };
    let Some(call) = instance::Call::new(rt, args, task.sub.num_returns, task.module.maps_args())
    else {
        let rec = ErrorRecord::new(
            ErrorKind::InvalidArgument,
            function,
            "the arguments together exceed 4 GiB",
        );
        return (Err(rec), None);
    };
    let mut store = instance::new_store(
        rt,
        &rt.engines.tasks.engine,
        InstanceSpec {
            module: task.module.clone(),
            source,
            memory_limit: task.policy.memory_limit,
            deadline: task.policy.timeout.map(|t| Instant::now() + t),
            origin: Origin {
                task: Some(task.id),
                actor: None,
                job: task.sub.job,
                depth: task.sub.depth,
            },
            cancel: task.handle.cancel.clone(),
            actor_slot: None,
            args: Vec::new(),
        },
    );
    {
        let st = store.data_mut();
        st.slot = grant.cpu;
        st.call_slot = grant.call;
        for arg in &call.args {
            st.refs.lend(arg.blob.refs());
        }
        st.call = Some(call);
    }
    let result = call_export(&mut store, task.module.code(), &task.export).await;
    let outcome = finish_call(&mut store, result, function);
    (outcome, drop_catching_next(store))
}

/// Starts a task handed over where it cannot run next.
fn spawn_next(rt: &Arc<Shared>, next: Option<Next>) {
    if let Some(next) = next {
        start_granted(rt.clone(), next);
    }
}

/// Runs `n` calls of `function`, which takes no arguments, each on a fresh
/// instance, `parallel` at a time: the path of one task attempt
/// ([`execute`]) without submission, slot queue, records or stored
/// results. `wray bench` reports it as the floor under the task figures.
pub(crate) async fn bare_calls(
    rt: &Arc<Shared>,
    module: &Module,
    function: &str,
    n: u32,
    parallel: usize,
) -> Result<(), String> {
    let Some((function, export)) = module.task(function) else {
        return Err(format!(
            "module `{}` has no remote function `{function}`",
            module.name()
        ));
    };
    let sub = Submission::host(function, Vec::new(), HeldRefs::new(rt), Options::default());
    let task = Arc::new(Task::new(
        rt,
        rt.ids.next_task(),
        module.clone(),
        export,
        Vec::new(),
        Arc::new(TaskHandle::new(false, 0)),
        sub,
    ));
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let workers: Vec<_> = (0..parallel.max(1))
        .map(|_| {
            let (rt, task, next) = (rt.clone(), task.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let grant = Grant {
                        cpu: None,
                        call: None,
                    };
                    let (outcome, next) = Box::pin(execute(&rt, &task, Vec::new(), grant)).await;
                    spawn_next(&rt, next);
                    outcome.map_err(|e| e.message)?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for w in workers {
        w.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Instantiates `module` in `store` and calls the `() -> i32` export.
pub(crate) async fn call_export(
    store: &mut Store<InstanceState>,
    code: &Code,
    export: &ModuleExport,
) -> wasmtime::Result<i32> {
    let instance = code.pre().instantiate_async(&mut *store).await?;
    bind_instance(store, code, &instance);
    let func = instance
        .get_module_export(&mut *store, export)
        .and_then(|e| e.into_func())
        .ok_or_else(|| wasmtime::format_err!("the validated export is missing"))?
        .typed::<(), i32>(&*store)?;
    func.call_async(&mut *store, ()).await
}

/// Remembers the instance and its memory for host functions.
pub(crate) fn bind_instance(
    store: &mut Store<InstanceState>,
    code: &Code,
    instance: &wasmtime::Instance,
) {
    let memory = code
        .memory_export()
        .and_then(|m| instance.get_module_export(&mut *store, m))
        .and_then(|e| e.into_memory());
    let st = store.data_mut();
    st.memory = memory;
    st.instance = Some(*instance);
}

/// Reads a finished call's results (or failure) off its store.
pub(crate) fn finish_call(
    store: &mut Store<InstanceState>,
    result: wasmtime::Result<i32>,
    function: &str,
) -> Result<Finished, ErrorRecord> {
    let st = store.data_mut();
    st.flush_output();
    match result {
        Ok(export::OK) => {
            let call = st.call.take().expect("a call is set before running");
            let rt = &st.rt;
            let values = call
                .returns
                .into_iter()
                // An export that returns OK without `task_return` returns the
                // empty value (what `()` encodes to).
                .map(|r| r.unwrap_or_else(|| rt.objects.blob(&[], Vec::new())))
                .collect();
            Ok(Finished {
                values,
                held: call.returned_refs,
                deterministic: !st.nondeterministic.load(Ordering::Relaxed),
            })
        }
        Ok(code) => Err(instance::failed_return(st, function, code)),
        Err(e) => Err(instance::classify(&e, st, function)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> impl Iterator<Item = TaskId> {
        (1..=n).map(|seq| TaskId::new(1, seq))
    }

    #[test]
    fn finished_children_are_pruned() {
        let children = Children::default();
        let mut alive = Vec::new();
        for (i, id) in ids(10_000).enumerate() {
            let h = Arc::new(TaskHandle::new(false, 1));
            children.push(id, &h);
            // One child in a thousand is still running; the others end
            // (their handles drop) at once.
            if i % 1000 == 0 {
                alive.push((id, h));
            }
        }
        assert!(children.len() <= 64, "{} entries kept", children.len());
        let want: Vec<TaskId> = alive.iter().map(|(id, _)| *id).collect();
        assert_eq!(children.ids(), want);
    }

    #[test]
    fn running_children_are_all_kept() {
        let children = Children::default();
        let handles: Vec<_> = ids(5_000)
            .map(|id| {
                let h = Arc::new(TaskHandle::new(false, 1));
                children.push(id, &h);
                h
            })
            .collect();
        assert_eq!(children.ids(), ids(5_000).collect::<Vec<_>>());
        drop(handles);
        assert!(children.ids().is_empty());
    }

    fn policy(max_retries: i32, retry_exceptions: bool) -> Policy {
        let options = Options {
            max_retries: Some(max_retries),
            retry_exceptions: Some(retry_exceptions),
            ..Options::default()
        };
        Policy::new(&options, &Config::default())
    }

    fn failure(kind: ErrorKind) -> ErrorRecord {
        ErrorRecord::new(kind, "f", "why")
    }

    #[test]
    fn system_failures_are_retried_up_to_the_limit() {
        let p = policy(2, false);
        for kind in [ErrorKind::WorkerFailure, ErrorKind::ObjectLost] {
            assert!(p.retries(&failure(kind), 1), "{kind:?}");
            assert!(p.retries(&failure(kind), 2), "{kind:?}");
            assert!(!p.retries(&failure(kind), 3), "{kind:?}: the limit");
        }
        let forever = policy(-1, false);
        assert!(forever.retries(&failure(ErrorKind::WorkerFailure), 1_000_000));
        let never = policy(0, true);
        assert!(!never.retries(&failure(ErrorKind::WorkerFailure), 1));
    }

    #[test]
    fn guest_errors_are_retried_only_with_retry_exceptions() {
        for kind in [
            ErrorKind::Application,
            ErrorKind::Panic,
            ErrorKind::Trap,
            ErrorKind::Timeout,
        ] {
            assert!(!policy(3, false).retries(&failure(kind), 1), "{kind:?}");
            assert!(policy(3, true).retries(&failure(kind), 1), "{kind:?}");
            assert!(!policy(3, true).retries(&failure(kind), 4), "{kind:?}");
        }
    }

    #[test]
    fn cancels_failed_arguments_and_bad_modules_are_never_retried() {
        for kind in [
            ErrorKind::Cancelled,
            ErrorKind::DependencyFailed,
            ErrorKind::InvalidModule,
        ] {
            assert!(!policy(-1, true).retries(&failure(kind), 1), "{kind:?}");
        }
    }

    #[test]
    fn a_policy_takes_the_calls_options_over_the_runtimes_defaults() {
        let config = Config {
            max_retries: 7,
            task_timeout: Some(Duration::from_secs(9)),
            ..Config::default()
        };
        let p = Policy::new(&Options::default(), &config);
        assert_eq!(p.max_retries, 7);
        assert_eq!(p.timeout, Some(Duration::from_secs(9)));
        let options = Options {
            max_retries: Some(1),
            timeout_ms: Some(250),
            memory_limit: Some(u64::MAX),
            ..Options::default()
        };
        let p = Policy::new(&options, &config);
        assert_eq!(p.max_retries, 1);
        assert_eq!(p.timeout, Some(Duration::from_millis(250)));
        assert_eq!(
            p.memory_limit,
            crate::exec::engine::MAX_WASM32_MEMORY,
            "capped"
        );
    }
}
