//! What running a guest needs from its runtime ([`Env`]), and the calls a
//! guest makes that reach the layers above execution ([`Upcalls`]).
//!
//! `Env` holds the handles of this layer and the ones below it: the
//! configuration, the engines, the module cache, the object store, the
//! slots, ids, the output sink and the call record. Everything above
//! (tasks, actors, jobs, the runtime) holds an `Arc<Env>` and adds its own
//! state; nothing in `Env` names a layer above it.
//!
//! A guest's host functions submit tasks, create and call actors, kill and
//! cancel: work the task and actor layers own. They reach it through
//! [`Upcalls`], which the actor layer implements and registers once, when
//! the runtime is built ([`Env::set_upcalls`]). The registration is weak:
//! the layers above own `Env`, not the other way round.

use crate::config::Config;
use crate::events::Events;
use crate::exec::engine::Engines;
use crate::exec::module::{Module, ModuleCache};
use crate::exec::remote::{Place, Placement, Written};
use crate::exec::request::Submission;
use crate::exec::resources::Resources;
use crate::exec::slots::Slots;
use crate::ids::IdGen;
use crate::objects::store::ObjectStore;
use crate::output::OutputSink;
use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use wray_abi::wire::Options;
use wray_abi::{ActorId, ObjectId, TaskId};

/// The bit that marks the job of a call another node placed here (the
/// job of that node's program, seen from this one): the rest holds that
/// node's number (bits 32..63) and a count.
pub(crate) const FORWARDED_JOB: u64 = 1 << 63;

/// The handles every layer from execution up shares. Thread-safe; lives in
/// one `Arc`.
pub(crate) struct Env {
    pub config: Config,
    pub engines: Arc<Engines>,
    pub modules: ModuleCache,
    pub objects: Arc<ObjectStore>,
    /// CPU slots (held while a guest computes) and call slots (held while
    /// a call is in progress).
    pub slots: Arc<Slots>,
    pub ids: IdGen,
    pub sink: Arc<dyn OutputSink>,
    /// The record of calls, for the state API and metrics.
    pub events: Events,
    /// Spawns on the runtime's workers from any thread (a slot freed
    /// outside tokio may start a queued task).
    pub spawner: tokio::runtime::Handle,
    /// The modules each program calls by name.
    pub links: Links,
    /// Custom resources, held by the calls and actors that ask for them.
    pub resources: Resources,
    /// Where the output of the calls of some jobs goes instead of `sink`:
    /// a call another node placed here runs under a job of its own
    /// ([`FORWARDED_JOB`]), whose output travels back with its results.
    pub diverted: DashMap<u64, Arc<dyn OutputSink>>,
    upcalls: OnceLock<Weak<dyn Upcalls>>,
    /// The cluster's placement, once this runtime's node joined one.
    placement: OnceLock<Weak<dyn Placement>>,
}

impl Env {
    /// An environment whose upcalls are not registered yet.
    #[allow(clippy::too_many_arguments)] // one per handle; built once
    pub fn new(
        config: Config,
        engines: Arc<Engines>,
        modules: ModuleCache,
        objects: Arc<ObjectStore>,
        slots: Arc<Slots>,
        sink: Arc<dyn OutputSink>,
        spawner: tokio::runtime::Handle,
    ) -> Env {
        Env {
            resources: Resources::new(&config.resources),
            ids: IdGen::new(config.node_id),
            events: Events::new(config.history),
            config,
            engines,
            modules,
            objects,
            slots,
            sink,
            spawner,
            links: Links::default(),
            diverted: DashMap::new(),
            upcalls: OnceLock::new(),
            placement: OnceLock::new(),
        }
    }

    /// A new call's id and its `n` return objects, created pending (each
    /// held once, for the caller).
    pub fn new_call(&self, n: u32) -> (TaskId, Vec<ObjectId>) {
        let id = self.ids.next_task();
        let returns: Vec<ObjectId> = (0..n).map(|i| ObjectId::for_return(id, i)).collect();
        for r in &returns {
            self.objects.create_pending(*r);
        }
        (id, returns)
    }

    /// Where the output of an instance working for `job` goes.
    pub fn sink_for(&self, job: u64) -> Arc<dyn OutputSink> {
        if job & FORWARDED_JOB != 0
            && let Some(s) = self.diverted.get(&job)
        {
            return s.clone();
        }
        self.sink.clone()
    }

    /// Writes what a call wrote on another node into `job`'s output here
    /// (or further back, if this node runs the call for another), each
    /// piece naming its writer and so its node.
    pub fn show_output(&self, output: Vec<Written>, job: u64) {
        if output.is_empty() {
            return;
        }
        let sink = self.sink_for(job);
        for (mut source, stream, text) in output {
            source.job = job;
            sink.write(&source, stream, &text);
        }
    }

    /// Registers the layer that serves [`Upcalls`] (once).
    pub fn set_upcalls(&self, up: Weak<dyn Upcalls>) {
        if self.upcalls.set(up).is_err() {
            unreachable!("upcalls are registered once, when the runtime is built");
        }
    }

    /// Registers the cluster's placement (once, when the node joins a
    /// cluster; weakly: the cluster layer owns it).
    #[cfg(feature = "node")]
    pub fn set_placement(&self, placement: Weak<dyn Placement>) -> bool {
        self.placement.set(placement).is_ok()
    }

