//! How values become bytes and back: rkyv, with the object references a
//! value contains collected on the way out.
//!
//! The host never decodes user values, but it must know which objects a
//! value refers to, so it can keep them alive while the value exists. While a
//! value is encoded, every [`ObjectRef`](crate::ObjectRef) inside it records
//! its id in a collector; the ids travel next to the bytes.

use crate::error::Error;
use crate::sys;
use rkyv::util::AlignedVec;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use wray_abi::ObjectId;
pub use wray_abi::codec::{Decode, Encode};

/// Aligned stack space: small encodings and argument buffers live here, so
/// a task that moves small values never touches its heap (a fresh instance's
/// first allocation grows its memory, which every later reset pays for).
#[repr(C, align(16))]
pub(crate) struct Scratch<const N: usize>(pub [MaybeUninit<u8>; N]);

impl<const N: usize> Scratch<N> {
    pub fn new() -> Self {
        Scratch([MaybeUninit::uninit(); N])
    }
}

/// Ids as the ABI lays them out: 32 bytes each, concatenated.
pub(crate) fn id_bytes(ids: &[ObjectId]) -> &[u8] {
    // SAFETY: ObjectId is `repr(transparent)` over `[u8; 32]`, so a slice of
    // ids is a slice of `32 * len` initialised bytes.
    unsafe { std::slice::from_raw_parts(ids.as_ptr().cast::<u8>(), ids.len() * ObjectId::LEN) }
}

/// A value's bytes and the ids of the objects it refers to.
pub(crate) struct Encoded {
    pub(crate) bytes: AlignedVec,
    pub(crate) refs: Vec<ObjectId>,
}

impl Encoded {
    /// The contained ids, concatenated, as the ABI wants them.
    pub fn refs_bytes(&self) -> &[u8] {
        id_bytes(&self.refs)
    }
}

thread_local! {
    /// Ids seen by the encoding in progress, if one is.
    static COLLECTOR: RefCell<Option<Vec<ObjectId>>> = const { RefCell::new(None) };
}

/// Called by `ObjectRef`'s serializer.
pub(crate) fn note_ref(id: ObjectId) {
    COLLECTOR.with(|c| {
        if let Some(v) = c.borrow_mut().as_mut() {
            v.push(id);
        }
    });
}

/// Runs `f` with the collector on; returns its result and the ids seen.
fn collecting<R>(f: impl FnOnce() -> R) -> (R, Vec<ObjectId>) {
    let outer = COLLECTOR.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = f();
    let refs = COLLECTOR.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    (r, refs.unwrap_or_default())
}

/// Small writes of a streamed encoding are gathered into pieces this large.
const STAGE: usize = 64 << 10;

/// Hands `value` to the host and returns the host's status: to `whole`,
/// with its bytes and the ids it refers to, when it fits on the stack;
/// otherwise streamed as it is encoded (`object_put_begin`, `_write`) and
/// finished by `end` (`object_put_end` for a put, `task_return_end` for a
/// result) with the ids.
///
/// Streaming moves a large value's bulk from where it lies straight into the
/// object store, instead of copying it into an encoding buffer first and
/// from there to the host. That costs a first pass that only measures the
/// encoding, cheap next to a copy for the values that are large (arrays of
/// bytes or numbers are one write).
fn stack_or_stream<T: Encode>(
    value: &T,
    whole: impl FnOnce(&[u8], &[ObjectId]) -> i32,
    end: impl FnOnce(&[ObjectId]) -> i32,
) -> i32 {
    let mut out = Scratch::<512>::new();
    let mut scratch = Scratch::<256>::new();
    let (encoded, refs) =
        collecting(|| wray_abi::codec::encode_into(value, &mut out.0, &mut scratch.0));
    if let Some(bytes) = encoded {
        return whole(bytes, &refs);
    }
    stream(value, encoded_len(value), end)
}

