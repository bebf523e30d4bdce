//! Objects: `put`, `get`, `wait` and the typed [`ObjectRef`].
//!
//! An `ObjectRef<T>` names an immutable object that holds a `T`, or will once
//! the task making it finishes. Every `ObjectRef` alive in a guest is counted
//! by the host (a clone retains, a drop releases), and an object nobody
//! refers to is freed. References can be stored inside values and passed to
//! tasks; the encoder tells the host which objects a value refers to.

use crate::codec::{self, Decode, Encode};
use crate::cross::{Cbor, FromValue};
use crate::error::{Error, ErrorKind, Result};
use crate::sys;
use rkyv::rancor::Fallible;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Place, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::time::Duration;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ObjectId, Status, TIMEOUT_FOREVER};

/// A reference to an immutable object holding a `T`.
///
/// Returned by [`put`](crate::put) and by every `remote` call. Pass it to
/// other tasks (they receive the value, or the reference itself when their
/// parameter is an `ObjectRef`), or [`get`](crate::get) the value.
pub struct ObjectRef<T> {
    id: ObjectId,
    _value: PhantomData<fn() -> T>,
}

impl<T> ObjectRef<T> {
    /// Wraps an id the host has already counted as held by this instance.
    pub(crate) fn from_held(id: ObjectId) -> Self {
        ObjectRef {
            id,
            _value: PhantomData,
        }
    }

    /// Takes a new reference to `id` (the host counts it).
    pub(crate) fn retain(id: ObjectId) -> Self {
        // SAFETY: the pointer is to 32 readable bytes for the call's duration.
        let status = unsafe { sys::object_retain(id.0.as_ptr()) };
        // A retained id always exists: whoever handed it to us holds it.
        // NotFound can only mean a guest-side bug or a host that lost it;
        // the reference still works as a name and `get` will say what's up.
        debug_assert!(status == 0 || status == Status::NotFound as i32);
        ObjectRef::from_held(id)
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Fetches the value, waiting as long as it takes. Same as
    /// [`wray::get`](crate::get).
    pub fn get(&self) -> Result<T::Output>
    where
        T: Readable,
    {
        self.get_timeout(None)
    }

    /// Fetches the value, waiting at most `timeout` (`None`: no limit;
    /// zero: only if ready now). A timed-out `get` returns an error whose
    /// [`is_timeout`](Error::is_timeout) is true; the object can still be
    /// fetched later.
    pub fn get_timeout(&self, timeout: Option<Duration>) -> Result<T::Output>
    where
        T: Readable,
    {
        let bytes = fetch(&self.id, timeout)?;
        T::read(&bytes)
    }

    /// Same as [`wray::cancel`](crate::cancel).
    pub fn cancel(&self) -> bool {
        let flags = wray_abi::cancel_flags::FORCE | wray_abi::cancel_flags::RECURSIVE;
        // SAFETY: the pointer is to 32 readable bytes for the call's duration.
        unsafe { sys::task_cancel(self.id.0.as_ptr(), flags) == 0 }
    }
}

impl<T> Clone for ObjectRef<T> {
    fn clone(&self) -> Self {
        ObjectRef::retain(self.id)
    }
}

impl<T> Drop for ObjectRef<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer is to 32 readable bytes for the call's duration.
        unsafe { sys::object_release(self.id.0.as_ptr()) };
    }
}

impl<T> fmt::Debug for ObjectRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectRef({})", self.id.short())
    }
}

impl<T> PartialEq for ObjectRef<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> Eq for ObjectRef<T> {}

impl<T> Hash for ObjectRef<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

// An ObjectRef inside a value is archived as its 32-byte id. Serializing it
// tells the encoder the value refers to the object; deserializing it takes a
// new counted reference.
impl<T> Archive for ObjectRef<T> {
    type Archived = [u8; 32];
    type Resolver = ();

    fn resolve(&self, _: (), out: Place<[u8; 32]>) {
        out.write(self.id.0);
    }
}

impl<T, S: Fallible + ?Sized> Serialize<S> for ObjectRef<T> {
    fn serialize(&self, _: &mut S) -> std::result::Result<(), S::Error> {
        codec::note_ref(self.id);
        Ok(())
    }
}

