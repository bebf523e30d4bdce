//! Actors and other nodes: where an actor lives ([`placement`]), the
//! loop of one placed on another node ([`run_remote`]), and calls of
//! another node's actors whose handles reached this one
//! ([`call_foreign`]).
//!
//! This node keeps the actor's record (its id, name, job, life, mailbox:
//! everything the rest of the runtime sees) and runs a loop that creates
//! the actor there and forwards its calls, one at a time in the order they
//! came (an actor serves one call at a time anyway; waiting for each reply
//! keeps the order without sequence numbers, at one round trip per call).
//! The other node runs the instance, its restarts after traps and its
//! calls' retries; what it prints comes back with each call's results.
//!
//! When that node is lost (unreachable, or gone from the cluster), the
//! actor is restarted on another node while `max_restarts` allows, its
//! constructor run again with its original arguments, and the call in
//! flight is sent again while its `max_task_retries` allow. Placed back on
//! this node, it continues as a local actor ([`run`](super::run::run)).
//! A kill reaches the other node; when the loop ends, the actor there is
//! killed too.

use crate::actor::registry::{Actor, Actors, ForeignCall, Kill, Life, MethodCall, may_restart};
use crate::actor::run::{
    die, end_call, fail_all, fail_call, fail_cancelled, next_call, resolve_args, run,
};
use crate::events::TaskKind;
use crate::exec::remote::{ForwardActor, ForwardMethod, Forwarded, Peer, Place};
use crate::exec::request::Submission;
use crate::objects::arg::{ArgValue, TaskArg};
use crate::objects::blob::Encoding;
use crate::objects::held::HeldRefs;
use crate::objects::store::Resolved;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ActorId, ErrorKind, ObjectId, TaskId};

/// Where an actor with `options` lives: on the node that creates it,
/// unless its options ask for another (`node`), for resources only
/// another has, or to be spread over the cluster; nowhere if no node can
/// take it (why).
pub(super) fn placement(rt: &Actors, options: &wray_abi::wire::Options) -> Place {
    let elsewhere = options.node.is_some()
        || options.spread == Some(true)
        || rt.env.resources.check(&options.resources).is_err();
    match elsewhere {
        false => Place::Here,
        true => rt.env.place(options, true, &Default::default()),
    }
}

