//! Immutable, aligned byte buffers: the storage behind every object.
//!
//! A [`Blob`] owns its bytes in an allocation aligned to
//! [`VALUE_ALIGN`](wray_abi::VALUE_ALIGN) (rkyv needs aligned input), knows
//! the blake3 digest of its bytes, and lists the objects the value refers to.
//!
//! Blobs of [`MAP_MIN`] bytes and more live in shared memory (a memfd) that
//! the host maps into a reading guest's linear memory instead of copying
//! them ([`crate::exec::mapping`]); read back from a spill file, they are a
//! mapping of that file. Either way a [`Bytes`] handle can hand out the file
//! to map, and the bytes never change while one exists.
//!
//! Every live blob is counted in [`StoreStats`], so the object store knows
//! its memory use without walking its tables.
//!
//! Freed shared buffers are kept in a process-wide cache and reused (up to
//! a quarter of the largest object store's memory, at least
//! [`SHARED_CACHE_MIN`]; emptied when a store must spill): writing into
//! pages that are already there runs at memory speed, while a fresh
//! buffer first has the kernel find and zero every page, about 0.75 s per
//! GiB on this project's 2-core machine, which made that, not the
//! network, the limit of a large pull from another node. (Ray's object
//! store keeps its memory mapped for the same reason.) Large copies and
//! digests run on several threads.

use rayon::prelude::*;
use std::alloc::{self, Layout};
use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wray_abi::{ObjectId, VALUE_ALIGN};

/// Blobs smaller than this are never spilled: a file would cost as much
/// as it frees. So they are never lost either, and the task that made one
/// keeps no lineage for it (as in Ray, where small objects live in the
/// owner's memory).
pub(crate) const SPILL_MIN: usize = 4 << 10;

/// Blobs at least this large live in shared memory and are mapped into the
/// guests that read them rather than copied. Below it, a copy costs less
/// than the mapping's system calls and page faults (see
/// `docs/performance.md`).
pub(crate) const MAP_MIN: usize = 256 << 10;
/// The host's page size, which mappings are made of.
pub(crate) const PAGE: usize = 4096;
/// Bytes of freed shared buffers kept for reuse, at least.
const SHARED_CACHE_MIN: usize = 512 << 20;
/// Bytes of freed shared buffers kept for reuse, at most: the largest
/// store's memory / 4, or [`SHARED_CACHE_MIN`] ([`keep_freed`]).
static SHARED_CACHE_LIMIT: AtomicUsize = AtomicUsize::new(SHARED_CACHE_MIN);
/// Blobs at least this large are copied and hashed on several threads.
const PARALLEL_HASH_MIN: usize = 1 << 20;

/// How an object's bytes are encoded, as the host knows it (as Ray records
/// an object's serialization in its metadata): written by the Rust SDK or
/// the typed host API (`rkyv`), as a cross-language value (`cbor`: the
/// host's `put_value`, HTTP and the Python client, and functions whose
/// manifest says so), or unknown bytes (`raw`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    /// Bytes the host knows nothing about.
    Raw = 0,
    /// An rkyv archive, which only Rust reads.
    Rkyv = 1,
    /// A cross-language value (deterministic CBOR).
    Cbor = 2,
}

impl Encoding {
    /// The encoding numbered `v` (as [`Encoding`]'s discriminants; an
    /// unknown number is raw).
    pub(crate) fn from_u8(v: u8) -> Encoding {
        match v {
            1 => Encoding::Rkyv,
            2 => Encoding::Cbor,
            _ => Encoding::Raw,
        }
    }

    /// What a manifest calls the encoding of a function's values.
    pub fn of_manifest(name: &str) -> Encoding {
        match name {
            "rkyv" => Encoding::Rkyv,
            "cbor" => Encoding::Cbor,
            _ => Encoding::Raw,
        }
    }

    /// `raw`, `rkyv` or `cbor`.
    #[cfg(feature = "node")] // the state API's listing
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Rkyv => "rkyv",
            Encoding::Cbor => "cbor",
        }
    }
}

/// Memory use of all live blobs.
#[derive(Debug, Default)]
pub(crate) struct StoreStats {
    /// Bytes of live blobs held in memory.
    pub bytes: AtomicU64,
    /// Bytes of live blobs spilled to disk.
    pub spilled_bytes: AtomicU64,
    /// Number of live blobs.
    pub blobs: AtomicU64,
    /// Numbers blobs, to name their spill files apart.
    serial: AtomicU64,
    /// A logical clock of uses, for picking what to spill.
    clock: AtomicU64,
}

/// An owned, aligned byte buffer, immutable once written.
struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// The allocation's or mapping's size (at least `len`; a reused shared
    /// buffer may be larger).
    cap: usize,
    backing: Backing,
}

