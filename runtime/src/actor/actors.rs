//! Actors: one long-lived instance each, a mailbox, calls one at a time.
//!
//! # Lifecycle
//!
//! `create` registers the actor (and its name) and spawns its loop, which
//! resolves the constructor's arguments, instantiates the module and runs
//! `wray:actor/<Type>/new`. The loop then takes calls from the mailbox in
//! arrival order, one at a time: it resolves the call's reference
//! arguments, holds a CPU slot and a call slot (kept across a burst of
//! queued calls), sets the call on the store and runs the method's export.
//!
//! States: starting -> alive -> (restarting -> alive)* -> dead. A call that
//! returns an error leaves the actor alive. A call that traps (or is
//! interrupted by a kill) kills the instance: a store is never called again
//! after a trap. The actor then restarts (a fresh instance, the constructor
//! run again with its original arguments) while `max_restarts` allows, and
//! the interrupted call is run again on the new instance while its
//! `max_task_retries` allow (at-least-once), else it fails with its error.
//! A dead actor fails every pending and later call with `ActorDied`, the
//! cause chained. A constructor that fails makes the actor dead.
//!
//! # Ownership
//!
//! An actor belongs to the job (driver run) that created it. When the
//! driver ends, its unnamed actors are killed; named actors live until
//! killed or the runtime ends. Actors created through the host API belong
//! to no job.
//!
//! # Concurrency
//!
//! The loop owns the store. Other threads reach an actor only through its
//! mailbox and its `Life` mutex (state, kill request, the current
//! instance's cancel token), never across an `await`.

use crate::events::TaskKind;
use crate::exec::env::Env;
use crate::exec::instance::{self, InstanceSpec};
use crate::exec::invoke::{call_export, finish_call};
use crate::exec::module::{Method, Module};
use crate::exec::request::Submission;
use crate::exec::slots::{Grant, Need};
use crate::exec::state::{Call, CancelToken, InstanceState, Origin};
use crate::objects::arg::{ArgValue, TaskArg};
use crate::objects::blob::Blob;
use crate::objects::held::HeldRefs;
use crate::objects::store::Resolved;
use crate::output::{OutputSource, SourceKind};
use crate::task::table::{TaskHandle, Tasks};
use dashmap::DashMap;
use rustc_hash::FxBuildHasher;
use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc};
use wasmtime::Store;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ActorId, ErrorKind, ObjectId, TaskId, export};

/// Longest run of queued calls an actor makes while holding its slots.
const BURST: usize = 256;
/// Causes of death remembered for calls made after an actor is gone.
const GRAVEYARD: usize = 10_000;

/// Where an actor is in its life.
#[derive(Clone, Debug)]
pub(crate) enum Life {
    /// Running its constructor (first or after a restart).
    Starting,
    /// Serving calls.
    Alive,
    /// Gone for good.
    Dead(Arc<ErrorRecord>),
}

/// A request to end the actor, set by `kill` and read by its loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    /// End it for good.
    NoRestart,
    /// End this instance; restart if restarts remain.
    AllowRestart,
}

/// Whether an actor that ended as `kill` says, after `restarts` restarts,
/// starts again under its `max_restarts` (negative: without limit).
fn may_restart(kill: Kill, restarts: u32, max_restarts: i32) -> bool {
    kill == Kill::AllowRestart
        && (max_restarts < 0 || i64::from(restarts) < i64::from(max_restarts))
}

struct Mutable {
    life: Life,
    kill: Option<Kill>,
    /// Interrupts the current instance.
    cancel: Arc<CancelToken>,
    restarts: u32,
}

