//! An actor's loop ([`run`]): construct, serve calls from the mailbox one
//! at a time, restart, die; and the death path that fails its calls.
//!
//! The loop resolves the constructor's arguments, instantiates the module
//! and runs `wray:actor/<Type>/new`, then takes calls in arrival order:
//! resolves the call's reference arguments, holds a CPU slot and a call
//! slot (kept across a burst of queued calls), sets the call on the store
//! and runs the method's export. A call that returns an error leaves the
//! actor alive. A call that traps (or is interrupted by a kill) kills the
//! instance: a store is never called again after a trap. The actor then
//! restarts (a fresh instance, the constructor run again with its original
//! arguments) while `max_restarts` allows, and the interrupted call is run
//! again on the new instance while its `max_task_retries` allow
//! (at-least-once), else it fails with its error. A dead actor fails every
//! pending and later call with `ActorDied`, the cause chained. A
//! constructor that fails makes the actor dead.
//!
//! The loop owns the store. Other threads reach an actor only through its
//! mailbox and its `Life` mutex.

use crate::actor::registry::{
    Actor, Actors, BURST, GRAVEYARD, Kill, Life, MethodCall, dead_cause, may_restart,
};
use crate::exec::instance::{self, InstanceSpec};
use crate::exec::invoke::{call_export, finish_call};
use crate::exec::module::Method;
use crate::exec::request::Submission;
use crate::exec::resources::Held;
use crate::exec::slots::{Grant, Need};
use crate::exec::state::{Call, CancelToken, InstanceState, Origin};
use crate::objects::arg::{ArgValue, TaskArg};
use crate::objects::blob::{Blob, Encoding};
use crate::objects::held::HeldRefs;
use crate::objects::store::Resolved;
use crate::output::{OutputSource, SourceKind};
use std::collections::VecDeque;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::sync::mpsc;
use wasmtime::Store;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ErrorKind, ObjectId, TaskId, export};

/// Fails every return value of a call with `rec`.
pub(super) fn fail_all(rt: &Actors, returns: &[ObjectId], rec: ErrorRecord) {
    let rec = Arc::new(rec);
    for r in returns {
        rt.env.objects.resolve(*r, Resolved::Failed(rec.clone()));
    }
}

/// The next call in `a`'s mailbox, once one comes; `None` at once if a
/// kill is pending, or when one comes.
pub(super) async fn next_call(
    a: &Actor,
    rx: &mut mpsc::UnboundedReceiver<MethodCall>,
) -> Option<MethodCall> {
    let cancel = {
        let m = a.lock();
        m.kill.is_none().then(|| m.cancel.clone())
    }?;
    tokio::select! {
        c = rx.recv() => c,
        () = cancel.cancelled() => None,
    }
}

/// Call `call` of `a` ended with `values`: counted, out of the task
/// table, its results stored (marked with the method's encoding).
pub(super) fn call_done(rt: &Actors, a: &Actor, call: &MethodCall, values: Vec<Arc<Blob>>) {
    a.calls.fetch_add(1, Ordering::Relaxed);
    end_call(rt, call.id, None);
    let encoding = call
        .method
        .signature
        .as_ref()
        .map_or(Encoding::Raw, |s| s.value_encoding());
    for (id, blob) in call.returns.iter().zip(values) {
        blob.mark(encoding);
        rt.env.objects.resolve(*id, Resolved::Ready(blob));
    }
}

/// Fails a call cancelled before it ran.
pub(super) fn fail_cancelled(rt: &Actors, call: MethodCall) {
    let mut rec = ErrorRecord::new(
        ErrorKind::Cancelled,
        &*call.method.label,
        "the call was cancelled before it ran",
    );
    rec.task = call.id;
    end_call(rt, call.id, Some(&rec));
    fail_all(rt, &call.returns, rec);
}

/// Call `id` ended, with `error` if it failed: out of the task table, into
/// the record.
pub(super) fn end_call(rt: &Actors, id: TaskId, error: Option<&ErrorRecord>) {
    rt.tasks.table.remove(&id);
    rt.env.events.ended(id, error);
}