    /// The cluster's placement, if this node is in one.
    pub fn cluster(&self) -> Option<Arc<dyn Placement>> {
        self.placement.get()?.upgrade()
    }

    /// Live node number `node` of this node's cluster, if another: read
    /// from the cluster's live nodes again if it is not among them yet.
    pub async fn find_peer(&self, node: u32) -> Option<Arc<dyn crate::exec::remote::Peer>> {
        if node == self.config.node_id {
            return None;
        }
        self.cluster()?.find_peer(&node.to_string()).await
    }

    /// Where a call with `options` runs: here, unless this node is in a
    /// cluster whose placement says otherwise.
    pub fn place(
        &self,
        options: &wray_abi::wire::Options,
        forwardable: bool,
        args: &crate::exec::remote::ArgBytes,
    ) -> Place {
        if let Some(p) = self.cluster() {
            return p.place(options, forwardable, args);
        }
        match &options.node {
            Some(node) if *node != self.config.node_id.to_string() => Place::Nowhere(format!(
                "the call must run on node {node}, but this node ({}) is in no cluster",
                self.config.node_id
            )),
            _ => match self.resources.check(&options.resources) {
                Ok(()) => Place::Here,
                Err(why) => Place::Nowhere(why),
            },
        }
    }

    /// The layer that serves [`Upcalls`]; `None` once the runtime is gone
    /// (a guest still running then gets an error status).
    pub fn upcalls(&self) -> Option<Arc<dyn Upcalls>> {
        self.upcalls.get()?.upgrade()
    }
}

/// The modules programs call by name: a task or actor of another module
/// is named by the `module` option of its spec (`wray run app.wasm
/// --module c_math=c_math.wasm`). Each job has its own table (its driver
/// under its own name, and the modules linked to it); job 0's table holds
/// the modules linked for the host's own calls, and every job sees them
/// too.
#[derive(Default)]
pub(crate) struct Links(DashMap<u64, HashMap<String, Module>>);

impl Links {
    /// Links `module` under `name` for `job`'s calls (replacing any module
    /// of that name).
    pub fn link(&self, job: u64, name: &str, module: Module) {
        self.0.entry(job).or_default().insert(name.into(), module);
    }

    /// `job`'s table with the host's (job 0's) under it: every module its
    /// calls may name.
    pub fn table(&self, job: u64) -> Vec<(String, Module)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let mut all: HashMap<String, Module> = HashMap::new();
        for j in [0, job] {
            if let Some(t) = self.0.get(&j) {
                all.extend(t.iter().map(|(n, m)| (n.clone(), m.clone())));
            }
        }
        all.into_iter().collect()
    }

    /// Forgets `job`'s table (when the job ends).
    pub fn end_job(&self, job: u64) {
        if job != 0 {
            self.0.remove(&job);
        }
    }

    /// The module named `name` for `job`: its own, or the host's.
    pub fn find(&self, job: u64, name: &str) -> Option<Module> {
        let of = |j: u64| self.0.get(&j).and_then(|t| t.get(name).cloned());
        of(job).or_else(|| of(0))
    }

    /// The module a call of `caller` runs in: the one its `module` option
    /// names, or `caller` itself. The error says what is missing.
    pub fn callee(&self, caller: &Module, options: &Options, job: u64) -> Result<Module, String> {
        match options.module.as_deref() {
            None => Ok(caller.clone()),
            Some(name) => self.find(job, name).ok_or_else(|| {
                format!(
                    "no module named `{name}` is linked to this program (link one with \
                     `wray run {}.wasm --module {name}=FILE.wasm`)",
                    caller.name()
                )
            }),
        }
    }
}

/// The host functions' way up: the work a guest starts that the task and
/// actor layers own. Each returns at once; none blocks. (Those that start
/// work take the `Arc` it keeps.)
pub(crate) trait Upcalls: Send + Sync {
    /// Submits a task of `module`; the ids of its return values, each held
    /// once for the caller.
    fn submit_task(self: Arc<Self>, module: Module, sub: Submission) -> Vec<ObjectId>;

    /// Submits a call of `method` on `actor`; its return values' ids, each
    /// held once for the caller.
    fn call_actor(self: Arc<Self>, actor: ActorId, method: &str, sub: Submission) -> Vec<ObjectId>;

    /// Creates an actor of `type_name` in `module`; its id at once.
    fn create_actor(self: Arc<Self>, module: Module, type_name: String, sub: Submission)
    -> ActorId;

    /// Resolves once the name of actor `id`, just created, is settled
    /// across the cluster (claimed, or refused); `None` if there is
    /// nothing to wait for.
    fn actor_named(&self, id: &ActorId) -> Option<futures_util::future::BoxFuture<'static, ()>>;

    /// The actor registered under `name`: its id and type.
    fn lookup_actor(&self, name: &str) -> Option<(ActorId, Arc<str>)>;

    /// Kills actor `id`; false if it is gone.
    fn kill_actor(&self, id: &ActorId, allow_restart: bool) -> bool;

    /// Cancels the task that makes object `id` (and the tasks it submitted,
    /// if `recursive`); false when no unfinished task makes it.
    fn cancel(&self, id: &ObjectId, recursive: bool) -> bool;
}