/// One actor, as the rest of the runtime sees it.
pub(crate) struct Actor {
    pub id: ActorId,
    pub type_name: Arc<str>,
    pub module: Module,
    pub name: Option<String>,
    /// The job that created it (0: the host).
    pub job: u64,
    max_restarts: i32,
    max_task_retries: i32,
    memory_limit: u64,
    /// Wall-clock limit of each call (its own, or the runtime's default).
    call_timeout: Option<std::time::Duration>,
    mailbox: mpsc::UnboundedSender<MethodCall>,
    mutable: Mutex<Mutable>,
    /// Calls completed, for statistics.
    pub calls: AtomicU64,
    /// Set once the actor is dead and gone: out of the tables, what its
    /// instance held in the runtime given back, its constructor's
    /// arguments and the references held for them dropped, its queued
    /// calls failed.
    buried: AtomicBool,
    /// Notified when `buried` is set.
    died: tokio::sync::Notify,
}

impl Actor {
    fn lock(&self) -> MutexGuard<'_, Mutable> {
        self.mutable.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the actor is in its life.
    pub fn life(&self) -> Life {
        self.lock().life.clone()
    }

    /// How many times it has restarted.
    pub fn restarts(&self) -> u32 {
        self.lock().restarts
    }

    /// Completes once the actor is dead and gone (see `buried`).
    pub async fn gone(&self) {
        loop {
            let mut n = std::pin::pin!(self.died.notified());
            n.as_mut().enable();
            if self.buried.load(Ordering::Acquire) {
                return;
            }
            n.await;
        }
    }
}

/// One method call on its way to an actor.
pub(crate) struct MethodCall {
    id: TaskId,
    method: Arc<Method>,
    args: Vec<TaskArg>,
    _held: HeldRefs,
    returns: Vec<ObjectId>,
    retries_left: i32,
    depth: u32,
    handle: Arc<TaskHandle>,
}

/// The actor layer: the task layer below it, the actors, and the actor
/// slots.
pub(crate) struct Actors {
    pub env: Arc<Env>,
    pub tasks: Arc<Tasks>,
    pub registry: Registry,
    /// Actor slots: held by every actor instance.
    pub slots: Arc<Semaphore>,
}

/// The actors of a runtime, by id and by name, and the recently dead.
#[derive(Default)]
pub(crate) struct Registry {
    table: DashMap<ActorId, Arc<Actor>, FxBuildHasher>,
    names: DashMap<String, ActorId>,
    /// The most recently dead actors, for their causes and listings.
    graveyard: Mutex<VecDeque<Arc<Actor>>>,
}

impl Registry {
    /// The actor `id`, if it is not gone.
    pub fn get(&self, id: &ActorId) -> Option<Arc<Actor>> {
        self.table.get(id).map(|a| a.clone())
    }

    /// The actor registered under `name`.
    pub fn lookup(&self, name: &str) -> Option<Arc<Actor>> {
        let id = *self.names.get(name)?;
        self.get(&id)
    }

