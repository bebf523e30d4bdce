//! A call's arguments: as submitted ([`TaskArg`]), once each has a value
//! ([`ReadyArg`]: waited for, not yet read) and as handed to the instance
//! ([`ArgValue`]: bytes pinned in memory).

use crate::objects::blob::{Blob, Bytes};
use crate::objects::read::read;
use crate::objects::store::{Entry, ObjectStore, Resolved};
use std::sync::Arc;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ErrorKind, ObjectId};

/// An argument as the task will receive it.
pub(crate) enum TaskArg {
    /// A value passed inline.
    Value(Arc<Blob>),
    /// An object whose value is resolved before the task runs.
    Ref(ObjectId),
}

/// An argument ready for a call: its blob, and its bytes pinned in memory.
#[derive(Clone)]
pub(crate) struct ArgValue {
    pub blob: Arc<Blob>,
    pub bytes: Bytes,
}

/// An argument whose value exists (its bytes may be on disk, or lost).
pub(crate) struct ReadyArg {
    pub blob: Arc<Blob>,
    /// The object it came from; `None` for an inline value (never spilled).
    object: Option<(ObjectId, Arc<Entry>)>,
}

impl ReadyArg {
    /// The bytes if they are in memory, pinned there (no I/O).
    pub fn pinned(&self) -> Option<ArgValue> {
        Some(ArgValue {
            bytes: self.blob.loaded()?,
            blob: self.blob.clone(),
        })
    }

    /// The bytes, read back or made again if need be; pinned in memory.
    pub async fn load(
        &self,
        objects: &Arc<ObjectStore>,
        i: usize,
        function: &str,
    ) -> Result<ArgValue, ErrorRecord> {
        let Some((id, entry)) = &self.object else {
            return Ok(self.pinned().expect("inline values are never spilled"));
        };
        let bytes = read(objects, id, entry, &self.blob)
            .await
            .map_err(|cause| {
                let rec = ErrorRecord::new(
                    ErrorKind::DependencyFailed,
                    function,
                    format!("argument {i} could not be read, so the call did not run"),
                );
                rec.caused_by(Arc::new(cause))
            })?;
        Ok(ArgValue {
            blob: self.blob.clone(),
            bytes,
        })
    }
}

/// Waits for every argument of `function` and reads it into memory.
pub(crate) async fn resolve_args(
    objects: &Arc<ObjectStore>,
    args: &[TaskArg],
    function: &str,
) -> Result<Vec<ArgValue>, ErrorRecord> {
    let ready = ready_args(objects, args, function).await?;
    let mut out = Vec::with_capacity(ready.len());
    for (i, a) in ready.iter().enumerate() {
        out.push(a.load(objects, i, function).await?);
    }
    Ok(out)
}

/// Every argument, if each already has a value (the common case: no wait).
pub(crate) fn ready_now(objects: &ObjectStore, args: &[TaskArg]) -> Option<Vec<ReadyArg>> {
    args.iter()
        .map(|arg| match arg {
            TaskArg::Value(blob) => Some(ReadyArg {
                blob: blob.clone(),
                object: None,
            }),
            TaskArg::Ref(id) => {
                let entry = objects.get(id)?;
                let Some(Resolved::Ready(blob)) = entry.state() else {
                    return None;
                };
                Some(ReadyArg {
                    blob: blob.clone(),
                    object: Some((*id, entry.clone())),
                })
            }
        })
        .collect()
}

/// Waits until every argument of `function` has a value (without reading
/// it: a queued task pins nothing in memory).
pub(crate) async fn ready_args(
    objects: &Arc<ObjectStore>,
    args: &[TaskArg],
    function: &str,
) -> Result<Vec<ReadyArg>, ErrorRecord> {
    let mut out = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        out.push(match arg {
            TaskArg::Value(blob) => ReadyArg {
                blob: blob.clone(),
                object: None,
            },
            TaskArg::Ref(id) => ready_arg(objects, id, i, function).await?,
        });
    }
    Ok(out)
}

/// Waits for argument `i` (the object `id`) of `function`: its value, or the
/// error the caller fails with (its cause chained).
async fn ready_arg(
    objects: &Arc<ObjectStore>,
    id: &ObjectId,
    i: usize,
    function: &str,
) -> Result<ReadyArg, ErrorRecord> {
    let Some(entry) = objects.get(id) else {
        let msg = format!("argument {i} (object {}) no longer exists", id.short());
        return Err(ErrorRecord::new(ErrorKind::ObjectLost, function, msg));
    };
    match entry.resolved().await {
        Resolved::Ready(blob) => Ok(ReadyArg {
            blob,
            object: Some((*id, entry)),
        }),
        Resolved::Failed(cause) => {
            let mut rec = ErrorRecord::new(
                ErrorKind::DependencyFailed,
                function,
                format!("argument {i} failed, so the call did not run"),
            );
            rec = rec.caused_by(cause);
            Err(rec)
        }
    }
}
