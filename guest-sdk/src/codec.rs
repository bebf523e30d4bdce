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

thread_local! {
    /// The heap buffer large values are encoded into, kept between uses so
    /// repeated puts of large values neither regrow it nor touch fresh pages.
    static ENCODE_BUF: RefCell<AlignedVec> = RefCell::new(AlignedVec::new());
}

/// Encode buffers larger than this are freed after use rather than kept.
const KEEP_ENCODE_BUF: usize = 256 << 20;

/// Encodes `value` and hands its bytes and the ids it refers to to `f`.
/// Small values are encoded on the stack, without allocating; large ones
/// into a buffer reused from call to call.
pub(crate) fn with_encoded<T: Encode, R>(value: &T, f: impl FnOnce(&[u8], &[ObjectId]) -> R) -> R {
    on_stack_or(value, f, |f| with_heap_encoded(value, f))
}

/// Encodes `value` on the stack and hands it to `small`; if it does not fit
/// there, hands `small` back to `large` instead.
fn on_stack_or<T: Encode, F: FnOnce(&[u8], &[ObjectId]) -> R, R>(
    value: &T,
    small: F,
    large: impl FnOnce(F) -> R,
) -> R {
    let mut out = Scratch::<512>::new();
    let mut scratch = Scratch::<256>::new();
    let (encoded, refs) =
        collecting(|| wray_abi::codec::encode_into(value, &mut out.0, &mut scratch.0));
    match encoded {
        Some(bytes) => small(bytes, &refs),
        None => large(small),
    }
}

/// Small writes of a streamed encoding are gathered into pieces this large.
const STAGE: usize = 64 << 10;

/// Stores `value` as an object, writing its id to `out_id`; returns the
/// host's status.
///
/// A value too large for the stack is streamed to the host as it is
/// encoded (`object_put_begin`, `_write`, `_end`): its bulk goes from where
/// it lies straight into the object store, instead of being copied into an
/// encoding buffer first and from there to the host. That costs a first
/// pass that only measures the encoding, cheap next to a copy for the
/// values that are large (arrays of bytes or numbers are one write).
pub(crate) fn put<T: Encode>(value: &T, out_id: &mut [u8; 32]) -> i32 {
    let out_id = out_id.as_mut_ptr();
    let put_whole = |bytes: &[u8], refs: &[ObjectId]| {
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
    on_stack_or(value, put_whole, |_| {
        let (len, _) = collecting(|| wray_abi::codec::encoded_len(value));
        let len = len.unwrap_or_else(|e| cannot_encode::<T>(e));
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
        // SAFETY: the ids are valid for their length; `out_id` is 32
        // writable bytes.
        unsafe { sys::object_put_end(id_bytes(&refs).as_ptr(), refs.len(), out_id) }
    })
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

/// Encodes `value` into the reused heap buffer and hands its bytes and the
/// ids it refers to to `f`.
fn with_heap_encoded<T: Encode, R>(value: &T, f: impl FnOnce(&[u8], &[ObjectId]) -> R) -> R {
    // Taken out of the slot for the duration, so a nested use (`f` encoding
    // again) finds an empty buffer instead of a borrow conflict.
    let mut buf = ENCODE_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    buf.clear();
    let (encoded, refs) = collecting(|| wray_abi::codec::encode_in(value, buf));
    let buf = encoded.unwrap_or_else(|e| cannot_encode::<T>(e));
    let r = f(&buf, &refs);
    if buf.capacity() <= KEEP_ENCODE_BUF {
        ENCODE_BUF.with(|b| *b.borrow_mut() = buf);
    }
    r
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
