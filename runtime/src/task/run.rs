//! Running tasks: submission, waiting for arguments and CPU slots,
//! attempts, retries, results, and making lost results again.
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

use crate::events::{MemoNote, TaskKind};
use crate::exec::instance::{self, InstanceSpec};
use crate::exec::invoke::{Finished, call_export, finish_call};
use crate::exec::manifest::Signature;
use crate::exec::module::Module;
use crate::exec::remote::{ArgBytes, Forward, Peer, Place};
use crate::exec::request::{Policy, Submission};
use crate::exec::resources::Held;
use crate::exec::slots::{Grant, Need};
use crate::exec::state::{Call, InstanceState, Origin};
use crate::objects::arg::{
    ArgValue, ReadyArg, TaskArg, ready_args, ready_now, resolve_args, travels,
};
use crate::objects::blob::{Blob, Encoding};
use crate::objects::held::HeldRefs;
use crate::objects::lineage::Remake;
use crate::objects::memo::MemoKey;
use crate::objects::store::Resolved;
use crate::output::{OutputSource, SourceKind};
use crate::task::memo;
use crate::task::table::{Queued, TaskHandle, Tasks};
use futures_util::future::BoxFuture;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;
use wasmtime::{ModuleExport, Store};
use wray_abi::wire::ErrorRecord;
use wray_abi::{ErrorKind, ObjectId, TaskId, export};