impl<T, D: Fallible + ?Sized> Deserialize<ObjectRef<T>, D> for [u8; 32] {
    fn deserialize(&self, _: &mut D) -> std::result::Result<ObjectRef<T>, D::Error> {
        Ok(ObjectRef::retain(ObjectId(*self)))
    }
}

/// Cancels the task (or actor call) that makes `r`'s object, and the tasks
/// it submitted, as Ray's `ray.cancel(ref)` does.
///
/// A task that has not started never runs; a running one is interrupted at
/// its next yield point (or at once if it waits in `get`); a finished one is
/// left alone. `get` then returns an error of kind
/// [`Cancelled`](crate::ErrorKind::Cancelled), and the task is not retried.
/// A queued actor call is dropped; a running one is not interrupted (kill
/// the actor for that). Returns false when there was nothing left to cancel.
pub fn cancel<T>(r: &ObjectRef<T>) -> bool {
    r.cancel()
}

/// Stores `value` as an immutable object and returns a reference to it.
///
/// The object's id is the blake3 digest of its bytes: putting the same value
/// twice stores it once. Pass the reference to many tasks instead of the
/// value to copy it out of this instance only once.
///
/// # Panics
/// When the host refuses the object (it exceeds the object size limit).
pub fn put<T: Encode>(value: &T) -> ObjectRef<T> {
    put_with(|id| codec::put(value, id))
}

/// [`put`] of a value whose encoding is known to be `len` bytes, more than
/// fit on the stack.
pub(crate) fn put_measured<T: Encode>(value: &T, len: usize) -> ObjectRef<T> {
    put_with(|id| codec::put_streamed(value, len, id))
}

/// Runs a put that writes the new object's id, panicking if the host
/// refused it.
fn put_with<T>(put: impl FnOnce(&mut [u8; 32]) -> i32) -> ObjectRef<T> {
    let mut id = [0u8; 32];
    let status = put(&mut id);
    if let Err(e) = check(status, "put") {
        panic!("wray::put of a {} failed: {e}", std::any::type_name::<T>());
    }
    ObjectRef::from_held(ObjectId(id))
}

/// Fetches the value of one reference, or of many.
///
/// `get(&r)` waits for `r`'s object and returns its value; `get(&refs)` (a
/// slice, array or `Vec` of references) returns all values in order. A failed
/// task's error is returned as `Err`, with its cause chain.
///
/// Submit all your work first and `get` late, in one batch: every `get`
/// waits, and work submitted after it has not started yet.
pub fn get<G: Get + ?Sized>(refs: &G) -> Result<G::Output> {
    refs.get_within(None)
}

/// [`get`] with a time limit (`Some(Duration::ZERO)`: only what is ready now).
pub fn get_timeout<G: Get + ?Sized>(refs: &G, timeout: Option<Duration>) -> Result<G::Output> {
    refs.get_within(timeout)
}

/// What an object of type `T` reads as: an rkyv value (any [`Decode`]
/// type, read as itself), or a cross-language one ([`Cbor<T>`], read as a
/// `T`).
pub trait Readable {
    /// What [`get`] gives.
    type Output;
    /// Decodes an object's bytes (aligned).
    #[doc(hidden)]
    fn read(bytes: &[u8]) -> Result<Self::Output>;
}

impl<T: Decode> Readable for T {
    type Output = T;
    fn read(bytes: &[u8]) -> Result<T> {
        codec::decode(bytes)
    }
}

impl<T: FromValue> Readable for Cbor<T> {
    type Output = T;
    fn read(bytes: &[u8]) -> Result<T> {
        Cbor::decode(bytes)
    }
}

/// What [`get`] accepts: one reference, or a slice, array or `Vec` of them.
pub trait Get {
    /// What the references resolve to.
    type Output;
    /// Fetches, waiting at most `timeout` for each object.
    fn get_within(&self, timeout: Option<Duration>) -> Result<Self::Output>;
}

impl<T: Readable> Get for ObjectRef<T> {
    type Output = T::Output;
    fn get_within(&self, timeout: Option<Duration>) -> Result<T::Output> {
        self.get_timeout(timeout)
    }
}

