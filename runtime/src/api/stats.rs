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
}

/// Reads a runtime's counters, from any thread (see
/// [`Runtime::stats_source`](crate::Runtime::stats_source)).
#[derive(Clone)]
pub struct StatsSource(pub(super) Arc<Actors>);

impl StatsSource {
    /// As [`Runtime::task_counts`](crate::Runtime::task_counts).
    pub fn task_counts(&self) -> [u64; 5] {
        self.0.env.events.counts()
    }

    /// Actors not yet gone.
    pub fn actors(&self) -> usize {
        self.0.registry.len()
    }
}