    /// Number of actors not yet gone.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// How many dead actors are remembered.
    #[cfg(feature = "node")] // read by the node only
    pub fn dead_len(&self) -> usize {
        self.graveyard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Why a gone actor died, if it is remembered.
    pub fn cause_of(&self, id: &ActorId) -> Option<Arc<ErrorRecord>> {
        let g = self.graveyard.lock().unwrap_or_else(|e| e.into_inner());
        g.iter()
            .rev()
            .find(|a| a.id == *id)
            .and_then(|a| dead_cause(a))
    }

    /// Calls `f` on every actor (for listings).
    pub fn for_each(&self, mut f: impl FnMut(&Arc<Actor>)) {
        for a in self.table.iter() {
            f(a.value());
        }
    }

    /// The most recently dead actors, oldest first.
    #[cfg(feature = "node")] // read by the node only
    pub fn dead(&self) -> Vec<Arc<Actor>> {
        let g = self.graveyard.lock().unwrap_or_else(|e| e.into_inner());
        g.iter().cloned().collect()
    }
}

/// What creating an actor takes.
pub(crate) struct Creation {
    pub module: Module,
    pub type_name: String,
    pub sub: Submission,
    pub job: u64,
}

/// Creates an actor; returns its id at once. A name already taken, or a
/// module without the actor type, gives an actor that is dead from the
/// start (its calls fail saying why).
pub(crate) fn create(rt: &Arc<Actors>, c: Creation) -> ActorId {
    let id = rt.env.ids.next_actor();
    let type_name: Arc<str> = c.type_name.into();
    let options = &c.sub.options;
    let constructor = format!(
        "{}{}/{}",
        export::ACTOR_PREFIX,
        type_name,
        export::ACTOR_CONSTRUCTOR
    );
    let mut name = options.name.clone();
    let early_death = if c.module.export(&constructor).is_none() {
        name = None;
        Some(ErrorRecord::new(
            ErrorKind::InvalidModule,
            format!("{type_name}.new"),
            format!(
                "module `{}` has no actor type `{type_name}` (no export `{constructor}`)",
                c.module.name()
            ),
        ))
    } else if let Some(n) = &name {
        let mut taken = None;
        rt.registry
            .names
            .entry(n.clone())
            .and_modify(|owner| taken = Some(*owner))
            .or_insert(id);
        let n = n.clone();
        taken.map(|owner| {
            // The name stays with its owner.
            name = None;
            ErrorRecord::new(
                ErrorKind::ActorDied,
                format!("{type_name}.new"),
                format!("the name `{n}` is already taken by actor {owner:?}"),
            )
        })
    } else {
        None
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let actor = Arc::new(Actor {
        id,
        type_name,
        module: c.module,
        name,
        job: c.job,
        max_restarts: options.max_restarts.unwrap_or(0),
        max_task_retries: options.max_task_retries.unwrap_or(0),
        memory_limit: options
            .memory_limit
            .unwrap_or(rt.env.config.memory_limit)
            .min(crate::config::MAX_WASM32_MEMORY),
        call_timeout: options
            .timeout_ms
            .map(std::time::Duration::from_millis)
            .or(rt.env.config.task_timeout),
        mailbox: tx,
        mutable: Mutex::new(Mutable {
            life: Life::Starting,
            kill: None,
            cancel: Arc::new(CancelToken::default()),
            restarts: 0,
        }),
        calls: AtomicU64::new(0),
        buried: AtomicBool::new(false),
        died: tokio::sync::Notify::new(),
    });
    rt.registry.table.insert(id, actor.clone());
    match early_death {
        Some(rec) => die(rt, &actor, Arc::new(rec), rx, c.sub),
        None => {
            let rt = rt.clone();
            let spawner = rt.env.spawner.clone();
            spawner.spawn(async move { run(rt, actor, c.sub, rx).await });
        }
    }
    id
}

/// Submits a call of `method` on `actor`; returns the ids of its return
/// values, each held once for the caller.
pub(crate) fn call(
    rt: &Arc<Actors>,
    actor: ActorId,
    method: &str,
    sub: Submission,
) -> Vec<ObjectId> {
    let id = rt.env.ids.next_task();
    let returns: Vec<ObjectId> = (0..sub.num_returns)
        .map(|i| ObjectId::for_return(id, i))
        .collect();
    for r in &returns {
        rt.env.objects.create_pending(*r);
    }
    let Some(a) = rt.registry.get(&actor) else {
        let cause = rt.registry.cause_of(&actor);
        let mut rec = ErrorRecord::new(
            ErrorKind::ActorDied,
            format!("?.{method}"),
            format!("actor {actor:?} is dead"),
        );
        if let Some(c) = cause {
            rec = rec.caused_by(c);
        }
        fail_all(rt, &returns, rec);
        return returns;
    };
    let Some(m) = a.module.method(&a.type_name, method).cloned() else {
        let rec = ErrorRecord::new(
            ErrorKind::InvalidModule,
            format!("{}.{method}", a.type_name),
            format!(
                "actor type `{}` has no method `{method}` (no export `{}{}/{method}`)",
                a.type_name,
                export::ACTOR_PREFIX,
                a.type_name
            ),
        );
        fail_all(rt, &returns, rec);
        return returns;
    };
    let handle = Arc::new(TaskHandle::new(true, sub.job));
    rt.tasks.table.insert(id, handle.clone());
    rt.env.events.submitted(
        id,
        m.label.clone(),
        TaskKind::ActorMethod,
        sub.job,
        sub.parent,
        Some(actor),
    );
    let call = MethodCall {
        id,
        method: m,
        args: sub.args,
        _held: sub._held,
        returns: returns.clone(),
        retries_left: a.max_task_retries,
        depth: sub.depth,
        handle,
    };
    if let Err(mpsc::error::SendError(call)) = a.mailbox.send(call) {
        // The loop ended after we looked the actor up.
        let cause = match a.life() {
            Life::Dead(c) => Some(c),
            _ => None,
        };
        fail_call(rt, &a, call, cause);
    }
    returns
}

/// Kills an actor: interrupts its running call and ends it (or restarts it
/// when `allow_restart` and restarts remain). False if it is already gone.
pub(crate) fn kill(rt: &Actors, id: &ActorId, allow_restart: bool) -> bool {
    let Some(a) = rt.registry.get(id) else {
        return false;
    };
    let mut m = a.lock();
    if matches!(m.life, Life::Dead(_)) {
        return false;
    }
    // A kill for good is never weakened by a later one allowing restarts.
    if m.kill != Some(Kill::NoRestart) {
        m.kill = Some(if allow_restart {
            Kill::AllowRestart
        } else {
            Kill::NoRestart
        });
    }
    m.cancel.cancel();
    true
}

/// Kills the unnamed actors of `job` (its driver ended).
pub(crate) async fn end_job(rt: &Actors, job: u64) {
    let mut doomed = Vec::new();
    rt.registry.for_each(|a| {
        if a.job == job && a.name.is_none() {
            doomed.push(a.clone());
        }
    });
    for a in &doomed {
        kill(rt, &a.id, false);
    }
    // Return once they are gone, so the job's end is observable.
    for a in doomed {
        a.gone().await;
    }
}

fn fail_all(rt: &Actors, returns: &[ObjectId], rec: ErrorRecord) {
    let rec = Arc::new(rec);
    for r in returns {
        rt.env.objects.resolve(*r, Resolved::Failed(rec.clone()));
    }
}

/// Fails a call because its actor died (of `cause`, when known).
/// Call `id` ended, with `error` if it failed: out of the task table, into
/// the record.
fn end_call(rt: &Actors, id: TaskId, error: Option<&ErrorRecord>) {
    rt.tasks.table.remove(&id);
    rt.env.events.ended(id, error);
}

fn fail_call(rt: &Actors, a: &Actor, call: MethodCall, cause: Option<Arc<ErrorRecord>>) {
    let mut rec = ErrorRecord::new(
        ErrorKind::ActorDied,
        &*call.method.label,
        format!("actor {:?} is dead", a.id),
    );
    rec.task = call.id;
    if let Some(c) = cause {
        rec = rec.caused_by(c);
    }
    end_call(rt, call.id, Some(&rec));
    fail_all(rt, &call.returns, rec);
}

/// Ends an actor: records the cause, takes it out of the tables, fails its
/// queued calls, drops `leftovers` (its constructor's arguments and the
/// references held for them), and only then sets `buried`.
fn die<L>(
    rt: &Actors,
    a: &Arc<Actor>,
    cause: Arc<ErrorRecord>,
    mut rx: mpsc::UnboundedReceiver<MethodCall>,
    leftovers: L,
) {
    a.lock().life = Life::Dead(cause.clone());
    // Gone from the tables first: whoever sees a call fail sees the actor
    // (and its name) gone.
    rt.registry.table.remove(&a.id);
    if let Some(name) = &a.name {
        rt.registry.names.remove_if(name, |_, owner| *owner == a.id);
    }
    {
        let mut g = rt
            .registry
            .graveyard
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if g.len() == GRAVEYARD {
            g.pop_front();
        }
        g.push_back(a.clone());
    }
    rx.close();
    while let Ok(call) = rx.try_recv() {
        fail_call(rt, a, call, Some(cause.clone()));
    }
    drop(leftovers);
    a.buried.store(true, Ordering::Release);
    a.died.notify_waiters();
}

/// A live instance of the actor.
struct Incarnation {
    store: Store<InstanceState>,
}

impl Incarnation {
    /// Gives back what the instance holds in the runtime (see
    /// `InstanceState::retire`) before it is declared dead, so whoever
    /// waits for its death finds them back; its memory goes when it is
    /// dropped.
    fn retire(&mut self) {
        self.store.data_mut().retire();
    }
}

/// The actor's loop: construct, serve calls, restart, die.
async fn run(
    rt: Arc<Actors>,
    a: Arc<Actor>,
    mut ctor: Submission,
    mut rx: mpsc::UnboundedReceiver<MethodCall>,
) {
    // The references held for the constructor's arguments go with them
    // when the actor dies, before its death is announced.
    let held = std::mem::replace(&mut ctor._held, HeldRefs::new(&rt.env.objects));
    let ctor_args = match resolve_args(&rt, &ctor.args, &format!("{}.new", a.type_name), None).await
    {
        Ok(args) => args,
        Err(rec) => return die(&rt, &a, Arc::new(rec), rx, held),
    };
    let ctor_depth = ctor.depth;
    let mut live = match construct(&rt, &a, &ctor_args, ctor_depth).await {
        Ok(inc) => inc,
        Err(rec) => {
            // Killed (or crashed) while constructing: restart if allowed.
            let Some(kill) = a.lock().kill.take() else {
                return die(&rt, &a, Arc::new(rec), rx, (ctor_args, held));
            };
            let restarted = restart_or_die(&rt, &a, kill, Some(&rec), &ctor_args, ctor_depth, None);
            match restarted.await {
                Ok(inc) => inc,
                Err(_) => {
                    let cause = dead_cause(&a).expect("restart_or_die records the cause");
                    return die(&rt, &a, cause, rx, (ctor_args, held));
                }
            }
        }
    };
    a.lock().life = Life::Alive;
    let mut retry: VecDeque<MethodCall> = VecDeque::new();
    let mut grant: Option<Grant> = None;
    let mut burst = 0;
    loop {
        let next = match retry.pop_front() {
            Some(c) => Some(c),
            None => match rx.try_recv() {
                Ok(c) => Some(c),
                Err(_) => {
                    // Idle: give the slots back before waiting.
                    grant = None;
                    burst = 0;
                    let cancel = {
                        let m = a.lock();
                        m.kill.is_none().then(|| m.cancel.clone())
                    };
                    match cancel {
                        // A kill is pending: handle it now.
                        None => None,
                        Some(cancel) => tokio::select! {
                            c = rx.recv() => c,
                            () = cancel.cancelled() => None,
                        },
                    }
                }
            },
        };
        let kill = a.lock().kill.take();
        if let Some(kill) = kill {
            // Killed while idle (or between calls).
            let requeue = next;
            let restarted = restart_or_die(&rt, &a, kill, None, &ctor_args, ctor_depth, Some(live));
            match restarted.await {
                Ok(inc) => {
                    live = inc;
                    retry.extend(requeue);
                    continue;
                }
                Err(mut lost) => {
                    if let Some(c) = requeue {
                        let cause = dead_cause(&a);
                        fail_call(&rt, &a, c, cause);
                    }
                    let cause = dead_cause(&a).expect("restart_or_die records the cause");
                    lost.iter_mut().for_each(Incarnation::retire);
                    return die(&rt, &a, cause, rx, (ctor_args, held));
                }
            }
        }
        let Some(call) = next else { continue };
        if call.handle.cancel.is_cancelled() {
            let mut rec = ErrorRecord::new(
                ErrorKind::Cancelled,
                &*call.method.label,
                "the call was cancelled before it ran",
            );
            rec.task = call.id;
            end_call(&rt, call.id, Some(&rec));
            fail_all(&rt, &call.returns, rec);
            continue;
        }
        let label = call.method.label.clone();
        // Arguments not at hand (pending, spilled, lost) are awaited
        // without the slots: the tasks that make them may need one.
        let resolved = {
            let mut resolving = pin!(resolve_args(&rt, &call.args, &label, Some(call.id)));
            let first = resolving
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()));
            match first {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    grant = None;
                    resolving.await
                }
            }
        };
        let args = match resolved {
            Ok(args) => args,
            Err(rec) => {
                end_call(&rt, call.id, Some(&rec));
                fail_all(&rt, &call.returns, rec);
                continue;
            }
        };
        if burst >= BURST {
            grant = None;
            burst = 0;
        }
        let g = match grant.take() {
            Some(g) => g,
            None => rt.env.slots.enqueue(Need::ACTOR, call.depth).grant().await,
        };
        burst += 1;
        let outcome = Box::pin(run_call(&rt, &a, &mut live, &call, args, g)).await;
        match outcome {
            CallOutcome::Done(values, held, g) => {
                grant = Some(g);
                a.calls.fetch_add(1, Ordering::Relaxed);
                end_call(&rt, call.id, None);
                for (id, blob) in call.returns.iter().zip(values) {
                    rt.env.objects.resolve(*id, Resolved::Ready(blob));
                }
                drop(held);
            }
            CallOutcome::Failed(rec, g) => {
                // The guest reported an error: the instance is fine.
                grant = Some(g);
                end_call(&rt, call.id, Some(&rec));
                fail_all(&rt, &call.returns, rec);
            }
            CallOutcome::InstanceLost(rec) => {
                // Trapped or interrupted: this instance is done.
                grant = None;
                let kill = a.lock().kill.take();
                let killed = kill.is_some();
                let why = kill.unwrap_or(Kill::AllowRestart);
                let mut call = call;
                let rec = if killed {
                    let mut r = ErrorRecord::new(
                        ErrorKind::ActorDied,
                        &*label,
                        format!("actor {:?} was killed while running the call", a.id),
                    );
                    r.task = call.id;
                    r
                } else {
                    rec
                };
                let restarted =
                    restart_or_die(&rt, &a, why, Some(&rec), &ctor_args, ctor_depth, Some(live));
                match restarted.await {
                    Ok(inc) => {
                        live = inc;
                        // Redelivered when the actor restarts after a crash
                        // (or a kill allowing restart), not after a final kill.
                        if call.retries_left != 0 && why == Kill::AllowRestart {
                            call.retries_left -= 1;
                            rt.env.events.retrying(call.id);
                            retry.push_front(call);
                        } else {
                            end_call(&rt, call.id, Some(&rec));
                            fail_all(&rt, &call.returns, rec);
                        }
                    }
                    Err(mut lost) => {
                        end_call(&rt, call.id, Some(&rec));
                        fail_all(&rt, &call.returns, rec);
                        for c in retry.drain(..) {
                            fail_call(&rt, &a, c, dead_cause(&a));
                        }
                        let cause = dead_cause(&a).expect("restart_or_die records the cause");
                        lost.iter_mut().for_each(Incarnation::retire);
                        return die(&rt, &a, cause, rx, (ctor_args, held));
                    }
                }
            }
        }
    }
}

