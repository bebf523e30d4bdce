//! [`Runtime`], its [`Builder`], and the host-side [`ObjectRef`].
//!
//! A runtime owns a tokio runtime (guests run on its worker threads, as
//! async wasmtime calls on fibers), the wasmtime engines with their epoch
//! ticker, and the layers built on them: the environment every layer shares
//! ([`Env`]: object store, module cache, slots...), the task layer
//! ([`Tasks`]) and the actor layer ([`Actors`]), each holding the one below.
//!
//! The blocking methods ([`Runtime::get`], [`Runtime::run_driver`]...) must
//! not be called from inside the runtime's own tokio context; use the
//! `_async` variants there.

use crate::actor::actors::{Actors, Registry};
use crate::api::call::{self, ActorBuilder, ActorRef, CallBuilder, MethodBuilder, TaskBuilder};
pub(crate) use crate::api::object_ref::ObjectRef;
use crate::api::parts::Parts;
use crate::config::Config;
use crate::error::{Error, Result, TaskError};
use crate::exec::engine::{Engines, EpochTicker};
use crate::exec::env::{Env, Upcalls};
use crate::exec::module::{Module, ModuleCache};
use crate::exec::slots::Slots;
use crate::job::handle::{Job, start_job};
use crate::objects::blob::Bytes;
use crate::objects::read::read;
use crate::objects::spill_dir::SpillDir;
use crate::objects::store::{ObjectStore, Resolved, StoreLimits};
use crate::output::{OutputSink, TerminalSink};
use crate::task::table::{self, TaskTable, Tasks};

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Semaphore;

use wray_abi::codec::{Decode, Encode};

/// Configures and builds a [`Runtime`].
///
/// ```no_run
/// let rt = wray_runtime::Runtime::builder().num_cpus(4).build()?;
/// # Ok::<(), wray_runtime::Error>(())
/// ```
#[must_use]
pub struct Builder {
    config: Config,
    sink: Arc<dyn OutputSink>,
}

impl Builder {
    /// How many guests compute at once (default: the machine's cores).
    pub fn num_cpus(mut self, n: usize) -> Self {
        self.config.num_cpus = n;
        self
    }

    /// How many actors may exist at once (default 2,048). Each slot
    /// reserves address space and a fiber stack, set up when the first
    /// actor is created; creating more waits for a slot to free.
    pub fn actor_slots(mut self, n: u32) -> Self {
        self.config.actor_slots = n;
        self
    }

    /// How many calls can be in progress at once, computing or waiting in
    /// a host call such as `get` (default 1,000). Each has a fiber stack,
    /// set up when the runtime starts. A quarter is kept for nested tasks.
    pub fn call_slots(mut self, n: u32) -> Self {
        self.config.call_slots = n;
        self
    }