impl<T: Readable> Get for [ObjectRef<T>] {
    type Output = Vec<T::Output>;
    fn get_within(&self, timeout: Option<Duration>) -> Result<Vec<T::Output>> {
        self.iter().map(|r| r.get_timeout(timeout)).collect()
    }
}

impl<T: Readable> Get for Vec<ObjectRef<T>> {
    type Output = Vec<T::Output>;
    fn get_within(&self, timeout: Option<Duration>) -> Result<Vec<T::Output>> {
        self.as_slice().get_within(timeout)
    }
}

impl<T: Readable, const N: usize> Get for [ObjectRef<T>; N] {
    type Output = Vec<T::Output>;
    fn get_within(&self, timeout: Option<Duration>) -> Result<Vec<T::Output>> {
        self.as_slice().get_within(timeout)
    }
}

/// What [`wait`] returns: `(ready, not_ready)`.
pub type Ready<T> = (Vec<ObjectRef<T>>, Vec<ObjectRef<T>>);

/// Waits until `num_returns` of `refs` are ready (finished, successfully or
/// not), or until `timeout` passes (`None`: no limit; zero: just look).
///
/// Returns `(ready, not_ready)`, each in the order of `refs`: `ready` holds
/// at most `num_returns` references; the rest, ready or not, are in
/// `not_ready`. As in Ray, `num_returns` larger than `refs.len()` is an
/// error.
pub fn wait<T>(
    refs: &[ObjectRef<T>],
    num_returns: usize,
    timeout: Option<Duration>,
) -> Result<Ready<T>> {
    if num_returns > refs.len() {
        return Err(Error::invalid_argument(format!(
            "wait: num_returns ({num_returns}) is larger than the number of references ({})",
            refs.len()
        )));
    }
    let ids: Vec<ObjectId> = refs.iter().map(|r| r.id).collect();
    let mut ready = vec![0u8; refs.len()];
    // SAFETY: `ids` holds `len` 32-byte ids; `ready` has `len` writable bytes.
    let status = unsafe {
        sys::object_wait(
            ids.as_ptr().cast(),
            ids.len(),
            num_returns,
            timeout_ms(timeout),
            ready.as_mut_ptr(),
        )
    };
    check(status, "wait")?;
    let (mut done, mut rest) = (Vec::new(), Vec::new());
    for (r, &flag) in refs.iter().zip(&ready) {
        if flag != 0 && done.len() < num_returns {
            done.push(r.clone());
        } else {
            rest.push(r.clone());
        }
    }
    Ok((done, rest))
}

/// Converts a timeout to the ABI's milliseconds (rounding up, so a tiny
/// non-zero timeout still waits).
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> i64 {
    match timeout {
        None => TIMEOUT_FOREVER,
        Some(d) => i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX),
    }
}

/// Turns a host status into a `Result` (non-negative values are counts).
pub(crate) fn check(status: i32, what: &str) -> Result<i32> {
    if status >= 0 {
        return Ok(status);
    }
    let kind = match Status::from_code(status) {
        Some(Status::Timeout) => ErrorKind::Timeout,
        Some(Status::Cancelled) => ErrorKind::Cancelled,
        Some(Status::TooLarge) => ErrorKind::ObjectTooLarge,
        Some(Status::StoreFull) => ErrorKind::ObjectStoreFull,
        _ => ErrorKind::InvalidArgument,
    };
    let desc = Status::from_code(status).map_or("unknown status", Status::describe);
    let mut msg = format!("{what}: {desc} ({status})");
    if kind == ErrorKind::ObjectStoreFull {
        // The host keeps the reason (spilling off, the disk refused...).
        let (got, why) = read_buffer(|ptr, cap, len| {
            // SAFETY: `ptr` has `cap` writable bytes and `len` is writable.
            unsafe { sys::last_error(ptr, cap, len) }
        });
        if got == Status::Ok as i32 && !why.is_empty() {
            msg.push_str(": ");
            msg.push_str(&String::from_utf8_lossy(&why));
        }
    }
    Err(Error::new(kind, "", msg))
}

