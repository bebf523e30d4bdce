//! Actors and other nodes: where an actor lives ([`placement`]), the
//! loop of one placed on another node ([`run_remote`]), and calls of
//! another node's actors whose handles reached this one
//! ([`call_foreign`]).
//!
//! This node keeps the actor's record (its id, name, job, life, mailbox:
//! everything the rest of the runtime sees) and runs a loop that creates
//! the actor there and sends its calls on a line ([`ActorLine`]: one
//! stream, which keeps their order), up to [`IN_FLIGHT`] before the first
//! is answered. Each call settles on its own as its answer comes. The
//! other node runs the instance, its restarts after traps and its calls'
//! retries; what it prints comes back with each call's results.
//!
//! When that node is lost (unreachable, or gone from the cluster), the
//! actor is restarted on another node while `max_restarts` allows, its
//! constructor run again with its original arguments, and the calls out
//! on the lost node are sent again, in order, while their
//! `max_task_retries` allow (Ray's rule for the calls submitted to an
//! actor that died). Placed back on this node, it continues as a local
//! actor ([`run`](super::run::run)). A kill reaches the other node; when
//! the loop ends, the actor there is killed too.

use crate::actor::registry::{Actor, Actors, ForeignCall, Kill, Life, MethodCall, may_restart};
use crate::actor::run::{
    call_done, die, end_call, fail_all, fail_call, fail_cancelled, resolve_args, run,
};
use crate::events::TaskKind;
use crate::exec::remote::{ActorLine, ForwardActor, ForwardMethod, Forwarded, Peer, Place};
use crate::exec::request::Submission;
use crate::objects::arg::{ArgValue, TaskArg, contained_in_args};
use crate::objects::held::HeldRefs;
use crate::objects::store::Resolved;
use futures_util::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::Arc;
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

