//! The object store: immutable objects by id, their state, waiters and
//! reference counts.
//!
//! # States
//!
//! An entry is created either *ready* (by `put`: its id is the digest of its
//! bytes) or *pending* (a task's return value, named before the task runs).
//! A pending entry is resolved exactly once, to a value ([`Resolved::Ready`])
//! or to an error ([`Resolved::Failed`]); waiters are woken then. Resolution
//! is final: `state` is a `OnceLock`.
//!
//! # References
//!
//! `refs` counts the holders of an entry: each instance holding at least one
//! `ObjectRef` to it (instances keep their own counts and hold one global
//! reference per id), each host-side `ObjectRef`, each pending task that has
//! it as an argument, and each ready entry whose value contains it. When the
//! count falls to zero the entry is removed, and the references its value
//! contained are released in turn (iteratively: chains of objects can be
//! long). A guest's long runs of releases come in batches that the store's
//! reaper thread releases ([`ObjectStore::release_later`]), so the freeing
//! overlaps the guest's next releases.
//!
//! # Deduplication
//!
//! Bytes are stored once per digest: a `put` of bytes already present finds
//! the entry by id; a task result of at least [`DEDUPE_MIN`] bytes finds an
//! existing blob through the `blobs` index. Smaller task results are not
//! indexed: looking them up would cost more than storing them.
//!
//! # Memory and spilling
//!
//! The store's memory is capped ([`StoreLimits`]). Whoever makes a blob
//! first [`admit`](ObjectStore::admit)s its size: when it does not fit, the
//! spiller moves the least recently used blobs nobody is reading to files
//! (content-addressed by digest), and the caller waits for room, up to
//! `wait`; then it gets a [`StoreFull`] error saying why (nothing left to
//! spill, or the disk refused). Spilled blobs are read back transparently
//! ([`Blob::load`]). An object nobody holds is freed as soon as its last
//! release is done, in memory or on disk: there is nothing to evict. Before
//! a caller waits for room, it waits for the reaper's batches.
//!
//! Blobs under [`SPILL_MIN`](crate::objects::blob::SPILL_MIN) bytes never spill.
//!
//! A task's results that can spill keep their *lineage* (the task), so a
//! result whose bytes are lost can be made again ([`read`](crate::objects::read::read)).
//!
//! # Locking
//!
//! The tables are sharded maps; no lock is held across an `await` or while
//! another shard is locked. Reference counts are atomics: a count that drops
//! to zero is removed with `remove_if` re-checking zero, so a concurrent
//! retain wins over the removal.

use crate::objects::blob::{Blob, Bytes, Encoding, Filling, StoreStats};
use crate::objects::lineage::Lineage;
use crate::objects::spill_dir::SpillDir;
use dashmap::DashMap;
use rustc_hash::FxBuildHasher;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use wray_abi::ObjectId;
use wray_abi::wire::ErrorRecord;

/// Task results at least this large are deduplicated by digest.
pub(crate) const DEDUPE_MIN: usize = 1024;

/// The final state of an object.
#[derive(Clone, Debug)]
pub(crate) enum Resolved {
    /// The object's value.
    Ready(Arc<Blob>),
    /// Why the object will never have a value.
    Failed(Arc<ErrorRecord>),
}

/// One object.
pub(crate) struct Entry {
    state: OnceLock<Resolved>,
    notify: Notify,
    refs: AtomicU64,
    /// For a task's result: the task, to make it again.
    lineage: OnceLock<Lineage>,
}

/// How much memory the store may use, and where it spills.
#[derive(Clone)]
pub(crate) struct StoreLimits {
    /// Bytes of objects in memory.
    pub memory: u64,
    /// Where objects spill (`None`: no spilling; the cap is then hard).
    pub spill_dir: Option<Arc<SpillDir>>,
    /// How long a caller waits for room before `StoreFull`.
    pub wait: Duration,
}

