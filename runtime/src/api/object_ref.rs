//! [`ObjectRef`]: host code's counted reference to an object.

use crate::objects::store::ObjectStore;
use std::fmt;
use std::sync::Arc;
use wray_abi::ObjectId;

/// A reference to an object, held by host code. Cloning counts one more
/// holder; dropping releases it.
pub struct ObjectRef {
    id: ObjectId,
    store: Arc<ObjectStore>,
}

impl ObjectRef {
    /// Takes over a reference to `id` already counted for the caller.
    pub(crate) fn adopt(store: &Arc<ObjectStore>, id: ObjectId) -> ObjectRef {
        ObjectRef {
            id,
            store: store.clone(),
        }
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }
}

impl Clone for ObjectRef {
    fn clone(&self) -> Self {
        self.store.retain(&self.id);
        ObjectRef::adopt(&self.store, self.id)
    }
}

impl Drop for ObjectRef {
    fn drop(&mut self) {
        self.store.release(&self.id);
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectRef({})", self.id.short())
    }
}