fn dead_cause(a: &Actor) -> Option<Arc<ErrorRecord>> {
    match a.life() {
        Life::Dead(c) => Some(c),
        _ => None,
    }
}

/// After an instance was lost (or killed): restarts the actor if the kill
/// allows it and restarts remain, else marks it dead and hands `lost` back
/// (the caller retires it and calls `die`). `lost` is dropped before a new
/// instance is made: it holds an actor slot and a place in the pool.
async fn restart_or_die(
    rt: &Arc<Actors>,
    a: &Arc<Actor>,
    mut kill: Kill,
    cause: Option<&ErrorRecord>,
    ctor_args: &[ArgValue],
    depth: u32,
    mut lost: Option<Incarnation>,
) -> Result<Incarnation, Option<Incarnation>> {
    let mut cause = cause.cloned();
    loop {
        let restarts = a.restarts();
        if !may_restart(kill, restarts, a.max_restarts) {
            let why = match (kill, &cause) {
                (Kill::NoRestart, _) => format!("actor {:?} was killed", a.id),
                (_, Some(_)) => format!("actor {:?} died after {restarts} restarts", a.id),
                (_, None) => format!("actor {:?} was killed and has no restarts left", a.id),
            };
            let mut rec = ErrorRecord::new(ErrorKind::ActorDied, a.type_name.to_string(), why);
            if let Some(c) = cause {
                rec = rec.caused_by(Arc::new(c));
            }
            a.lock().life = Life::Dead(Arc::new(rec));
            return Err(lost);
        }
        drop(lost.take());
        {
            let mut m = a.lock();
            m.restarts += 1;
            m.life = Life::Starting;
            m.cancel = Arc::new(CancelToken::default());
            // A kill that came in since the last one was taken applies to
            // the new instance at once.
            if m.kill.is_some() {
                m.cancel.cancel();
            }
        }
        match construct(rt, a, ctor_args, depth).await {
            Ok(inc) => {
                a.lock().life = Life::Alive;
                return Ok(inc);
            }
            Err(rec) => {
                // Killed (or crashed) while constructing: that is one more
                // restart, or the end.
                if let Some(again) = a.lock().kill.take() {
                    kill = again;
                    cause = Some(rec);
                    continue;
                }
                let d = ErrorRecord::new(
                    ErrorKind::ActorDied,
                    a.type_name.to_string(),
                    "its constructor failed on restart",
                )
                .caused_by(Arc::new(rec));
                a.lock().life = Life::Dead(Arc::new(d));
                return Err(None);
            }
        }
    }
}