impl StoreLimits {
    /// No cap: for tests of the store's bookkeeping.
    #[cfg(test)]
    pub fn unlimited() -> StoreLimits {
        StoreLimits {
            memory: u64::MAX,
            spill_dir: None,
            wait: Duration::ZERO,
        }
    }
}

/// The store could not make room for an object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the object store is full: {0}")]
pub(crate) struct StoreFull(pub String);

impl Entry {
    fn new(refs: u64) -> Entry {
        Entry {
            state: OnceLock::new(),
            notify: Notify::new(),
            refs: AtomicU64::new(refs),
            lineage: OnceLock::new(),
        }
    }

    /// The task that made the object, if a task did.
    pub fn lineage(&self) -> Option<&Lineage> {
        self.lineage.get()
    }

    /// Records the task that made the object.
    pub fn set_lineage(&self, task: Lineage) {
        let _ = self.lineage.set(task);
    }

    /// The final state, if the object is resolved.
    pub fn state(&self) -> Option<&Resolved> {
        self.state.get()
    }

    /// Waits until the object is resolved.
    pub async fn resolved(&self) -> Resolved {
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if let Some(r) = self.state.get() {
                return r.clone();
            }
            notified.await;
        }
    }
}

/// Completes once at least `enough` of `entries` are resolved, counting an
/// entry named several times as many times (Ray's `wait` semantics). One
/// waiter per distinct pending object, polled only when its object
/// resolves: a wake-up costs one check, not a pass over the rest, however
/// many ids are named (a guest may name one a million times). The store
/// hands out one `Entry` per object: its address names it.
pub(crate) async fn resolved_enough(entries: &[Arc<Entry>], enough: usize) {
    use futures_util::StreamExt;
    let mut ready = 0;
    let mut named: rustc_hash::FxHashMap<usize, (&Arc<Entry>, usize)> = Default::default();
    for e in entries {
        if e.state().is_some() {
            ready += 1;
        } else {
            named.entry(Arc::as_ptr(e) as usize).or_insert((e, 0)).1 += 1;
        }
    }
    let mut pending: futures_util::stream::FuturesUnordered<_> = named
        .into_values()
        .map(|(e, n)| async move {
            e.resolved().await;
            n
        })
        .collect();
    while ready < enough {
        match pending.next().await {
            Some(n) => ready += n,
            None => break,
        }
    }
}

/// The objects of one runtime.
pub(crate) struct ObjectStore {
    entries: DashMap<ObjectId, Arc<Entry>, FxBuildHasher>,
    blobs: DashMap<ObjectId, Weak<Blob>, FxBuildHasher>,
    stats: Arc<StoreStats>,
    limits: StoreLimits,
    /// Wakes the spiller.
    spill_wanted: Notify,
    /// The most room a caller asked for since the spiller last ran.
    room_wanted: AtomicU64,
    /// Wakes callers waiting for room, after each round of spilling.
    spilled: Notify,
    /// Why the last round of spilling could not make room, if it could not.
    spill_error: Mutex<Option<String>>,
    /// Batches handed to the reaper thread so far, and how many of them it
    /// has released (it takes them in order).
    reaps_sent: AtomicU64,
    reaps_done: AtomicU64,
    /// Notified after each batch the reaper releases (async waiters, and
    /// through the condvar, threads).
    reaped: Notify,
    reaped_lock: Mutex<()>,
    reaped_cv: std::sync::Condvar,
    /// Where `release_later` sends its batches (`None` if the thread could
    /// not start); the thread ends with the store.
    reaper: OnceLock<Option<std::sync::mpsc::Sender<Vec<ObjectId>>>>,
    /// Drops what is kept only in case it is wanted again (a cluster
    /// node's copies of other nodes' objects) when memory is short.
    relief: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

/// The reaper thread: releases each batch it is sent, in order, until the
/// store is gone.
fn reap(store: &Weak<ObjectStore>, batches: &std::sync::mpsc::Receiver<Vec<ObjectId>>) {
    while let Ok(ids) = batches.recv() {
        match store.upgrade() {
            Some(s) => s.reap_one(&ids),
            None => return,
        }
    }
}

impl ObjectStore {
    pub fn new(limits: StoreLimits) -> ObjectStore {
        crate::objects::blob::keep_freed(limits.memory);
        ObjectStore {
            entries: DashMap::with_hasher(FxBuildHasher),
            blobs: DashMap::with_hasher(FxBuildHasher),
            stats: Arc::new(StoreStats::default()),
            limits,
            spill_wanted: Notify::new(),
            room_wanted: AtomicU64::new(0),
            spilled: Notify::new(),
            spill_error: Mutex::new(None),
            reaps_sent: AtomicU64::new(0),
            reaps_done: AtomicU64::new(0),
            reaped: Notify::new(),
            reaper: OnceLock::new(),
            reaped_lock: Mutex::new(()),
            reaped_cv: std::sync::Condvar::new(),
            relief: OnceLock::new(),
        }
    }