/// The actor's loop when it lives on `peer`: create it there, forward its
/// calls, restart it elsewhere if that node is lost, die.
pub(super) async fn run_remote(
    rt: Arc<Actors>,
    a: Arc<Actor>,
    mut ctor: Submission,
    mut rx: mpsc::UnboundedReceiver<MethodCall>,
    mut peer: Arc<dyn Peer>,
) {
    let label = format!("{}.new", a.type_name);
    let ctor_args = match resolve_args(&rt, &ctor.args, &label, None).await {
        Ok(args) => args,
        Err(rec) => {
            let held = std::mem::replace(&mut ctor._held, HeldRefs::new(&rt.env.objects));
            return die(&rt, &a, Arc::new(rec), rx, held);
        }
    };
    let mut there = match create_there(&rt, &a, &ctor, &ctor_args, &peer).await {
        Ok(id) => id,
        Err(rec) => return die(&rt, &a, Arc::new(rec), rx, ctor),
    };
    // Its restarts before it lived there (those there, its host counts).
    let mut before = {
        let mut m = a.lock();
        m.life = Life::Alive;
        m.node = Some(peer.id().into());
        m.restarts
    };
    let mut retry: Option<MethodCall> = None;
    loop {
        let next = match retry.take() {
            Some(c) => Some(c),
            None => next_call(&a, &mut rx).await,
        };
        let kill = a.lock().kill.take();
        if let Some(kill) = kill {
            if may_restart(kill, a.restarts(), a.max_restarts) {
                // Restarted there, by the node that runs it.
                peer.clone().kill_actor(there, true).await;
                let mut m = a.lock();
                m.restarts += 1;
                m.cancel = Arc::new(crate::exec::state::CancelToken::default());
                retry = next;
                continue;
            }
            peer.clone().kill_actor(there, false).await;
            let why = match kill {
                Kill::NoRestart => format!("actor {:?} was killed", a.id),
                Kill::AllowRestart => {
                    format!("actor {:?} was killed and has no restarts left", a.id)
                }
            };
            let rec = ErrorRecord::new(ErrorKind::ActorDied, a.type_name.to_string(), why);
            return end(&rt, &a, rec, next, rx, ctor);
        }
        let Some(mut call) = next else { continue };
        if call.handle.cancel.is_cancelled() {
            fail_cancelled(&rt, call);
            continue;
        }
        let rec = match forward_call(&rt, &a, &call, there, &peer, before).await {
            Ok(()) => continue,
            Err(rec) => rec,
        };
        if killed(&a) {
            // The loop takes the kill next.
            let mut rec = ErrorRecord::new(
                ErrorKind::ActorDied,
                &*call.method.label,
                format!("actor {:?} was killed while running the call", a.id),
            );
            rec.task = call.id;
            end_call(&rt, call.id, Some(&rec));
            fail_all(&rt, &call.returns, rec);
            continue;
        }
        if rec.kind != ErrorKind::WorkerFailure {
            let mut failed = rec.clone();
            failed.task = call.id;
            end_call(&rt, call.id, Some(&failed));
            fail_all(&rt, &call.returns, failed);
            if rec.kind == ErrorKind::ActorDied {
                // Dead for good there (its constructor failed, or its
                // restarts ran out): so it is here.
                peer.clone().kill_actor(there, false).await;
                return end(&rt, &a, rec, None, rx, ctor);
            }
            continue;
        }
        // Its node is lost: restart it elsewhere, if allowed.
        if !may_restart(Kill::AllowRestart, a.restarts(), a.max_restarts) {
            let cause = lost(&a, rec, "it has no restarts left");
            return end(&rt, &a, cause, Some(call), rx, ctor);
        }
        {
            let mut m = a.lock();
            m.restarts += 1;
            m.life = Life::Starting;
        }
        let requeue = if call.retries_left != 0 {
            call.retries_left -= 1;
            rt.env.events.retrying(call.id, &rec);
            Some(call)
        } else {
            let mut failed = rec.clone();
            failed.task = call.id;
            end_call(&rt, call.id, Some(&failed));
            fail_all(&rt, &call.returns, failed);
            None
        };
        match restart_place(&rt, &ctor, &peer) {
            Place::There(p) => match create_there(&rt, &a, &ctor, &ctor_args, &p).await {
                Ok(id) => {
                    (peer, there) = (p, id);
                    let mut m = a.lock();
                    m.life = Life::Alive;
                    m.node = Some(peer.id().into());
                    before = m.restarts;
                    retry = requeue;
                }
                Err(why) => {
                    let cause = lost(&a, why, "it could not be made again");
                    return end(&rt, &a, cause, requeue, rx, ctor);
                }
            },
            Place::Here => {
                // Back on this node: a local actor from now on, its
                // retried call first in line.
                drop(ctor_args);
                a.lock().node = None;
                if let Some(c) = requeue
                    && let Err(mpsc::error::SendError(c)) = a.mailbox.send(c)
                {
                    fail_call(&rt, &a, c, None);
                }
                return run(rt, a, ctor, rx).await;
            }
            Place::Nowhere(why) => {
                let cause = lost(&a, rec, &why);
                return end(&rt, &a, cause, requeue, rx, ctor);
            }
        }
    }
}

/// Ends the actor of `cause`, failing `pending` (a call taken from its
/// mailbox) and then the rest of its mailbox.
fn end(
    rt: &Actors,
    a: &Arc<Actor>,
    cause: ErrorRecord,
    pending: Option<MethodCall>,
    rx: mpsc::UnboundedReceiver<MethodCall>,
    ctor: Submission,
) {
    let cause = Arc::new(cause);
    if let Some(c) = pending {
        fail_call(rt, a, c, Some(cause.clone()));
    }
    die(rt, a, cause, rx, ctor);
}

