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

use crate::config::Config;
use crate::error::{Error, Result};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of time limits,
/// cancellation and preemption of guests that compute without calling the
/// host.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Largest linear memory a wasm32 guest can have.
pub(crate) const MAX_WASM32_MEMORY: u64 = 4 << 30;

/// Builds the engine for `config`.
pub(crate) fn build(config: &Config) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let slots = config.instance_slots;
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(config.call_slots)
        .max_memory_size(MAX_WASM32_MEMORY as usize)
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(2 << 20)
        // Fiber stacks stay resident too, and decommits are batched: each
        // madvise costs a TLB shootdown on every other core.
        .async_stack_keep_resident(256 << 10)
        .decommit_batch_size(64)
        .table_keep_resident(64 << 10);

    let mut wt = wasmtime::Config::new();
    wt.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        // Host functions run on the guest's fiber stack, above the wasm
        // frames: leave them plenty of room.
        .async_stack_size(config.max_wasm_stack + (1 << 20))
        .memory_init_cow(true);
    Engine::new(&wt).map_err(|e| Error::Config(format!("cannot create the wasm engine: {e:#}")))
}

/// A key naming the engine's code-generation settings: compiled code is only
/// loaded into an engine with the same key.
pub(crate) fn code_key(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{}-{:016x}", env!("CARGO_PKG_VERSION"), h.finish())
}

/// Advances an engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wray-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
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