/// Resolves reference arguments, in order.
async fn resolve_args(
    rt: &Arc<Actors>,
    args: &[TaskArg],
    function: &str,
    task: Option<TaskId>,
) -> Result<Vec<ArgValue>, ErrorRecord> {
    crate::objects::arg::resolve_args(&rt.env.objects, args, function)
        .await
        .map_err(|mut rec| {
            if let Some(t) = task {
                rec.task = t;
            }
            rec
        })
}

/// A fresh instance with the constructor run.
async fn construct(
    rt: &Arc<Actors>,
    a: &Arc<Actor>,
    args: &[ArgValue],
    depth: u32,
) -> Result<Incarnation, ErrorRecord> {
    let label = format!("{}.new", a.type_name);
    let worker_failure =
        |why: String| ErrorRecord::new(ErrorKind::WorkerFailure, label.clone(), why);
    let wasm = rt.env.engines.actors().map_err(worker_failure)?;
    let code = a
        .module
        .actor_code(&rt.env.engines, &rt.env.modules)
        .map_err(worker_failure)?;
    let cancel = a.lock().cancel.clone();
    // An actor slot, then a CPU slot, then the instance.
    let actor_slot = rt
        .slots
        .clone()
        .acquire_owned()
        .await
        .expect("the actor semaphore is never closed");
    let grant = rt.env.slots.enqueue(Need::ACTOR, depth).grant().await;
    let mut store = instance::new_store(
        &rt.env,
        &wasm.engine,
        InstanceSpec {
            module: a.module.clone(),
            source: OutputSource {
                name: a.type_name.clone(),
                kind: SourceKind::Actor(a.id),
                job: a.job,
            },
            memory_limit: a.memory_limit,
            deadline: None,
            origin: Origin {
                task: None,
                actor: Some(a.id),
                job: a.job,
                depth,
            },
            cancel,
            actor_slot: Some(actor_slot),
            args: Vec::new(),
        },
    );
    let export_name = format!(
        "{}{}/{}",
        export::ACTOR_PREFIX,
        a.type_name,
        export::ACTOR_CONSTRUCTOR
    );
    let export = *code
        .export(&export_name)
        .expect("checked when the actor was created");
    {
        let st = store.data_mut();
        st.slot = grant.cpu;
        for a in args {
            st.refs.lend(a.blob.refs());
        }
        st.call = Call::new(&rt.env.objects, args.to_vec(), 1, a.module.maps_args());
    }
    let result = call_export(&mut store, code, &export).await;
    finish_call(&mut store, result, &label)?;
    store.data_mut().slot = None;
    Ok(Incarnation { store })
}