/// What holds an [`AlignedBuf`]'s bytes.
enum Backing {
    /// Nothing: an empty buffer.
    Empty,
    /// The heap, with alignment `VALUE_ALIGN`.
    Heap,
    /// A memfd of `cap` bytes, mapped shared and writable.
    Shared(OwnedFd),
    /// A file (a spill file read back), mapped read-only.
    File(File),
}

// SAFETY: AlignedBuf owns its allocation or mapping exclusively and is
// immutable once written, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access is read-only.
unsafe impl Sync for AlignedBuf {}

/// A freed shared buffer: its memfd, its mapping and the mapping's size.
struct FreeBuf(OwnedFd, NonNull<u8>, usize);

// SAFETY: a FreeBuf is a mapping nobody else references.
unsafe impl Send for FreeBuf {}

/// Freed shared buffers, for reuse.
static SHARED_CACHE: Mutex<Vec<FreeBuf>> = Mutex::new(Vec::new());

impl AlignedBuf {
    /// Allocates a buffer holding a copy of `src`.
    fn copy_of(src: &[u8]) -> AlignedBuf {
        let mut buf = AlignedBuf::uninit(src.len());
        // SAFETY: the buffer has room for `len` bytes and cannot overlap
        // `src`.
        copy(unsafe { buf.room(0, src.len()) }, src);
        buf
    }

    /// Allocates a buffer of `len` bytes whose contents are not set: they
    /// must all be written before the buffer is read.
    fn uninit(len: usize) -> AlignedBuf {
        if len == 0 {
            // A dangling, aligned pointer: no allocation for empty values.
            let ptr = NonNull::new(VALUE_ALIGN as *mut u8).expect("alignment is non-zero");
            return AlignedBuf {
                ptr,
                len,
                cap: 0,
                backing: Backing::Empty,
            };
        }
        if len >= MAP_MIN {
            return Self::shared(len);
        }
        let layout =
            Layout::from_size_align(len, VALUE_ALIGN).expect("blob size overflows a Layout");
        AlignedBuf {
            ptr: alloc_layout(layout),
            len,
            cap: len,
            backing: Backing::Heap,
        }
    }

    /// A buffer in shared memory: a cached one of fitting size, or a fresh
    /// memfd. The bytes from `len` to the end of its last page are zero, so
    /// that mapping whole pages shows a guest nothing else.
    fn shared(len: usize) -> AlignedBuf {
        let reused = {
            let mut cache = SHARED_CACHE.lock().unwrap_or_else(|e| e.into_inner());
            // The smallest cached buffer that fits without wasting half.
            let best = cache
                .iter()
                .enumerate()
                .filter(|(_, b)| b.2 >= len && b.2 / 2 <= len)
                .min_by_key(|(_, b)| b.2)
                .map(|(i, _)| i);
            best.map(|i| cache.swap_remove(i))
        };
        let FreeBuf(fd, ptr, cap) = reused.unwrap_or_else(|| {
            let cap = len.next_multiple_of(PAGE);
            let (fd, ptr) = new_memfd(cap)
                .unwrap_or_else(|e| panic!("cannot make {cap} bytes of shared memory: {e}"));
            FreeBuf(fd, ptr, cap)
        });
        let tail = len.next_multiple_of(PAGE).min(cap) - len;
        // SAFETY: `len + tail` is within the mapping of `cap` bytes, which
        // this buffer now owns alone.
        unsafe { ptr.as_ptr().add(len).write_bytes(0, tail) };
        AlignedBuf {
            ptr,
            len,
            cap,
            backing: Backing::Shared(fd),
        }
    }

    /// Maps the `len` bytes of `file` read-only.
    fn map_file(file: File, len: usize) -> std::io::Result<AlignedBuf> {
        let cap = len.next_multiple_of(PAGE);
        // SAFETY: a fresh mapping chosen by the kernel; `file` stays open
        // with it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                cap,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(AlignedBuf {
            ptr: NonNull::new(ptr.cast()).expect("mmap does not return null"),
            len,
            cap,
            backing: Backing::File(file),
        })
    }

    /// The `len` bytes at `at`, to be written.
    ///
    /// # Safety
    ///
    /// `at + len` is at most the buffer's length, and the buffer is not a
    /// read-only file mapping.
    unsafe fn room(&mut self, at: usize, len: usize) -> &mut [u8] {
        debug_assert!(at + len <= self.len);
        debug_assert!(!matches!(self.backing, Backing::File(_)));
        // SAFETY: in bounds by the caller's promise; `&mut self` makes the
        // bytes ours alone.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(at), len) }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialised bytes (or dangling and
        // aligned with len 0) for the life of self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The file that holds the bytes from offset 0, if they are in one that
    /// can be mapped.
    fn file(&self) -> Option<BorrowedFd<'_>> {
        match &self.backing {
            Backing::Shared(fd) => Some(fd.as_fd()),
            Backing::File(f) => Some(f.as_fd()),
            Backing::Empty | Backing::Heap => None,
        }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.backing, Backing::Empty) {
            Backing::Empty => {}
            Backing::Heap => {
                let layout =
                    Layout::from_size_align(self.cap, VALUE_ALIGN).expect("layout was valid");
                // SAFETY: allocated by `alloc_layout` with this very layout.
                unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
            }
            Backing::Shared(fd) => {
                let mut cache = SHARED_CACHE.lock().unwrap_or_else(|e| e.into_inner());
                let cached: usize = cache.iter().map(|b| b.2).sum();
                if cached + self.cap <= SHARED_CACHE_LIMIT.load(Ordering::Relaxed) {
                    cache.push(FreeBuf(fd, self.ptr, self.cap));
                    return;
                }
                drop(cache);
                // SAFETY: our own mapping of `cap` bytes; nothing refers to
                // it any more. The memfd closes with `fd`.
                unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.cap) };
            }
            Backing::File(_file) => {
                // SAFETY: as above; the file closes after.
                unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.cap) };
            }
        }
    }
}

