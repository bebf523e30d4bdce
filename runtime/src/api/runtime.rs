//! [`Runtime`]: the public API of a running runtime.
//!
//! A runtime owns a tokio runtime (guests run on its worker threads, as
//! async wasmtime calls on fibers), the wasmtime engines with their epoch
//! ticker, and the layers built on them: the environment every layer shares
//! (`Env`: object store, module cache, slots...), the task layer (`Tasks`)
//! and the actor layer ([`Actors`]), each holding the one below; the
//! [`Builder`](crate::Builder) makes them.
//!
//! The blocking methods ([`Runtime::get`], [`Runtime::run_driver`]...) must
//! not be called from inside the runtime's own tokio context; use the
//! `_async` variants there.

use crate::actor::registry::Actors;
use crate::api::call::{self, ActorBuilder, ActorRef, CallBuilder, MethodBuilder, TaskBuilder};
pub(crate) use crate::api::object_ref::ObjectRef;
use crate::api::parts::{Parts, read_value};
use crate::api::stats::{ActorInfo, ActorState, MemoCounts, Stats, StatsSource};
use crate::error::{Error, Result};
use crate::exec::engine::EpochTicker;
use crate::exec::module::Module;
use crate::job::handle::{Job, start_job};
use crate::objects::blob::{Bytes, Encoding};
use crate::objects::spill_dir::SpillDir;
use crate::task::table::{self};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wray_abi::codec::{Decode, Encode};
use wray_abi::value::Value;

/// A wray runtime: loads modules, runs drivers and tasks, stores objects.
///
/// (The README's "Embedding" section shows this example; `cargo test`
/// compiles it here.)
///
/// ```no_run
/// use wray_runtime::Runtime;
///
/// let rt = Runtime::builder().num_cpus(4).build()?;
/// let module = rt.load_file("app.wasm")?; // a guest with `#[wray::remote] fn add(a: i32, b: i32) -> i32`
/// let sum = rt.task(&module, "add").arg(&1i32).arg(&2i32).submit()?;
/// assert_eq!(rt.get::<i32>(&sum)?, 3);
/// # Ok::<(), wray_runtime::Error>(())
/// ```
pub struct Runtime {
    pub(crate) actors: Arc<Actors>,
    pub(super) tokio: Option<tokio::runtime::Runtime>,
    pub(super) ticker: EpochTicker,
    /// Where objects spill; its directory is removed when the runtime ends.
    pub(super) spill: Option<Arc<SpillDir>>,
}

impl Runtime {
    fn tokio(&self) -> &tokio::runtime::Runtime {
        self.tokio
            .as_ref()
            .expect("the tokio runtime lives until drop")
    }

