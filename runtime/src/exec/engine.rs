//! The wasmtime engine wray runs every guest on, and its epoch ticker.
//!
//! One engine per runtime. Instances come from wasmtime's pooling allocator
//! with copy-on-write memory images: a fresh instance per task costs a few
//! microseconds. Where the kernel has `PAGEMAP_SCAN` (Linux 6.7+), slots are
//! reset with one ioctl instead of `madvise` calls, which would force a TLB
//! shootdown on every other core per instance; the first pages of each
//! memory and of each fiber stack stay resident between uses. Fiber stacks
//! (one per call in progress) are pooled apart from instances: each costs an
//! `mprotect` at start-up, so their number is what bounds start-up time.
//!
//! Epoch interruption gives long-running guests yield points: a thread
//! increments the epoch every [`EPOCH_TICK`], and each store's callback
//! decides to yield to tokio, to time out or to stop a cancelled call.

use crate::config::{Config, MAX_WASM32_MEMORY};
use crate::error::{Error, Result};
use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, Linker, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of time limits,
/// cancellation and preemption of guests that compute without calling the
/// host.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(2);

/// How an engine's pool is used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Tasks and drivers: slots are reused thousands of times a second, so
    /// their first pages (and stacks) stay resident between uses.
    Tasks,
    /// Actors: a slot is freed only when its actor dies, so nothing stays
    /// resident after it (10,000 actors killed must give their memory back),
    /// and instances copy their data segments (see `memory_init_cow`).
    Actors,
}

/// An engine whose pool holds `slots` instances and as many fiber stacks.
fn build(config: &Config, slots: u32, role: Role) -> Result<Engine> {
    let keep = |bytes: usize| if role == Role::Tasks { bytes } else { 0 };
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        .max_memory_size(MAX_WASM32_MEMORY as usize)
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(keep(2 << 20))
        // Fiber stacks stay resident too.
        .async_stack_keep_resident(keep(256 << 10))
        // A freed instance waits in a decommit queue until the batch is
        // full: wasmtime queues every memory, even one with nothing to
        // decommit, and a pool smaller than the queues would always look
        // full. A task's memory rarely has anything to decommit (it is
        // kept resident), so its slot goes back at once. An actor's memory
        // is all decommitted, and batching spares a TLB shootdown on every
        // other core per madvise.
        .decommit_batch_size(if role == Role::Tasks { 1 } else { 64 })
        .table_keep_resident(keep(64 << 10));

    let mut wt = wasmtime::Config::new();
    wt.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        // Host functions run on the guest's fiber stack, above the wasm
        // frames: leave them plenty of room.
        .async_stack_size(config.max_wasm_stack + (1 << 20))
        // Copy-on-write images make instantiation cheap, but each maps the
        // image into its slot: one more memory mapping per live instance.
        // Actors instantiate rarely and live long, and 10,000 of them must
        // fit the kernel's 65,530 mappings per process (vm.max_map_count),
        // so they copy their data segments instead.
        .memory_init_cow(role == Role::Tasks);
    Engine::new(&wt).map_err(|e| Error::Config(format!("cannot create the wasm engine: {e:#}")))
}

/// The host functions a guest imports, linked for one engine: wasmtime's
/// `Linker<T>` for the store data `T` of the layer that runs instances.
/// This layer never names `T`: what a linker makes of a module is handed
/// on type-erased, and typed again where a store of `T` instantiates it
/// ([`Code::pre`](crate::exec::module::Code::pre)).
pub(crate) trait Linked: Send + Sync {
    /// `Linker::instantiate_pre`: checks the module's imports against the
    /// host functions and prepares its instantiation (an `InstancePre<T>`).
    fn instantiate_pre(
        &self,
        module: &wasmtime::Module,
    ) -> wasmtime::Result<Box<dyn Any + Send + Sync>>;
}

impl<T: Send + 'static> Linked for Linker<T> {
    fn instantiate_pre(
        &self,
        module: &wasmtime::Module,
    ) -> wasmtime::Result<Box<dyn Any + Send + Sync>> {
        Ok(Box::new(Linker::instantiate_pre(self, module)?))
    }
}

/// Links the host functions for an engine. The host layer, above this one,
/// provides them (`host::linker`).
pub(crate) type HostFunctions = fn(&Engine) -> wasmtime::Result<Box<dyn Linked>>;

/// An engine and the host functions linked for it.
pub(crate) struct Wasm {
    pub engine: Engine,
    pub linker: Box<dyn Linked>,
}

impl Wasm {
    fn new(config: &Config, slots: u32, role: Role, host: HostFunctions) -> Result<Wasm> {
        let engine = build(config, slots, role)?;
        let linker = host(&engine)
            .map_err(|e| Error::Config(format!("cannot register host functions: {e:#}")))?;
        Ok(Wasm { engine, linker })
    }
}

/// The task engine, and the actor engine once an actor exists.
pub(crate) struct Engines {
    /// Drivers and tasks.
    pub tasks: Wasm,
    actors: OnceLock<std::result::Result<Wasm, String>>,
    config: Config,
    workers: u32,
    host: HostFunctions,
}

impl Engines {
    /// `workers` is the number of threads that run guests: the actor
    /// pool keeps that many instances beyond the actor slots (see
    /// [`Engines::actors`]).
    pub fn new(config: &Config, workers: u32, host: HostFunctions) -> Result<Engines> {
        Ok(Engines {
            tasks: Wasm::new(config, config.call_slots, Role::Tasks, host)?,
            actors: OnceLock::new(),
            config: config.clone(),
            workers,
            host,
        })
    }

    /// The actor engine, built on first use.
    ///
    /// A dead actor gives back its slot before its death is announced, and
    /// its instance when its store drops, just after, on the same thread
    /// with no await between. wasmtime drops a store's data before it
    /// returns the instance to the pool, too. A constructor granted that
    /// slot on another thread can so find the instance not yet back: the
    /// pool has one more instance per worker thread for them.
    pub fn actors(&self) -> std::result::Result<&Wasm, String> {
        self.actors
            .get_or_init(|| {
                let pool = self.config.actor_slots + self.workers;
                Wasm::new(&self.config, pool, Role::Actors, self.host).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn tick(&self) {
        self.tasks.engine.increment_epoch();
        if let Some(Ok(w)) = self.actors.get() {
            w.engine.increment_epoch();
        }
    }
}

/// A key naming the engine's code-generation settings: compiled code is only
/// loaded into an engine with the same key.
pub(crate) fn code_key(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{}-{:016x}", env!("CARGO_PKG_VERSION"), h.finish())
}

/// Advances the engines' epochs every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engines: Arc<Engines>) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wray-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engines.tick();
                }
            })
            .expect("cannot spawn the epoch thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