    /// Default linear memory limit per instance, in bytes (default and
    /// maximum: 4 GiB).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.config.memory_limit = bytes;
        self
    }

    /// Default wall-clock limit of one task attempt (default: none).
    pub fn task_timeout(mut self, limit: Option<Duration>) -> Self {
        self.config.task_timeout = limit;
        self
    }

    /// Largest object, in bytes (default 2 GiB).
    pub fn max_object_size(mut self, bytes: usize) -> Self {
        self.config.max_object_size = bytes;
        self
    }

    /// Most output one instance may write, in bytes (default 64 MiB).
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.config.output_limit = bytes;
        self
    }

    /// Default retries after system failures (default 3; -1: no limit).
    pub fn max_retries(mut self, n: i32) -> Self {
        self.config.max_retries = n;
        self
    }

    /// Most wasm stack a guest may use, in bytes (default 512 KiB).
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.config.max_wasm_stack = bytes;
        self
    }

    /// Where compiled code is cached (default `$WRAY_CACHE_DIR`, else
    /// `~/.cache/wray`); `None` turns the disk cache off.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.config.cache_dir = dir;
        self
    }

    /// Bytes of objects kept in memory (default: 30% of the machine's
    /// memory). Past it, the least recently used objects nobody is reading
    /// spill to disk and are read back when used.
    pub fn object_store_memory(mut self, bytes: u64) -> Self {
        self.config.object_store_memory = bytes;
        self
    }

    /// Bytes of compiled code the disk cache keeps (default 1 GiB); past
    /// it, the least recently used modules' code is removed.
    pub fn code_cache_size(mut self, bytes: u64) -> Self {
        self.config.code_cache_size = bytes;
        self
    }

    /// How many loaded modules that nothing runs or holds stay in memory
    /// (default 64); past it the least recently used are dropped, and a
    /// later load reads their code back from the disk cache.
    pub fn idle_modules(mut self, n: usize) -> Self {
        self.config.idle_modules = n;
        self
    }

    /// How many task and actor-call records the state API keeps (default
    /// 100,000); the oldest go first.
    pub fn history(mut self, records: usize) -> Self {
        self.config.history = records;
        self
    }

    /// The directory objects spill into (default: the system's temporary
    /// directory; made if missing). Each runtime spills into a directory
    /// of its own inside it, made on the first spill and removed when the
    /// runtime ends; directories that ended processes left there are
    /// removed at start. `None` turns spilling off, making the memory cap
    /// hard.
    pub fn spill_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.config.spilling = dir.is_some();
        self.config.spill_dir = dir;
        self
    }

    /// How long a put waits for room in the object store before failing
    /// (default 10 s).
    pub fn object_store_wait(mut self, wait: Duration) -> Self {
        self.config.store_wait = wait;
        self
    }

    /// Where guest output goes (default: this process's stdout and stderr,
    /// task lines prefixed with the task).
    pub fn output(mut self, sink: Arc<dyn OutputSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Builds the runtime.
    pub fn build(self) -> Result<Runtime> {
        let config = self.config;
        if config.num_cpus == 0 {
            return Err(Error::Config("num_cpus must be at least 1".into()));
        }
        if config.actor_slots == 0 || config.call_slots < 2 {
            return Err(Error::Config(
                "actor_slots must be at least 1 and call_slots at least 2".into(),
            ));
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Some(limit) = max_map_count() {
            // Each pooled stack is two mappings, each live instance two more.
            let needed = 4 * u64::from(config.actor_slots)
                + 4 * u64::from(config.call_slots)
                + 4 * workers as u64
                + 4096;
            if needed > limit {
                return Err(Error::Config(format!(
                    "{} actor slots and {} call slots need about {needed} memory mappings, but this \
                     system allows {limit} per process (vm.max_map_count); lower them or raise the limit",
                    config.actor_slots, config.call_slots
                )));
            }
        }
        if config.memory_limit < 64 << 10 {
            return Err(Error::Config(
                "memory_limit must be at least one wasm page (64 KiB)".into(),
            ));
        }
        if config.memory_limit > crate::config::MAX_WASM32_MEMORY {
            return Err(Error::Config(
                "memory_limit can be at most 4 GiB, all a wasm32 guest can address".into(),
            ));
        }
        if config.object_store_memory < 1 << 20 {
            return Err(Error::Config(
                "object_store_memory must be at least 1 MiB".into(),
            ));
        }
        if config.task_timeout == Some(Duration::ZERO) {
            return Err(Error::Config(
                "task_timeout must be longer than 0 (leave it unset for no limit)".into(),
            ));
        }
        let engines = Arc::new(Engines::new(&config, workers as u32, crate::host::linker)?);
        // Spills go to a directory of this process's own, inside the one
        // given or the system's temporary directory (see `spill_dir`).
        let spill = if config.spilling {
            let parent = match &config.spill_dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::Config(format!(
                            "the spill directory {} cannot be made: {e}",
                            dir.display()
                        ))
                    })?;
                    dir.clone()
                }
                None => std::env::temp_dir(),
            };
            Some(Arc::new(SpillDir::new(parent)))
        } else {
            None
        };
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("wray-worker")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start worker threads: {e}")))?;
        let objects = Arc::new(ObjectStore::new(StoreLimits {
            memory: config.object_store_memory,
            spill_dir: spill.clone(),
            wait: config.store_wait,
        }));
        let modules = ModuleCache::new(
            config.cache_dir.as_deref(),
            config.idle_modules,
            config.code_cache_size,
        );
        let slots = Slots::new(config.num_cpus, config.call_slots as usize);
        let actor_slots = Arc::new(Semaphore::new(config.actor_slots as usize));
        let env = Arc::new(Env::new(
            config,
            engines.clone(),
            modules,
            objects.clone(),
            slots,
            self.sink,
            tokio.handle().clone(),
        ));
        let tasks = Arc::new(Tasks {
            env: env.clone(),
            table: TaskTable::default(),
        });
        let actors = Arc::new(Actors {
            env: env.clone(),
            tasks,
            registry: Registry::default(),
            slots: actor_slots,
        });
        env.set_upcalls(Arc::downgrade(&actors) as Weak<dyn Upcalls>);
        tokio.spawn(spiller(Arc::downgrade(&objects)));
        if let Some(dir) = &spill {
            // What processes that died left behind: on a thread of its own,
            // which nothing waits for (a sweep cut short by this process's
            // end is finished by the next).
            let parent = dir.parent().to_path_buf();
            let _ = std::thread::Builder::new()
                .name("wray-spill-sweep".into())
                .spawn(move || crate::objects::spill_dir::sweep(&parent));
        }
        Ok(Runtime {
            ticker: EpochTicker::start(engines),
            tokio: Some(tokio),
            spill,
            actors,
        })
    }
}

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
    tokio: Option<tokio::runtime::Runtime>,
    ticker: EpochTicker,
    /// Where objects spill; its directory is removed when the runtime ends.
    spill: Option<Arc<SpillDir>>,
}