/// Lets the cache of freed shared buffers keep up to a quarter of a
/// store's `memory` (the largest store's, if several).
pub(crate) fn keep_freed(memory: u64) {
    let quarter = usize::try_from(memory / 4).unwrap_or(usize::MAX);
    SHARED_CACHE_LIMIT.fetch_max(quarter, Ordering::Relaxed);
}

/// Gives the freed shared buffers kept for reuse back to the system (a
/// store is short of memory).
pub(crate) fn release_freed() {
    let freed = std::mem::take(&mut *SHARED_CACHE.lock().unwrap_or_else(|e| e.into_inner()));
    for FreeBuf(_fd, ptr, cap) in freed {
        // SAFETY: a cached mapping of `cap` bytes nobody refers to; its
        // memfd closes with `_fd`, after.
        unsafe { libc::munmap(ptr.as_ptr().cast(), cap) };
    }
}

/// Makes a memfd of `cap` bytes and maps it shared and writable.
fn new_memfd(cap: usize) -> std::io::Result<(OwnedFd, NonNull<u8>)> {
    // SAFETY: a static C string; the flags are valid.
    let raw = unsafe { libc::memfd_create(c"wray-object".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let size = libc::off_t::try_from(cap).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: plain system calls on our own descriptor.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh mapping chosen by the kernel, of the memfd's size.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            cap,
            libc::PROT_READ | libc::PROT_WRITE,
            // Not populated: the copy that fills it runs on several threads,
            // which fault its pages in in parallel (faster, measured, than
            // MAP_POPULATE's one thread).
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok((
        fd,
        NonNull::new(ptr.cast()).expect("mmap does not return null"),
    ))
}

/// Allocates `layout` (of non-zero size), aborting like `Box` when memory
/// is exhausted.
fn alloc_layout(layout: Layout) -> NonNull<u8> {
    // SAFETY: every caller passes a non-zero size.
    let raw = unsafe { alloc::alloc(layout) };
    NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// An immutable value: its bytes, their digest and the objects it refers to.
pub struct Blob {
    len: usize,
    /// An [`Encoding`], once someone who knows says.
    encoding: AtomicU8,
    digest: [u8; 32],
    refs: Box<[ObjectId]>,
    stats: Arc<StoreStats>,
    /// Distinguishes the spill files of equal blobs that are not shared.
    serial: u64,
    /// When the bytes were last used, on the store's logical clock.
    last_used: AtomicU64,
    data: Mutex<Data>,
}

/// Where a blob's bytes are.
enum Data {
    /// In memory.
    Memory(Arc<AlignedBuf>),
    /// In a file, to be read back on use.
    Spilled(PathBuf),
    /// Nowhere: the spill file went missing or its bytes no longer match
    /// the digest. Recomputing the task that made it can restore it.
    Lost,
}

/// Where an object's bytes are, for listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// In memory.
    Memory,
    /// In a spill file.
    Spilled,
    /// Lost (to be made again by lineage, if it can be).
    Lost,
    /// Not made yet.
    Pending,
    /// The object holds an error.
    Failed,
}

impl Place {
    /// The name the APIs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Memory => "MEMORY",
            Place::Spilled => "SPILLED",
            Place::Lost => "LOST",
            Place::Pending => "PENDING",
            Place::Failed => "FAILED",
        }
    }
}

/// A blob's bytes, in memory and pinned there while this handle lives.
#[derive(Clone)]
pub struct Bytes(Arc<AlignedBuf>);

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Bytes {
    /// The file holding these bytes from its offset 0, when they live in one
    /// that can be mapped (objects of [`MAP_MIN`] bytes and more): a memfd,
    /// or the spill file they were read back from. It stays open, and the
    /// bytes unchanged, while this handle lives.
    pub(crate) fn file(&self) -> Option<BorrowedFd<'_>> {
        self.0.file()
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len)
    }
}

