//! The encoding of user values: rkyv, aligned to [`VALUE_ALIGN`].
//!
//! [`Encode`] and [`Decode`] name the rkyv bounds once, so neither the SDK
//! nor the host repeats them.
//!
//! [`VALUE_ALIGN`]: crate::VALUE_ALIGN

use alloc::vec::Vec;
use core::fmt;
use core::mem::MaybeUninit;
use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::rancor;
use rkyv::ser::allocator::{ArenaHandle, SubAllocator};
use rkyv::ser::writer::Buffer;
use rkyv::ser::{Positional, Writer};
use rkyv::util::AlignedVec;

/// A value that can be encoded: any type rkyv can serialize, onto the heap,
/// into a caller's fixed buffer, or as a [`Stream`] (rkyv's derives provide
/// all three).
pub trait Encode:
    for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
    + for<'a> rkyv::Serialize<HighSerializer<Buffer<'a>, SubAllocator<'a>, rancor::Error>>
    + for<'a, 'b> rkyv::Serialize<HighSerializer<Stream<'b>, ArenaHandle<'a>, rancor::Error>>
{
}

impl<T> Encode for T where
    T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
        + for<'a> rkyv::Serialize<HighSerializer<Buffer<'a>, SubAllocator<'a>, rancor::Error>>
        + for<'a, 'b> rkyv::Serialize<HighSerializer<Stream<'b>, ArenaHandle<'a>, rancor::Error>>
{
}

/// A writer that hands an encoding to a sink in pieces as it is made, so a
/// large value never needs a buffer of its own size: writes smaller than
/// the stage's capacity are gathered there, larger ones go to the sink as
/// they are.
pub struct Stream<'a> {
    pos: usize,
    stage: &'a mut Vec<u8>,
    sink: &'a mut dyn FnMut(&[u8]) -> bool,
}

/// The sink of a [`Stream`] refused a piece.
#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the encoding's destination refused it")
    }
}

impl core::error::Error for Refused {}

impl Stream<'_> {
    fn flush<E: rancor::Source>(&mut self) -> Result<(), E> {
        if !self.stage.is_empty() && !(self.sink)(self.stage) {
            return Err(E::new(Refused));
        }
        self.stage.clear();
        Ok(())
    }
}

impl Positional for Stream<'_> {
    fn pos(&self) -> usize {
        self.pos
    }
}

impl<E: rancor::Source> Writer<E> for Stream<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        self.pos += bytes.len();
        if self.stage.capacity() - self.stage.len() >= bytes.len() {
            self.stage.extend_from_slice(bytes);
            return Ok(());
        }
        self.flush()?;
        if bytes.len() < self.stage.capacity() {
            self.stage.extend_from_slice(bytes);
        } else if !(self.sink)(bytes) {
            return Err(E::new(Refused));
        }
        Ok(())
    }
}

/// Encodes a value as a stream of pieces handed to `sink`, gathering
/// small writes in `stage` (whose capacity is kept; pass an empty one).
/// Returns the encoding's length; fails if the sink returns false.
pub fn encode_streamed<T: Encode>(
    value: &T,
    stage: &mut Vec<u8>,
    sink: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<usize, rancor::Error> {
    stage.clear();
    let mut stream = rkyv::api::high::to_bytes_in::<Stream<'_>, rancor::Error>(
        value,
        Stream {
            pos: 0,
            stage,
            sink,
        },
    )?;
    stream.flush::<rancor::Error>()?;
    Ok(stream.pos)
}

/// The length of a value's encoding, found without storing it.
pub fn encoded_len<T: Encode>(value: &T) -> Result<usize, rancor::Error> {
    encode_streamed(value, &mut Vec::new(), &mut |_| true)
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

    /// A streamed encoding is the same bytes as a whole one, whatever the
    /// stage's size, and a refusing sink stops it.
    #[test]
    fn streamed_encodings_are_whole_encodings_in_pieces() {
        let big: Vec<u64> = (0..50_000).collect();
        let value = (
            String::from("head"),
            big,
            vec![String::from("tail"); 300],
            7u8,
        );
        let whole = encode(&value).unwrap();
        assert_eq!(encoded_len(&value).unwrap(), whole.len());
        for cap in [0, 1, 7, 64, 4096, 1 << 20] {
            let mut stage = Vec::with_capacity(cap);
            let mut got = Vec::new();
            let mut pieces = 0;
            let len = encode_streamed(&value, &mut stage, &mut |p| {
                got.extend_from_slice(p);
                pieces += 1;
                true
            })
            .unwrap();
            assert_eq!((len, &got[..]), (whole.len(), &whole[..]), "stage {cap}");
            assert!(
                cap < 4096 || pieces < 10,
                "{pieces} pieces with a {cap}-byte stage"
            );
        }
        let mut refused = 0;
        let failed = encode_streamed(&value, &mut Vec::with_capacity(64), &mut |_| {
            refused += 1;
            false
        });
        assert!(failed.is_err());
        assert_eq!(refused, 1, "no piece after a refusal");
    }

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