/// Submits a task of `module`; returns the ids of its return values, each
/// held once on the caller's behalf.
pub(crate) fn submit_task(rt: &Arc<Tasks>, module: Module, sub: Submission) -> Vec<ObjectId> {
    // The module its `module` option names, if not the caller's.
    let (module, unlinked) = match rt.env.links.callee(&module, &sub.options, sub.job) {
        Ok(m) => (m, None),
        Err(why) => (module, Some(why)),
    };
    let entry = match unlinked {
        None => module.task_entry(&sub.function),
        Some(_) => None,
    };
    // A memoized call: answered from the memo table if its arguments have
    // values and its result is there (no task at all), else keyed when its
    // arguments are ready.
    let mut memo = None;
    if let Some((function, _, sig)) = &entry
        && rt.memo.is_some()
        && sub
            .options
            .memo
            .unwrap_or(sig.as_ref().is_some_and(|s| s.pure))
    {
        let key = memo::key_now(
            &rt.env.objects,
            &module.id(),
            function,
            sub.num_returns,
            &sub.args,
        );
        if let Some(key) = &key
            && let Some(returns) =
                memo::answer_at_submission(rt, key, sub.num_returns, function, sub.job, sub.parent)
        {
            return returns;
        }
        memo = Some(key);
    }
    let (id, returns) = rt.env.new_call(sub.num_returns);
    rt.env.events.submitted(
        id,
        sub.function.clone(),
        TaskKind::Task,
        sub.job,
        sub.parent,
        None,
    );
    // A call that cannot run fails at once, without entering the table.
    let refuse = |rec: ErrorRecord| {
        rt.env.events.ended(id, Some(&rec));
        fail_all(rt, &returns, rec);
        returns.clone()
    };
    if let Some(why) = unlinked {
        return refuse(ErrorRecord::new(
            ErrorKind::InvalidModule,
            &*sub.function,
            why,
        ));
    }
    let Some((function, export, signature)) = entry else {
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
    // A guest's call is checked against the manifest as the host's were
    // (`CallBuilder`): arity, and the kinds of cross-language values.
    if !sub.checked
        && let Some(sig) = &signature
        && let Err(why) = sig.check_call(&sub.args)
    {
        return refuse(ErrorRecord::new(
            ErrorKind::InvalidArgument,
            &*function,
            why,
        ));
    }
    let max_depth = rt.env.config.max_call_depth();
    if sub.depth > max_depth {
        return refuse(ErrorRecord::new(
            ErrorKind::CallDepth,
            &*function,
            format!(
                "nested {} deep, past the limit of {max_depth} (half the {} call slots, \
                 each held by a parent waiting on its child): recurse less deeply, or raise \
                 --call-slots",
                sub.depth, rt.env.config.call_slots
            ),
        ));
    }
    let sub = Submission { function, ..sub };
    let handle = Arc::new(TaskHandle::new(false, sub.job));
    if let Some(parent) = sub.parent.and_then(|p| rt.table.get(&p)) {
        parent.children.push(id, &handle);
    }
    rt.table.insert(id, handle.clone());
    let mut task = Task::new(rt, id, module, export, returns.clone(), handle, sub);
    task.signature = signature;
    if let Some(key) = memo {
        task = task.memoized(key);
    }
    let task = Arc::new(task);
    // Tasks whose arguments have values join the CPU queue now, as data
    // (nothing is spawned until their slots are granted), so they start in
    // submission order; the others join when their arguments are ready.
    // (And whether their values hold no references: only those travel to
    // another node.)
    let (mut ready, mut forwardable) = (true, true);
    let mut bytes = ArgBytes::default();
    for a in &task.sub.args {
        let entry;
        let blob = match a {
            TaskArg::Value(blob) => blob,
            TaskArg::Ref(id) => {
                entry = rt.env.objects.get(id);
                match entry.as_deref().and_then(|e| e.state()) {
                    Some(Resolved::Ready(blob)) => blob,
                    _ => {
                        ready = false;
                        continue;
                    }
                }
            }
        };
        forwardable &= travels(blob).is_ok();
        bytes.add(blob);
    }
    // In a cluster, a call may run on another node: placed now if its
    // arguments are ready, else once they are.
    if ready {
        match rt.env.place(&task.sub.options, forwardable, &bytes) {
            Place::Here => {}
            place => {
                rt.env.spawner.spawn(run_placed(rt.clone(), task, place));
                return returns;
            }
        }
    }
    // A call that needs custom resources waits for them before its
    // slots, in a future of its own (never holding slots while it waits).
    if ready && task.sub.options.resources.is_empty() {
        let (need, depth) = (task.need(), task.sub.depth);
        task.handle.queue(Arc::downgrade(&task) as Weak<dyn Queued>);
        let rt2 = rt.clone();
        let start = move |grant: Grant| {
            // Cancelled meanwhile, it was spawned then: the grant goes back.
            if task.handle.claim().is_none() {
                return Some(grant);
            }
            start_granted(rt2, Next { task, grant });
            None
        };
        rt.env.slots.start(need, depth, Box::new(start));
    } else {
        rt.env.spawner.spawn(run(rt.clone(), task, None));
    }
    returns
}

impl Task {
    pub fn new(
        rt: &Arc<Tasks>,
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
            policy: Policy::new(&sub.options, &rt.env.config),
            handle,
            sub,
            deterministic: AtomicBool::new(false),
            recomputing: tokio::sync::Mutex::new(()),
            tasks: Arc::downgrade(rt),
            signature: None,
            memo: None,
            memo_hit: AtomicBool::new(false),
        }
    }

    /// Makes the task a memoized call, whose key is `key` if its
    /// arguments had values at submission (and it was looked up then).
    fn memoized(mut self, key: Option<MemoKey>) -> Task {
        let cell = OnceLock::new();
        if let Some(k) = key {
            let _ = cell.set(k);
        }
        self.memo = Some(cell);
        self
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

fn fail_all(rt: &Tasks, returns: &[ObjectId], rec: ErrorRecord) {
    let rec = Arc::new(rec);
    for r in returns {
        rt.env.objects.resolve(*r, Resolved::Failed(rec.clone()));
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
    /// Its layer, to run it again (weak: the store keeps finished tasks as
    /// lineage, and the layer keeps the store).
    tasks: Weak<Tasks>,
    /// What the module's manifest declares of the function.
    signature: Option<Arc<Signature>>,
    /// For a memoized call, its key once its arguments have values.
    memo: Option<OnceLock<MemoKey>>,
    /// Whether it was answered from the memo table once its arguments
    /// were ready.
    memo_hit: AtomicBool,
}

impl Remake for Task {
    fn function(&self) -> &str {
        &self.sub.function
    }

    fn remake(&self) -> BoxFuture<'_, Result<(), ErrorRecord>> {
        Box::pin(async move {
            let Some(rt) = self.tasks.upgrade() else {
                let why = "the runtime is shutting down";
                return Err(ErrorRecord::new(
                    ErrorKind::ObjectLost,
                    self.function(),
                    why,
                ));
            };
            recompute(&rt, self).await
        })
    }

    fn repeatable(&self) -> bool {
        self.deterministic.load(Ordering::Relaxed)
    }
}

impl Queued for Task {
    fn start_cancelled(self: Arc<Self>, tasks: &Arc<Tasks>) {
        tasks.env.spawner.spawn(run(tasks.clone(), self, None));
    }
}

/// Runs a task to its end: arguments, attempts, results; then the tasks
/// handed to it as its last attempt ended, one after another.
/// `first`: the slots of its first attempt, when it was queued for them.
async fn run(rt: Arc<Tasks>, task: Arc<Task>, first: Option<Grant>) {
    let (mut task, mut first) = (task, first);
    loop {
        let mut next = None;
        let outcome = run_attempts(&rt, &task, first, None, &mut next).await;
        conclude(&rt, &task, outcome);
        let Some(next) = next else { return };
        // A line of short tasks must not keep this worker from the rest
        // of its queue: yield once tokio's budget for this poll is spent.
        tokio::task::consume_budget().await;
        (task, first) = (next.task, Some(next.grant));
    }
}

/// Runs a task placed at submission elsewhere than in this node's line
/// (on another node, or nowhere).
async fn run_placed(rt: Arc<Tasks>, task: Arc<Task>, place: Place) {
    let mut next = None;
    let outcome = run_attempts(&rt, &task, None, Some(place), &mut next).await;
    conclude(&rt, &task, outcome);
    spawn_next(&rt, next);
}

/// A task granted its slots when the store of another task's finished
/// attempt was dropped (releasing them) on this thread: that task's
/// [`run`] runs it next, in the same tokio task, instead of spawning one
/// per task.
pub(crate) struct Next {
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
fn start_granted(rt: Arc<Tasks>, next: Next) {
    let refused = HANDOFF.with_borrow_mut(|h| match h {
        Some(room @ None) => {
            *room = Some(next);
            None
        }
        _ => Some(next),
    });
    if let Some(Next { task, grant }) = refused {
        let spawner = rt.env.spawner.clone();
        spawner.spawn(run(rt, task, Some(grant)));
    }
}

/// Records a task's end and stores its results (or its error).
fn conclude(rt: &Arc<Tasks>, task: &Arc<Task>, outcome: Result<Finished, ErrorRecord>) {
    // Finished before its results are visible: whoever sees a result sees
    // the task done.
    rt.table.remove(&task.id);
    let note = task.memo.as_ref().map(|key| match (&outcome, key.get()) {
        (Ok(_), _) if task.memo_hit.load(Ordering::Relaxed) => MemoNote::Hit,
        (Ok(finished), Some(key)) => memo::store(rt, key, finished),
        _ => MemoNote::Failed,
    });
    rt.env
        .events
        .ended_noting(task.id, outcome.as_ref().err(), note);
    match outcome {
        Ok(Finished {
            values,
            held,
            deterministic,
        }) => {
            task.deterministic.store(deterministic, Ordering::Relaxed);
            let encoding = task
                .signature
                .as_ref()
                .map_or(Encoding::Raw, |s| s.value_encoding());
            for (id, blob) in task.returns.iter().zip(values) {
                blob.mark(encoding);
                // A value that never leaves memory is never made again:
                // the task (and its arguments) can go now.
                if blob.spillable()
                    && let Some(entry) = rt.env.objects.get(id)
                {
                    entry.set_lineage(task.clone());
                }
                rt.env.objects.resolve(*id, Resolved::Ready(blob));
            }
            // The stored values now hold what they refer to.
            drop(held);
        }
        Err(rec) => fail_all(rt, &task.returns, rec),
    }
}

/// The custom resources `task` needs (none, at once, for most tasks),
/// once they are free; fails if the task is cancelled while it waits.
async fn resources_for(rt: &Tasks, task: &Task) -> Result<Option<Held>, ErrorRecord> {
    let request = &task.sub.options.resources;
    if request.is_empty() {
        return Ok(None);
    }
    // Boxed, as every wait off the common path.
    Box::pin(async {
        tokio::select! {
            held = rt.env.resources.acquire(request) => Ok(Some(held)),
            () = task.handle.cancel.cancelled() => Err(task.cancelled()),
        }
    })
    .await
}

/// `granted`, or the slots of `task` once its turn comes; fails if the
/// task is cancelled while it waits.
async fn slots_for(
    rt: &Arc<Tasks>,
    task: &Task,
    granted: Option<Grant>,
) -> Result<Grant, ErrorRecord> {
    if let Some(g) = granted {
        return Ok(g);
    }
    let ticket = rt.env.slots.enqueue(task.need(), task.sub.depth);
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
    rt: &Arc<Tasks>,
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
    rt: &Arc<Tasks>,
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
            rt.env.objects.trim();
            return Ok((grant, values));
        };
        // A lost argument is made again by a task of its own, which needs
        // a slot: give this one back meanwhile.
        drop((grant, values));
        remade[i] = Some(tokio::select! {
            v = args[i].load(&rt.env.objects, i, function) => v?,
            () = task.handle.cancel.cancelled() => return Err(task.cancelled()),
        });
    }
}

/// Runs `task` again to restore its lost results. Boxed: it recurses
/// through the task's own arguments.
fn recompute<'a>(rt: &'a Arc<Tasks>, task: &'a Task) -> BoxFuture<'a, Result<(), ErrorRecord>> {
    Box::pin(async move {
        let function = &*task.sub.function;
        let _one_at_a_time = task.recomputing.lock().await;
        let blobs: Vec<Arc<Blob>> = task
            .returns
            .iter()
            .filter_map(|id| match rt.env.objects.get(id)?.state() {
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
        let args = resolve_args(&rt.env.objects, &task.sub.args, function).await?;
        let _resources = resources_for(rt, task).await?;
        let grant = rt
            .env
            .slots
            .enqueue(task.need(), task.sub.depth)
            .grant()
            .await;
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

/// A task's attempts until one succeeds or no retry remains. `next`
/// receives the task handed over as the last attempt's store was dropped.
/// `first`: the slots of its first attempt, if it was granted them
/// here; `placed`: where its first attempt runs, if it was placed
/// already (else each attempt not granted slots is placed when it starts).
async fn run_attempts(
    rt: &Arc<Tasks>,
    task: &Task,
    mut first: Option<Grant>,
    mut placed: Option<Place>,
    next: &mut Option<Next>,
) -> Result<Finished, ErrorRecord> {
    let with_id = |mut rec: ErrorRecord| {
        rec.task = task.id;
        rec
    };
    if task.handle.cancel.is_cancelled() {
        return Err(task.cancelled());
    }
    let args = match ready_now(&rt.env.objects, &task.sub.args) {
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
                    a = ready_args(&rt.env.objects, &task.sub.args, function) => a.map_err(with_id),
                    () = task.handle.cancel.cancelled() => Err(task.cancelled()),
                }
            })
            .await?
        }
    };
    // An object of another encoding than the function's would be garbage
    // to it: refused, never retried.
    if let Some(sig) = &task.signature
        && let Err(why) = sig.check_encodings(args.iter().map(|a| a.blob.encoding()))
    {
        return Err(with_id(ErrorRecord::new(
            ErrorKind::InvalidArgument,
            &*task.sub.function,
            why,
        )));
    }
    // A memoized call whose arguments were not ready at submission is
    // looked up now, before it takes a slot.
    if let Some(cell) = &task.memo
        && cell.get().is_none()
    {
        let function = &*task.sub.function;
        let key = memo::key_of(&task.module.id(), function, task.sub.num_returns, &args);
        let _ = cell.set(key);
        if let Some(values) = memo::lookup(rt, &key, task.sub.num_returns) {
            task.memo_hit.store(true, Ordering::Relaxed);
            return Ok(Finished {
                values: values.to_vec(),
                held: HeldRefs::new(&rt.env.objects),
                deterministic: true,
            });
        }
    }
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let place = match placed.take() {
            Some(place) => place,
            None if first.is_some() => Place::Here,
            None => {
                let forwardable = args.iter().all(|a| travels(&a.blob).is_ok());
                let mut bytes = ArgBytes::default();
                args.iter().for_each(|a| bytes.add(&a.blob));
                rt.env.place(&task.sub.options, forwardable, &bytes)
            }
        };
        let (outcome, handed) = match place {
            Place::Here => {
                let _resources = resources_for(rt, task).await.map_err(with_id)?;
                let (grant, values) = grant_with_args(rt, task, &args, first.take())
                    .await
                    .map_err(with_id)?;
                // Boxed: the attempt's state (store, instantiation, fiber
                // call) is large, and only running tasks need it; the
                // spawned future of a queued task stays small.
                if attempt > 1 {
                    // An earlier attempt may have run on another node.
                    rt.env.events.placed(task.id, None);
                }
                rt.env.events.started(task.id);
                Box::pin(execute(rt, task, values, grant)).await
            }
            Place::There(peer) => (Box::pin(execute_there(rt, task, &args, peer)).await, None),
            Place::Nowhere(why) => {
                let rec = ErrorRecord::new(ErrorKind::InvalidArgument, &*task.sub.function, why);
                return Err(with_id(rec));
            }
        };
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
                rt.env.events.retrying(task.id, &rec);
            }
        }
    }
}

