//! Views: an object's value read in place, without decoding it.
//!
//! [`get`](crate::get) decodes an object into an owned `T`, which for a
//! large vector means a pass over every element and a second allocation. A
//! [`View<T>`] keeps the object's bytes as they are and derefs to rkyv's
//! archived form of `T` (`ArchivedVec`, `ArchivedString`, archived structs
//! with the same field names), which is read in place. A vector of plain
//! numbers is a real slice: [`View::as_slice`].
//!
//! A view's bytes are validated once, when it is made (rkyv's `bytecheck`:
//! every offset and length inside the buffer, every `bool` and `char`
//! valid), so a malformed object is an `InvalidArgument` error of the
//! reading call, never undefined behaviour.
//!
//! Views are taken by [`get_view`](crate::get_view), and as parameters: a
//! remote function or actor method whose parameter is typed `View<T>` is
//! called with a `T` (or a reference to one) and receives a view of it.
//!
//! A large object (256 KiB and more) is not copied at all: the host maps
//! its pages into this instance's memory, where the view reads them, and
//! gives the region back when the view is dropped. A small one is copied,
//! which costs less than a mapping.

use crate::codec::Decode;
use crate::error::{Error, Result};
use crate::object::{Held, ObjectRef, fetch};
use rkyv::rancor;
use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;
use wray_abi::ObjectId;

/// A read-only view of an object's value: derefs to rkyv's archived form
/// of `T` (`ArchivedVec`, `ArchivedString`, archived structs with the same
/// field names), read in place rather than decoded. A vector of plain
/// numbers is a real slice: [`View::as_slice`].
///
/// The bytes are validated once, when the view is made (rkyv's
/// `bytecheck`), so a malformed object is an `InvalidArgument` error of the
/// reading call. Take one with [`get_view`], or as a parameter: a remote
/// function or actor method whose parameter is typed `View<T>` is called
/// with a `T` (or a reference to one) and receives a view of it.
pub struct View<T: Decode> {
    bytes: Held,
    _value: PhantomData<fn() -> T>,
}

impl<T: Decode> View<T> {
    /// Validates `bytes` as an archived `T`.
    pub(crate) fn new(bytes: Held) -> Result<View<T>> {
        Self::validate(&bytes)?;
        Ok(View {
            bytes,
            _value: PhantomData,
        })
    }

    /// [`new`](Self::new) for the bytes of object `id`, validated only if
    /// this instance has not validated that object as a `T` before (objects
    /// never change).
    fn of_object(id: ObjectId, bytes: Held) -> Result<View<T>>
    where
        T: 'static,
    {
        let key = (id, TypeId::of::<T>());
        if !VALIDATED.with(|v| v.borrow().contains(&key)) {
            Self::validate(&bytes)?;
            VALIDATED.with(|v| v.borrow_mut().insert(key));
        }
        Ok(View {
            bytes,
            _value: PhantomData,
        })
    }

    fn validate(bytes: &[u8]) -> Result<()> {
        rkyv::access::<T::Archived, rancor::Error>(bytes).map_err(|e| {
            Error::invalid_argument(format!(
                "{} bytes are not a valid {}: {e}",
                bytes.len(),
                std::any::type_name::<T>()
            ))
        })?;
        Ok(())
    }

    /// The value's encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes an owned copy of the value.
    pub fn to_owned(&self) -> T {
        rkyv::deserialize::<T, rancor::Error>(&**self)
            .expect("a validated archive always deserializes")
    }
}

impl<T: Decode> Deref for View<T> {
    type Target = T::Archived;

    fn deref(&self) -> &T::Archived {
        // SAFETY: `new` validated these bytes as a `T::Archived`, and they
        // never change.
        unsafe { rkyv::access_unchecked::<T::Archived>(&self.bytes) }
    }
}

impl<T: Decode> fmt::Debug for View<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "View<{}>({} bytes)",
            std::any::type_name::<T>(),
            self.bytes.len()
        )
    }
}

/// Plain numbers: their archived form is their own bytes, little-endian,
/// with the same size and alignment.
pub trait Plain: Decode + Copy + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Plain for $t {}
        const _: () = assert!(
            size_of::<rkyv::Archived<$t>>() == size_of::<$t>()
                && align_of::<rkyv::Archived<$t>>() >= align_of::<$t>()
        );
    )*};
}
plain!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

impl<T: Plain> View<Vec<T>> {
    /// The numbers, as a slice read in place.
    #[cfg(target_endian = "little")]
    pub fn as_slice(&self) -> &[T] {
        let archived: &[rkyv::Archived<T>] = self.deref().as_slice();
        // SAFETY: on a little-endian target an archived plain number is the
        // number's own bytes, with the same size and at least its alignment
        // (checked above, at compile time); the slice is validated and
        // immutable for as long as `self` is borrowed.
        unsafe { std::slice::from_raw_parts(archived.as_ptr().cast::<T>(), archived.len()) }
    }
}

/// Fetches `r`'s value as a [`View`], waiting as long as it takes: read in
/// place, not decoded. As Ray's `ray.get` of a numpy array, which returns a
/// read-only view of the object.
pub fn get_view<T: Decode + 'static>(r: &ObjectRef<T>) -> Result<View<T>> {
    r.get_view_timeout(None)
}

thread_local! {
    /// The objects this instance validated, and as which types.
    static VALIDATED: RefCell<HashSet<(ObjectId, TypeId)>> = RefCell::new(HashSet::new());
}

impl<T: Decode + 'static> ObjectRef<T> {
    /// Same as [`wray::get_view`](crate::get_view).
    pub fn get_view(&self) -> Result<View<T>> {
        self.get_view_timeout(None)
    }

    /// [`get_view`](Self::get_view), waiting at most `timeout`.
    pub fn get_view_timeout(&self, timeout: Option<Duration>) -> Result<View<T>> {
        View::of_object(self.id(), fetch(&self.id(), timeout)?)
    }
}
