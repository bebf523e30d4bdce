//! References to objects held on someone's behalf: a pending call's
//! arguments, a finished call's results until they are stored.

use crate::objects::store::ObjectStore;
use std::sync::{Arc, Weak};
use wray_abi::ObjectId;

/// Object references held on behalf of someone (a pending task), released
/// when dropped.
pub(crate) struct HeldRefs {
    /// Weak: a task's arguments hold objects, and a task is kept by its
    /// results' entries (lineage), which the store owns.
    store: Weak<ObjectStore>,
    ids: Vec<ObjectId>,
}

impl HeldRefs {
    pub fn new(store: &Arc<ObjectStore>) -> HeldRefs {
        HeldRefs {
            store: Arc::downgrade(store),
            ids: Vec::new(),
        }
    }

    /// Takes a new reference to `id`; false if the object does not exist.
    pub fn retain(&mut self, id: ObjectId) -> bool {
        let ok = self.store.upgrade().is_some_and(|s| s.retain(&id));
        if ok {
            self.ids.push(id);
        }
        ok
    }

    /// Takes over a reference already counted for us.
    pub fn adopt(&mut self, id: ObjectId) {
        self.ids.push(id);
    }
}

impl Drop for HeldRefs {
    fn drop(&mut self) {
        // Most calls hold nothing: spare them the upgrade, an atomic on a
        // count every worker shares.
        if self.ids.is_empty() {
            return;
        }
        if let Some(store) = self.store.upgrade() {
            store.release_all(&self.ids);
        }
    }
}
