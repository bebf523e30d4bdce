//! How values become bytes and back: rkyv, with the object references a
//! value contains collected on the way out.
//!
//! The host never decodes user values, but it must know which objects a
//! value refers to, so it can keep them alive while the value exists. While a
//! value is encoded, every [`ObjectRef`](crate::ObjectRef) inside it records
//! its id in a collector; the ids travel next to the bytes.

use crate::error::Error;
use rkyv::util::AlignedVec;
use std::cell::RefCell;
use wray_abi::ObjectId;
pub use wray_abi::codec::{Decode, Encode};

/// A value's bytes and the ids of the objects it refers to (SDK internal).
#[doc(hidden)]
pub struct Encoded {
    pub(crate) bytes: AlignedVec,
    pub(crate) refs: Vec<ObjectId>,
}

impl Encoded {
    /// The contained ids, concatenated, as the ABI wants them.
    pub fn refs_bytes(&self) -> &[u8] {
        // SAFETY: ObjectId is `repr(transparent)` over `[u8; 32]`, so a slice
        // of ids is a slice of `32 * len` initialised bytes.
        unsafe {
            std::slice::from_raw_parts(
                self.refs.as_ptr().cast::<u8>(),
                self.refs.len() * ObjectId::LEN,
            )
        }
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

/// Encodes `value`, collecting the references it contains.
pub(crate) fn encode<T: Encode>(value: &T) -> Encoded {
    let outer = COLLECTOR.with(|c| c.borrow_mut().replace(Vec::new()));
    let bytes = wray_abi::codec::encode(value);
    let refs = COLLECTOR.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    match bytes {
        Ok(bytes) => Encoded {
            bytes,
            refs: refs.unwrap_or_default(),
        },
        // Serializing into memory fails only for values rkyv cannot lay out
        // (for example a length beyond the 32-bit address space): a bug of
        // the caller, reported like one.
        Err(e) => panic!(
            "wray: cannot encode a value of type {}: {e}",
            std::any::type_name::<T>()
        ),
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
