//! The encoding of user values: rkyv, aligned to [`VALUE_ALIGN`].
//!
//! [`Encode`] and [`Decode`] name the rkyv bounds once, so neither the SDK
//! nor the host repeats them.
//!
//! [`VALUE_ALIGN`]: crate::VALUE_ALIGN

use core::mem::MaybeUninit;
use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::rancor;
use rkyv::ser::allocator::{ArenaHandle, SubAllocator};
use rkyv::ser::writer::Buffer;
use rkyv::util::AlignedVec;

/// A value that can be encoded: any type rkyv can serialize, onto the heap
/// or into a caller's fixed buffer (rkyv's derives provide both).
pub trait Encode:
    for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
    + for<'a> rkyv::Serialize<HighSerializer<Buffer<'a>, SubAllocator<'a>, rancor::Error>>
{
}

impl<T> Encode for T where
    T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
        + for<'a> rkyv::Serialize<HighSerializer<Buffer<'a>, SubAllocator<'a>, rancor::Error>>
{
}

/// Encodes a value into `out` without allocating, using `scratch` for
/// rkyv's temporary space. Returns the encoded prefix of `out`, or `None`
/// when either is too small (encode with [`encode`] then). `out` must be
/// aligned to [`VALUE_ALIGN`](crate::VALUE_ALIGN) for the bytes to decode.
pub fn encode_into<'o, T: Encode>(
    value: &T,
    out: &'o mut [MaybeUninit<u8>],
    scratch: &mut [MaybeUninit<u8>],
) -> Option<&'o [u8]> {
    let ptr = out.as_ptr().cast::<u8>();
    let len = rkyv::api::high::to_bytes_in_with_alloc::<_, _, rancor::Error>(
        value,
        Buffer::from(&mut *out),
        SubAllocator::new(scratch),
    )
    .ok()?
    .len();
    // SAFETY: the writer initialised the first `len` bytes of `out`, which
    // stays mutably borrowed for 'o.
    Some(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// A value that can be decoded: any type rkyv can check and deserialize.
pub trait Decode:
    rkyv::Archive<
        Archived: for<'a> rkyv::bytecheck::CheckBytes<HighValidator<'a, rancor::Error>>
                      + rkyv::Deserialize<Self, HighDeserializer<rancor::Error>>,
    > + Sized
{
}

impl<T> Decode for T where
    T: rkyv::Archive<
            Archived: for<'a> rkyv::bytecheck::CheckBytes<HighValidator<'a, rancor::Error>>
                          + rkyv::Deserialize<T, HighDeserializer<rancor::Error>>,
        >
{
}

/// Encodes a value.
pub fn encode<T: Encode>(value: &T) -> Result<AlignedVec, rancor::Error> {
    encode_in(value, AlignedVec::new())
}

/// Encodes a value at the end of `buf` (pass an empty buffer whose
/// capacity you want to reuse).
pub fn encode_in<T: Encode>(value: &T, buf: AlignedVec) -> Result<AlignedVec, rancor::Error> {
    rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, buf)
}

/// Decodes a value from bytes aligned to [`VALUE_ALIGN`](crate::VALUE_ALIGN),
/// validating them first.
pub fn decode<T: Decode>(bytes: &[u8]) -> Result<T, rancor::Error> {
    rkyv::from_bytes::<T, rancor::Error>(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The byte formats `docs/abi.md` gives for values a CLI, an HTTP client
    /// or a C guest can produce by hand.
    #[test]
    fn value_test_vectors() {
        assert_eq!(&*encode(&42u32).unwrap(), &[42, 0, 0, 0]);
        assert_eq!(&*encode(&-2i64).unwrap(), &(-2i64).to_le_bytes());
        assert_eq!(&*encode(&1.5f64).unwrap(), &1.5f64.to_le_bytes());
        assert_eq!(&*encode(&true).unwrap(), &[1]);
        assert_eq!(&*encode(&()).unwrap(), &[] as &[u8]);
        // Strings of up to 8 bytes are stored inline, padded with 0xff.
        assert_eq!(
            &*encode(&String::from("hi")).unwrap(),
            &[b'h', b'i', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        // Longer strings: the bytes, padding to 4, then an 8-byte header:
        // the length as u32 with bits 0b10 on top of its first byte, and the
        // i32 offset of the bytes relative to the header's start.
        let long = encode(&String::from("hello, wray")).unwrap();
        let mut want = b"hello, wray\0".to_vec();
        want.extend_from_slice(&[11 | 0x80, 0, 0, 0]);
        want.extend_from_slice(&(-12i32).to_le_bytes());
        assert_eq!(&*long, &want[..]);
        // A Vec<T>: the elements, padding to 4, then (i32 offset relative to
        // the header's start, u32 length).
        let v = encode(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(&*v, &[1, 2, 3, 0, 0xfc, 0xff, 0xff, 0xff, 3, 0, 0, 0]);
        let f = encode(&vec![1.0f64]).unwrap();
        assert_eq!(
            &*f,
            &[
                0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0xf8, 0xff, 0xff, 0xff, 1, 0, 0, 0
            ]
        );
        // Tuples and structs: fields in order, each aligned to its own size.
        assert_eq!(&*encode(&(1u32, 2u8)).unwrap(), &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(decode::<Vec<u8>>(&v).unwrap(), [1, 2, 3]);
        assert_eq!(decode::<String>(&long).unwrap(), "hello, wray");
    }

    #[test]
    fn encoding_into_a_buffer_matches_the_heap_encoding() {
        let mut out = [MaybeUninit::uninit(); 64];
        let mut scratch = [MaybeUninit::uninit(); 64];
        let v = vec![1u32, 2, 3];
        let small = encode_into(&v, &mut out, &mut scratch).unwrap().to_vec();
        assert_eq!(small, &*encode(&v).unwrap());
        let big = vec![7u8; 100];
        assert!(encode_into(&big, &mut out, &mut scratch).is_none());
    }

    #[test]
    fn decoding_validates() {
        assert!(decode::<bool>(&[2]).is_err());
        assert!(decode::<Vec<u8>>(&[0xff; 8]).is_err());
        assert!(decode::<u64>(&[1, 2, 3]).is_err());
    }
}