/// Calls a host function that fills a caller-provided buffer, growing the
/// buffer until the data fits. Returns the final status and the buffer,
/// whose length is what the host wrote (nothing, when the length it reports
/// does not fit: then the bytes are elsewhere, as `object_map` may say).
pub(crate) fn read_buffer(
    mut call: impl FnMut(*mut u8, usize, *mut u32) -> i32,
) -> (i32, AlignedVec) {
    let mut buf = AlignedVec::with_capacity(256);
    loop {
        let mut len = 0u32;
        let status = call(buf.as_mut_ptr(), buf.capacity(), &mut len);
        if status == Status::BufferTooSmall as i32 {
            buf.reserve_exact(len as usize);
            continue;
        }
        if (status >= 0 || status == Status::ErrorValue as i32) && len as usize <= buf.capacity() {
            // SAFETY: the host wrote `len` bytes, which fit in the capacity
            // it was given.
            unsafe { buf.set_len(len as usize) };
        }
        return (status, buf);
    }
}

/// An object's bytes in this instance's memory: copied into a buffer of
/// its own, or (a large object) mapped by the host, read where they are and
/// given back when this is dropped.
pub(crate) enum Held {
    /// A copy.
    Owned(AlignedVec),
    /// A mapping.
    Mapped(Mapping),
}

impl std::ops::Deref for Held {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Held::Owned(v) => v,
            Held::Mapped(m) => m.bytes(),
        }
    }
}

/// A region of memory the host mapped an object into (`object_map`,
/// `task_arg_map`); unmapped on drop.
pub(crate) struct Mapping {
    addr: u32,
    len: u32,
}

impl Mapping {
    /// The mapping the host reported at `addr`, of `len` bytes.
    ///
    /// # Safety
    ///
    /// The host mapped `len` bytes at `addr`, and nothing else owns them.
    pub(crate) unsafe fn new(addr: u32, len: u32) -> Mapping {
        Mapping { addr, len }
    }

    fn bytes(&self) -> &[u8] {
        let ptr = std::ptr::with_exposed_provenance::<u8>(self.addr as usize);
        // SAFETY: the host mapped `len` readable bytes at `addr` (aligned
        // to a page), which stay mapped and unchanged until `drop`.
        unsafe { std::slice::from_raw_parts(ptr, self.len as usize) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let ptr = std::ptr::with_exposed_provenance::<u8>(self.addr as usize);
        // SAFETY: gives back a region the host mapped; nothing borrows it
        // once the mapping is dropped.
        unsafe { sys::object_unmap(ptr) };
    }
}

/// Fetches an object's bytes (mapped, if the host maps it), or its error.
pub(crate) fn fetch(id: &ObjectId, timeout: Option<Duration>) -> Result<Held> {
    let ms = timeout_ms(timeout);
    let (mut addr, mut mapped_len) = (0u32, 0u32);
    let (status, buf) = read_buffer(|ptr, cap, len| {
        // SAFETY: `id` is 32 readable bytes, `ptr` has `cap` writable bytes
        // and `addr` and `len` are writable, all for the call.
        let status = unsafe { sys::object_map(id.0.as_ptr(), ms, ptr, cap, &mut addr, len) };
        // SAFETY: `len` is ours, written by the host.
        mapped_len = unsafe { *len };
        status
    });
    if status == Status::Ok as i32 && addr as usize != buf.as_ptr() as usize {
        // SAFETY: the host mapped `mapped_len` bytes at `addr` for us alone.
        return Ok(Held::Mapped(unsafe { Mapping::new(addr, mapped_len) }));
    }
    if status == Status::ErrorValue as i32 {
        return Err(match ErrorRecord::decode(&buf) {
            Ok(rec) => Error::from_record(rec),
            Err(e) => Error::invalid_argument(format!("undecodable error record: {e}")),
        });
    }
    if status == Status::Timeout as i32 {
        return Err(Error::new(
            ErrorKind::Timeout,
            "",
            format!(
                "get timed out after {:?} waiting for object {}",
                timeout.unwrap_or_default(),
                id.short()
            ),
        ));
    }
    check(status, "get")?;
    Ok(Held::Owned(buf))
}
