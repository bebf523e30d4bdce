//! Guest memory, reached in one place.
//!
//! Host functions never index guest memory themselves: they ask [`Guest`]
//! for a range given as a guest pointer and length, which checks it against
//! the memory's current size (in 64-bit arithmetic, so nothing wraps) before
//! handing out a slice. Every failure is an [`AbiViolation`] that names the
//! host function, and traps the guest; the host never panics on guest input
//! and never allocates a guest-given size before checking it.

use crate::exec::state::InstanceState;
use std::fmt;
use wasmtime::Caller;
use wray_abi::{ObjectId, Status, import};

/// Most object ids one call may name: `object_wait`'s ids, or the
/// references of one value. The host allocates for each, so a guest's
/// count is checked against this before anything is read.
pub(crate) const MAX_IDS: u32 = 1 << 20;

/// A guest broke the ABI: a pointer or length out of bounds, a missing
/// memory export, a malformed argument. Traps the guest.
#[derive(Debug)]
pub(crate) struct AbiViolation {
    /// The host function that was called.
    pub function: &'static str,
    /// What was wrong.
    pub detail: String,
}

impl fmt::Display for AbiViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.function, self.detail)
    }
}

impl std::error::Error for AbiViolation {}

impl AbiViolation {
    /// The trap for a violation in `function`.
    pub fn error(function: &'static str, detail: impl Into<String>) -> wasmtime::Error {
        wasmtime::Error::new(AbiViolation {
            function,
            detail: detail.into(),
        })
    }
}

/// The calling guest's linear memory, for the duration of one host call
/// (or one synchronous stretch of it: never hold it across an `await`,
/// memory can grow and move meanwhile).
pub(crate) struct Guest<'a> {
    mem: &'a mut [u8],
    function: &'static str,
}

impl<'a> Guest<'a> {
    /// The memory and the instance state of `caller`: every host function
    /// starts here. It also settles the releases the guest left waiting
    /// ([`RefTable::settle`](crate::exec::state::RefTable::settle)), except
    /// in `object_release`, which makes them.
    pub fn of(
        caller: &'a mut Caller<'_, InstanceState>,
        function: &'static str,
    ) -> wasmtime::Result<(Guest<'a>, &'a mut InstanceState)> {
        let Some(memory) = caller.data().memory else {
            return Err(AbiViolation::error(
                function,
                "the module exports no linear memory named `memory`",
            ));
        };
        let (mem, state) = memory.data_and_store_mut(caller);
        if function != import::OBJECT_RELEASE {
            state.refs.settle(&state.env.objects);
        }
        Ok((Guest { mem, function }, state))
    }

    fn violation(&self, detail: String) -> wasmtime::Error {
        AbiViolation::error(self.function, detail)
    }

    /// Checks that `[ptr, ptr + len)` lies inside memory.
    pub fn check(&self, ptr: u32, len: u64) -> wasmtime::Result<std::ops::Range<usize>> {
        let end = u64::from(ptr) + len;
        if end > self.mem.len() as u64 {
            return Err(self.violation(format!(
                "range {ptr:#x}+{len} is outside guest memory of {} bytes",
                self.mem.len()
            )));
        }
        Ok(ptr as usize..end as usize)
    }

    /// `len` bytes at `ptr`.
    pub fn bytes(&self, ptr: u32, len: u32) -> wasmtime::Result<&[u8]> {
        let r = self.check(ptr, u64::from(len))?;
        Ok(&self.mem[r])
    }

    /// `len` writable bytes at `ptr`.
    pub fn bytes_mut(&mut self, ptr: u32, len: u32) -> wasmtime::Result<&mut [u8]> {
        let r = self.check(ptr, u64::from(len))?;
        Ok(&mut self.mem[r])
    }

    /// Copies `data` to `ptr`.
    pub fn write(&mut self, ptr: u32, data: &[u8]) -> wasmtime::Result<()> {
        let r = self.check(ptr, data.len() as u64)?;
        self.mem[r].copy_from_slice(data);
        Ok(())
    }

    /// Writes a little-endian `u32` to `ptr`.
    pub fn write_u32(&mut self, ptr: u32, value: u32) -> wasmtime::Result<()> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// The ABI's variable-length output: writes `data`'s length to
    /// `out_len`, then `data` to `buf` if it fits in `cap`; otherwise
    /// nothing more, and `BufferTooSmall` (the guest asks again with room
    /// for the length written).
    pub fn write_sized(
        &mut self,
        buf: u32,
        cap: u32,
        out_len: u32,
        data: &[u8],
    ) -> wasmtime::Result<Status> {
        let Ok(len) = u32::try_from(data.len()) else {
            return Err(self.violation(format!("{} bytes exceed 4 GiB", data.len())));
        };
        self.write_u32(out_len, len)?;
        if len > cap {
            return Ok(Status::BufferTooSmall);
        }
        self.write(buf, data)?;
        Ok(Status::Ok)
    }

    /// The 32-byte object id at `ptr`.
    pub fn object_id(&self, ptr: u32) -> wasmtime::Result<ObjectId> {
        let b = self.bytes(ptr, ObjectId::LEN as u32)?;
        Ok(ObjectId::from_slice(b).expect("the slice has the id's length"))
    }

    /// `n` consecutive 32-byte object ids at `ptr`; `None` when `n` is
    /// past [`MAX_IDS`] (the guest gets `TOO_LARGE`), found before anything
    /// is read or allocated.
    pub fn object_ids(&self, ptr: u32, n: u32) -> wasmtime::Result<Option<Vec<ObjectId>>> {
        if n > MAX_IDS {
            return Ok(None);
        }
        let r = self.check(ptr, u64::from(n) * ObjectId::LEN as u64)?;
        Ok(Some(
            self.mem[r]
                .chunks_exact(ObjectId::LEN)
                .map(|c| ObjectId::from_slice(c).expect("chunks have the id's length"))
                .collect(),
        ))
    }
}