    /// Sets what drops memory kept only for reuse when memory is short
    /// (before anything is spilled); once.
    #[cfg_attr(not(feature = "node"), allow(dead_code))] // the cluster's
    pub fn on_pressure(&self, relieve: impl Fn() + Send + Sync + 'static) {
        let _ = self.relief.set(Box::new(relieve));
    }

    fn relieve(&self) {
        if let Some(relieve) = self.relief.get() {
            relieve();
        }
    }

    /// The memory the store may use, in bytes.
    #[cfg_attr(not(feature = "node"), allow(dead_code))] // the cluster's
    pub fn memory_limit(&self) -> u64 {
        self.limits.memory
    }

    /// Whether `len` more bytes fit in memory now.
    pub fn fits(&self, len: usize) -> bool {
        self.stats
            .bytes
            .load(Ordering::Relaxed)
            .saturating_add(len as u64)
            <= self.limits.memory
    }

    /// Waits until `len` more bytes fit in memory, spilling to make room;
    /// fails after the limits' wait, or at once for an object larger than
    /// the whole store.
    pub async fn admit(&self, len: usize) -> Result<(), StoreFull> {
        let len = len as u64;
        let cap = self.limits.memory;
        if self.stats.bytes.load(Ordering::Relaxed).saturating_add(len) <= cap {
            return Ok(());
        }
        if len > cap {
            return Err(StoreFull(format!(
                "an object of {len} bytes is larger than the store's memory ({cap} bytes)"
            )));
        }
        let deadline = tokio::time::Instant::now() + self.limits.wait;
        // Copies kept for reuse go first; objects already released may
        // still be being freed.
        self.relieve();
        let _ = tokio::time::timeout_at(deadline, self.reaped()).await;
        if self.fits(len as usize) {
            return Ok(());
        }
        if self.limits.spill_dir.is_none() {
            return Err(StoreFull(format!(
                "{} of {cap} bytes are in use and spilling is off",
                self.stats.bytes.load(Ordering::Relaxed)
            )));
        }
        loop {
            let mut spilled = pin!(self.spilled.notified());
            spilled.as_mut().enable();
            if self.stats.bytes.load(Ordering::Relaxed).saturating_add(len) <= cap {
                return Ok(());
            }
            self.want_room(len);
            let spilled_in_time = tokio::time::timeout_at(deadline, spilled).await.is_ok();
            if self.stats.bytes.load(Ordering::Relaxed).saturating_add(len) <= cap {
                return Ok(());
            }
            if !spilled_in_time || tokio::time::Instant::now() >= deadline {
                let why = self.lock_error().clone().unwrap_or_else(|| {
                    format!(
                        "every object in memory is in use or under {} KiB, so none can be spilled",
                        crate::objects::blob::SPILL_MIN >> 10
                    )
                });
                return Err(StoreFull(format!(
                    "no room for {len} bytes after {:?} ({} of {cap} bytes in memory): {why}",
                    self.limits.wait,
                    self.stats.bytes.load(Ordering::Relaxed)
                )));
            }
            // The round made no room (everything is in use, or the disk
            // refused): back off before asking again, while objects may be
            // freed.
            let pause = tokio::time::Instant::now() + Duration::from_millis(20);
            tokio::time::sleep_until(pause.min(deadline)).await;
        }
    }