/// A blob whose bytes could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("object {digest} is lost: {why}")]
pub(crate) struct Lost {
    pub digest: ObjectId,
    pub why: String,
}

/// A blob being written piece by piece (a guest's streamed put): its
/// length is fixed when it starts, and it becomes a [`Blob`] once full.
///
/// Its bytes count in the store's memory from the start, so a guest cannot
/// make the host hold more than the store admits by leaving puts unfinished.
///
/// A filling may start *like* an existing blob of the same length (the
/// same guest's previous large put): while every piece written equals that
/// blob's bytes at its offset, nothing is copied, and a filling that ends
/// equal to it shares its bytes and digest, so a value put again unchanged
/// costs one comparison instead of a copy and a digest. The first piece
/// that differs copies the matching prefix from the blob and goes on as a
/// plain filling. Comparing is sound however the guest's memory changed:
/// bytes are trusted only once compared.
pub(crate) struct Filling {
    /// The bytes written so far; empty while `like` is followed.
    buf: AlignedBuf,
    len: usize,
    written: usize,
    like: Option<(Bytes, ObjectId)>,
    stats: Arc<StoreStats>,
}

impl Filling {
    /// Starts a blob of exactly `len` bytes, counted in `stats`, that may
    /// turn out to equal `like` (bytes and their digest).
    pub fn new(len: usize, like: Option<(Bytes, ObjectId)>, stats: &Arc<StoreStats>) -> Filling {
        stats.bytes.fetch_add(len as u64, Ordering::Relaxed);
        let like = like.filter(|(b, _)| b.len() == len);
        Filling {
            buf: AlignedBuf::uninit(if like.is_some() { 0 } else { len }),
            len,
            written: 0,
            like,
            stats: stats.clone(),
        }
    }

    /// Appends `bytes`; false (and nothing written) if they would go past
    /// the length.
    pub fn append(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.len - self.written {
            return false;
        }
        let at = self.written;
        if let Some((like, _)) = &self.like {
            if equal(&like[at..at + bytes.len()], bytes) {
                self.written += bytes.len();
                return true;
            }
            // Different after all: go on copying.
            self.unlike();
        }
        // SAFETY: in bounds (checked above); `bytes` cannot overlap a buffer
        // this Filling owns.
        copy(unsafe { self.buf.room(at, bytes.len()) }, bytes);
        self.written += bytes.len();
        true
    }

    /// Stops following `like`, if it did: copies the bytes that matched
    /// so far into a buffer of its own.
    fn unlike(&mut self) {
        if let Some((like, _)) = self.like.take() {
            let at = self.written;
            let mut buf = AlignedBuf::uninit(self.len);
            // SAFETY: `at` is at most the length; `like` is another buffer.
            copy(unsafe { buf.room(0, at) }, &like[..at]);
            self.buf = buf;
        }
    }

    /// Its length: every byte it must be given.
    #[cfg_attr(not(feature = "node"), allow(dead_code))]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Writes every byte not written yet by `fill`, which is given them to
    /// fill in full (a read straight from a socket: no copy in between).
    /// Its error leaves the filling unfinished.
    #[cfg_attr(not(feature = "node"), allow(dead_code))]
    pub fn fill_with<T, E>(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<T, E>,
    ) -> Result<T, E> {
        let at = self.written;
        self.unlike();
        // SAFETY: `at..len` is within the buffer, which this Filling owns.
        let room = unsafe { self.buf.room(at, self.len - at) };
        let done = fill(room)?;
        self.written = self.len;
        Ok(done)
    }

    /// The blob, once every byte is written (`None` before).
    pub fn finish(self, refs: Vec<ObjectId>) -> Option<Blob> {
        self.finish_with(refs, None)
    }

    /// [`finish`](Self::finish), with the digest of its bytes computed by
    /// the caller as they were written (by [`fill_with`](Self::fill_with),
    /// from the very bytes it wrote, after any piece appended before:
    /// none, for a pull).
    #[cfg_attr(not(feature = "node"), allow(dead_code))]
    pub fn finish_digested(self, refs: Vec<ObjectId>, digest: [u8; 32]) -> Option<Blob> {
        self.finish_with(refs, Some(digest))
    }

    fn finish_with(mut self, refs: Vec<ObjectId>, digest: Option<[u8; 32]>) -> Option<Blob> {
        if self.written < self.len {
            return None;
        }
        // The blob counts its bytes itself: this Filling's count goes.
        self.stats
            .bytes
            .fetch_sub(self.len as u64, Ordering::Relaxed);
        self.len = 0;
        if let Some((like, digest)) = self.like.take() {
            return Some(Blob::with_digest(like.0, digest.0, refs, &self.stats));
        }
        let buf = std::mem::replace(&mut self.buf, AlignedBuf::uninit(0));
        Some(match digest {
            Some(d) => Blob::with_digest(Arc::new(buf), d, refs, &self.stats),
            None => Blob::new(buf, refs, &self.stats),
        })
    }
}