enum CallOutcome {
    /// The method returned: its values, the references they hold, the
    /// slots (kept for the next call of the burst).
    Done(Vec<Arc<Blob>>, HeldRefs, Grant),
    /// The method failed without harming the instance.
    Failed(ErrorRecord, Grant),
    /// The instance trapped or was interrupted: it must be replaced.
    InstanceLost(ErrorRecord),
}

/// Runs one method call on the live instance.
async fn run_call(
    rt: &Arc<Actors>,
    a: &Arc<Actor>,
    live: &mut Incarnation,
    call: &MethodCall,
    args: Vec<ArgValue>,
    grant: Grant,
) -> CallOutcome {
    let label = &*call.method.label;
    rt.env.events.started(call.id);
    let Some(c) = Call::new(
        &rt.env.objects,
        args,
        call.returns.len() as u32,
        a.module.maps_args(),
    ) else {
        let rec = ErrorRecord::new(
            ErrorKind::InvalidArgument,
            label,
            "the arguments together exceed 4 GiB",
        );
        return CallOutcome::Failed(rec, grant);
    };
    let store = &mut live.store;
    {
        let st = store.data_mut();
        for a in &c.args {
            st.refs.lend(a.blob.refs());
        }
        st.call = Some(c);
        st.failure = None;
        st.slot = grant.cpu;
        st.call_slot = grant.call;
        st.origin.task = Some(call.id);
        st.origin.depth = call.depth;
        st.deadline = a.call_timeout.map(|t| Instant::now() + t);
    }
    let instance = live_instance(store);
    let export = a
        .module
        .actor_code(&rt.env.engines, &rt.env.modules)
        .ok()
        .and_then(|code| code.export(&call.method.export).copied());
    let func = export
        .and_then(|e| instance.get_module_export(&mut *store, &e))
        .and_then(|e| e.into_func())
        .and_then(|f| f.typed::<(), i32>(&*store).ok());
    let result = match func {
        Some(f) => f.call_async(&mut *store, ()).await,
        None => Err(wasmtime::format_err!("the validated export is missing")),
    };
    let trapped = result.is_err();
    let outcome = finish_call(store, result, label);
    let st = store.data_mut();
    st.origin.task = None;
    let grant = Grant {
        cpu: st.slot.take(),
        call: st.call_slot.take(),
    };
    match outcome {
        Ok(f) => CallOutcome::Done(f.values, f.held, grant),
        Err(mut rec) => {
            rec.task = call.id;
            if trapped {
                CallOutcome::InstanceLost(rec)
            } else {
                CallOutcome::Failed(rec, grant)
            }
        }
    }
}

/// The instance living in an actor's store.
fn live_instance(store: &mut Store<InstanceState>) -> wasmtime::Instance {
    store
        .data()
        .instance
        .expect("an actor's store holds its instance")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_restarts_while_restarts_remain_and_never_after_a_final_kill() {
        assert!(may_restart(Kill::AllowRestart, 0, 1));
        assert!(!may_restart(Kill::AllowRestart, 1, 1), "none left");
        assert!(!may_restart(Kill::AllowRestart, 0, 0), "never allowed");
        assert!(
            may_restart(Kill::AllowRestart, u32::MAX, -1),
            "without limit"
        );
        assert!(!may_restart(Kill::NoRestart, 0, -1), "a kill is final");
        assert!(!may_restart(Kill::NoRestart, 0, 5));
    }
}