/// The actor's loop when it lives on `peer`: create it there, send it
/// its calls, restart it elsewhere if that node is lost, die.
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
    let mut sent = Sent::new(peer.clone().actor_line(there));
    // Calls to send before the mailbox's: those given up on a restart.
    let mut retry: VecDeque<MethodCall> = VecDeque::new();
    loop {
        let kill = a.lock().kill.take();
        if let Some(kill) = kill {
            let given_up = sent.give_up(Vec::new()).await;
            if may_restart(kill, a.restarts(), a.max_restarts) {
                // Restarted there, by the node that runs it.
                peer.clone().kill_actor(there, true).await;
                {
                    let mut m = a.lock();
                    m.restarts += 1;
                    m.cancel = Arc::new(crate::exec::state::CancelToken::default());
                }
                let killed = |c: &MethodCall| {
                    ErrorRecord::new(
                        ErrorKind::ActorDied,
                        &*c.method.label,
                        format!("actor {:?} was killed before the call was answered", a.id),
                    )
                };
                requeue(&rt, given_up, killed, &mut retry);
                sent.line = Some(peer.clone().actor_line(there));
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
            let pending = given_up.into_iter().chain(retry);
            return end(&rt, &a, rec, pending, rx, ctor);
        }
        let cancel = a.lock().cancel.clone();
        let step = tokio::select! {
            biased;
            // A kill: the loop takes it next.
            () = cancel.cancelled() => continue,
            back = sent.next() => Err(back),
            call = next_of(&mut retry, &mut rx), if !sent.full() => Ok(call),
        };
        let (seq, call, rec) = match step {
            Ok(Some(call)) => {
                if call.handle.cancel.is_cancelled() {
                    fail_cancelled(&rt, call);
                    continue;
                }
                let line = sent
                    .line
                    .as_deref()
                    .expect("a line while the actor lives there");
                let label = &*call.method.label;
                // `Type.method`: the method's name.
                let method = match label.split_once('.') {
                    Some((_, method)) => method.into(),
                    None => call.method.label.clone(),
                };
                let n = call.returns.len() as u32;
                let sending =
                    send_call(&rt, line, method, label, call.id, &call.args, n, call.depth);
                match sending.await {
                    Ok(reply) => {
                        let settled = settle(rt.clone(), a.clone(), call, reply, before);
                        sent.track(&rt, settled);
                    }
                    Err(mut rec) => {
                        rec.task = call.id;
                        end_call(&rt, call.id, Some(&rec));
                        fail_all(&rt, &call.returns, rec);
                    }
                }
                continue;
            }
            Ok(None) => continue,
            Err(Back { failed: None, .. }) => continue,
            Err(Back {
                seq,
                failed: Some((call, rec)),
            }) => (seq, call, rec),
        };
        // Dead there, or its node lost: the calls out there are given up.
        let given_up = sent.give_up(vec![(seq, call)]).await;
        if rec.kind == ErrorKind::ActorDied {
            // Dead for good there (its constructor failed, or its
            // restarts ran out): so it is here.
            peer.clone().kill_actor(there, false).await;
            let pending = given_up.into_iter().chain(retry);
            return end(&rt, &a, rec, pending, rx, ctor);
        }
        // Its node is lost: restart it elsewhere, if allowed.
        if !may_restart(Kill::AllowRestart, a.restarts(), a.max_restarts) {
            let cause = lost(&a, rec, "it has no restarts left");
            let pending = given_up.into_iter().chain(retry);
            return end(&rt, &a, cause, pending, rx, ctor);
        }
        {
            let mut m = a.lock();
            m.restarts += 1;
            m.life = Life::Starting;
        }
        requeue(&rt, given_up, |_| rec.clone(), &mut retry);
        match restart_place(&rt, &ctor, &peer) {
            Place::There(p) => match create_there(&rt, &a, &ctor, &ctor_args, &p).await {
                Ok(id) => {
                    (peer, there) = (p, id);
                    sent.line = Some(peer.clone().actor_line(there));
                    let mut m = a.lock();
                    m.life = Life::Alive;
                    m.node = Some(peer.id().into());
                    before = m.restarts;
                }
                Err(why) => {
                    let cause = lost(&a, why, "it could not be made again");
                    return end(&rt, &a, cause, retry, rx, ctor);
                }
            },
            Place::Here => {
                // Back on this node: a local actor from now on, the calls
                // given up first in line.
                drop(ctor_args);
                a.lock().node = None;
                return run(rt, a, ctor, rx, retry).await;
            }
            Place::Nowhere(why) => {
                let cause = lost(&a, rec, &why);
                return end(&rt, &a, cause, retry, rx, ctor);
            }
        }
    }
}

/// The next call to send: one given up before, else the mailbox's next.
async fn next_of(
    retry: &mut VecDeque<MethodCall>,
    rx: &mut mpsc::UnboundedReceiver<MethodCall>,
) -> Option<MethodCall> {
    match retry.pop_front() {
        Some(c) => Some(c),
        None => rx.recv().await,
    }
}

/// Calls given up as the actor restarts, in the order sent (each may
/// have run there): each is sent again, ahead of `retry`, while its
/// `max_task_retries` allow (at least once, as a local actor's call
/// interrupted by a restart), else it fails of `why`.
fn requeue(
    rt: &Actors,
    given_up: Vec<MethodCall>,
    why: impl Fn(&MethodCall) -> ErrorRecord,
    retry: &mut VecDeque<MethodCall>,
) {
    let mut again = Vec::with_capacity(given_up.len());
    for mut call in given_up {
        let mut rec = why(&call);
        rec.task = call.id;
        if call.retries_left != 0 {
            call.retries_left -= 1;
            rt.env.events.retrying(call.id, &rec);
            again.push(call);
        } else {
            end_call(rt, call.id, Some(&rec));
            fail_all(rt, &call.returns, rec);
        }
    }
    for call in again.into_iter().rev() {
        retry.push_front(call);
    }
}

/// Calls of an actor on another node sent before the first of them is
/// answered.
const IN_FLIGHT: usize = 64;

