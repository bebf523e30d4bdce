//! Ids of tasks, actors and jobs: unique within a node's life.

use std::sync::atomic::{AtomicU64, Ordering};
use wray_abi::{ActorId, TaskId};

/// Hands out task, actor and job ids: this node's id and a sequence number.
pub(crate) struct IdGen {
    node: u32,
    next: AtomicU64,
    next_job: AtomicU64,
}

impl IdGen {
    /// Ids of node `node`, from 1.
    pub fn new(node: u32) -> IdGen {
        IdGen {
            node,
            next: AtomicU64::new(1),
            next_job: AtomicU64::new(1),
        }
    }

    pub fn next_task(&self) -> TaskId {
        TaskId::new(self.node, self.next.fetch_add(1, Ordering::Relaxed))
    }

    pub fn next_actor(&self) -> ActorId {
        ActorId::new(self.node, self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Job 0 is the host's own work; drivers get 1, 2, ...
    pub fn next_job(&self) -> u64 {
        self.next_job.fetch_add(1, Ordering::Relaxed)
    }
}
