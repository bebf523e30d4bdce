//! One guest instance: its store, its state, and how a call's outcome is
//! read off it.
//!
//! Every task gets a fresh [`wasmtime::Store`] whose data is an
//! [`InstanceState`]; actors keep theirs across calls. The state owns:
//!
//! - the WASI context (no files, no environment, no network; stdout and
//!   stderr into a [`Capture`]);
//! - the memory [`Limiter`] and the deadline/cancel flags the epoch callback
//!   reads;
//! - the [`RefTable`]: the objects this instance holds or was handed;
//! - the current [`Call`] (arguments in, return values and failure out);
//! - the CPU slot while the instance computes, and its instance slot.
//!
//! Dropping the state releases everything it holds. A store that trapped is
//! never called again (decision 1 of the design): tasks drop it, actors
//! replace it.

use crate::exec::env::Env;
use crate::exec::mapping::{Mapped, Mappings};
use crate::exec::module::Module;
use crate::exec::slots::{CallSlot, CpuSlot};
use crate::objects::arg::ArgValue;
use crate::objects::blob::{Blob, Bytes, Filling};
use crate::objects::held::HeldRefs;
use crate::objects::store::ObjectStore;
use crate::output::{Capture, OutputSource, Stream};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Instant;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Memory, ResourceLimiter};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};
use wray_abi::wire::ArgsLayout;
use wray_abi::{ActorId, ErrorKind, ObjectId, TaskId};

/// Why the host stopped a guest in the middle of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Interrupted {
    /// The call's deadline passed.
    #[error("time limit exceeded")]
    Timeout,
    /// The call was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A fault was injected (`Runtime::chaos_fail_random_task`): the
    /// attempt fails as a worker failure would.
    #[error("injected fault")]
    Fault,
}

/// The guest tried to grow its memory past its limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (the guest asked for {desired} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    pub limit: u64,
    pub desired: u64,
}

/// Enforces an instance's memory limit.
pub(crate) struct Limiter {
    pub memory_limit: u64,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.memory_limit,
                desired: desired as u64,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The objects an instance may name, and the references it holds.
///
/// `held` counts the `ObjectRef`s the guest holds per id; the instance holds
/// one global reference per id in it. `borrowed` lists ids the instance was
/// handed without owning them (inside its arguments or inside values it
/// fetched): it may name them, and retain them to own them. An id in neither
/// set is unknown to the guest, and host functions refuse it, so a guest
/// cannot reach objects by guessing ids.
#[derive(Default)]
pub(crate) struct RefTable {
    held: FxHashMap<ObjectId, u32>,
    borrowed: FxHashSet<ObjectId>,
    /// Ids whose last `ObjectRef` the guest dropped in its latest run of
    /// releases, not yet released in the store (see [`RefTable::release`]).
    dropped: Vec<ObjectId>,
}

/// How many releases in a row are handed to another thread at once.
const REAP_BATCH: usize = 128;

impl RefTable {
    /// Whether the guest may name `id`.
    pub fn knows(&self, id: &ObjectId) -> bool {
        self.held.contains_key(id) || self.borrowed.contains(id)
    }

    /// Lets the guest name `ids` without owning them.
    pub fn lend(&mut self, ids: &[ObjectId]) {
        self.borrowed.extend(ids.iter().copied());
    }

    /// Takes over a global reference the caller already counted for us.
    pub fn adopt(&mut self, objects: &Arc<ObjectStore>, id: ObjectId) {
        let n = self.held.entry(id).or_insert(0);
        *n += 1;
        if *n > 1 {
            objects.release(&id);
        }
    }

    /// Counts one more `ObjectRef` to `id`. False when the guest may not
    /// name it or it no longer exists.
    pub fn retain(&mut self, objects: &Arc<ObjectStore>, id: ObjectId) -> bool {
        if let Some(n) = self.held.get_mut(&id) {
            *n += 1;
            return true;
        }
        if !self.borrowed.contains(&id) || !objects.retain(&id) {
            return false;
        }
        self.held.insert(id, 1);
        true
    }

