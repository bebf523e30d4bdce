//! Values that cross languages: [`Value`] and its deterministic CBOR
//! encoding (RFC 8949, section 4.2), the format every wray client and SDK
//! (Rust, C, Go, Python) writes byte for byte alike, so that the same value
//! put from any of them gets the same content address.
//!
//! The encoding, as `docs/abi.md` specifies it:
//!
//! - integers (-2^64 .. 2^64-1) as major types 0 and 1, in the shortest head;
//! - floats in the shortest of half, single and double precision that holds
//!   the value exactly; every NaN as the half-precision `0xf97e00`. A float
//!   stays a float (`1.0` is not `1`);
//! - text (UTF-8) and byte strings, arrays and maps with definite lengths;
//! - map keys sorted by the bytewise order of their encodings (RFC 8949
//!   section 4.2.1, not the length-first order of RFC 7049), no key twice;
//! - `null`, `false`, `true`;
//! - an object reference as tag [`REF_TAG`] around a 32-byte string (the
//!   object's id).
//!
//! [`Value::decode`] accepts exactly that: any other form of the same value
//! (a longer head, an indefinite length, unsorted keys, a wider float, other
//! tags or simple values) is an error, so decoding and encoding again always
//! gives back the input's bytes. `tests/cbor-vectors.txt` at the repository
//! root holds the shared test vectors.

use crate::ObjectId;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The CBOR tag of an object reference: "wray" in ASCII, from the
/// first-come-first-served range of the IANA registry.
pub const REF_TAG: u64 = 0x7772_6179;

/// How deeply lists and maps may nest in a decoded value.
pub const MAX_DEPTH: usize = 128;

/// Whether a value of kind `kind` ([`Value::kind`]) may be passed where a
/// manifest declares `declared`: the same type, `any`, or an int for a
/// float.
pub fn fits(kind: &str, declared: &str) -> bool {
    declared == "any" || declared == kind || (declared == "float" && kind == "int")
}

/// A value that crosses languages.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null` (Python's `None`).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer in -2^64 .. 2^64-1.
    Int(i128),
    /// A float (double precision in memory; encoded as narrow as is exact).
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A map. Its entries are compared in order: build it with
    /// [`Value::map`], which sorts them as the encoding does.
    Map(Vec<(Value, Value)>),
    /// A reference to an object.
    Ref(ObjectId),
}

/// Why bytes are not a value in wray's deterministic CBOR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Where in the input (a byte offset).
    pub at: usize,
    /// What is wrong there.
    pub why: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not deterministic CBOR at byte {}: {}",
            self.at, self.why
        )
    }
}

impl core::error::Error for DecodeError {}

/// Why a value cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// An integer outside -2^64 .. 2^64-1.
    IntOutOfRange,
    /// A map with the same key twice.
    DuplicateKey,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::IntOutOfRange => f.write_str("an integer outside -2^64 .. 2^64-1"),
            EncodeError::DuplicateKey => f.write_str("a map with the same key twice"),
        }
    }
}

impl core::error::Error for EncodeError {}

const MIN_INT: i128 = -(1i128 << 64);
const MAX_INT: i128 = (1i128 << 64) - 1;

impl Value {
    /// A map of `entries`, given in any order, kept in the encoding's order
    /// (as decoding gives it), so that equal maps compare equal.
    pub fn map(entries: impl IntoIterator<Item = (Value, Value)>) -> Value {
        let mut entries: Vec<(Value, Value)> = entries.into_iter().collect();
        // A key that does not encode sorts first; `encode` reports it.
        entries.sort_by_cached_key(|(k, _)| k.encode().unwrap_or_default());
        Value::Map(entries)
    }

