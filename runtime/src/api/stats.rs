//! What a runtime reports of itself: [`Stats`] (counters), [`StatsSource`]
//! (reads them from another thread), [`ActorInfo`] and [`ActorState`].

use crate::actor::registry::Actors;
use std::sync::Arc;

/// An actor's state, from [`Runtime::actor_info`](crate::Runtime::actor_info).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorState {
    /// Running its constructor.
    Starting,
    /// Serving calls.
    Alive,
    /// Gone (it leaves the table right after).
    Dead,
}

/// What [`Runtime::actor_info`](crate::Runtime::actor_info) reports.
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

/// Counters describing a runtime, from [`Runtime::stats`](crate::Runtime::stats).
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
    /// What the memo table did.
    pub memo: MemoCounts,
}

/// What the memo table of pure calls did (`docs/memo.md`): cumulative
/// counts, and its size now. All zero when memoization is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoCounts {
    /// Memoized calls answered from the table without running.
    pub hits: u64,
    /// Memoized calls that found nothing there, and ran.
    pub misses: u64,
    /// Results stored.
    pub stored: u64,
    /// Entries evicted to stay within `--memo-size`.
    pub evicted: u64,
    /// Entry files that failed their digest check (removed, recomputed).
    pub corrupt: u64,
    /// Bytes of results held in memory now.
    pub bytes: u64,
    /// Bytes of entry files in the memo directory now.
    pub disk_bytes: u64,
}

impl MemoCounts {
    pub(crate) fn of(tasks: &crate::task::table::Tasks) -> MemoCounts {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(m) = &tasks.memo else {
            return MemoCounts::default();
        };
        let s = &m.stats;
        MemoCounts {
            hits: s.hits.load(Relaxed),
            misses: s.misses.load(Relaxed),
            stored: s.stored.load(Relaxed),
            evicted: s.evicted.load(Relaxed),
            corrupt: s.corrupt.load(Relaxed),
            bytes: s.bytes.load(Relaxed),
            disk_bytes: s.disk_bytes.load(Relaxed),
        }
    }
}

/// Reads a runtime's counters, from any thread (see
/// [`Runtime::stats_source`](crate::Runtime::stats_source)).
#[derive(Clone)]
pub struct StatsSource(pub(super) Arc<Actors>);

impl StatsSource {
    /// As [`Runtime::task_counts`](crate::Runtime::task_counts).
    pub fn task_counts(&self) -> [u64; crate::events::STATES] {
        self.0.env.events.counts()
    }

    /// Actors not yet gone.
    pub fn actors(&self) -> usize {
        self.0.registry.len()
    }

    /// What the memo table did so far.
    pub fn memo(&self) -> MemoCounts {
        MemoCounts::of(&self.0.tasks)
    }
}