/// One attempt: a fresh instance, one call, its results; and the task
/// handed over as the instance's slots were released (see [`Next`]).
pub(crate) async fn execute(
    rt: &Arc<Tasks>,
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
    let Some(call) = Call::new(
        &rt.env.objects,
        args,
        task.sub.num_returns,
        task.module.maps_args(),
    ) else {
        let rec = ErrorRecord::new(
            ErrorKind::InvalidArgument,
            function,
            "the arguments together exceed 4 GiB",
        );
        return (Err(rec), None);
    };
    let mut store = instance::new_store(
        &rt.env,
        &rt.env.engines.tasks.engine,
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

/// One attempt on another node: the arguments' bytes (read back here if
/// need be; no slot is held, the work runs there), the call, its results.
async fn execute_there(
    rt: &Arc<Tasks>,
    task: &Task,
    args: &[ReadyArg],
    peer: Arc<dyn Peer>,
) -> Result<Finished, ErrorRecord> {
    let function = &*task.sub.function;
    rt.env.events.placed(task.id, peer.id().parse().ok());
    let mut values = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        values.push(a.load(&rt.env.objects, i, function).await?);
    }
    // One attempt there, under this attempt's policy; retries stay here.
    let policy = &task.policy;
    let options = wray_abi::wire::Options {
        max_retries: Some(0),
        retry_exceptions: Some(false),
        timeout_ms: policy
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        memory_limit: Some(policy.memory_limit),
        allow_recompute: Some(policy.allow_recompute),
        memo: Some(false),
        // The module travels by digest: the callee is resolved already.
        module: None,
        ..task.sub.options.clone()
    };
    let call = Forward {
        module: task.module.clone(),
        function: task.sub.function.clone(),
        num_returns: task.sub.num_returns,
        options,
        args: values,
        depth: task.sub.depth,
        task: task.id,
        links: rt.env.links.table(task.sub.job),
        job: rt.env.events.program(task.sub.job),
    };
    rt.env.events.started(task.id);
    let forwarded = tokio::select! {
        r = peer.run(call) => r?,
        () = task.handle.cancel.cancelled() => return Err(task.cancelled()),
    };
    rt.env.show_output(forwarded.output, task.sub.job);
    Ok(Finished {
        values: forwarded.values,
        held: forwarded.held,
        deterministic: forwarded.deterministic,
    })
}

/// Starts a task handed over where it cannot run next.
pub(crate) fn spawn_next(rt: &Arc<Tasks>, next: Option<Next>) {
    if let Some(next) = next {
        start_granted(rt.clone(), next);
    }
}