/// Whether a kill is pending.
fn killed(a: &Actor) -> bool {
    a.lock().kill.is_some()
}

/// The death of an actor whose node was lost (`rec`), and why it was not
/// restarted.
fn lost(a: &Actor, rec: ErrorRecord, why: &str) -> ErrorRecord {
    ErrorRecord::new(
        ErrorKind::ActorDied,
        a.type_name.to_string(),
        format!("actor {:?} lost its node, and {why}", a.id),
    )
    .caused_by(Arc::new(rec))
}

/// Where the actor restarts once `lost` is gone: placed as it was first
/// (its node, its resources, spread), among the nodes left.
fn restart_place(rt: &Actors, ctor: &Submission, lost: &Arc<dyn Peer>) -> Place {
    match placement(rt, &ctor.options) {
        Place::There(p) if p.id() == lost.id() => Place::Nowhere(format!(
            "node {} is still listed, but cannot be reached",
            lost.id()
        )),
        place => place,
    }
}

/// Creates the actor on `peer`; its id there.
async fn create_there(
    rt: &Actors,
    a: &Actor,
    ctor: &Submission,
    args: &[ArgValue],
    peer: &Arc<dyn Peer>,
) -> Result<ActorId, ErrorRecord> {
    if args.iter().any(|v| !v.blob.refs().is_empty()) {
        return Err(ErrorRecord::new(
            ErrorKind::InvalidArgument,
            format!("{}.new", a.type_name),
            "a constructor argument holds references to objects, which cannot leave this node \
             yet: create the actor on this node",
        ));
    }
    let options = wray_abi::wire::Options {
        name: None,
        spread: None,
        node: Some(peer.id().to_string()),
        module: None,
        ..ctor.options.clone()
    };
    peer.clone()
        .create_actor(ForwardActor {
            module: a.module.clone(),
            type_name: a.type_name.clone(),
            options,
            args: args.to_vec(),
            depth: ctor.depth,
            actor: a.id,
            links: rt.env.links.table(a.job),
        })
        .await
}

/// One call of `actor` on `peer` (`label` names it in errors): its
/// arguments resolved here and sent, its results (their bytes here), or
/// the error.
#[allow(clippy::too_many_arguments)] // a call's parts, from two callers
async fn send_call(
    rt: &Actors,
    peer: &Arc<dyn Peer>,
    actor: ActorId,
    method: Arc<str>,
    label: &str,
    id: TaskId,
    args: &[TaskArg],
    num_returns: u32,
    depth: u32,
) -> Result<Forwarded, ErrorRecord> {
    let args = resolve_args(rt, args, label, Some(id)).await?;
    if args.iter().any(|v| !v.blob.refs().is_empty()) {
        return Err(ErrorRecord::new(
            ErrorKind::InvalidArgument,
            label,
            "an argument holds references to objects, which cannot reach an actor on another \
             node yet",
        ));
    }
    rt.env.events.started(id);
    let forward = ForwardMethod {
        method,
        num_returns,
        args,
        depth,
        task: id,
    };
    peer.clone().call_actor(actor, forward).await
}

/// Sends `call` to the actor on `peer` and stores its results here; the
/// error if it failed (not yet recorded).
async fn forward_call(
    rt: &Actors,
    a: &Actor,
    call: &MethodCall,
    there: ActorId,
    peer: &Arc<dyn Peer>,
    before: u32,
) -> Result<(), ErrorRecord> {
    let label = &*call.method.label;
    // `Type.method`: the method's name.
    let method = match label.split_once('.') {
        Some((_, method)) => method.into(),
        None => call.method.label.clone(),
    };
    let n = call.returns.len() as u32;
    let sent = send_call(
        rt, peer, there, method, label, call.id, &call.args, n, call.depth,
    );
    let cancel = a.lock().cancel.clone();
    let forwarded = tokio::select! {
        r = sent => r?,
        () = cancel.cancelled() => {
            // Killed meanwhile: the loop handles the kill next.
            return Err(ErrorRecord::new(ErrorKind::ActorDied, label, "killed"));
        }
    };
    rt.env.show_output(forwarded.output, a.job);
    a.calls.fetch_add(1, Ordering::Relaxed);
    {
        // Restarts there after a trap (a kill's restart counts here too).
        let mut m = a.lock();
        m.restarts = m.restarts.max(before + forwarded.restarts);
    }
    end_call(rt, call.id, None);
    let encoding = call
        .method
        .signature
        .as_ref()
        .map_or(Encoding::Raw, |s| s.value_encoding());
    for (id, blob) in call.returns.iter().zip(forwarded.values) {
        blob.mark(encoding);
        rt.env.objects.resolve(*id, Resolved::Ready(blob));
    }
    Ok(())
}

