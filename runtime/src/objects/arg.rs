//! A call's arguments: as submitted ([`TaskArg`]), once each has a value
//! ([`ReadyArg`]: waited for, not yet read) and as handed to the instance
//! ([`ArgValue`]: bytes pinned in memory).

use crate::objects::blob::{Blob, Bytes};
use crate::objects::read::read;
use crate::objects::store::{Entry, ObjectStore, Resolved};
use std::sync::Arc;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ErrorKind, ObjectId};

/// The most bytes a value holding references may have to leave its node:
/// it travels inside its call's message (with the objects it refers to,
/// which may be any size).
pub(crate) const REFS_TRAVEL_MAX: usize = 1 << 20;

/// Whether value `blob` can leave this node (see [`REFS_TRAVEL_MAX`]).
pub(crate) fn travels(blob: &Blob) -> Result<(), ErrorRecord> {
    if blob.refs().is_empty() || blob.len() <= REFS_TRAVEL_MAX {
        return Ok(());
    }
    Err(ErrorRecord::new(
        ErrorKind::InvalidArgument,
        "",
        format!(
            "a value holding references to objects leaves its node inside its call, up to \
             {REFS_TRAVEL_MAX} bytes; this one is {} bytes",
            blob.len()
        ),
    ))
}

/// An object a value refers to, read to travel with it to another node:
/// its id, its value and its bytes.
pub(crate) type Contained = (ObjectId, Arc<Blob>, Bytes);

/// The objects `roots` refer to, and those these refer to, in the order
/// they travel to another node (each after the objects it refers to),
/// once they are ready, their bytes read; or why one cannot travel (lost,
/// failed, or a value holding references too large, see [`travels`]).
pub(crate) async fn contained(
    objects: &ObjectStore,
    roots: impl IntoIterator<Item = &Arc<Blob>>,
) -> Result<Vec<Contained>, ErrorRecord> {
    /// Depth first: an object is read when visited, and goes out once
    /// the objects it refers to (visited after it) are out.
    enum Step {
        Visit(ObjectId),
        Out(Contained),
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<Step> = Vec::new();
    for root in roots {
        travels(root)?;
        stack.extend(root.refs().iter().rev().map(|id| Step::Visit(*id)));
    }
    while let Some(step) = stack.pop() {
        let id = match step {
            Step::Out(c) => {
                out.push(c);
                continue;
            }
            Step::Visit(id) => id,
        };
        if !seen.insert(id) {
            continue;
        }
        let entry = objects.get(&id).ok_or_else(|| {
            let why = format!("object {id}, which a value refers to, is gone");
            ErrorRecord::new(ErrorKind::ObjectLost, "", why)
        })?;
        let blob = match entry.resolved().await {
            Resolved::Ready(blob) => blob,
            Resolved::Failed(rec) => return Err((*rec).clone()),
        };
        travels(&blob)?;
        let bytes = read(objects, &id, &entry, &blob).await?;
        let inner: Vec<ObjectId> = blob.refs().to_vec();
        stack.push(Step::Out((id, blob, bytes)));
        stack.extend(inner.into_iter().rev().map(Step::Visit));
    }
    Ok(out)
}

/// [`contained`] for the arguments of call `label`, whose errors name it.
pub(crate) async fn contained_in_args(
    objects: &ObjectStore,
    args: &[ArgValue],
    label: &str,
) -> Result<Vec<Contained>, ErrorRecord> {
    contained(objects, args.iter().map(|a| &a.blob))
        .await
        .map_err(|rec| ErrorRecord {
            function: label.to_string(),
            ..rec
        })
}

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