/// The calls a loop sent on its line and has not heard back of: each
/// settles on its own (its results stored, or its error), and comes back
/// to the loop if its answer was that the line broke or the actor died.
struct Sent<C> {
    /// The line, while the actor lives there.
    line: Option<Box<dyn ActorLine>>,
    /// Calls out, and the number of the last sent.
    out: usize,
    seq: u64,
    tx: mpsc::UnboundedSender<Back<C>>,
    rx: mpsc::UnboundedReceiver<Back<C>>,
}

/// A call settled: its number in the order sent, and the call and its
/// error if the line broke or the actor died.
struct Back<C> {
    seq: u64,
    failed: Option<(C, ErrorRecord)>,
}

impl<C: Send + 'static> Sent<C> {
    fn new(line: Box<dyn ActorLine>) -> Sent<C> {
        let (tx, rx) = mpsc::unbounded_channel();
        Sent {
            line: Some(line),
            out: 0,
            seq: 0,
            tx,
            rx,
        }
    }

    /// Whether no more calls go out until one settles.
    fn full(&self) -> bool {
        self.out >= IN_FLIGHT
    }

    /// Counts a call out until `settled` ends.
    fn track(
        &mut self,
        rt: &Actors,
        settled: impl Future<Output = Option<(C, ErrorRecord)>> + Send + 'static,
    ) {
        self.seq += 1;
        self.out += 1;
        let (seq, tx) = (self.seq, self.tx.clone());
        rt.env.spawner.spawn(async move {
            let failed = settled.await;
            let _ = tx.send(Back { seq, failed });
        });
    }

    /// The next call to settle (never, while none is out).
    async fn next(&mut self) -> Back<C> {
        let back = self.rx.recv().await.expect("the sender is kept");
        self.out -= 1;
        back
    }

    /// Closes the line, which gives up the calls out on it; those that
    /// came back (with `back`, each with its number), in the order sent.
    async fn give_up(&mut self, mut back: Vec<(u64, C)>) -> Vec<C> {
        self.line = None;
        while self.out > 0 {
            if let Back {
                seq,
                failed: Some((c, _)),
            } = self.next().await
            {
                back.push((seq, c));
            }
        }
        back.sort_by_key(|(seq, _)| *seq);
        back.into_iter().map(|(_, c)| c).collect()
    }
}

/// A call of the actor, sent: its results stored here once its answer
/// comes, or its error; the call back if the answer is that the line
/// broke or the actor died (for the loop to handle).
async fn settle(
    rt: Arc<Actors>,
    a: Arc<Actor>,
    call: MethodCall,
    reply: BoxFuture<'static, Result<Forwarded, ErrorRecord>>,
    before: u32,
) -> Option<(MethodCall, ErrorRecord)> {
    let forwarded = match reply.await {
        Ok(forwarded) => forwarded,
        Err(rec) if matches!(rec.kind, ErrorKind::WorkerFailure | ErrorKind::ActorDied) => {
            return Some((call, rec));
        }
        Err(mut rec) => {
            rec.task = call.id;
            end_call(&rt, call.id, Some(&rec));
            fail_all(&rt, &call.returns, rec);
            return None;
        }
    };
    rt.env.show_output(forwarded.output, a.job);
    {
        // Restarts there after a trap (a kill's restart counts here too).
        let mut m = a.lock();
        m.restarts = m.restarts.max(before + forwarded.restarts);
    }
    call_done(&rt, &a, &call, forwarded.values);
    None
}

/// Ends the actor of `cause`, failing `pending` (calls taken from its
/// mailbox) and then the rest of its mailbox.
fn end(
    rt: &Actors,
    a: &Arc<Actor>,
    cause: ErrorRecord,
    pending: impl IntoIterator<Item = MethodCall>,
    rx: mpsc::UnboundedReceiver<MethodCall>,
    ctor: Submission,
) {
    let cause = Arc::new(cause);
    for c in pending {
        fail_call(rt, a, c, Some(cause.clone()));
    }
    die(rt, a, cause, rx, ctor);
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
    let label = format!("{}.new", a.type_name);
    let contained = contained_in_args(&rt.env.objects, args, &label).await?;
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
            contained,
            depth: ctor.depth,
            actor: a.id,
            links: rt.env.links.table(a.job),
            job: rt.env.events.program(a.job),
        })
        .await
}