/// Sends a call of `actor`, an actor of another node whose handle reached
/// this node, into that actor's line here (made on first use), which
/// sends its calls there one at a time, in order.
pub(crate) fn call_foreign(
    rt: &Arc<Actors>,
    actor: ActorId,
    method: &str,
    id: TaskId,
    returns: &[ObjectId],
    sub: Submission,
) {
    let label: Arc<str> = format!("?.{method}").into();
    rt.env.events.submitted(
        id,
        label.clone(),
        TaskKind::ActorMethod,
        sub.job,
        sub.parent,
        Some(actor),
    );
    let call = ForeignCall {
        id,
        method: method.into(),
        label,
        args: sub.args,
        _held: sub._held,
        returns: returns.to_vec(),
        depth: sub.depth,
        job: sub.job,
    };
    let line = rt.registry.foreign.entry(actor).or_insert_with(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        let rt = rt.clone();
        let spawner = rt.env.spawner.clone();
        spawner.spawn(foreign_line(rt, actor, rx));
        tx
    });
    if let Err(mpsc::error::SendError(call)) = line.send(call) {
        let rec = ErrorRecord::new(ErrorKind::ActorDied, &*call.label, "its line ended");
        rt.env.events.ended(call.id, Some(&rec));
        fail_all(rt, &call.returns, rec);
    }
}

/// The line of calls of a foreign actor: each sent to the actor's node
/// once the one before it ended. It ends, with its entry, once the actor
/// is dead, or at once if its node is not in the cluster (a node that
/// joined since this one last read the live nodes is found).
async fn foreign_line(
    rt: Arc<Actors>,
    actor: ActorId,
    mut rx: mpsc::UnboundedReceiver<ForeignCall>,
) {
    let peer = rt.env.find_peer(actor.node()).await;
    let why = match &peer {
        Some(_) => format!("actor {actor:?} is dead"),
        None => format!(
            "actor {actor:?} is dead: its node ({}) is not in the cluster",
            actor.node()
        ),
    };
    while let Some(peer) = &peer
        && let Some(call) = rx.recv().await
    {
        let (n, label) = (call.returns.len() as u32, &*call.label);
        let method = call.method.clone();
        let sent = send_call(
            &rt, peer, actor, method, label, call.id, &call.args, n, call.depth,
        );
        match sent.await {
            Ok(forwarded) => {
                rt.env.show_output(forwarded.output, call.job);
                rt.env.events.ended(call.id, None);
                for (id, blob) in call.returns.iter().zip(forwarded.values) {
                    rt.env.objects.resolve(*id, Resolved::Ready(blob));
                }
            }
            Err(mut rec) => {
                rec.task = call.id;
                rt.env.events.ended(call.id, Some(&rec));
                let dead = rec.kind == ErrorKind::ActorDied;
                fail_all(&rt, &call.returns, rec);
                if dead {
                    break;
                }
            }
        }
    }
    // Calls that came meanwhile go to a new line.
    rt.registry.foreign.remove(&actor);
    rx.close();
    while let Ok(call) = rx.try_recv() {
        let rec = ErrorRecord::new(ErrorKind::ActorDied, &*call.label, why.clone());
        rt.env.events.ended(call.id, Some(&rec));
        fail_all(&rt, &call.returns, rec);
    }
}