    /// Drops one `ObjectRef` to `id`. False when the guest holds none.
    ///
    /// The store's release waits for the guest's next call of any other
    /// host function ([`settle`](Self::settle)), the next epoch tick while
    /// it computes, or its end, so that a run of releases (a dropped vector
    /// of references) is done in batches on another thread, in parallel
    /// with the guest's next releases. At most `REAP_BATCH - 1` wait: a
    /// full batch is handed over at once.
    pub fn release(&mut self, objects: &Arc<ObjectStore>, id: ObjectId) -> bool {
        let Some(n) = self.held.get_mut(&id) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            self.held.remove(&id);
            self.dropped.push(id);
            if self.dropped.len() == REAP_BATCH {
                let batch = std::mem::replace(&mut self.dropped, Vec::with_capacity(REAP_BATCH));
                objects.release_later(batch);
            }
        }
        true
    }

    /// Does the releases [`release`](Self::release) left waiting, here and
    /// now: every host function but `object_release` calls this first, so
    /// the guest's other calls see its releases done.
    pub fn settle(&mut self, objects: &Arc<ObjectStore>) {
        if !self.dropped.is_empty() {
            objects.release_all(&self.dropped);
            self.dropped.clear();
        }
    }

    /// Releases every reference held.
    fn release_all(&mut self, objects: &Arc<ObjectStore>) {
        let mut ids = std::mem::take(&mut self.dropped);
        ids.extend(self.held.drain().map(|(id, _)| id));
        objects.release_all(&ids);
        self.borrowed.clear();
    }
}

/// The call an instance is running: what goes in and what comes out.
pub(crate) struct Call {
    /// The resolved arguments, in order, pinned in memory.
    pub args: Vec<ArgValue>,
    /// Where each argument goes in the buffer `task_args` fills.
    pub layout: ArgsLayout,
    /// Return values set with `task_return`.
    pub returns: Vec<Option<Arc<Blob>>>,
    /// The objects the return values refer to, held from `task_return`
    /// until the values are stored (the guest may drop its own references
    /// right after returning).
    pub returned_refs: HeldRefs,
}

impl Call {
    /// The call of `args`, each in the argument buffer, except those held
    /// in files when the module maps its large arguments itself (`maps`).
    pub fn new(
        objects: &Arc<ObjectStore>,
        args: Vec<ArgValue>,
        num_returns: u32,
        maps: bool,
    ) -> Option<Call> {
        let layout = ArgsLayout::new(
            args.iter()
                .map(|a| (a.bytes.len(), maps && a.bytes.file().is_some())),
        )?;
        Some(Call {
            args,
            layout,
            returns: vec![None; num_returns as usize],
            returned_refs: HeldRefs::new(objects),
        })
    }
}

/// A flag that interrupts an instance: at its next epoch tick while it
/// computes, at once while it waits in a host call.
#[derive(Debug, Default)]
pub(crate) struct CancelToken {
    /// 0: none; 1: cancelled (final); 2: an injected fault (this attempt).
    reason: AtomicU8,
    notify: tokio::sync::Notify,
}

impl CancelToken {
    const CANCELLED: u8 = 1;
    const FAULT: u8 = 2;