impl Runtime {
    /// A builder with the default configuration.
    pub fn builder() -> Builder {
        Builder {
            config: Config::default(),
            sink: Arc::new(TerminalSink),
        }
    }

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
        start_job(&self.actors, self.handle(), module, args)
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
            .map(|a| ActorRef::new(a.id, a.type_name.clone()))
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
                crate::actor::actors::Life::Starting => ActorState::Starting,
                crate::actor::actors::Life::Alive => ActorState::Alive,
                crate::actor::actors::Life::Dead(_) => ActorState::Dead,
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
        self.put_bytes(&bytes)
    }

    /// Stores already-encoded bytes as an immutable object.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<ObjectRef> {
        self.check_size(bytes.len())?;
        self.parts().admit(bytes.len())?;
        Ok(self.store(bytes))
    }

    /// [`put_bytes`](Self::put_bytes), for async callers (on any tokio
    /// runtime): past the store's cap it waits for room without blocking.
    pub async fn put_bytes_async(&self, bytes: &[u8]) -> Result<ObjectRef> {
        self.check_size(bytes.len())?;
        self.parts().admit_async(bytes.len()).await?;
        Ok(self.store(bytes))
    }

    fn check_size(&self, len: usize) -> Result<()> {
        let max = self.actors.env.config.max_object_size;
        if len > max {
            return Err(Error::InvalidArgument(format!(
                "object of {len} bytes exceeds the limit of {max} bytes"
            )));
        }
        Ok(())
    }

    /// Stores `bytes`, room made, as an object the caller holds.
    fn store(&self, bytes: &[u8]) -> ObjectRef {
        let blob = self.actors.env.objects.blob(bytes, Vec::new());
        let id = self.actors.env.objects.put(blob);
        ObjectRef::adopt(&self.actors.env.objects, id)
    }

    /// The layers and the tokio runtime, for code that must not name
    /// `Runtime`.
    pub(crate) fn parts(&self) -> Parts<'_> {
        Parts {
            actors: &self.actors,
            tokio: self.tokio(),
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
        let entry = self
            .actors
            .env
            .objects
            .get(&r.id())
            .ok_or(Error::ObjectNotFound(r.id()))?;
        let resolved = match timeout {
            None => entry.resolved().await,
            Some(t) => tokio::time::timeout(t, entry.resolved())
                .await
                .map_err(|_| Error::Timeout(t))?,
        };
        match resolved {
            Resolved::Ready(blob) => read(&self.actors.env.objects, &r.id(), &entry, &blob)
                .await
                .map_err(|rec| Error::Task(TaskError::new(rec))),
            Resolved::Failed(rec) => Err(Error::Task(TaskError::new((*rec).clone()))),
        }
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
    pub fn task_counts(&self) -> [u64; 5] {
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

/// Spills objects whenever a caller waits for room or reads spilled bytes
/// back past the cap. (The runtime's shutdown ends it.)
async fn spiller(store: Weak<ObjectStore>) {
    while let Some(s) = store.upgrade() {
        s.spill_wanted().await;
        let _ = tokio::task::spawn_blocking(move || s.spill_round()).await;
    }
}

/// The kernel's limit on memory mappings per process, where it can be read.
fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// An actor's state, from [`Runtime::actor_info`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorState {
    /// Running its constructor.
    Starting,
    /// Serving calls.
    Alive,
    /// Gone (it leaves the table right after).
    Dead,
}

/// What [`Runtime::actor_info`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorInfo {
    /// Where it is in its life.
    pub state: ActorState,
    /// How many times it restarted.
    pub restarts: u32,
    /// Calls it completed.
    pub calls: u64,
    /// Its registered name.
    pub name: Option<String>,
}

/// Counters describing a runtime, from [`Runtime::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Objects in the store.
    pub objects: usize,
    /// Bytes of objects in memory.
    pub object_bytes: u64,
    /// Bytes of objects spilled to disk.
    pub spilled_bytes: u64,
    /// Tasks and actor calls submitted and not finished.
    pub tasks_unfinished: usize,
    /// Actors not yet gone.
    pub actors: usize,
    /// CPU slots not in use.
    pub cpu_slots_free: usize,
    /// Actor slots not in use.
    pub actor_slots_free: usize,
    /// Call slots not in use.
    pub call_slots_free: usize,
    /// Modules loaded in memory now.
    pub modules_loaded: usize,
    /// Modules compiled by this runtime.
    pub modules_compiled: u64,
    /// Modules whose compiled code came from the disk cache.
    pub modules_from_disk_cache: u64,
}

/// Reads a runtime's counters, from any thread (see
/// [`Runtime::stats_source`]).
#[derive(Clone)]
pub struct StatsSource(Arc<Actors>);

impl StatsSource {
    /// As [`Runtime::task_counts`].
    pub fn task_counts(&self) -> [u64; 5] {
        self.0.env.events.counts()
    }

    /// Actors not yet gone.
    pub fn actors(&self) -> usize {
        self.0.registry.len()
    }
}