    /// The value's type, as a manifest names it (`docs/abi.md`,
    /// "Manifest"): `null`, `bool`, `int`, `float`, `str`, `bytes`,
    /// `list`, `map` or `ref`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Ref(_) => "ref",
        }
    }

    /// The objects the value refers to, in order, each once.
    pub fn refs(&self) -> Vec<ObjectId> {
        fn walk(v: &Value, out: &mut Vec<ObjectId>) {
            match v {
                Value::Ref(id) if !out.contains(id) => out.push(*id),
                Value::List(items) => items.iter().for_each(|i| walk(i, out)),
                Value::Map(entries) => entries.iter().for_each(|(k, v)| {
                    walk(k, out);
                    walk(v, out);
                }),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// The deterministic encoding.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the deterministic encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Value::Null => out.push(0xf6),
            Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
            Value::Int(i) => match *i {
                i @ 0..=MAX_INT => head(out, 0, i as u64),
                i @ MIN_INT..0 => head(out, 1, (-1 - i) as u64),
                _ => return Err(EncodeError::IntOutOfRange),
            },
            Value::Float(x) => float(out, *x),
            Value::Str(s) => {
                head(out, 3, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Value::List(items) => {
                head(out, 4, items.len() as u64);
                for v in items {
                    v.encode_into(out)?;
                }
            }
            Value::Map(entries) => {
                let mut encoded = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    encoded.push((k.encode()?, v));
                }
                encoded.sort_by(|a, b| key_order(&a.0, &b.0));
                if encoded.windows(2).any(|w| w[0].0 == w[1].0) {
                    return Err(EncodeError::DuplicateKey);
                }
                head(out, 5, encoded.len() as u64);
                for (k, v) in encoded {
                    out.extend_from_slice(&k);
                    v.encode_into(out)?;
                }
            }
            Value::Ref(id) => {
                head(out, 6, REF_TAG);
                head(out, 2, ObjectId::LEN as u64);
                out.extend_from_slice(&id.0);
            }
        }
        Ok(())
    }

    /// Decodes a CBOR sequence (RFC 8742): values one after another, each
    /// in the deterministic encoding (a module's manifest is one).
    pub fn decode_sequence(bytes: &[u8]) -> Result<Vec<Value>, DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        let mut out = Vec::new();
        while r.at < bytes.len() {
            out.push(r.value(0)?);
        }
        Ok(out)
    }

    /// Decodes `bytes`, which must hold exactly one value in the
    /// deterministic encoding.
    pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        let v = r.value(0)?;
        if r.at != bytes.len() {
            return Err(r.error("bytes after the value"));
        }
        Ok(v)
    }
}

/// The order of encoded map keys: RFC 8949's core deterministic order, the
/// bytewise order of their encodings.
fn key_order(a: &[u8], b: &[u8]) -> core::cmp::Ordering {
    a.cmp(b)
}

/// The head of a data item of major type `major` with argument `n`, in
/// its shortest form.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// `x` in the narrowest float that holds it exactly.
fn float(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
        return;
    }
    let single = x as f32;
    if f64::from(single) != x {
        out.push(0xfb);
        out.extend_from_slice(&x.to_bits().to_be_bytes());
    } else if let Some(half) = half_exact(single) {
        out.push(0xf9);
        out.extend_from_slice(&half.to_be_bytes());
    } else {
        out.push(0xfa);
        out.extend_from_slice(&single.to_bits().to_be_bytes());
    }
}

/// The half-precision bits of `x` (not a NaN), if a half holds it exactly.
fn half_exact(x: f32) -> Option<u16> {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    match exp {
        0xff => Some(sign | 0x7c00),  // infinity (NaNs never get here)
        0 if mant == 0 => Some(sign), // zero
        0 => None,                    // single-precision subnormals are too small
        _ => {
            let e = exp - 127;
            let significand = (1 << 23) | mant;
            if (-14..=15).contains(&e) {
                // A normal half: 10 bits of mantissa.
                (mant & 0x1fff == 0).then(|| sign | (((e + 15) as u16) << 10) | (mant >> 13) as u16)
            } else if (-24..-14).contains(&e) {
                // A subnormal half: m * 2^-24.
                let shift = -(e + 1) as u32;
                (significand & ((1 << shift) - 1) == 0)
                    .then(|| sign | (significand >> shift) as u16)
            } else {
                None
            }
        }
    }
}