    fn lock_error(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.spill_error.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the spiller for `len` bytes of room.
    fn want_room(&self, len: u64) {
        self.room_wanted.fetch_max(len, Ordering::Relaxed);
        self.spill_wanted.notify_one();
    }

    /// Asks the spiller to run if memory is past the cap (after spilled
    /// bytes were read back).
    pub fn trim(&self) {
        if self.stats.bytes.load(Ordering::Relaxed) > self.limits.memory {
            self.want_room(0);
        }
    }

    /// Waits until some caller wants room.
    pub async fn spill_wanted(&self) {
        self.spill_wanted.notified().await;
    }

    /// One round of spilling, for the callers waiting: down to 80% of the
    /// cap (so the next puts find room at once), or lower if one of them
    /// needs more. Blocks on file I/O.
    pub fn spill_round(&self) -> u64 {
        // Freed memory, and copies, kept for reuse go first.
        crate::objects::blob::release_freed();
        self.relieve();
        let need = self.room_wanted.swap(0, Ordering::Relaxed);
        let cap = self.limits.memory;
        self.spill_to((cap / 10 * 8).min(cap.saturating_sub(need)))
    }

    /// Spills the least recently used blobs nobody is reading until memory
    /// is at `target` bytes or below. Blocks on file I/O. Returns the bytes
    /// freed; records why when it could not reach the target.
    fn spill_to(&self, target: u64) -> u64 {
        let Some(dir) = &self.limits.spill_dir else {
            return 0;
        };
        let mut freed = 0u64;
        let result = dir.path().and_then(|dir| {
            let mut seen = rustc_hash::FxHashSet::default();
            let mut candidates: Vec<Arc<Blob>> = Vec::new();
            for e in self.entries.iter() {
                if let Some(Resolved::Ready(b)) = e.state.get()
                    && b.spillable()
                    && b.loaded_without_touch()
                    && seen.insert(Arc::as_ptr(b) as usize)
                {
                    candidates.push(b.clone());
                }
            }
            candidates.sort_by_key(|b| b.last_used());
            for b in candidates {
                if self.stats.bytes.load(Ordering::Relaxed) <= target {
                    break;
                }
                freed += b.spill(&dir)? as u64;
            }
            Ok(())
        });
        *self.lock_error() = result
            .err()
            .map(|e| format!("spilling to {} failed: {e}", dir.parent().display()));
        self.spilled.notify_waiters();
        freed
    }

    /// Calls `f` on every object: its id, references, size, where its
    /// bytes are and their encoding (for listings).
    #[cfg(feature = "node")] // read by the node only
    pub fn for_each(
        &self,
        mut f: impl FnMut(
            &ObjectId,
            u64,
            Option<usize>,
            crate::objects::blob::Place,
            Option<crate::objects::blob::Encoding>,
        ),
    ) {
        use crate::objects::blob::Place;
        for e in self.entries.iter() {
            let refs = e.refs.load(Ordering::Relaxed);
            let (size, place, encoding) = match e.state.get() {
                None => (None, Place::Pending, None),
                Some(Resolved::Failed(_)) => (None, Place::Failed, None),
                Some(Resolved::Ready(b)) => (Some(b.len()), b.place(), Some(b.encoding())),
            };
            f(e.key(), refs, size, place, encoding);
        }
    }

    /// Memory use of the store.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The shared memory counters, for blobs made outside the store.
    pub fn stats_arc(&self) -> Arc<StoreStats> {
        self.stats.clone()
    }

    /// Number of objects in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Makes a blob holding a copy of `bytes`, whose value refers to `refs`.
    pub fn blob(&self, bytes: &[u8], refs: Vec<ObjectId>) -> Arc<Blob> {
        Arc::new(Blob::copy_from(bytes, refs, &self.stats))
    }

    /// Starts a blob of `len` bytes to be written in pieces, which may turn
    /// out to equal `like` (see [`Filling`]).
    pub fn filling(&self, len: usize, like: Option<(Bytes, ObjectId)>) -> Filling {
        Filling::new(len, like, &self.stats)
    }

    /// The stored blob whose bytes have `digest`, if one is held (large
    /// blobs only) and not lost.
    #[cfg_attr(not(feature = "node"), allow(dead_code))] // the cluster's
    pub fn with_digest(&self, digest: &ObjectId) -> Option<Arc<Blob>> {
        let blob = self.blobs.get(digest)?.upgrade()?;
        (!blob.is_lost()).then_some(blob)
    }

    /// Returns the stored blob with the same bytes, if there is one, or
    /// indexes this one. Only large blobs are indexed.
    pub fn intern(&self, blob: Arc<Blob>) -> Arc<Blob> {
        if blob.len() < DEDUPE_MIN {
            return blob;
        }
        let mut slot = self.blobs.entry(blob.digest()).or_default();
        match slot.upgrade() {
            Some(existing) => {
                existing.mark(blob.encoding());
                existing
            }
            None => {
                *slot = Arc::downgrade(&blob);
                blob
            }
        }
    }

    /// Stores `blob` as a ready object named by its digest and returns the
    /// id, counting one reference for the caller.
    pub fn put(&self, blob: Arc<Blob>) -> ObjectId {
        let id = blob.digest();
        self.put_as(id, blob)
    }

    /// Stores `blob` as a cross-language value ([`Encoding::Cbor`]): named
    /// by its digest, derived once more, so that equal bytes written as
    /// rkyv or raw bytes are another object (one byte `07` is the rkyv
    /// `7u8` and the CBOR `7`), and each keeps its encoding.
    pub fn put_cbor(&self, blob: Arc<Blob>) -> ObjectId {
        blob.mark(Encoding::Cbor);
        let id = cbor_id(&blob.digest());
        self.put_as(id, blob)
    }

    /// Stores `blob` as a ready object named `id` (another node's object,
    /// sent with a call), counting one reference for the caller; the
    /// objects it refers to must be here.
    pub fn put_as(&self, id: ObjectId, blob: Arc<Blob>) -> ObjectId {
        if let Some(e) = self.entries.get(&id) {
            if let Some(Resolved::Ready(stored)) = e.state.get() {
                stored.mark(blob.encoding());
            }
            // Holding the shard's read guard, the entry cannot be removed;
            // a count at zero is revived, and the pending removal (which
            // re-checks zero under the write lock) backs off.
            e.refs.fetch_add(1, Ordering::AcqRel);
            return id;
        }
        let blob = self.intern(blob);
        let contained = blob.clone();
        let mut inserted = false;
        self.entries
            .entry(id)
            .and_modify(|e| {
                e.refs.fetch_add(1, Ordering::AcqRel);
            })
            .or_insert_with(|| {
                inserted = true;
                let e = Entry::new(1);
                let _ = e.state.set(Resolved::Ready(blob));
                Arc::new(e)
            });
        if inserted {
            for r in contained.refs() {
                self.retain(r);
            }
        }
        id
    }

    /// Creates a pending object (a task's return value) held once by the
    /// caller. The id must be new.
    pub fn create_pending(&self, id: ObjectId) {
        self.entries.insert(id, Arc::new(Entry::new(1)));
    }

    /// Creates a new object (a task's return value, with an id that must be
    /// new) already ready with `blob`, a value without references, held
    /// once by the caller: a pending object resolved at once, in one step.
    pub fn create_ready(&self, id: ObjectId, blob: Arc<Blob>) {
        debug_assert!(blob.refs().is_empty());
        let e = Entry::new(1);
        let _ = e.state.set(Resolved::Ready(self.intern(blob)));
        self.entries.insert(id, Arc::new(e));
    }

    /// Resolves a pending object and wakes its waiters. Returns false when
    /// nobody holds the object any more (the result is dropped) or it was
    /// already resolved.
    pub fn resolve(&self, id: ObjectId, state: Resolved) -> bool {
        let state = match state {
            Resolved::Ready(blob) => Resolved::Ready(self.intern(blob)),
            failed => failed,
        };
        let contained: Vec<ObjectId> = match &state {
            Resolved::Ready(b) => b.refs().to_vec(),
            Resolved::Failed(_) => Vec::new(),
        };
        // Count the value's references before it becomes visible: removal
        // releases them as soon as it sees the value.
        for r in &contained {
            self.retain(r);
        }
        // The read guard keeps removal (a write) out while the state is set,
        // so removal either happened before (no entry) or will see the value.
        let resolved = match self.entries.get(&id) {
            Some(e) => {
                let ok = e.state.set(state).is_ok();
                if ok {
                    e.notify.notify_waiters();
                }
                ok
            }
            None => false,
        };
        if !resolved {
            self.release_all(&contained);
        }
        resolved
    }

    /// The entry of `id`, if it exists.
    pub fn get(&self, id: &ObjectId) -> Option<Arc<Entry>> {
        self.entries.get(id).map(|e| e.clone())
    }

    /// Counts one more holder of `id`. False when the object is unknown.
    pub fn retain(&self, id: &ObjectId) -> bool {
        match self.entries.get(id) {
            Some(e) => {
                e.refs.fetch_add(1, Ordering::AcqRel);
                true
            }
            None => false,
        }
    }

    /// Drops one holder of `id`; frees the object when none remain.
    pub fn release(&self, id: &ObjectId) {
        self.release_all(std::slice::from_ref(id));
    }

    /// Drops one holder of each id, freeing objects (and, in turn, the
    /// objects their values referred to) as counts reach zero.
    pub fn release_all(&self, ids: &[ObjectId]) {
        // The objects freed values referred to: allocated only if any.
        let mut work: Vec<ObjectId> = Vec::new();
        for id in ids {
            self.release_one(id, &mut work);
        }
        while let Some(id) = work.pop() {
            self.release_one(&id, &mut work);
        }
    }

    /// Drops one holder of each id on the store's reaper thread, while the
    /// caller goes on: for a long run of releases, such as a guest dropping
    /// a vector of references, whose freeing (several cache misses per
    /// object) then overlaps the guest's next releases on another core.
    /// [`reaped`](Self::reaped) waits until every such batch is done.
    pub fn release_later(self: &Arc<Self>, ids: Vec<ObjectId>) {
        self.reaps_sent.fetch_add(1, Ordering::AcqRel);
        let reaper = self.reaper.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let store = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("wray-reaper".into())
                .spawn(move || reap(&store, &rx));
            spawned.ok().map(|_| tx)
        });
        let unsent = match reaper {
            Some(tx) => tx.send(ids).err().map(|e| e.0),
            None => Some(ids),
        };
        // No thread to give them to: release them here.
        if let Some(ids) = unsent {
            self.reap_one(&ids);
        }
    }