/// Streams `value`, whose encoding is `len` bytes, as it is encoded
/// (`object_put_begin`, `_write`), then finishes with `end`.
fn stream<T: Encode>(value: &T, len: usize, end: impl FnOnce(&[ObjectId]) -> i32) -> i32 {
    // SAFETY: no pointers.
    let status = unsafe { sys::object_put_begin(len) };
    if status != 0 {
        return status;
    }
    let mut refused = 0;
    let mut sink = |piece: &[u8]| {
        // SAFETY: `piece` is valid for its length for the call's duration.
        refused = unsafe { sys::object_put_write(piece.as_ptr(), piece.len()) };
        refused == 0
    };
    let mut stage = Vec::with_capacity(len.min(STAGE));
    let (streamed, refs) =
        collecting(|| wray_abi::codec::encode_streamed(value, &mut stage, &mut sink));
    if let Err(e) = streamed {
        if refused != 0 {
            return refused;
        }
        cannot_encode::<T>(e);
    }
    end(&refs)
}

/// The length of `value`'s encoding, found without writing it.
pub(crate) fn encoded_len<T: Encode>(value: &T) -> usize {
    let (len, _) = collecting(|| wray_abi::codec::encoded_len(value));
    len.unwrap_or_else(|e| cannot_encode::<T>(e))
}

/// Stores `value` as an object, writing its id to `out_id`; returns the
/// host's status.
pub(crate) fn put<T: Encode>(value: &T, out_id: &mut [u8; 32]) -> i32 {
    let out_id = out_id.as_mut_ptr();
    let whole = |bytes: &[u8], refs: &[ObjectId]| {
        // SAFETY: every pointer is to memory valid for the given length for
        // the call's duration; `out_id` is 32 writable bytes.
        unsafe {
            sys::object_put(
                bytes.as_ptr(),
                bytes.len(),
                id_bytes(refs).as_ptr(),
                refs.len(),
                out_id,
            )
        }
    };
    stack_or_stream(value, whole, put_end(out_id))
}

/// [`put`] of a value whose encoding is known to be `len` bytes, too many
/// for the stack: streamed without measuring it again.
pub(crate) fn put_streamed<T: Encode>(value: &T, len: usize, out_id: &mut [u8; 32]) -> i32 {
    stream(value, len, put_end(out_id.as_mut_ptr()))
}

/// Ends a streamed put, writing the object's id to `out_id` (32 writable
/// bytes).
fn put_end(out_id: *mut u8) -> impl FnOnce(&[ObjectId]) -> i32 {
    // SAFETY: the ids are valid for their length; `out_id` is 32 writable
    // bytes.
    move |refs| unsafe { sys::object_put_end(id_bytes(refs).as_ptr(), refs.len(), out_id) }
}

/// Sets `value` as the current call's result; returns the host's status.
pub(crate) fn set_return<T: Encode>(value: &T) -> i32 {
    let whole = |bytes: &[u8], refs: &[ObjectId]| {
        // SAFETY: the pointers are readable for the given lengths for the
        // call's duration.
        unsafe {
            sys::task_return(
                0,
                bytes.as_ptr(),
                bytes.len(),
                id_bytes(refs).as_ptr(),
                refs.len(),
            )
        }
    };
    // SAFETY: the ids are valid for their length.
    let end =
        |refs: &[ObjectId]| unsafe { sys::task_return_end(0, id_bytes(refs).as_ptr(), refs.len()) };
    stack_or_stream(value, whole, end)
}

/// Serializing into memory fails only for values rkyv cannot lay out (for
/// example a length beyond the 32-bit address space): a bug of the caller,
/// reported like one.
fn cannot_encode<T>(e: impl std::fmt::Display) -> ! {
    panic!(
        "wray: cannot encode a value of type {}: {e}",
        std::any::type_name::<T>()
    )
}

/// Encodes `value` on the heap, collecting the references it contains.
pub(crate) fn encode<T: Encode>(value: &T) -> Encoded {
    let (bytes, refs) = collecting(|| wray_abi::codec::encode(value));
    match bytes {
        Ok(bytes) => Encoded { bytes, refs },
        Err(e) => cannot_encode::<T>(e),
    }
}

/// Decodes a value from bytes aligned to `wray_abi::VALUE_ALIGN`.
pub(crate) fn decode<T: Decode>(bytes: &[u8]) -> Result<T, Error> {
    wray_abi::codec::decode::<T>(bytes).map_err(|e| {
        Error::invalid_argument(format!(
            "cannot decode a {} from {} bytes: {e}",
            std::any::type_name::<T>(),
            bytes.len()
        ))
    })
}
