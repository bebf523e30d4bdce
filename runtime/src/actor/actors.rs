//! What the layers above ask of actors: create one, call a method, kill
//! one, end a job's unnamed actors.
//!
//! An actor belongs to the job (driver run) that created it. When the
//! driver ends, its unnamed actors are killed; named actors live until
//! killed or the runtime ends. Actors created through the host API belong
//! to no job.

use crate::actor::registry::{Actor, Actors, Creation, Kill, Life, MethodCall, Mutable};
use crate::actor::remote::{placement, run_remote};
use crate::actor::run::{die, fail_all, fail_call, run};
use crate::events::TaskKind;
use crate::exec::remote::Place;
use crate::exec::request::Submission;
use crate::exec::state::CancelToken;
use crate::task::table::TaskHandle;
use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ActorId, ErrorKind, ObjectId, export};

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
    let place = placement(rt, options);
    let (module, unlinked) = match rt.env.links.callee(&c.module, options, c.job) {
        Ok(m) => (m, None),
        Err(why) => (c.module.clone(), Some(why)),
    };
    let early_death = if let Some(why) = unlinked {
        name = None;
        Some(ErrorRecord::new(
            ErrorKind::InvalidModule,
            format!("{type_name}.new"),
            why,
        ))
    } else if let Some(why) = (!c.sub.checked)
        .then(|| module.method(&type_name, export::ACTOR_CONSTRUCTOR))
        .flatten()
        .and_then(|m| m.signature.as_ref())
        .and_then(|sig| sig.check_call(&c.sub.args).err())
    {
        name = None;
        Some(ErrorRecord::new(
            ErrorKind::InvalidArgument,
            format!("{type_name}.new"),
            why,
        ))
    } else if let Place::Nowhere(why) = &place {
        name = None;
        Some(ErrorRecord::new(
            ErrorKind::InvalidArgument,
            format!("{type_name}.new"),
            why.clone(),
        ))
    } else if module.export(&constructor).is_none() {
        name = None;
        Some(ErrorRecord::new(
            ErrorKind::InvalidModule,
            format!("{type_name}.new"),
            format!(
                "module `{}` has no actor type `{type_name}` (no export `{constructor}`)",
                module.name()
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
    // In a cluster, a name is the cluster's: claimed there before the
    // actor starts (its calls wait in the mailbox meanwhile).
    let claim = match (&name, &early_death, rt.env.cluster()) {
        (Some(n), None, Some(cluster)) => Some(cluster.claim_name(n, id, &type_name)),
        _ => None,
    };
    let (settled, settled_rx) = match claim {
        Some(_) => {
            let (tx, rx) = tokio::sync::watch::channel(false);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let actor = Arc::new(Actor {
        id,
        type_name,
        module,
        name,
        claim: settled_rx,
        job: c.job,
        placed_for: c.placed_for,
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
        resources: options.resources.clone(),
        mailbox: tx,
        mutable: Mutex::new(Mutable {
            life: Life::Starting,
            kill: None,
            cancel: Arc::new(CancelToken::default()),
            restarts: 0,
            node: None,
        }),
        calls: AtomicU64::new(0),
        buried: AtomicBool::new(false),
        died: tokio::sync::Notify::new(),
    });
    rt.registry.insert(&actor);
    match early_death {
        Some(rec) => die(rt, &actor, Arc::new(rec), rx, c.sub),
        None => {
            let rt = rt.clone();
            let spawner = rt.env.spawner.clone();
            spawner.spawn(async move {
                let claimed = match claim {
                    Some(claim) => claim.await,
                    None => Ok(()),
                };
                // Its creator goes on once the claim's outcome is in place.
                let settle = settled.map(Settle);
                if let Err(why) = claimed {
                    let rec = ErrorRecord::new(
                        ErrorKind::ActorDied,
                        format!("{}.new", actor.type_name),
                        why,
                    );
                    die(&rt, &actor, Arc::new(rec), rx, c.sub);
                    drop(settle);
                    return;
                }
                drop(settle);
                match place {
                    Place::There(peer) => run_remote(rt, actor, c.sub, rx, peer).await,
                    _ => run(rt, actor, c.sub, rx, Default::default()).await,
                }
            });
        }
    }
    id
}

/// Tells an actor's creator its name is settled, when dropped (also if
/// the actor's start is dropped unfinished).
struct Settle(tokio::sync::watch::Sender<bool>);

impl Drop for Settle {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// Resolves once actor `id`'s name is claimed across the cluster, or not
/// (then the actor is dead: its calls say why); `None` if there is no
/// claim to wait for.
pub(crate) fn name_settled(rt: &Actors, id: &ActorId) -> Option<BoxFuture<'static, ()>> {
    let mut settled = rt.registry.get(id)?.claim.clone()?;
    Some(Box::pin(async move {
        // An error: the actor's start is gone, which settles it too.
        let _ = settled.wait_for(|done| *done).await;
    }))
}

/// Submits a call of `method` on `actor`; returns the ids of its return
/// values, each held once for the caller.
pub(crate) fn call(
    rt: &Arc<Actors>,
    actor: ActorId,
    method: &str,
    sub: Submission,
) -> Vec<ObjectId> {
    let (id, returns) = rt.env.new_call(sub.num_returns);
    let Some(a) = rt.registry.get(&actor) else {
        // An actor of another node (its handle came with a task placed
        // here): the call goes there.
        if actor.node() != rt.env.config.node_id && rt.env.cluster().is_some() {
            crate::actor::remote::call_foreign(rt, actor, method, id, &returns, sub);
            return returns;
        }
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
    // Checked against the manifest as a task call is (`submit_task`).
    if !sub.checked
        && let Some(sig) = &m.signature
        && let Err(why) = sig.check_call(&sub.args)
    {
        fail_all(
            rt,
            &returns,
            ErrorRecord::new(ErrorKind::InvalidArgument, &*m.label, why),
        );
        return returns;
    }
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