impl Drop for Filling {
    fn drop(&mut self) {
        self.stats
            .bytes
            .fetch_sub(self.len as u64, Ordering::Relaxed);
    }
}

impl Blob {
    /// Copies `bytes` into a new blob that refers to `refs`.
    pub(crate) fn copy_from(bytes: &[u8], refs: Vec<ObjectId>, stats: &Arc<StoreStats>) -> Blob {
        Blob::new(AlignedBuf::copy_of(bytes), refs, stats)
    }

    /// A blob of the bytes of `buf` (all written), counted in `stats`.
    fn new(buf: AlignedBuf, refs: Vec<ObjectId>, stats: &Arc<StoreStats>) -> Blob {
        let digest = digest(buf.as_slice());
        Blob::with_digest(Arc::new(buf), digest, refs, stats)
    }

    /// A blob of the bytes of `buf` (perhaps another blob's too), whose
    /// digest is known to be `digest`, counted in `stats`.
    fn with_digest(
        buf: Arc<AlignedBuf>,
        digest: [u8; 32],
        refs: Vec<ObjectId>,
        stats: &Arc<StoreStats>,
    ) -> Blob {
        stats.bytes.fetch_add(buf.len as u64, Ordering::Relaxed);
        stats.blobs.fetch_add(1, Ordering::Relaxed);
        Blob {
            len: buf.len,
            encoding: AtomicU8::new(Encoding::Raw as u8),
            digest,
            refs: refs.into_boxed_slice(),
            stats: stats.clone(),
            serial: stats.serial.fetch_add(1, Ordering::Relaxed),
            last_used: AtomicU64::new(stats.clock.fetch_add(1, Ordering::Relaxed)),
            data: Mutex::new(Data::Memory(buf)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How the bytes are encoded, as far as the host was told.
    pub fn encoding(&self) -> Encoding {
        Encoding::from_u8(self.encoding.load(Ordering::Relaxed))
    }

    /// Records how the bytes are encoded, unless that is known already (the
    /// first writer of equal bytes says what they are).
    pub fn mark(&self, encoding: Encoding) {
        if encoding != Encoding::Raw {
            let _ = self.encoding.compare_exchange(
                Encoding::Raw as u8,
                encoding as u8,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn touch(&self) {
        let now = self.stats.clock.fetch_add(1, Ordering::Relaxed);
        self.last_used.store(now, Ordering::Relaxed);
    }

    /// The bytes, if they are in memory (no I/O).
    pub fn loaded(&self) -> Option<Bytes> {
        match &*self.lock() {
            Data::Memory(b) => {
                self.touch();
                Some(Bytes(b.clone()))
            }
            _ => None,
        }
    }

    /// The bytes, read back from the spill file if need be (and checked
    /// against the digest). Blocks on file I/O: call from a blocking context.
    pub(crate) fn load_blocking(&self) -> Result<Bytes, Lost> {
        if let Some(b) = self.loaded() {
            return Ok(b);
        }
        let path = match &*self.lock() {
            Data::Spilled(p) => p.clone(),
            Data::Memory(_) => return self.loaded().ok_or_else(|| self.lost("raced")),
            Data::Lost => return Err(self.lost("it was lost before")),
        };
        let why = match read_back(&path, self.len) {
            Ok(Some(buf)) if digest(buf.as_slice()) == self.digest => {
                return Ok(self.install(buf));
            }
            Ok(_) => format!("{} no longer holds its bytes", path.display()),
            Err(e) => format!("cannot read {}: {e}", path.display()),
        };
        self.mark_lost(&path);
        Err(self.lost(why))
    }
}

/// The `len` bytes of the spill file at `path`, mapped rather than read
/// when they are large enough to be mapped into guests (the file is
/// unlinked later, but its mapping keeps it); `None` when it holds another
/// number of bytes.
fn read_back(path: &Path, len: usize) -> std::io::Result<Option<AlignedBuf>> {
    if len < MAP_MIN {
        let read = std::fs::read(path)?;
        return Ok((read.len() == len).then(|| AlignedBuf::copy_of(&read)));
    }
    let file = File::open(path)?;
    if file.metadata()?.len() != len as u64 {
        return Ok(None);
    }
    AlignedBuf::map_file(file, len).map(Some)
}

impl Blob {
    /// Records that the spill file at `path` cannot give the bytes back.
    fn mark_lost(&self, path: &Path) {
        let mut data = self.lock();
        if matches!(&*data, Data::Spilled(p) if p == path) {
            *data = Data::Lost;
            drop(data);
            let _ = std::fs::remove_file(path);
            self.stats
                .spilled_bytes
                .fetch_sub(self.len as u64, Ordering::Relaxed);
        }
    }

    /// The bytes, read back from disk on a blocking thread if they were
    /// spilled.
    pub(crate) async fn load(self: &Arc<Self>) -> Result<Bytes, Lost> {
        if let Some(b) = self.loaded() {
            return Ok(b);
        }
        let blob = self.clone();
        tokio::task::spawn_blocking(move || blob.load_blocking())
            .await
            .unwrap_or_else(|e| Err(self.lost(format!("the reading thread failed: {e}"))))
    }

    /// Puts `buf` (the blob's bytes) back in memory, replacing a spill file
    /// or a loss.
    fn install(&self, buf: AlignedBuf) -> Bytes {
        let mut data = self.lock();
        if let Data::Memory(b) = &*data {
            return Bytes(b.clone());
        }
        if let Data::Spilled(p) = &*data {
            let _ = std::fs::remove_file(p);
            self.stats
                .spilled_bytes
                .fetch_sub(self.len as u64, Ordering::Relaxed);
        }
        self.stats
            .bytes
            .fetch_add(self.len as u64, Ordering::Relaxed);
        let arc = Arc::new(buf);
        *data = Data::Memory(arc.clone());
        self.touch();
        Bytes(arc)
    }

    /// Restores a lost blob from recomputed bytes; false when they are not
    /// the same bytes (the task that made them is not deterministic).
    pub(crate) fn restore(&self, bytes: &[u8]) -> bool {
        if bytes.len() != self.len || digest(bytes) != self.digest {
            return false;
        }
        self.install(AlignedBuf::copy_of(bytes));
        true
    }

    /// Where the bytes are.
    #[cfg(feature = "node")] // read by the node only
    pub(crate) fn place(&self) -> Place {
        match &*self.lock() {
            Data::Memory(_) => Place::Memory,
            Data::Spilled(_) => Place::Spilled,
            Data::Lost => Place::Lost,
        }
    }

    /// Whether the blob may ever leave memory: one smaller than
    /// [`SPILL_MIN`] never does.
    pub(crate) fn spillable(&self) -> bool {
        self.len >= SPILL_MIN
    }

    /// Whether the bytes are in memory (without counting as a use).
    pub(crate) fn loaded_without_touch(&self) -> bool {
        matches!(&*self.lock(), Data::Memory(_))
    }

    /// Whether the bytes are lost.
    pub(crate) fn is_lost(&self) -> bool {
        matches!(&*self.lock(), Data::Lost)
    }

    /// When the bytes were last used (for picking what to spill).
    pub(crate) fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Moves the bytes to a file in `dir` if they are in memory and nobody
    /// is using them. Returns the bytes freed from memory. Blocks on I/O.
    pub(crate) fn spill(&self, dir: &Path) -> std::io::Result<usize> {
        let buf = match &*self.lock() {
            Data::Memory(b) if Arc::strong_count(b) == 1 => b.clone(),
            _ => return Ok(0),
        };
        let path = dir.join(format!("{}-{}", self.digest(), self.serial));
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, buf.as_slice())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
        let mut data = self.lock();
        // Somebody started using the bytes while we wrote: keep them.
        if !matches!(&*data, Data::Memory(b) if Arc::ptr_eq(b, &buf) && Arc::strong_count(b) == 2) {
            drop(data);
            let _ = std::fs::remove_file(&path);
            return Ok(0);
        }
        *data = Data::Spilled(path);
        drop(data);
        drop(buf);
        self.stats
            .bytes
            .fetch_sub(self.len as u64, Ordering::Relaxed);
        self.stats
            .spilled_bytes
            .fetch_add(self.len as u64, Ordering::Relaxed);
        Ok(self.len)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The blake3 digest of the bytes.
    pub fn digest(&self) -> ObjectId {
        ObjectId(self.digest)
    }

    /// The objects the value refers to.
    pub fn refs(&self) -> &[ObjectId] {
        &self.refs
    }

    fn lost(&self, why: impl Into<String>) -> Lost {
        Lost {
            digest: self.digest(),
            why: why.into(),
        }
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        match &*self.lock() {
            Data::Memory(_) => {
                self.stats
                    .bytes
                    .fetch_sub(self.len as u64, Ordering::Relaxed);
            }
            Data::Spilled(p) => {
                let _ = std::fs::remove_file(p);
                self.stats
                    .spilled_bytes
                    .fetch_sub(self.len as u64, Ordering::Relaxed);
            }
            Data::Lost => {}
        }
        self.stats.blobs.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes, {})", self.len(), self.digest().short())
    }
}

/// Copies `src` into `dst` (of equal length), on several threads for large
/// inputs: one core does not saturate memory bandwidth.
fn copy(dst: &mut [u8], src: &[u8]) {
    const PIECE: usize = 4 << 20;
    if src.len() < PARALLEL_HASH_MIN {
        dst.copy_from_slice(src);
    } else {
        dst.par_chunks_mut(PIECE)
            .zip(src.par_chunks(PIECE))
            .for_each(|(d, s)| d.copy_from_slice(s));
    }
}

/// Whether `a` and `b` (of equal length) hold the same bytes, compared on
/// several threads for large inputs.
fn equal(a: &[u8], b: &[u8]) -> bool {
    const PIECE: usize = 4 << 20;
    if a.len() < PARALLEL_HASH_MIN {
        a == b
    } else {
        a.par_chunks(PIECE)
            .zip(b.par_chunks(PIECE))
            .all(|(x, y)| x == y)
    }
}

/// The blake3 digest of `bytes`, on several threads for large inputs.
pub(crate) fn digest(bytes: &[u8]) -> [u8; 32] {
    if bytes.len() >= PARALLEL_HASH_MIN {
        let mut h = blake3::Hasher::new();
        h.update_rayon(bytes);
        *h.finalize().as_bytes()
    } else {
        *blake3::hash(bytes).as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_blobs_come_back_and_losses_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(StoreStats::default());
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let blob = Blob::copy_from(&data, vec![], &stats);
        let pinned = blob.loaded().unwrap();
        assert_eq!(blob.spill(dir.path()).unwrap(), 0, "in use: not spilled");
        drop(pinned);
        assert_eq!(blob.spill(dir.path()).unwrap(), data.len());
        assert_eq!(stats.bytes.load(Ordering::Relaxed), 0);
        assert_eq!(
            stats.spilled_bytes.load(Ordering::Relaxed),
            data.len() as u64
        );
        assert!(blob.loaded().is_none());
        assert_eq!(&*blob.load_blocking().unwrap(), &data[..]);
        assert_eq!(stats.bytes.load(Ordering::Relaxed), data.len() as u64);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file is gone"
        );
        // Corrupt the spill file: the blob is lost, and recomputed bytes
        // restore it only if they are the same bytes.
        blob.spill(dir.path()).unwrap();
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&file, b"garbage").unwrap();
        assert!(blob.load_blocking().is_err());
        assert!(blob.is_lost());
        assert!(!blob.restore(b"other bytes"));
        assert!(blob.restore(&data));
        assert_eq!(&*blob.loaded().unwrap(), &data[..]);
        // A spill file that went missing is a loss too.
        blob.spill(dir.path()).unwrap();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        let lost = blob.load_blocking().unwrap_err();
        assert!(lost.why.contains("cannot read"), "{lost}");
        assert!(blob.is_lost());
        assert_eq!(stats.spilled_bytes.load(Ordering::Relaxed), 0);
        assert!(blob.restore(&data));
        drop(blob);
        assert_eq!(stats.bytes.load(Ordering::Relaxed), 0);
        assert_eq!(stats.spilled_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn large_blobs_are_in_files_that_show_zeros_past_their_end() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(StoreStats::default());
        // Twice, so that the second may reuse the first's freed memfd.
        for fill in [0xAAu8, 0x55] {
            let len = MAP_MIN + 100;
            let blob = Blob::copy_from(&vec![fill; len], vec![], &stats);
            // What a guest that maps the file's whole pages sees.
            let file_bytes = |bytes: &Bytes| {
                let fd = bytes.file().expect("a large blob has a file");
                let size = len.next_multiple_of(PAGE);
                // SAFETY: a fresh private mapping of a valid descriptor,
                // copied out and unmapped before it is dropped.
                unsafe {
                    let p = libc::mmap(
                        std::ptr::null_mut(),
                        size,
                        libc::PROT_READ,
                        libc::MAP_PRIVATE,
                        fd.as_raw_fd(),
                        0,
                    );
                    assert_ne!(p, libc::MAP_FAILED);
                    let page = std::slice::from_raw_parts(p.cast::<u8>(), size).to_vec();
                    libc::munmap(p, size);
                    page
                }
            };
            let page = file_bytes(&blob.loaded().unwrap());
            assert!(page[..len].iter().all(|&b| b == fill));
            assert!(page[len..].iter().all(|&b| b == 0), "zeros to the page end");
            // Spilled and read back, the bytes are a mapping of the file.
            assert_eq!(blob.spill(dir.path()).unwrap(), len);
            let back = blob.load_blocking().unwrap();
            assert_eq!(&*back, &vec![fill; len][..]);
            let page = file_bytes(&back);
            assert!(page[..len].iter().all(|&b| b == fill));
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                0,
                "the spill file is unlinked; its mapping keeps it"
            );
        }
        assert_eq!(stats.bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_filling_counts_its_bytes_from_the_start_and_once() {
        let stats = Arc::new(StoreStats::default());
        let bytes = |s: &StoreStats| s.bytes.load(Ordering::Relaxed);
        let mut f = Filling::new(10, None, &stats);
        assert_eq!(bytes(&stats), 10, "counted before it is written");
        assert!(f.append(b"hello"));
        assert!(!f.append(b"too long"), "past the length");
        assert!(f.finish(vec![]).is_none(), "five bytes missing");
        assert_eq!(bytes(&stats), 0, "an unfinished one gives its count back");
        let mut f = Filling::new(10, None, &stats);
        assert!(f.append(b"hello") && f.append(b"world"));
        let blob = f.finish(vec![]).expect("every byte written");
        assert_eq!(&*blob.loaded().unwrap(), b"helloworld");
        assert_eq!(blob.digest().0, *blake3::hash(b"helloworld").as_bytes());
        assert_eq!(bytes(&stats), 10, "counted once");
        drop(blob);
        assert_eq!(bytes(&stats), 0);
    }

    #[test]
    fn a_filling_filled_in_place_after_a_piece_holds_both() {
        let stats = Arc::new(StoreStats::default());
        let data: Vec<u8> = (0..(3 << 20) + 77).map(|i: u32| (i % 251) as u8).collect();
        let (first, rest) = data.split_at(1000);
        let mut f = Filling::new(data.len(), None, &stats);
        assert!(f.append(first));
        // A fill that fails leaves it unfinished.
        let failed: Result<(), ()> = f.fill_with(|_| Err(()));
        assert!(failed.is_err());
        let mut f2 = Filling::new(data.len(), None, &stats);
        assert!(f2.append(first));
        f2.fill_with(|room| {
            assert_eq!(room.len(), rest.len(), "the room is what is missing");
            room.copy_from_slice(rest);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert!(f.finish(vec![]).is_none(), "a failed fill is not finished");
        let blob = f2.finish(vec![]).unwrap();
        assert_eq!(blob.digest().0, *blake3::hash(&data).as_bytes());
        assert_eq!(&*blob.loaded().unwrap(), &data[..]);
        drop(blob);
        assert_eq!(
            stats.bytes.load(Ordering::Relaxed),
            0,
            "nothing left counted"
        );
    }

    #[test]
    fn a_filling_like_a_blob_shares_its_bytes_only_if_they_are_equal() {
        let stats = Arc::new(StoreStats::default());
        let data: Vec<u8> = (0..MAP_MIN as u32 * 2).map(|i| (i % 251) as u8).collect();
        let blob = Blob::copy_from(&data, vec![], &stats);
        let like = || Some((blob.loaded().unwrap(), blob.digest()));
        // Equal, in two pieces: the same buffer, the same digest.
        let mut f = Filling::new(data.len(), like(), &stats);
        assert!(f.append(&data[..1000]) && f.append(&data[1000..]));
        let same = f.finish(vec![]).unwrap();
        assert_eq!(same.digest(), blob.digest());
        assert_eq!(
            same.loaded().unwrap().as_ptr(),
            blob.loaded().unwrap().as_ptr(),
            "no copy"
        );
        // Different in the second piece: a copy of its own, rightly hashed.
        let mut other = data.clone();
        *other.last_mut().unwrap() ^= 1;
        let mut f = Filling::new(data.len(), like(), &stats);
        assert!(f.append(&other[..1000]) && f.append(&other[1000..]));
        let differs = f.finish(vec![]).unwrap();
        assert_eq!(differs.digest().0, *blake3::hash(&other).as_bytes());
        assert_eq!(&*differs.loaded().unwrap(), &other[..]);
        // Another length is never like it; too much is refused.
        let mut f = Filling::new(3, like(), &stats);
        assert!(f.like.is_none());
        assert!(!f.append(b"four"));
        drop((f, same, differs, blob));
        assert_eq!(stats.bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn blobs_are_aligned_and_counted() {
        let stats = Arc::new(StoreStats::default());
        let sizes = [0usize, 1, 17, 4096, MAP_MIN - 1, MAP_MIN + 3, (4 << 20) + 3];
        let blobs: Vec<Blob> = sizes
            .iter()
            .map(|&n| Blob::copy_from(&vec![7u8; n], vec![], &stats))
            .collect();
        for (b, &n) in blobs.iter().zip(&sizes) {
            let bytes = b.loaded().unwrap();
            assert_eq!(b.len(), n);
            assert_eq!(bytes.as_ptr() as usize % VALUE_ALIGN, 0);
            assert!(bytes.iter().all(|&x| x == 7));
            assert_eq!(b.digest().0, *blake3::hash(&bytes).as_bytes());
            assert_eq!(bytes.file().is_some(), n >= MAP_MIN, "{n} bytes");
        }
        assert_eq!(stats.blobs.load(Ordering::Relaxed), sizes.len() as u64);
        assert_eq!(
            stats.bytes.load(Ordering::Relaxed),
            sizes.iter().sum::<usize>() as u64
        );
        drop(blobs);
        assert_eq!(stats.blobs.load(Ordering::Relaxed), 0);
        assert_eq!(stats.bytes.load(Ordering::Relaxed), 0);
    }
}
