//! The task table: tasks (and actor calls) that have not finished, by id,
//! with what cancels each and the tasks it submitted, for a recursive
//! cancel; and [`Tasks`], what the task layer works with.

use crate::exec::env::Env;
use crate::exec::state::CancelToken;
use crate::objects::memo::MemoTable;
use dashmap::DashMap;
use rustc_hash::FxBuildHasher;
use std::sync::{Arc, Mutex, Weak};
use wray_abi::{ObjectId, TaskId};

/// The task layer: the environment below it, the unfinished tasks, and
/// the memo table of pure calls' results (`None`: memoization is off).
pub(crate) struct Tasks {
    pub env: Arc<Env>,
    pub table: TaskTable,
    pub memo: Option<MemoTable>,
}

/// A task waiting as data for its first slots (see `run::submit_task`).
pub(crate) trait Queued: Send + Sync {
    /// Starts the task, cancelled while it waited: it fails at once.
    fn start_cancelled(self: Arc<Self>, tasks: &Arc<Tasks>);
}

/// What the runtime knows of a task (or actor call) that has not finished.
pub(crate) struct TaskHandle {
    pub cancel: Arc<CancelToken>,
    pub children: Children,
    /// Whether this is an actor call (its instance is the actor's).
    pub actor_call: bool,
    /// The job it belongs to.
    pub job: u64,
    /// The task while it waits as data for its first slots, taken by
    /// whoever spawns its `run`: its start when the slots are granted, or
    /// a cancel, so that it fails at once instead of when its turn comes.
    queued: Mutex<Option<Weak<dyn Queued>>>,
}

impl TaskHandle {
    pub fn new(actor_call: bool, job: u64) -> TaskHandle {
        TaskHandle {
            cancel: Arc::new(CancelToken::default()),
            children: Children::default(),
            actor_call,
            job,
            queued: Mutex::new(None),
        }
    }

    /// Marks the task as waiting as data for its first slots.
    pub fn queue(&self, task: Weak<dyn Queued>) {
        *self.queued.lock().expect("not poisoned") = Some(task);
    }

    /// Takes the right to spawn the task queued as data: `Some` once.
    pub fn claim(&self) -> Option<Weak<dyn Queued>> {
        self.queued.lock().expect("not poisoned").take()
    }

    /// Cancels the call; a task waiting as data for its slots is spawned
    /// now, and fails at once.
    pub fn cancel_task(&self, rt: &Arc<Tasks>) {
        self.cancel.cancel();
        if let Some(task) = self.claim().as_ref().and_then(Weak::upgrade) {
            task.start_cancelled(rt);
        }
    }
}

/// The tasks a task submitted, for a recursive cancel.
///
/// A finished child's handle is dropped, and its entry is pruned when the
/// list would grow: a driver that submits tasks for hours keeps only the
/// ones still alive, and each submission still costs O(1) amortized (the
/// list doubles when pruning frees less than half of it).
#[derive(Default)]
pub(crate) struct Children(Mutex<Vec<(TaskId, Weak<TaskHandle>)>>);

impl Children {
    pub fn push(&self, id: TaskId, child: &Arc<TaskHandle>) {
        let mut v = self.0.lock().expect("not poisoned");
        if v.len() == v.capacity() {
            v.retain(|(_, c)| c.strong_count() > 0);
            if v.len() >= v.capacity() / 2 {
                let more = v.capacity().max(4);
                v.reserve_exact(more);
            }
        }
        v.push((id, Arc::downgrade(child)));
    }

    /// The children whose handles are still alive. A finished task's
    /// handle can outlive it (its results may keep it, to make them
    /// again), so the caller looks each up in the task table.
    pub fn ids(&self) -> Vec<TaskId> {
        let v = self.0.lock().expect("not poisoned");
        v.iter()
            .filter(|(_, c)| c.strong_count() > 0)
            .map(|(id, _)| *id)
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
}

/// Tasks that have not finished, by id.
pub(crate) type TaskTable = DashMap<TaskId, Arc<TaskHandle>, FxBuildHasher>;

/// Cancels the task that makes object `id` (and, if `recursive`, the tasks
/// it submitted). False when no unfinished task makes it.
pub(crate) fn cancel(rt: &Arc<Tasks>, id: &ObjectId, recursive: bool) -> bool {
    let Some((task, _)) = id.task_return() else {
        return false;
    };
    let mut work = vec![task];
    let mut found = false;
    while let Some(t) = work.pop() {
        let Some(h) = rt.table.get(&t).map(|h| h.clone()) else {
            continue;
        };
        found = true;
        h.cancel_task(rt);
        if recursive {
            work.extend(h.children.ids());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> impl Iterator<Item = TaskId> {
        (1..=n).map(|seq| TaskId::new(1, seq))
    }

    #[test]
    fn finished_children_are_pruned() {
        let children = Children::default();
        let mut alive = Vec::new();
        for (i, id) in ids(10_000).enumerate() {
            let h = Arc::new(TaskHandle::new(false, 1));
            children.push(id, &h);
            // One child in a thousand is still running; the others end
            // (their handles drop) at once.
            if i % 1000 == 0 {
                alive.push((id, h));
            }
        }
        assert!(children.len() <= 64, "{} entries kept", children.len());
        let want: Vec<TaskId> = alive.iter().map(|(id, _)| *id).collect();
        assert_eq!(children.ids(), want);
    }

    #[test]
    fn running_children_are_all_kept() {
        let children = Children::default();
        let handles: Vec<_> = ids(5_000)
            .map(|id| {
                let h = Arc::new(TaskHandle::new(false, 1));
                children.push(id, &h);
                h
            })
            .collect();
        assert_eq!(children.ids(), ids(5_000).collect::<Vec<_>>());
        drop(handles);
        assert!(children.ids().is_empty());
    }
}