    /// Cancels for good and wakes waits.
    pub fn cancel(&self) {
        self.reason.store(Self::CANCELLED, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Fails the current attempt as a worker failure (fault injection);
    /// false if the token is already raised.
    pub fn fault(&self) -> bool {
        let raised = self
            .reason
            .compare_exchange(0, Self::FAULT, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if raised {
            self.notify.notify_waiters();
        }
        raised
    }

    /// Lowers an injected fault once its attempt has ended.
    pub fn clear_fault(&self) {
        let _ = self
            .reason
            .compare_exchange(Self::FAULT, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn is_cancelled(&self) -> bool {
        self.reason.load(Ordering::Acquire) == Self::CANCELLED
    }

    /// Why the instance must stop now, if it must.
    pub fn interruption(&self) -> Option<Interrupted> {
        match self.reason.load(Ordering::Acquire) {
            Self::CANCELLED => Some(Interrupted::Cancelled),
            Self::FAULT => Some(Interrupted::Fault),
            _ => None,
        }
    }

    /// Completes once the token is raised; says why.
    pub async fn raised(&self) -> Interrupted {
        loop {
            let mut n = std::pin::pin!(self.notify.notified());
            n.as_mut().enable();
            if let Some(i) = self.interruption() {
                return i;
            }
            n.await;
        }
    }

    /// Completes once the token is cancelled for good.
    pub async fn cancelled(&self) {
        loop {
            let mut n = std::pin::pin!(self.notify.notified());
            n.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            n.await;
        }
    }
}

/// Who an instance works for: written into the tasks it submits.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// The task (or actor call) the instance runs, if it runs one.
    pub task: Option<TaskId>,
    /// The actor the instance is, if it is one.
    pub actor: Option<ActorId>,
    /// The job (driver run) the work belongs to; 0 for the host.
    pub job: u64,
    /// How deep that task is: 1 for a task a driver or the host submitted,
    /// 0 for a driver.
    pub depth: u32,
}

/// The data of a guest's store.
pub(crate) struct InstanceState {
    /// Built on the guest's first WASI call: most tasks never make one.
    pub(super) wasi: Option<WasiP1Ctx>,
    /// WASI arguments (drivers only).
    pub(super) wasi_args: Vec<String>,
    pub(super) source: OutputSource,
    /// The guest's output, once it wrote any (created with the WASI context).
    pub(super) capture: Option<Capture>,
    pub env: Arc<Env>,
    pub module: Module,
    /// The instance, once instantiated.
    pub instance: Option<wasmtime::Instance>,
    /// The guest's exported memory, once instantiated.
    pub memory: Option<Memory>,
    pub limiter: Limiter,
    pub refs: RefTable,
    pub call: Option<Call>,
    /// The failure the guest reported with `task_fail`.
    pub failure: Option<(ErrorKind, String)>,
    /// Why the host last answered `STORE_FULL`, for `last_error`.
    pub last_error: Option<String>,
    /// The streamed put in progress (`object_put_begin`).
    pub put_stream: Option<Filling>,
    /// The bytes and digest of the guest's latest large put, which its next
    /// put of the same length is compared with before it is copied (see
    /// [`Filling`]). Kept only while the guest keeps putting: a blocking
    /// wait, the end, or the guest computing through a whole epoch tick
    /// drops it, so it never holds memory the guest has let go of for long.
    pub last_put: Option<(Bytes, ObjectId)>,
    /// Epoch callbacks since `last_put` was set. The first one after a put
    /// only means that ticks passed during the put itself.
    pub last_put_ticks: u8,
    /// The objects mapped into the guest's memory; restored to zeros when
    /// the state drops, before the memory goes back to the pool.
    pub maps: Mappings,
    /// Set when the guest reads a clock or random numbers: running it again
    /// may then give other results.
    pub nondeterministic: Arc<AtomicBool>,
    /// The zero of the guest's monotonic clock, set with its WASI context.
    pub(super) monotonic_base: Option<Instant>,
    /// The CPU slot, held while the guest computes (not while it waits).
    pub slot: Option<CpuSlot>,
    /// The call slot (a fiber stack), held while a call is in progress.
    pub call_slot: Option<CallSlot>,
    pub origin: Origin,
    pub deadline: Option<Instant>,
    pub cancel: Arc<CancelToken>,
    /// An actor's slot, held for the instance's life.
    pub(super) actor_slot: Option<OwnedSemaphorePermit>,
}

impl InstanceState {
    /// The WASI context, built on first use with no files, no environment
    /// and no network, and stdout and stderr into a capture.
    pub fn wasi(&mut self) -> &mut WasiP1Ctx {
        if self.wasi.is_none() {
            let capture = Capture::new(
                self.source.clone(),
                self.env.sink_for(self.source.job),
                self.env.config.output_limit,
            );
            let mut b = wasmtime_wasi::WasiCtxBuilder::new();
            let seen = &self.nondeterministic;
            let base = Instant::now();
            self.monotonic_base = Some(base);
            b.stdout(capture.stream(Stream::Stdout))
                .stderr(capture.stream(Stream::Stderr))
                .wall_clock(Watched::new(wasmtime_wasi::clocks::wall_clock(), seen))
                .monotonic_clock(Watched::new(Monotonic::boxed(base), seen))
                .secure_random(Watched::new(wasmtime_wasi::random::thread_rng(), seen))
                .insecure_random(Watched::new(wasmtime_wasi::random::thread_rng(), seen));
            if !self.wasi_args.is_empty() {
                b.args(&self.wasi_args);
            }
            self.capture = Some(capture);
            self.wasi = Some(b.build_p1());
        }
        self.wasi.as_mut().expect("built above")
    }

    /// The instant the guest's monotonic clock counts from (its zero).
    pub fn monotonic_base(&mut self) -> Instant {
        self.wasi();
        self.monotonic_base.expect("set with the WASI context")
    }

    /// Emits the guest's unfinished output lines; call when a call ends.
    pub fn flush_output(&self) {
        if let Some(c) = &self.capture {
            c.flush();
        }
    }

    /// Gives back what the instance holds in the runtime ahead of its
    /// drop: its references, those of a call it did not finish, a put it
    /// left unfinished, and its actor slot.
    pub fn retire(&mut self) {
        self.refs.release_all(&self.env.objects);
        self.call = None;
        self.put_stream = None;
        self.actor_slot = None;
    }

    /// The end of what the guest wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.capture
            .as_ref()
            .map(Capture::stderr_tail)
            .unwrap_or_default()
    }
}

impl Drop for InstanceState {
    fn drop(&mut self) {
        self.refs.release_all(&self.env.objects);
    }
}

/// The guest's monotonic clock: nanoseconds since its WASI context was
/// made (as wasmtime-wasi's own), from a base `poll_oneoff` also knows.
struct Monotonic {
    since: Instant,
}

impl Monotonic {
    fn boxed(since: Instant) -> Box<dyn HostMonotonicClock + Send> {
        Box::new(Monotonic { since })
    }
}

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock or random source that notes when a guest uses it.
struct Watched<T> {
    inner: T,
    used: Arc<AtomicBool>,
}

impl<T> Watched<T> {
    fn new(inner: T, used: &Arc<AtomicBool>) -> Self {
        Watched {
            inner,
            used: used.clone(),
        }
    }

    fn note(&self) {
        self.used.store(true, Ordering::Relaxed);
    }
}

impl HostWallClock for Watched<Box<dyn HostWallClock + Send>> {
    fn resolution(&self) -> std::time::Duration {
        self.inner.resolution()
    }
    fn now(&self) -> std::time::Duration {
        self.note();
        self.inner.now()
    }
}

impl HostMonotonicClock for Watched<Box<dyn HostMonotonicClock + Send>> {
    fn resolution(&self) -> u64 {
        self.inner.resolution()
    }
    fn now(&self) -> u64 {
        self.note();
        self.inner.now()
    }
}

impl rand::TryRng for Watched<Box<dyn rand::Rng + Send>> {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.note();
        Ok(self.inner.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.note();
        Ok(self.inner.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.note();
        self.inner.fill_bytes(dst);
        Ok(())
    }
}

impl Mapped for InstanceState {
    fn memory(&self) -> Option<Memory> {
        self.memory
    }

    fn mappings(&mut self) -> &mut Mappings {
        &mut self.maps
    }
}