    /// Runs a future on the runtime's threads and waits for it.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.tokio().block_on(fut)
    }

    /// A handle to the runtime's tokio runtime, to spawn work on it.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.tokio().handle()
    }

    /// How many guests compute at once.
    pub fn num_cpus(&self) -> usize {
        self.actors.env.config.num_cpus
    }

    /// Loads a module from a file; its name is the file name without
    /// `.wasm`.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Module> {
        let path = path.as_ref();
        let bytes = Module::read_file(path)?;
        self.load_bytes(&crate::exec::module::file_stem(path), &bytes)
    }

    /// Loads a module from its bytes.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Module> {
        let s = &self.actors;
        s.env.modules.load(&s.env.engines.tasks, name, bytes)
    }

    /// Runs the module's driver with `args` (what the guest sees after its
    /// program name) and returns its exit status (0 for a `wray:main` that
    /// returned normally). A failed driver is [`Error::Task`].
    pub fn run_driver(&self, module: &Module, args: &[String]) -> Result<i32> {
        self.block_on(self.run_driver_async(module, args))
    }

    /// [`run_driver`](Self::run_driver), for async callers.
    pub async fn run_driver_async(&self, module: &Module, args: &[String]) -> Result<i32> {
        self.start_job(module, args).wait().await
    }

    /// Starts the module's driver with `args` as a new job, and returns at
    /// once; [`Job::wait`] gives its outcome, [`JobControl::stop`](crate::JobControl::stop) stops it.
    pub fn start_job(&self, module: &Module, args: &[String]) -> Job {
        self.start_linked_job(module, args, &[])
    }

    /// [`start_job`](Self::start_job) for a program that calls other
    /// modules by name: `links` names them (`("c_math", module)`), as
    /// `wray run app.wasm --module c_math=c_math.wasm` does. The program's
    /// own module is linked under its own name.
    pub fn start_linked_job(
        &self,
        module: &Module,
        args: &[String],
        links: &[(String, Module)],
    ) -> Job {
        let id = self.actors.env.ids.next_job();
        start_job(&self.actors, self.handle(), id, module, args, links)
    }

    /// Links `module` under `name` for every program on this runtime and
    /// for the host's own calls: a guest calls its functions and actor
    /// types with the `module` option of its spec. A job's own links
    /// ([`start_linked_job`](Self::start_linked_job)) come first.
    pub fn link(&self, name: &str, module: &Module) {
        self.actors.env.links.link(0, name, module.clone());
    }

    /// Starts building a call of the remote function `function` of `module`.
    pub fn task<'a>(&'a self, module: &Module, function: &str) -> TaskBuilder<'a> {
        CallBuilder::new(self.parts(), call::Task::new(module, function))
    }

    /// Starts building a new actor of type `type_name` (a struct marked
    /// `#[wray::remote]`) of `module`; the arguments go to its constructor.
    pub fn actor<'a>(&'a self, module: &Module, type_name: &str) -> ActorBuilder<'a> {
        CallBuilder::new(self.parts(), call::NewActor::new(module, type_name))
    }

    /// Starts building a call of `method` on `actor`.
    pub fn method<'a>(&'a self, actor: &ActorRef, method: &str) -> MethodBuilder<'a> {
        CallBuilder::new(self.parts(), call::Method::new(actor, method))
    }

    /// The actor registered under `name`.
    pub fn get_actor(&self, name: &str) -> Option<ActorRef> {
        self.actors
            .registry
            .lookup(name)
            .map(|a| ActorRef::new(a.id, a.type_name.clone(), a.module.clone()))
    }

    /// Kills an actor: interrupts its running call; that call, its pending
    /// calls and later ones fail with an actor-died error. With
    /// `allow_restart`, it restarts instead if it has restarts left. Returns
    /// once the actor is gone (or restarting); false when it was gone
    /// already.
    pub fn kill(&self, actor: &ActorRef, allow_restart: bool) -> bool {
        self.block_on(self.kill_async(actor, allow_restart))
    }

    /// [`kill`](Self::kill), for async callers (on any tokio runtime).
    pub async fn kill_async(&self, actor: &ActorRef, allow_restart: bool) -> bool {
        let Some(a) = self.actors.registry.get(&actor.id()) else {
            return false;
        };
        if !crate::actor::actors::kill(&self.actors, &actor.id(), allow_restart) {
            return false;
        }
        if !allow_restart {
            a.gone().await;
        }
        true
    }

    /// What the runtime knows of an actor, while it exists.
    pub fn actor_info(&self, actor: &ActorRef) -> Option<ActorInfo> {
        let a = self.actors.registry.get(&actor.id())?;
        Some(ActorInfo {
            state: match a.life() {
                crate::actor::registry::Life::Starting => ActorState::Starting,
                crate::actor::registry::Life::Alive => ActorState::Alive,
                crate::actor::registry::Life::Dead(_) => ActorState::Dead,
            },
            restarts: a.restarts(),
            calls: a.calls.load(Ordering::Relaxed),
            name: a.name.clone(),
        })
    }

    /// Runs `n` calls of `function` (a remote function without arguments)
    /// of `module`, each on a fresh instance, one per CPU slot at a time,
    /// without the scheduler: what a task costs below submission, queueing
    /// and result storage. For `wray bench`; not a way to run tasks.
    #[doc(hidden)]
    pub fn bench_bare_calls(&self, module: &Module, function: &str, n: u32) -> Result<()> {
        self.block_on(crate::task::bench::bare_calls(
            &self.actors.tasks,
            module,
            function,
            n,
            self.num_cpus(),
        ))
        .map_err(Error::InvalidArgument)
    }

    /// Stores a value as an immutable object.
    pub fn put<T: Encode>(&self, value: &T) -> Result<ObjectRef> {
        let bytes = wray_abi::codec::encode(value).map_err(|e| {
            Error::InvalidArgument(format!(
                "cannot encode a {}: {e}",
                std::any::type_name::<T>()
            ))
        })?;
        self.parts().check_size(bytes.len())?;
        self.parts().admit(bytes.len())?;
        Ok(self.store(&bytes, Encoding::Rkyv))
    }

    /// Stores already-encoded bytes as an immutable object.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<ObjectRef> {
        self.parts().check_size(bytes.len())?;
        self.parts().admit(bytes.len())?;
        Ok(self.store(bytes, Encoding::Raw))
    }

    /// [`put_bytes`](Self::put_bytes), for async callers (on any tokio
    /// runtime): past the store's cap it waits for room without blocking.
    pub async fn put_bytes_async(&self, bytes: &[u8]) -> Result<ObjectRef> {
        self.parts().check_size(bytes.len())?;
        self.parts().admit_async(bytes.len()).await?;
        Ok(self.store(bytes, Encoding::Raw))
    }

    /// Stores `bytes`, room made, as an object the caller holds.
    fn store(&self, bytes: &[u8], encoding: Encoding) -> ObjectRef {
        let blob = self.actors.env.objects.blob(bytes, Vec::new());
        blob.mark(encoding);
        let id = self.actors.env.objects.put(blob);
        ObjectRef::adopt(&self.actors.env.objects, id)
    }

    /// The layers and the tokio runtime, for code that must not name
    /// `Runtime`.
    pub(crate) fn parts(&self) -> Parts<'_> {
        Parts {
            actors: &self.actors,
            handle: self.handle(),
        }
    }

    /// Fetches and decodes an object's value, waiting as long as it takes.
    pub fn get<T: Decode>(&self, r: &ObjectRef) -> Result<T> {
        self.get_timeout(r, None)
    }

    /// [`get`](Self::get) waiting at most `timeout`.
    pub fn get_timeout<T: Decode>(&self, r: &ObjectRef, timeout: Option<Duration>) -> Result<T> {
        let bytes = self.get_bytes_timeout(r, timeout)?;
        wray_abi::codec::decode::<T>(&bytes).map_err(|e| Error::Decode {
            type_name: std::any::type_name::<T>(),
            reason: e.to_string(),
        })
    }

    /// Fetches an object written in wray's cross-language format
    /// (deterministic CBOR): a value put by [`put_value`](Self::put_value),
    /// or returned by a function written in C, Go or another language.
    pub fn get_value(&self, r: &ObjectRef) -> Result<Value> {
        self.get_value_timeout(r, None)
    }

    /// [`get_value`](Self::get_value) waiting at most `timeout`.
    pub fn get_value_timeout(&self, r: &ObjectRef, timeout: Option<Duration>) -> Result<Value> {
        let read = self.block_on(self.parts().read(r.id(), timeout))?;
        read_value(&r.id(), &read).map_err(|reason| Error::Decode {
            type_name: "wray value (deterministic CBOR)",
            reason,
        })
    }

    /// Stores a value in wray's cross-language format; the objects it
    /// refers to must exist (they are kept while it lives).
    pub fn put_value(&self, value: &Value) -> Result<ObjectRef> {
        self.block_on(self.parts().put_value(value))
    }

    /// [`put_value`](Self::put_value), for async callers.
    pub async fn put_value_async(&self, value: &Value) -> Result<ObjectRef> {
        self.parts().put_value(value).await
    }

    /// Fetches an object's bytes.
    pub fn get_bytes(&self, r: &ObjectRef) -> Result<Bytes> {
        self.get_bytes_timeout(r, None)
    }

    /// [`get_bytes`](Self::get_bytes) waiting at most `timeout`.
    pub fn get_bytes_timeout(&self, r: &ObjectRef, timeout: Option<Duration>) -> Result<Bytes> {
        self.block_on(self.get_bytes_async(r, timeout))
    }

    /// [`get_bytes_timeout`](Self::get_bytes_timeout), for async callers.
    pub async fn get_bytes_async(&self, r: &ObjectRef, timeout: Option<Duration>) -> Result<Bytes> {
        self.parts().get_bytes(r.id(), timeout).await
    }

    /// Waits until `num_returns` of `refs` are ready (or failed), or until
    /// `timeout` passes. Returns `(ready, not_ready)` in the order of `refs`;
    /// `ready` holds at most `num_returns` references.
    pub fn wait(
        &self,
        refs: &[ObjectRef],
        num_returns: usize,
        timeout: Option<Duration>,
    ) -> Result<(Vec<ObjectRef>, Vec<ObjectRef>)> {
        self.block_on(self.wait_async(refs, num_returns, timeout))
    }

    /// [`wait`](Self::wait), for async callers (on any tokio runtime).
    pub async fn wait_async(
        &self,
        refs: &[ObjectRef],
        num_returns: usize,
        timeout: Option<Duration>,
    ) -> Result<(Vec<ObjectRef>, Vec<ObjectRef>)> {
        if num_returns > refs.len() {
            return Err(Error::InvalidArgument(format!(
                "num_returns ({num_returns}) exceeds the number of references ({})",
                refs.len()
            )));
        }
        let entries = refs
            .iter()
            .map(|r| {
                self.actors
                    .env
                    .objects
                    .get(&r.id())
                    .ok_or(Error::ObjectNotFound(r.id()))
            })
            .collect::<Result<Vec<_>>>()?;
        // On this runtime, whose timers the timeout needs, for any caller's.
        let entries = self
            .handle()
            .spawn(async move {
                let enough = crate::objects::store::resolved_enough(&entries, num_returns);
                // A timeout only ends the wait early: the result is what is
                // ready.
                match timeout {
                    Some(t) => drop(tokio::time::timeout(t, enough).await),
                    None => enough.await,
                }
                entries
            })
            .await
            // Its runtime lives as long as `self`, and the wait never panics.
            .expect("a wait ends");
        let (mut yes, mut no) = (Vec::new(), Vec::new());
        for (r, e) in refs.iter().zip(&entries) {
            if e.state().is_some() && yes.len() < num_returns {
                yes.push(r.clone());
            } else {
                no.push(r.clone());
            }
        }
        Ok((yes, no))
    }

    /// Cancels the task that makes `r`'s object, and the tasks it submitted.
    /// False when that task already finished (or `r` was made by `put`).
    pub fn cancel(&self, r: &ObjectRef) -> bool {
        table::cancel(&self.actors.tasks, &r.id(), true)
    }

    /// Fault injection, to test a program against failures: fails the
    /// current attempt of one unfinished task (picked by `seed`) as a
    /// crashed worker would; the task is retried under its `max_retries`.
    /// A queued task fails as it starts. False when no task was found.
    pub fn chaos_fail_random_task(&self, seed: u64) -> bool {
        let tasks: Vec<_> = self
            .actors
            .tasks
            .table
            .iter()
            .filter(|t| !t.actor_call)
            .map(|t| t.value().clone())
            .collect();
        match tasks.len() {
            0 => false,
            n => tasks[(seed % n as u64) as usize].cancel.fault(),
        }
    }

    /// Fault injection: crashes the instance of one live actor (picked by
    /// `seed`). It restarts if it has restarts left, and its interrupted
    /// call runs again under `max_task_retries`. False when no actor was
    /// found.
    pub fn chaos_crash_random_actor(&self, seed: u64) -> bool {
        let mut ids = Vec::new();
        self.actors.registry.for_each(|a| ids.push(a.id));
        match ids.len() {
            0 => false,
            n => crate::actor::actors::kill(&self.actors, &ids[(seed % n as u64) as usize], true),
        }
    }

    /// Tasks and actor calls by state, in [`TaskState::ALL`](crate::events::TaskState::ALL)
    /// order: pending and running now, the others since the start.
    pub fn task_counts(&self) -> [u64; crate::events::STATES] {
        self.actors.env.events.counts()
    }

    /// A handle that reads the runtime's counters from another thread.
    pub fn stats_source(&self) -> StatsSource {
        StatsSource(self.actors.clone())
    }

    /// Counters describing the runtime's state, once the releases handed
    /// to the store's reaper so far are done (a driver's last releases may
    /// still be in progress when its job ends; the wait is bounded by a
    /// few seconds). The reaper is a thread of its own, so this is safe in
    /// async code too (the wait is like a lock's, as long as the releases
    /// already sent take); [`Runtime::stats_async`] waits without blocking.
    pub fn stats(&self) -> Stats {
        self.actors
            .env
            .objects
            .reaped_blocking(Duration::from_secs(5));
        self.counters()
    }

    /// As [`Runtime::stats`], for async code (on any tokio runtime: the
    /// wait runs on this one's).
    pub async fn stats_async(&self) -> Stats {
        let _ = self.handle().spawn(self.reaped()).await;
        self.counters()
    }

    /// Waits, at most a few seconds, for the releases handed to the
    /// store's reaper so far.
    fn reaped(&self) -> impl Future<Output = ()> + Send + 'static {
        let s = self.actors.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.env.objects.reaped()).await;
        }
    }

    fn counters(&self) -> Stats {
        let s = &self.actors;
        Stats {
            objects: s.env.objects.len(),
            object_bytes: s.env.objects.stats().bytes.load(Ordering::Relaxed),
            spilled_bytes: s.env.objects.stats().spilled_bytes.load(Ordering::Relaxed),
            tasks_unfinished: s.tasks.table.len(),
            actors: s.registry.len(),
            cpu_slots_free: s.env.slots.cpus_free(),
            actor_slots_free: s.slots.available_permits(),
            call_slots_free: s.env.slots.calls_free(),
            modules_loaded: s.env.modules.len(),
            modules_compiled: s.env.modules.stats.compiled.load(Ordering::Relaxed),
            modules_from_disk_cache: s.env.modules.stats.from_disk.load(Ordering::Relaxed),
            memo: MemoCounts::of(&s.tasks),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Tasks still running hold instances on the worker threads; stop
        // them before the engine and the ticker go away.
        if let Some(t) = self.tokio.take() {
            t.shutdown_timeout(Duration::from_secs(1));
        }
        if let Some(dir) = &self.spill {
            dir.remove();
        }
        let _ = &self.ticker;
    }
}
