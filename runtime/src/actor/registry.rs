//! The actor layer's state: [`Actors`] (the layer: `Env`, `Tasks`, the
//! registry and the actor slots), the [`Registry`] of actors by id and by
//! name with the recently dead, and one [`Actor`] as the rest of the
//! runtime sees it (its `Life` behind one mutex, never held across an
//! `await`; its mailbox of [`MethodCall`]s).
//!
//! States: starting -> alive -> (restarting -> alive)* -> dead; a kill for
//! good is never weakened by a later one allowing restarts ([`may_restart`]).

use crate::exec::env::{Env, FORWARDED_JOB};
use crate::exec::module::{Method, Module};
use crate::exec::request::Submission;
use crate::exec::state::CancelToken;
use crate::objects::arg::TaskArg;
use crate::objects::held::HeldRefs;
use crate::task::table::{TaskHandle, Tasks};
use dashmap::DashMap;
use rustc_hash::FxBuildHasher;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Semaphore, mpsc};
use wray_abi::wire::ErrorRecord;
use wray_abi::{ActorId, ObjectId, TaskId};

/// Longest run of queued calls an actor makes while holding its slots.
pub(super) const BURST: usize = 256;
/// Causes of death remembered for calls made after an actor is gone.
pub(super) const GRAVEYARD: usize = 10_000;

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
pub(super) enum Kill {
    /// End it for good.
    NoRestart,
    /// End this instance; restart if restarts remain.
    AllowRestart,
}

/// Whether an actor that ended as `kill` says, after `restarts` restarts,
/// starts again under its `max_restarts` (negative: without limit).
pub(super) fn may_restart(kill: Kill, restarts: u32, max_restarts: i32) -> bool {
    kill == Kill::AllowRestart
        && (max_restarts < 0 || i64::from(restarts) < i64::from(max_restarts))
}

pub(super) struct Mutable {
    pub(super) life: Life,
    pub(super) kill: Option<Kill>,
    /// Interrupts the current instance.
    pub(super) cancel: Arc<CancelToken>,
    pub(super) restarts: u32,
    /// In a cluster, the node it lives on, if another (its creator keeps
    /// this record and forwards its calls there).
    pub(super) node: Option<Arc<str>>,
}

/// Whether a claim of a name across the cluster has settled (claimed or
/// refused), for the actor's creator to wait on.
pub(crate) type NameClaim = tokio::sync::watch::Receiver<bool>;

/// One actor, as the rest of the runtime sees it.
pub(crate) struct Actor {
    pub id: ActorId,
    pub type_name: Arc<str>,
    pub module: Module,
    pub name: Option<String>,
    /// In a cluster, the claim of its name across the cluster, which its
    /// creator awaits (so that once created, it is found from any node).
    pub(super) claim: Option<NameClaim>,
    /// The job that created it (0: the host).
    pub job: u64,
    /// In a cluster, the actor of another node this one lives here for:
    /// that node made it, keeps its record and lists it.
    #[cfg_attr(not(feature = "node"), allow(dead_code))] // the state API's
    pub placed_for: Option<ActorId>,
    pub(super) max_restarts: i32,
    pub(super) max_task_retries: i32,
    pub(super) memory_limit: u64,
    /// Wall-clock limit of each call (its own, or the runtime's default).
    pub(super) call_timeout: Option<std::time::Duration>,
    /// Custom resources each of its instances holds while it lives.
    pub(super) resources: Vec<(String, u64)>,
    pub(super) mailbox: mpsc::UnboundedSender<MethodCall>,
    pub(super) mutable: Mutex<Mutable>,
    /// Calls completed, for statistics.
    pub calls: AtomicU64,
    /// Set once the actor is dead and gone: out of the tables, what its
    /// instance held in the runtime given back, its constructor's
    /// arguments and the references held for them dropped, its queued
    /// calls failed.
    pub(super) buried: AtomicBool,
    /// Notified when `buried` is set.
    pub(super) died: tokio::sync::Notify,
}

impl Actor {
    pub(super) fn lock(&self) -> MutexGuard<'_, Mutable> {
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

    /// The other node it lives on, if it lives on another.
    #[cfg_attr(not(feature = "node"), allow(dead_code))] // the state API's
    pub fn node(&self) -> Option<Arc<str>> {
        self.lock().node.clone()
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
    pub(super) id: TaskId,
    pub(super) method: Arc<Method>,
    pub(super) args: Vec<TaskArg>,
    pub(super) _held: HeldRefs,
    pub(super) returns: Vec<ObjectId>,
    pub(super) retries_left: i32,
    pub(super) depth: u32,
    pub(super) handle: Arc<TaskHandle>,
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
    pub(super) table: DashMap<ActorId, Arc<Actor>, FxBuildHasher>,
    pub(super) names: DashMap<String, ActorId>,
    /// The most recently dead actors, for their causes and listings.
    pub(super) graveyard: Mutex<VecDeque<Arc<Actor>>>,
    /// Live actors of each job standing for a program on another node
    /// (`FORWARDED_JOB`), so that ending such a job, once per call placed
    /// here, looks for actors only when it has some.
    forwarded: DashMap<u64, usize>,
    /// Actors of other nodes this node's calls reach (an `ActorHandle`
    /// that came with a task placed here): each one's line of calls, sent
    /// there in order.
    pub(super) foreign: DashMap<ActorId, mpsc::UnboundedSender<ForeignCall>>,
}

/// A call of an actor of another node, waiting in its line.
pub(crate) struct ForeignCall {
    pub(super) id: TaskId,
    /// The method's name, and how records and errors name the call.
    pub(super) method: Arc<str>,
    pub(super) label: Arc<str>,
    pub(super) args: Vec<TaskArg>,
    pub(super) _held: HeldRefs,
    pub(super) returns: Vec<ObjectId>,
    pub(super) depth: u32,
    /// The job of its caller, whose output gets the actor's.
    pub(super) job: u64,
}

impl Registry {
    /// Enters a new actor.
    pub(super) fn insert(&self, a: &Arc<Actor>) {
        if a.job & FORWARDED_JOB != 0 {
            *self.forwarded.entry(a.job).or_default() += 1;
        }
        self.table.insert(a.id, a.clone());
    }

    /// Takes a dead actor out of the table.
    pub(super) fn remove(&self, a: &Actor) {
        if self.table.remove(&a.id).is_some() && a.job & FORWARDED_JOB != 0 {
            self.forwarded.remove_if_mut(&a.job, |_, n| {
                *n -= 1;
                *n == 0
            });
        }
    }

    /// Whether job `job` (one standing for a program on another node) has
    /// live actors.
    #[cfg(feature = "node")] // read by the cluster only
    pub fn has_forwarded_actors(&self, job: u64) -> bool {
        self.forwarded.contains_key(&job)
    }

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
    /// In a cluster, the actor of another node this one lives here for
    /// (that node keeps its record; see [`Actor::placed_for`]).
    pub placed_for: Option<ActorId>,
}

/// Why the actor died, if it is dead.
pub(super) fn dead_cause(a: &Actor) -> Option<Arc<ErrorRecord>> {
    match a.life() {
        Life::Dead(c) => Some(c),
        _ => None,
    }
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
