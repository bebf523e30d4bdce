//! Memoized pure calls (`docs/memo.md`): the key of a call, the answer of
//! a call found in the memo table, and the storing of a result.
//!
//! A call is memoized when its `memo` option is set, or unset and its
//! function is declared pure in the module's manifest, and the runtime's
//! memo table is on. Its key is the blake3 of the module's digest, the
//! function's name, the number of returns and, per argument, the digest of
//! its value's bytes and the ids the value refers to. (An object's value is
//! named by its digest, not its id: a task's return id names the task, not
//! the bytes, so two runs never share one.)
//!
//! A call whose arguments all have values when it is submitted is looked
//! up then: a hit resolves its return objects with the stored blobs at
//! once, with one record and no task (no instance, no slot). Otherwise it
//! is looked up once its arguments are ready, before it takes a slot.
//!
//! A result is stored only if the attempt that made it succeeded, read no
//! clock and no random numbers (what lineage records too), holds no object
//! references (they would outlive the objects they name) and fits the
//! table; the call's record says which ([`MemoNote`]).

use crate::events::MemoNote;
use crate::exec::invoke::Finished;
use crate::objects::arg::{ReadyArg, TaskArg};
use crate::objects::blob::Blob;
use crate::objects::memo::{MemoKey, MemoValues};
use crate::objects::store::{ObjectStore, Resolved};
use crate::task::table::Tasks;
use std::sync::Arc;
use wray_abi::{ObjectId, TaskId};

/// Hashes a call's identity (see the module docs).
struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    fn new(module: &ObjectId, function: &str, num_returns: u32) -> KeyHasher {
        // blake3's derive-key mode with the context `wray memo key v1`,
        // its key derived once rather than per call.
        static KEY: std::sync::LazyLock<[u8; 32]> =
            std::sync::LazyLock::new(|| blake3::derive_key("wray memo key v1", b""));
        let mut h = blake3::Hasher::new_keyed(&KEY);
        h.update(&module.0);
        h.update(&(function.len() as u64).to_le_bytes());
        h.update(function.as_bytes());
        h.update(&num_returns.to_le_bytes());
        KeyHasher(h)
    }

    fn arg(&mut self, value: &Blob) {
        self.0.update(&value.digest().0);
        self.0.update(&(value.refs().len() as u64).to_le_bytes());
        for r in value.refs() {
            self.0.update(&r.0);
        }
    }

    fn finish(&self) -> MemoKey {
        *self.0.finalize().as_bytes()
    }
}

/// The key of a call whose arguments all have values now; `None` if one
/// is still pending (or failed: the call fails as usual).
pub(crate) fn key_now(
    objects: &ObjectStore,
    module: &ObjectId,
    function: &str,
    num_returns: u32,
    args: &[TaskArg],
) -> Option<MemoKey> {
    let mut h = KeyHasher::new(module, function, num_returns);
    for a in args {
        match a {
            TaskArg::Value(blob) => h.arg(blob),
            TaskArg::Ref(id) => match objects.get(id)?.state()? {
                Resolved::Ready(blob) => h.arg(blob),
                Resolved::Failed(_) => return None,
            },
        }
    }
    Some(h.finish())
}

/// The key of a call whose arguments have values.
pub(crate) fn key_of(
    module: &ObjectId,
    function: &str,
    num_returns: u32,
    args: &[ReadyArg],
) -> MemoKey {
    let mut h = KeyHasher::new(module, function, num_returns);
    for a in args {
        h.arg(&a.blob);
    }
    h.finish()
}

/// Answers a call being submitted from the memo table, if its result is
/// there: its return objects are made ready with the stored values and
/// recorded as one memoized call. `None`: a miss, or the arguments are not
/// all ready (the key, if known, is given back to be kept).
pub(crate) fn answer_at_submission(
    rt: &Tasks,
    key: &MemoKey,
    num_returns: u32,
    function: &Arc<str>,
    job: u64,
    parent: Option<TaskId>,
) -> Option<Vec<ObjectId>> {
    let values = rt.memo.as_ref()?.lookup(key)?;
    if values.len() != num_returns as usize {
        return None;
    }
    let id = rt.env.ids.next_task();
    rt.env.events.memoized(id, function.clone(), job, parent);
    Some(
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let r = ObjectId::for_return(id, i as u32);
                rt.env.objects.create_ready(r, v.clone());
                r
            })
            .collect(),
    )
}

/// The stored values of `key` as a successful outcome, if there are as
/// many as the call returns.
pub(crate) fn lookup(rt: &Tasks, key: &MemoKey, num_returns: u32) -> Option<MemoValues> {
    rt.memo
        .as_ref()?
        .lookup(key)
        .filter(|v| v.len() == num_returns as usize)
}

/// Stores a memoized call's successful result if it may be; says what
/// became of it.
pub(crate) fn store(rt: &Tasks, key: &MemoKey, finished: &Finished) -> MemoNote {
    let Some(table) = &rt.memo else {
        return MemoNote::TooLarge;
    };
    if !finished.deterministic {
        return MemoNote::ReadClockOrRandom;
    }
    if finished.values.iter().any(|b| !b.refs().is_empty()) {
        return MemoNote::HoldsRefs;
    }
    let len = finished.values.iter().map(|b| b.len() as u64).sum();
    if !table.fits(len) {
        return MemoNote::TooLarge;
    }
    table.insert(*key, finished.values.clone());
    MemoNote::Stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::blob::StoreStats;

    fn blob(bytes: &[u8], refs: Vec<ObjectId>) -> Blob {
        Blob::copy_from(bytes, refs, &Arc::new(StoreStats::default()))
    }

    fn key(module: u8, function: &str, returns: u32, args: &[Blob]) -> MemoKey {
        let mut h = KeyHasher::new(&ObjectId([module; 32]), function, returns);
        for a in args {
            h.arg(a);
        }
        h.finish()
    }

    #[test]
    fn a_key_names_module_function_returns_and_each_arguments_bytes_and_refs() {
        let a = blob(b"a", vec![]);
        let b = blob(b"b", vec![]);
        let base = key(1, "f", 1, &[blob(b"a", vec![]), blob(b"b", vec![])]);
        assert_eq!(base, key(1, "f", 1, &[a, b]), "same bytes, same key");
        let variants = [
            key(2, "f", 1, &[blob(b"a", vec![]), blob(b"b", vec![])]),
            key(1, "g", 1, &[blob(b"a", vec![]), blob(b"b", vec![])]),
            key(1, "f", 2, &[blob(b"a", vec![]), blob(b"b", vec![])]),
            key(1, "f", 1, &[blob(b"b", vec![]), blob(b"a", vec![])]),
            key(1, "f", 1, &[blob(b"ab", vec![])]),
            key(
                1,
                "f",
                1,
                &[blob(b"a", vec![ObjectId([3; 32])]), blob(b"b", vec![])],
            ),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(*v, base, "variant {i}");
        }
        // The name's length is hashed: `f` + `1...` is not `f1` + `...`.
        assert_ne!(key(1, "f", 1, &[]), key(1, "f\u{1}", 0, &[]));
    }
}