    fn reap_one(&self, ids: &[ObjectId]) {
        self.release_all(ids);
        self.reaps_done.fetch_add(1, Ordering::AcqRel);
        self.reaped.notify_waiters();
        // Taken so that a thread between its check and its wait does not
        // miss this wake-up.
        drop(self.reaped_lock.lock().unwrap_or_else(|e| e.into_inner()));
        self.reaped_cv.notify_all();
    }

    /// [`reaped`](Self::reaped) for a thread, waiting at most `limit`; true
    /// if every batch was released. The reaper is a thread of its own, not
    /// a tokio task, so this wait (as long as the batches already sent
    /// take, like a lock's) cannot deadlock a tokio worker that makes it.
    pub fn reaped_blocking(&self, limit: Duration) -> bool {
        let sent = self.reaps_sent.load(Ordering::Acquire);
        let deadline = std::time::Instant::now() + limit;
        let mut guard = self.reaped_lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.reaps_done.load(Ordering::Acquire) < sent {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self
                .reaped_cv
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Waits until every batch given to [`release_later`](Self::release_later)
    /// so far has been released (not those given meanwhile: a guest
    /// releasing without end cannot keep the caller waiting).
    pub async fn reaped(&self) {
        let sent = self.reaps_sent.load(Ordering::Acquire);
        loop {
            let mut done = pin!(self.reaped.notified());
            done.as_mut().enable();
            if self.reaps_done.load(Ordering::Acquire) >= sent {
                return;
            }
            done.await;
        }
    }

    /// Drops one holder of `id`; when it was the last, frees the object and
    /// adds the ids its value referred to to `work`.
    fn release_one(&self, id: &ObjectId, work: &mut Vec<ObjectId>) {
        let Some(e) = self.entries.get(id) else {
            return;
        };
        let before = e.refs.fetch_sub(1, Ordering::AcqRel);
        drop(e);
        if before != 1 {
            return;
        }
        let Some((_, removed)) = self
            .entries
            .remove_if(id, |_, e| e.refs.load(Ordering::Acquire) == 0)
        else {
            return;
        };
        if let Some(Resolved::Ready(blob)) = removed.state.get() {
            work.extend_from_slice(blob.refs());
            let indexed = (blob.len() >= DEDUPE_MIN).then(|| blob.digest());
            drop(removed);
            if let Some(digest) = indexed {
                self.blobs.remove_if(&digest, |_, w| w.strong_count() == 0);
            }
        }
    }
}

/// The id of a cross-language value whose bytes' digest is `digest`
/// (`docs/abi.md`, "Values across languages").
pub(crate) fn cbor_id(digest: &ObjectId) -> ObjectId {
    let mut h = blake3::Hasher::new_derive_key("wray cbor value v1");
    h.update(&digest.0);
    ObjectId(*h.finalize().as_bytes())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(bytes: &[u8]) -> (ObjectStore, ObjectId) {
        let s = ObjectStore::new(StoreLimits::unlimited());
        let b = s.blob(bytes, vec![]);
        let id = s.put(b);
        (s, id)
    }

    #[test]
    fn put_is_content_addressed_and_counted() {
        let (s, id) = store_with(b"hello");
        assert_eq!(id.0, *blake3::hash(b"hello").as_bytes());
        let again = s.put(s.blob(b"hello", vec![]));
        assert_eq!(again, id);
        assert_eq!(s.get(&id).unwrap().refs.load(Ordering::Relaxed), 2);
        s.release(&id);
        assert!(s.get(&id).is_some());
        s.release(&id);
        assert!(s.get(&id).is_none());
        assert_eq!(s.stats().bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn large_results_are_stored_once() {
        let s = ObjectStore::new(StoreLimits::unlimited());
        let big = vec![9u8; DEDUPE_MIN * 4];
        let (a, b) = (ObjectId([1; 32]), ObjectId([2; 32]));
        s.create_pending(a);
        s.create_pending(b);
        assert!(s.resolve(a, Resolved::Ready(s.blob(&big, vec![]))));
        assert!(s.resolve(b, Resolved::Ready(s.blob(&big, vec![]))));
        assert_eq!(s.stats().bytes.load(Ordering::Relaxed), big.len() as u64);
        let put = s.put(s.blob(&big, vec![]));
        assert_eq!(s.stats().bytes.load(Ordering::Relaxed), big.len() as u64);
        for id in [a, b, put] {
            s.release(&id);
        }
        assert_eq!(s.stats().bytes.load(Ordering::Relaxed), 0);
        assert!(s.blobs.is_empty(), "the dedupe index forgets freed blobs");
    }

    #[test]
    fn contained_references_live_as_long_as_the_container() {
        let s = ObjectStore::new(StoreLimits::unlimited());
        let inner = s.put(s.blob(b"inner", vec![]));
        let outer = s.put(s.blob(b"outer", vec![inner]));
        s.release(&inner); // the container still holds it
        assert!(s.get(&inner).is_some());
        s.release(&outer);
        assert!(s.get(&inner).is_none(), "freed with its container");
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn long_chains_are_freed_without_recursion() {
        let s = ObjectStore::new(StoreLimits::unlimited());
        let mut prev = s.put(s.blob(b"0", vec![]));
        for i in 1..100_000u32 {
            let next = s.put(s.blob(&i.to_le_bytes(), vec![prev]));
            s.release(&prev);
            prev = next;
        }
        s.release(&prev);
        assert_eq!(s.len(), 0);
    }

    #[tokio::test]
    async fn memory_kept_for_reuse_goes_before_a_caller_is_refused_room() {
        let s = ObjectStore::new(StoreLimits {
            memory: 1000,
            spill_dir: None,
            wait: Duration::ZERO,
        });
        // A copy kept for reuse fills most of the memory.
        let kept = Arc::new(Mutex::new(Some(s.blob(&[1; 800], vec![]))));
        let relieved = kept.clone();
        s.on_pressure(move || {
            relieved.lock().unwrap().take();
        });
        assert!(s.admit(100).await.is_ok(), "room without relief");
        assert!(kept.lock().unwrap().is_some(), "kept while there is room");
        assert!(s.admit(500).await.is_ok(), "room once the copy went");
        assert!(kept.lock().unwrap().is_none());
        assert_eq!(s.stats().bytes.load(Ordering::Relaxed), 0);
        assert!(s.admit(2000).await.is_err(), "larger than the store");
    }

    #[tokio::test]
    async fn waiters_wake_on_resolution() {
        let s = Arc::new(ObjectStore::new(StoreLimits::unlimited()));
        let id = ObjectId([1; 32]);
        s.create_pending(id);
        let entry = s.get(&id).unwrap();
        let waiter = tokio::spawn(async move { entry.resolved().await });
        tokio::task::yield_now().await;
        let blob = s.blob(b"v", vec![]);
        assert!(s.resolve(id, Resolved::Ready(blob)));
        match waiter.await.unwrap() {
            Resolved::Ready(b) => assert_eq!(&*b.loaded().unwrap(), b"v"),
            Resolved::Failed(_) => panic!("expected a value"),
        }
        assert!(!s.resolve(
            id,
            Resolved::Failed(Arc::new(ErrorRecord::new(
                wray_abi::ErrorKind::Trap,
                "f",
                "late"
            )))
        ));
    }

    #[tokio::test]
    async fn batches_released_later_are_freed_in_the_background() {
        let s = Arc::new(ObjectStore::new(StoreLimits::unlimited()));
        let ids: Vec<ObjectId> = (0..1000u32)
            .map(|i| s.put(s.blob(&i.to_le_bytes(), vec![])))
            .collect();
        let kept = ids[0];
        assert!(s.retain(&kept));
        for batch in ids.chunks(100) {
            s.release_later(batch.to_vec());
        }
        s.reaped().await;
        assert_eq!(s.reaps_done.load(Ordering::Relaxed), 10);
        assert_eq!(s.len(), 1, "only the object with a second holder is left");
        s.release(&kept);
        assert_eq!(s.len(), 0);
        assert_eq!(s.stats().bytes.load(Ordering::Relaxed), 0);
        // The reaper does not keep its store alive (it may still hold it
        // for a moment after its last batch).
        let weak = Arc::downgrade(&s);
        drop(s);
        let gone = (0..1000).any(|_| {
            std::thread::sleep(Duration::from_millis(1));
            weak.strong_count() == 0
        });
        assert!(gone, "the store outlives its last holder");
    }

    #[test]
    fn results_nobody_holds_are_dropped() {
        let s = ObjectStore::new(StoreLimits::unlimited());
        let id = ObjectId([2; 32]);
        s.create_pending(id);
        s.release(&id);
        assert!(!s.resolve(id, Resolved::Ready(s.blob(b"x", vec![]))));
        assert_eq!(s.stats().blobs.load(Ordering::Relaxed), 0);
    }
}