/// Fails a call because its actor died (of `cause`, when known).
pub(super) fn fail_call(rt: &Actors, a: &Actor, call: MethodCall, cause: Option<Arc<ErrorRecord>>) {
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
pub(super) fn die<L>(
    rt: &Actors,
    a: &Arc<Actor>,
    cause: Arc<ErrorRecord>,
    mut rx: mpsc::UnboundedReceiver<MethodCall>,
    leftovers: L,
) {
    a.lock().life = Life::Dead(cause.clone());
    // In the graveyard before it leaves the table, so a call that misses
    // it in the table finds its cause there.
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
    // Gone from the tables before its calls fail: whoever sees a call
    // fail sees the actor (and its name) gone.
    rt.registry.remove(a);
    if let Some(name) = &a.name
        && rt
            .registry
            .names
            .remove_if(name, |_, owner| *owner == a.id)
            .is_some()
        && let Some(cluster) = rt.env.cluster()
    {
        cluster.release_name(name, a.id, &a.type_name);
    }
    rx.close();
    while let Ok(call) = rx.try_recv() {
        fail_call(rt, a, call, Some(cause.clone()));
    }
    drop(leftovers);
    a.buried.store(true, Ordering::Release);
    a.died.notify_waiters();
}

/// [`die`], failing `retry` (calls taken from the mailbox, or handed
/// over) first.
fn die_after<L>(
    rt: &Actors,
    a: &Arc<Actor>,
    cause: Arc<ErrorRecord>,
    retry: VecDeque<MethodCall>,
    rx: mpsc::UnboundedReceiver<MethodCall>,
    leftovers: L,
) {
    for c in retry {
        fail_call(rt, a, c, Some(cause.clone()));
    }
    die(rt, a, cause, rx, leftovers);
}

/// A live instance of the actor.
struct Incarnation {
    store: Store<InstanceState>,
    /// The custom resources it holds while it lives.
    resources: Option<Held>,
}

impl Incarnation {
    /// Gives back what the instance holds in the runtime (see
    /// `InstanceState::retire`) before it is declared dead, so whoever
    /// waits for its death finds them back; its memory goes when it is
    /// dropped.
    fn retire(&mut self) {
        self.resources = None;
        self.store.data_mut().retire();
    }
}

/// The actor's loop: construct, serve calls (`retry` first, then the
/// mailbox's), restart, die.
pub(super) async fn run(
    rt: Arc<Actors>,
    a: Arc<Actor>,
    mut ctor: Submission,
    mut rx: mpsc::UnboundedReceiver<MethodCall>,
    mut retry: VecDeque<MethodCall>,
) {
    // The references held for the constructor's arguments go with them
    // when the actor dies, before its death is announced.
    let held = std::mem::replace(&mut ctor._held, HeldRefs::new(&rt.env.objects));
    let ctor_args = match resolve_args(&rt, &ctor.args, &format!("{}.new", a.type_name), None).await
    {
        Ok(args) => args,
        Err(rec) => return die_after(&rt, &a, Arc::new(rec), retry, rx, held),
    };
    let ctor_depth = ctor.depth;
    let mut live = match construct(&rt, &a, &ctor_args, ctor_depth).await {
        Ok(inc) => inc,
        Err(rec) => {
            // Killed (or crashed) while constructing: restart if allowed.
            let Some(kill) = a.lock().kill.take() else {
                return die_after(&rt, &a, Arc::new(rec), retry, rx, (ctor_args, held));
            };
            let restarted = restart_or_die(&rt, &a, kill, Some(&rec), &ctor_args, ctor_depth, None);
            match restarted.await {
                Ok(inc) => inc,
                Err(_) => {
                    let cause = dead_cause(&a).expect("restart_or_die records the cause");
                    return die_after(&rt, &a, cause, retry, rx, (ctor_args, held));
                }
            }
        }
    };
    a.lock().life = Life::Alive;
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
                    next_call(&a, &mut rx).await
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
                    // The call taken fails first, then the others.
                    if let Some(c) = requeue {
                        retry.push_front(c);
                    }
                    let cause = dead_cause(&a).expect("restart_or_die records the cause");
                    lost.iter_mut().for_each(Incarnation::retire);
                    return die_after(&rt, &a, cause, retry, rx, (ctor_args, held));
                }
            }
        }
        let Some(call) = next else { continue };
        if call.handle.cancel.is_cancelled() {
            fail_cancelled(&rt, call);
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
        let checked = resolved.and_then(|args| {
            checked_encodings(&call.method, &args, Some(call.id))?;
            Ok(args)
        });
        let args = match checked {
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
                call_done(&rt, &a, &call, values);
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
                            rt.env.events.retrying(call.id, &rec);
                            retry.push_front(call);
                        } else {
                            end_call(&rt, call.id, Some(&rec));
                            fail_all(&rt, &call.returns, rec);
                        }
                    }
                    Err(mut lost) => {
                        end_call(&rt, call.id, Some(&rec));
                        fail_all(&rt, &call.returns, rec);
                        let cause = dead_cause(&a).expect("restart_or_die records the cause");
                        lost.iter_mut().for_each(Incarnation::retire);
                        return die_after(&rt, &a, cause, retry, rx, (ctor_args, held));
                    }
                }
            }
        }
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
pub(super) async fn resolve_args(
    rt: &Actors,
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

/// Refuses argument objects of another encoding than the method's (see
/// `Signature::check_encodings`).
fn checked_encodings(
    method: &Method,
    args: &[ArgValue],
    task: Option<TaskId>,
) -> Result<(), ErrorRecord> {
    let Some(sig) = &method.signature else {
        return Ok(());
    };
    sig.check_encodings(args.iter().map(|a| a.blob.encoding()))
        .map_err(|why| {
            let mut rec = ErrorRecord::new(ErrorKind::InvalidArgument, &*method.label, why);
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
    if let Some(ctor) = a.module.method(&a.type_name, export::ACTOR_CONSTRUCTOR) {
        checked_encodings(ctor, args, None)?;
    }
    let worker_failure =
        |why: String| ErrorRecord::new(ErrorKind::WorkerFailure, label.clone(), why);
    let wasm = rt.env.engines.actors().map_err(worker_failure)?;
    let code = a
        .module
        .actor_code(&rt.env.engines, &rt.env.modules)
        .map_err(worker_failure)?;
    let cancel = a.lock().cancel.clone();
    // Its resources, an actor slot, then a CPU slot, then the instance.
    let resources = match a.resources.is_empty() {
        true => None,
        false => Some(rt.env.resources.acquire(&a.resources).await),
    };
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
    Ok(Incarnation { store, resources })
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
