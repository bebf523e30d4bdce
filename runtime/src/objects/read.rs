//! Reading an object's bytes: from memory, from its spill file, or, when
//! they are lost, by running again the task that made them (its lineage),
//! if that task is deterministic.

use crate::objects::blob::{Blob, Bytes};
use crate::objects::store::{Entry, ObjectStore};
use std::sync::Arc;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ErrorKind, ObjectId};

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