/// The value of half-precision `bits`.
fn from_half(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let mant = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => mant * 2f64.powi(-24),
        0x1f if mant == 0.0 => f64::INFINITY,
        0x1f => f64::NAN,
        _ => (1.0 + mant / 1024.0) * 2f64.powi(exp - 15),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, why: &'static str) -> DecodeError {
        DecodeError { at: self.at, why }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.error("the input ends inside a value"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    /// A head: its major type and argument, which must be in shortest form.
    fn head(&mut self) -> Result<(u8, u8, u64), DecodeError> {
        let start = self.at;
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let n = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().unwrap())),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().unwrap())),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap()),
            31 => {
                self.at = start;
                return Err(self.error("an indefinite length"));
            }
            _ => {
                self.at = start;
                return Err(self.error("a reserved head"));
            }
        };
        // Floats (major 7, info 25..27) are checked by value instead.
        let shortest = match info {
            24 => n >= 24,
            25 => n > 0xff,
            26 => n > 0xffff,
            27 => n > 0xffff_ffff,
            _ => true,
        };
        if major != 7 && !shortest {
            self.at = start;
            return Err(self.error("a head longer than it needs to be"));
        }
        Ok((major, info, n))
    }

    fn len(&self, n: u64) -> Result<usize, DecodeError> {
        // Every item takes at least one byte: a longer count cannot fit.
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.at)
            .ok_or_else(|| self.error("a length past the end of the input"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let start = self.at;
        let (major, info, n) = self.head()?;
        Ok(match major {
            0 => Value::Int(i128::from(n)),
            1 => Value::Int(-1 - i128::from(n)),
            2 => {
                let len = self.len(n)?;
                Value::Bytes(self.take(len)?.to_vec())
            }
            3 => {
                let len = self.len(n)?;
                let s = self.take(len)?;
                let s = core::str::from_utf8(s).map_err(|_| DecodeError {
                    at: start,
                    why: "a text string that is not UTF-8",
                })?;
                Value::Str(s.into())
            }
            4 | 5 if depth >= MAX_DEPTH => {
                return Err(self.error("lists or maps nested too deeply"));
            }
            4 => {
                let len = self.len(n)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            5 => {
                let len = self.len(n)?;
                let mut entries = Vec::with_capacity(len);
                let bytes = self.bytes;
                let mut last: Option<&[u8]> = None;
                for _ in 0..len {
                    let key_at = self.at;
                    let k = self.value(depth + 1)?;
                    let key = &bytes[key_at..self.at];
                    if last.is_some_and(|l| key_order(l, key) != core::cmp::Ordering::Less) {
                        return Err(DecodeError {
                            at: key_at,
                            why: "map keys out of order, or a key twice",
                        });
                    }
                    last = Some(key);
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                }
                Value::Map(entries)
            }
            6 if n == REF_TAG => {
                let (m, _, len) = self.head()?;
                if m != 2 || len != ObjectId::LEN as u64 {
                    return Err(DecodeError {
                        at: start,
                        why: "a reference that is not a 32-byte string",
                    });
                }
                let id = self.take(ObjectId::LEN)?;
                Value::Ref(ObjectId(id.try_into().unwrap()))
            }
            6 => {
                self.at = start;
                return Err(self.error("a tag other than an object reference"));
            }
            _ => match (info, n) {
                (20, _) => Value::Bool(false),
                (21, _) => Value::Bool(true),
                (22, _) => Value::Null,
                (25..=27, _) => {
                    let x = match info {
                        25 => from_half(n as u16),
                        26 => f64::from(f32::from_bits(n as u32)),
                        _ => f64::from_bits(n),
                    };
                    let mut canonical = Vec::with_capacity(9);
                    float(&mut canonical, x);
                    if canonical != self.bytes[start..self.at] {
                        self.at = start;
                        return Err(self.error(
                            "a float wider than it needs to be, or a NaN not written 0xf97e00",
                        ));
                    }
                    Value::Float(x)
                }
                _ => {
                    self.at = start;
                    return Err(self.error("a simple value other than false, true and null"));
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn enc(v: &Value) -> Vec<u8> {
        v.encode().unwrap()
    }

    #[test]
    fn rfc_8949_appendix_a_examples_in_their_deterministic_form() {
        let cases: &[(Value, &str)] = &[
            (Value::Int(0), "00"),
            (Value::Int(23), "17"),
            (Value::Int(24), "1818"),
            (Value::Int(1000), "1903e8"),
            (Value::Int(1_000_000), "1a000f4240"),
            (Value::Int(1_000_000_000_000), "1b000000e8d4a51000"),
            (Value::Int(MAX_INT), "1bffffffffffffffff"),
            (Value::Int(MIN_INT), "3bffffffffffffffff"),
            (Value::Int(-1), "20"),
            (Value::Int(-1000), "3903e7"),
            (Value::Float(0.0), "f90000"),
            (Value::Float(-0.0), "f98000"),
            (Value::Float(1.0), "f93c00"),
            (Value::Float(1.1), "fb3ff199999999999a"),
            (Value::Float(1.5), "f93e00"),
            (Value::Float(65504.0), "f97bff"),
            (Value::Float(100000.0), "fa47c35000"),
            (Value::Float(3.4028234663852886e38), "fa7f7fffff"),
            (Value::Float(1.0e300), "fb7e37e43c8800759c"),
            (Value::Float(5.960464477539063e-8), "f90001"),
            (Value::Float(0.00006103515625), "f90400"),
            (Value::Float(-4.0), "f9c400"),
            (Value::Float(-4.1), "fbc010666666666666"),
            (Value::Float(f64::INFINITY), "f97c00"),
            (Value::Float(f64::NAN), "f97e00"),
            (Value::Float(f64::NEG_INFINITY), "f9fc00"),
            (Value::Bool(false), "f4"),
            (Value::Bool(true), "f5"),
            (Value::Null, "f6"),
            (Value::Bytes(vec![]), "40"),
            (Value::Bytes(vec![1, 2, 3, 4]), "4401020304"),
            (Value::Str("".into()), "60"),
            (Value::Str("a".into()), "6161"),
            (Value::Str("IETF".into()), "6449455446"),
            (Value::Str("\u{00fc}".into()), "62c3bc"),
            (Value::Str("\u{6c34}".into()), "63e6b0b4"),
            (Value::List(vec![]), "80"),
            (
                Value::List(vec![
                    Value::Int(1),
                    Value::List(vec![Value::Int(2), Value::Int(3)]),
                ]),
                "8201820203",
            ),
            (Value::map([]), "a0"),
            (
                Value::map([
                    (Value::Int(3), Value::Int(4)),
                    (Value::Int(1), Value::Int(2)),
                ]),
                "a201020304",
            ),
            (
                Value::map([
                    (
                        Value::Str("b".into()),
                        Value::List(vec![Value::Int(2), Value::Int(3)]),
                    ),
                    (Value::Str("a".into()), Value::Int(1)),
                ]),
                "a26161016162820203",
            ),
        ];
        for (v, want) in cases {
            let want = hex(&want.replace(' ', ""));
            assert_eq!(enc(v), want, "{v:?}");
            let back = Value::decode(&want).unwrap();
            if let Value::Float(x) = v
                && x.is_nan()
            {
                assert!(matches!(back, Value::Float(y) if y.is_nan()));
            } else {
                assert_eq!(&back, v, "{v:?}");
            }
        }
    }

    #[test]
    fn map_keys_sort_by_their_encoding_and_may_not_repeat() {
        // 10 (0x0a) < 100 (0x1864) < -1 (0x20) < "z" (0x617a) < "aa"
        // (0x626161) < [100] < [-1] < false.
        let m = Value::map([
            (Value::Bool(false), Value::Null),
            (Value::List(vec![Value::Int(-1)]), Value::Null),
            (Value::List(vec![Value::Int(100)]), Value::Null),
            (Value::Str("aa".into()), Value::Null),
            (Value::Str("z".into()), Value::Null),
            (Value::Int(-1), Value::Null),
            (Value::Int(100), Value::Null),
            (Value::Int(10), Value::Null),
        ]);
        assert_eq!(
            enc(&m),
            hex("a80af61864f620f6617af6626161f6811864f68120f6f4f6")
        );
        let dup = Value::map([
            (Value::Int(1), Value::Null),
            (Value::Int(1), Value::Bool(true)),
        ]);
        assert_eq!(dup.encode(), Err(EncodeError::DuplicateKey));
    }

    #[test]
    fn references_are_tagged_ids() {
        let id = ObjectId([7; 32]);
        let bytes = enc(&Value::Ref(id));
        assert_eq!(&bytes[..7], &hex("da777261795820")[..]);
        assert_eq!(&bytes[7..], &[7; 32]);
        assert_eq!(Value::decode(&bytes).unwrap(), Value::Ref(id));
        let mut short = hex("da777261795810");
        short.extend_from_slice(&[0; 16]);
        assert!(Value::decode(&short).is_err(), "a 16-byte reference");
    }

    #[test]
    fn integers_past_64_bits_do_not_encode() {
        assert_eq!(
            Value::Int(MAX_INT + 1).encode(),
            Err(EncodeError::IntOutOfRange)
        );
        assert_eq!(
            Value::Int(MIN_INT - 1).encode(),
            Err(EncodeError::IntOutOfRange)
        );
    }

    #[test]
    fn every_other_form_of_a_value_is_refused() {
        for (bad, why) in [
            ("1817", "a head longer than it needs to be"),
            ("190017", "a head longer than it needs to be"),
            ("3800", "a head longer than it needs to be"),
            ("5801ff", "a head longer than it needs to be"),
            ("9f01ff", "an indefinite length"),
            ("5f4101ff", "an indefinite length"),
            (
                "fa3f800000",
                "a float wider than it needs to be, or a NaN not written 0xf97e00",
            ),
            (
                "fb3ff0000000000000",
                "a float wider than it needs to be, or a NaN not written 0xf97e00",
            ),
            (
                "f97e01",
                "a float wider than it needs to be, or a NaN not written 0xf97e00",
            ),
            (
                "fa7fc00000",
                "a float wider than it needs to be, or a NaN not written 0xf97e00",
            ),
            ("a203040102", "map keys out of order, or a key twice"),
            ("a201020103", "map keys out of order, or a key twice"),
            ("c11a514b67b0", "a tag other than an object reference"),
            ("f7", "a simple value other than false, true and null"),
            ("f820", "a simple value other than false, true and null"),
            ("62c328", "a text string that is not UTF-8"),
            ("0000", "bytes after the value"),
            ("1a0000", "the input ends inside a value"),
            ("9a7fffffff", "a length past the end of the input"),
            ("1c", "a reserved head"),
        ] {
            let e = Value::decode(&hex(bad)).unwrap_err();
            assert_eq!(e.why, why, "{bad}");
        }
        assert!(Value::decode(&[]).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = vec![0x81; MAX_DEPTH + 1];
        let mut bytes = deep.clone();
        bytes.push(0x00);
        assert_eq!(
            Value::decode(&bytes).unwrap_err().why,
            "lists or maps nested too deeply"
        );
        let mut ok = vec![0x81; MAX_DEPTH];
        ok.push(0x00);
        assert!(Value::decode(&ok).is_ok());
    }

    #[test]
    fn floats_take_the_narrowest_exact_width() {
        // Every half-precision value, normal and subnormal, round-trips as a half.
        for bits in 0u16..=0xffff {
            let x = from_half(bits);
            if x.is_nan() {
                continue;
            }
            let mut out = Vec::new();
            float(&mut out, x);
            assert_eq!(
                out,
                [&[0xf9][..], &bits.to_be_bytes()].concat(),
                "{bits:#x}"
            );
        }
        // Just past a half's precision: a single.
        let x = f64::from(f32::from_bits(0x3f80_1000)); // 1 + 2^-11: 11 bits of mantissa
        let mut out = Vec::new();
        float(&mut out, x);
        assert_eq!(out[0], 0xfa);
    }
}
