//! Identifiers that cross the guest boundary.
//!
//! Ids are global: they mean the same on every node of a cluster, and they
//! are plain bytes, so a guest can store them inside values it passes around.
//!
//! - [`ObjectId`] (32 bytes) names an immutable object. An object made by
//!   `put` is named by the blake3 digest of its bytes. The `n`-th return value
//!   of a task is named before the task runs: the task id, the index and a
//!   marker byte, so a return id always leads back to the task that makes it.
//! - [`TaskId`] and [`ActorId`] (16 bytes): the id of the node that created
//!   them, a per-node sequence number, and a kind byte.

use core::fmt;

/// Formats bytes as lower-case hex.
fn hex(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Parses lower- or upper-case hex into exactly `N` bytes.
fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Marker in the last byte of an [`ObjectId`] that names a task's return value.
const RETURN_MARKER: u8 = 0x52; // 'R'

/// The name of an immutable object: 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// Size of the id in bytes, as laid out in guest memory.
    pub const LEN: usize = 32;

    /// The id of the `index`-th return value of `task`.
    pub fn for_return(task: TaskId, index: u32) -> ObjectId {
        let mut b = [0u8; 32];
        b[..16].copy_from_slice(&task.0);
        b[16..20].copy_from_slice(&index.to_le_bytes());
        b[31] = RETURN_MARKER;
        ObjectId(b)
    }

    /// The task and return index, when this id names a task's return value.
    pub fn task_return(&self) -> Option<(TaskId, u32)> {
        let b = &self.0;
        if b[31] != RETURN_MARKER || b[20..31].iter().any(|&x| x != 0) {
            return None;
        }
        let mut t = [0u8; 16];
        t.copy_from_slice(&b[..16]);
        let idx = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
        Some((TaskId(t), idx))
    }

    /// Reads an id from exactly 32 bytes.
    pub fn from_slice(s: &[u8]) -> Option<ObjectId> {
        Some(ObjectId(s.try_into().ok()?))
    }

    /// Parses the 64-character hex form.
    pub fn parse(s: &str) -> Option<ObjectId> {
        parse_hex(s).map(ObjectId)
    }

    /// A short prefix for humans (12 hex digits).
    pub fn short(&self) -> ShortHex<'_> {
        ShortHex(&self.0[..6])
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(&self.0, f)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

/// A prefix of an id, printed as hex.
pub struct ShortHex<'a>(&'a [u8]);

impl fmt::Display for ShortHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(self.0, f)
    }
}

macro_rules! seq_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(transparent)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// Size of the id in bytes, as laid out in guest memory.
            pub const LEN: usize = 16;

            /// The id with sequence number `seq`, created by node `node`.
            pub fn new(node: u32, seq: u64) -> Self {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&node.to_le_bytes());
                b[4..12].copy_from_slice(&seq.to_le_bytes());
                b[15] = $kind;
                Self(b)
            }

            /// The node that created the id.
            pub fn node(&self) -> u32 {
                u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
            }

            /// The sequence number within its node.
            pub fn seq(&self) -> u64 {
                let mut s = [0u8; 8];
                s.copy_from_slice(&self.0[4..12]);
                u64::from_le_bytes(s)
            }

            /// Reads an id from exactly 16 bytes.
            pub fn from_slice(s: &[u8]) -> Option<Self> {
                Some(Self(s.try_into().ok()?))
            }

            /// Parses the 32-character hex form.
            pub fn parse(s: &str) -> Option<Self> {
                parse_hex(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                hex(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({}:{})"), self.node(), self.seq())
            }
        }
    };
}

seq_id!(
    /// The id of one task (every attempt of it shares the id).
    TaskId,
    b'T'
);
seq_id!(
    /// The id of one actor (every restart of it shares the id).
    ActorId,
    b'A'
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn return_ids_lead_back_to_their_task() {
        let t = TaskId::new(7, 123_456_789);
        let id = ObjectId::for_return(t, 3);
        assert_eq!(id.task_return(), Some((t, 3)));
        assert_eq!(t.node(), 7);
        assert_eq!(t.seq(), 123_456_789);
    }

    #[test]
    fn digests_are_not_return_ids() {
        let mut d = [0xabu8; 32];
        assert_eq!(ObjectId(d).task_return(), None);
        d[31] = RETURN_MARKER;
        assert_eq!(ObjectId(d).task_return(), None, "non-zero padding");
    }

    #[test]
    fn hex_round_trips() {
        let id = ObjectId::for_return(TaskId::new(1, 2), 0);
        assert_eq!(ObjectId::parse(&id.to_string()), Some(id));
        let a = ActorId::new(3, 4);
        assert_eq!(ActorId::parse(&a.to_string()), Some(a));
        assert_eq!(ActorId::parse("zz"), None);
        assert_eq!(ObjectId::parse(&"g".repeat(64)), None);
    }
}
