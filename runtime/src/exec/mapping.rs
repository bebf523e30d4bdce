//! Objects mapped into a guest's linear memory instead of copied into it.
//!
//! An object of [`MAP_MIN`](crate::objects::blob::MAP_MIN) bytes or more lives in a
//! file (a memfd, or the spill file it was read back from). To hand it to a
//! guest, the host makes a region of the guest's memory (it grows the memory
//! by whole wasm pages, or reuses a region the guest gave back) and maps the
//! file's pages over it, copy-on-write (`MAP_PRIVATE | MAP_FIXED`): the guest
//! reads the object where it is, and a write changes only the guest's own
//! copy of that page. Ten guests reading one object share its pages.
//!
//! Invariants:
//!
//! - A region is either *in use*, mapped from one object's file, whose
//!   [`Bytes`] it holds so that the file's pages never change under it, or
//!   *free*: fresh anonymous memory, as the guest would get from growing.
//! - Every in-use region is replaced by fresh anonymous memory before its
//!   [`Bytes`] go and before the instance's memory goes back to the pool:
//!   when the guest unmaps it, and when the [`Mappings`] drop (on every way
//!   an instance ends: a return, a trap, a timeout, a kill; wasmtime drops a
//!   store's data before it deallocates the instance). The pool's reset
//!   cannot do it: `madvise(MADV_DONTNEED)` on a private file mapping
//!   brings the file's bytes back, so the slot's next instance would see
//!   this object instead of zeros.
//! - If the host ever cannot restore anonymous memory, it aborts rather than
//!   risk handing one guest's object to another.

use crate::objects::blob::{Bytes, PAGE};
use std::os::fd::AsRawFd;
use wasmtime::{Caller, Memory};

/// The size of a wasm page: regions are made of whole ones.
const WASM_PAGE: usize = 64 << 10;

/// Store data that holds mapped objects: the instance's memory, and its
/// regions.
pub(crate) trait Mapped: 'static {
    /// The instance's linear memory, once it is instantiated.
    fn memory(&self) -> Option<Memory>;
    /// Its regions.
    fn mappings(&mut self) -> &mut Mappings;
}

/// The regions of one instance's memory that hold (or held) mapped objects.
#[derive(Default)]
pub(crate) struct Mappings {
    regions: Vec<Region>,
}

/// A region of guest memory made for mapped objects.
struct Region {
    /// Its offset in the guest's memory.
    guest: u32,
    /// Its address in the host (the memory never moves: pooled memories
    /// are reserved whole).
    host: usize,
    /// Its size: whole wasm pages.
    size: usize,
    /// The object mapped over its start, and how many bytes of it (whole
    /// host pages); `None` when free.
    object: Option<(Bytes, usize)>,
}

impl Mappings {
    /// Maps `bytes` (which must have a [`file`](Bytes::file)) into the
    /// calling guest's memory and returns its offset there: in a free
    /// region large enough, or in one made by growing the memory. Growing
    /// past the instance's memory limit fails as the guest's own growth
    /// would (the call traps and fails with `OUT_OF_MEMORY`).
    pub fn map<T: Mapped>(caller: &mut Caller<'_, T>, bytes: Bytes) -> wasmtime::Result<u32> {
        let Some(memory) = caller.data().memory() else {
            return Err(wasmtime::Error::msg(
                "mapping into an instance without memory",
            ));
        };
        let fd = bytes
            .file()
            .expect("only objects in files are mapped")
            .as_raw_fd();
        let len = bytes.len().next_multiple_of(PAGE);
        let free = caller
            .data_mut()
            .mappings()
            .regions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.object.is_none() && r.size >= len)
            .min_by_key(|(_, r)| r.size)
            .map(|(i, _)| i);
        let i = match free {
            Some(i) => i,
            None => {
                let size = len.next_multiple_of(WASM_PAGE);
                let pages = (size / WASM_PAGE) as u64;
                let old = memory.grow(&mut *caller, pages)?;
                let guest = old * WASM_PAGE as u64;
                let guest = u32::try_from(guest).expect("wasm32 memory is at most 4 GiB");
                let base = memory.data_ptr(&*caller) as usize;
                let host = base + guest as usize;
                let maps = caller.data_mut().mappings();
                // Regions are restored by host address: the memory must
                // never move. Pooled memories are reserved whole and never
                // do; anything else is a configuration this module refuses.
                if let Some(r) = maps.regions.first()
                    && r.host - r.guest as usize != base
                {
                    eprintln!("wray: a guest's memory moved while objects were mapped into it");
                    std::process::abort();
                }
                maps.regions.push(Region {
                    guest,
                    host,
                    size,
                    object: None,
                });
                maps.regions.len() - 1
            }
        };
        let region = &mut caller.data_mut().mappings().regions[i];
        // SAFETY: the range is a page-aligned part of this instance's
        // accessible linear memory, which no host reference points into
        // now; `fd` stays open and unchanged while `bytes` (kept in the
        // region) lives, and its first `len` bytes exist (a memfd of whole
        // pages, or a file whose last partial page reads as zeros).
        let mapped = unsafe {
            libc::mmap(
                region.host as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                fd,
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            // A failed MAP_FIXED may have unmapped the range already.
            restore(region.host, len);
            return Err(wasmtime::Error::msg(format!(
                "cannot map an object of {} bytes: {e}",
                bytes.len()
            )));
        }
        region.object = Some((bytes, len));
        Ok(region.guest)
    }

    /// Gives back the in-use region at guest offset `guest`: fresh zeros
    /// replace the object. False when no object is mapped there.
    pub fn unmap(&mut self, guest: u32) -> bool {
        let Some(region) = self
            .regions
            .iter_mut()
            .find(|r| r.guest == guest && r.object.is_some())
        else {
            return false;
        };
        let (bytes, len) = region.object.take().expect("found in use");
        restore(region.host, len);
        drop(bytes);
        true
    }
}

impl Drop for Mappings {
    fn drop(&mut self) {
        for r in &mut self.regions {
            if let Some((bytes, len)) = r.object.take() {
                restore(r.host, len);
                drop(bytes);
            }
        }
    }
}

/// Replaces `len` bytes at `host` (page-aligned, inside a guest's memory)
/// with fresh anonymous memory; aborts the process if it cannot.
fn restore(host: usize, len: usize) {
    // SAFETY: the range is part of a guest's linear memory that this module
    // mapped; replacing it with zeroed pages of the same protection is what
    // the guest's memory holds anyway where nothing was written.
    let p = unsafe {
        libc::mmap(
            host as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        eprintln!(
            "wray: cannot restore {len} bytes of guest memory after a mapped object ({}); \
             aborting rather than show it to another guest",
            std::io::Error::last_os_error()
        );
        std::process::abort();
    }
}
