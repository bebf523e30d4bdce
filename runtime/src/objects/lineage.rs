//! Lineage: how an object whose bytes are lost is made again.
//!
//! A task's result that can spill keeps the task that made it ([`Remake`],
//! implemented by the task layer; the store does not know what a task is).
//! [`read`] gets an object's bytes: from memory, from its spill file, or by
//! running that task again when the bytes are lost, if it is deterministic.

use crate::objects::blob::{Blob, Bytes};
use crate::objects::store::{Entry, ObjectStore};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ErrorKind, ObjectId};

/// Something that made objects and can make them again: a finished task.
pub(crate) trait Remake: Send + Sync {
    /// The function that made the objects (for error messages).
    fn function(&self) -> &str;

    /// Runs again to restore every lost result; fails if it cannot, or if
    /// it gives other bytes.
    fn remake(&self) -> BoxFuture<'_, Result<(), ErrorRecord>>;
}

/// The bytes of object `id` (whose entry holds `blob`): from memory, from
/// its spill file, or, if they are lost, made again by the task that made
/// them (its lineage), when that task is deterministic.
pub(crate) async fn read(
    objects: &ObjectStore,
    id: &ObjectId,
    entry: &Entry,
    blob: &Arc<Blob>,
) -> Result<Bytes, ErrorRecord> {
    let lost = match blob.load().await {
        Ok(bytes) => {
            objects.trim();
            return Ok(bytes);
        }
        Err(lost) => lost,
    };
    let object_lost = |why: String| {
        let mut rec = ErrorRecord::new(
            ErrorKind::ObjectLost,
            "",
            format!("object {} is lost ({}): {why}", id.short(), lost.why),
        );
        if let Some((task, _)) = id.task_return() {
            rec.task = task;
        }
        rec
    };
    let Some(task) = entry.lineage() else {
        return Err(object_lost(
            "it was not made by a task (objects from `put` cannot be made again)".into(),
        ));
    };
    task.remake().await.map_err(|cause| {
        let rec = object_lost(format!("making it again with `{}` failed", task.function()));
        rec.caused_by(Arc::new(cause))
    })?;
    // Restored in memory; it may have spilled again since.
    blob.load()
        .await
        .map_err(|again| object_lost(format!("it was lost again after being made: {}", again.why)))
}