/// Sends a call on `line` (`label` names it in errors) once its
/// arguments are resolved here: its answer to come, or why it was not
/// sent.
#[allow(clippy::too_many_arguments)] // a call's parts, from two callers
async fn send_call(
    rt: &Actors,
    line: &dyn ActorLine,
    method: Arc<str>,
    label: &str,
    id: TaskId,
    args: &[TaskArg],
    num_returns: u32,
    depth: u32,
) -> Result<BoxFuture<'static, Result<Forwarded, ErrorRecord>>, ErrorRecord> {
    let args = resolve_args(rt, args, label, Some(id)).await?;
    let contained = contained_in_args(&rt.env.objects, &args, label).await?;
    rt.env.events.started(id);
    Ok(line.send(ForwardMethod {
        method,
        num_returns,
        args,
        contained,
        depth,
        task: id,
    }))
}

/// Sends a call of `actor`, an actor of another node whose handle reached
/// this node, into that actor's line here (made on first use), which
/// sends its calls there in order.
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
/// in order, up to [`IN_FLIGHT`] before the first is answered. It ends,
/// with its entry, once the actor is dead, or at once if its node is not
/// in the cluster (a node that joined since this one last read the live
/// nodes is found). A line that broke (its node could not be reached)
/// fails its calls out, and the next calls go on a new one.
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
    if let Some(peer) = &peer {
        let mut sent: Sent<()> = Sent::new(peer.clone().actor_line(actor));
        loop {
            let step = tokio::select! {
                back = sent.next() => Err(back),
                call = rx.recv(), if !sent.full() => Ok(call),
            };
            let call = match step {
                Ok(Some(call)) => call,
                Ok(None) => break,
                Err(Back { failed: None, .. }) => continue,
                Err(Back {
                    failed: Some(((), rec)),
                    ..
                }) => {
                    if rec.kind == ErrorKind::ActorDied {
                        break;
                    }
                    // The line broke: the calls out on it fail too.
                    sent.give_up(Vec::new()).await;
                    sent.line = Some(peer.clone().actor_line(actor));
                    continue;
                }
            };
            let line = sent.line.as_deref().expect("a line until the actor dies");
            let (n, label) = (call.returns.len() as u32, &*call.label);
            let method = call.method.clone();
            let sending = send_call(&rt, line, method, label, call.id, &call.args, n, call.depth);
            match sending.await {
                Ok(reply) => sent.track(&rt, settle_foreign(rt.clone(), call, reply)),
                Err(mut rec) => {
                    rec.task = call.id;
                    rt.env.events.ended(call.id, Some(&rec));
                    fail_all(&rt, &call.returns, rec);
                }
            }
        }
        sent.give_up(Vec::new()).await;
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

/// A call of a foreign actor, sent: its results stored here once its
/// answer comes, or its error; `Some` if the answer is that the line
/// broke or the actor died.
async fn settle_foreign(
    rt: Arc<Actors>,
    call: ForeignCall,
    reply: BoxFuture<'static, Result<Forwarded, ErrorRecord>>,
) -> Option<((), ErrorRecord)> {
    match reply.await {
        Ok(forwarded) => {
            rt.env.show_output(forwarded.output, call.job);
            rt.env.events.ended(call.id, None);
            for (id, blob) in call.returns.iter().zip(forwarded.values) {
                rt.env.objects.resolve(*id, Resolved::Ready(blob));
            }
            None
        }
        Err(mut rec) => {
            rec.task = call.id;
            rt.env.events.ended(call.id, Some(&rec));
            fail_all(&rt, &call.returns, rec.clone());
            matches!(rec.kind, ErrorKind::WorkerFailure | ErrorKind::ActorDied).then_some(((), rec))
        }
    }
}
