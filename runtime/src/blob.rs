//! Immutable, aligned byte buffers: the storage behind every object.
//!
//! A [`Blob`] owns its bytes in an allocation aligned to
//! [`VALUE_ALIGN`](wray_abi::VALUE_ALIGN) (rkyv needs aligned input), knows
//! the blake3 digest of its bytes, and lists the objects the value refers to.
//! Large blobs are aligned to 2 MiB and advised to use transparent huge
//! pages: filling a fresh 100 MB buffer is bound by page faults, and huge
//! pages take five hundred times fewer of them.
//!
//! Every live blob is counted in [`StoreStats`], so the object store knows
//! its memory use without walking its tables.
//!
//! Freed large buffers are kept in a small process-wide cache
//! ([`LARGE_CACHE_BYTES`] at most) and reused: copying into a buffer whose
//! pages are already mapped runs at memory speed, while a fresh one first
//! has the kernel zero every page. Large copies and digests run on several
//! threads.

use rayon::prelude::*;
use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wray_abi::{ObjectId, VALUE_ALIGN};

/// Blobs at least this large get huge-page alignment and advice, and their
/// buffers are cached for reuse when freed.
const HUGE_MIN: usize = 4 << 20;
/// Most bytes of freed large buffers kept for reuse.
const LARGE_CACHE_BYTES: usize = 512 << 20;
const HUGE_ALIGN: usize = 2 << 20;
/// Blobs at least this large are copied and hashed on several threads.
const PARALLEL_HASH_MIN: usize = 1 << 20;

/// Memory use of all live blobs.
#[derive(Debug, Default)]
pub(crate) struct StoreStats {
    /// Bytes held by live blobs.
    pub bytes: AtomicU64,
    /// Number of live blobs.
    pub blobs: AtomicU64,
}

/// An owned, aligned, immutable byte buffer.
struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// The allocation's size (at least `len`; large buffers are rounded up
    /// to whole huge pages, and a reused one may be larger).
    cap: usize,
    align: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively and is immutable after
// construction, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access is read-only.
unsafe impl Sync for AlignedBuf {}

/// A freed large allocation: its pointer and size (aligned to HUGE_ALIGN).
struct FreeBuf(NonNull<u8>, usize);

// SAFETY: a FreeBuf is an allocation nobody else references.
unsafe impl Send for FreeBuf {}

/// Freed large buffers, for reuse.
static LARGE_CACHE: Mutex<Vec<FreeBuf>> = Mutex::new(Vec::new());

impl AlignedBuf {
    /// Allocates a buffer holding a copy of `src`.
    fn copy_of(src: &[u8]) -> AlignedBuf {
        let len = src.len();
        if len == 0 {
            // A dangling, aligned pointer: no allocation for empty values.
            let ptr = NonNull::new(VALUE_ALIGN as *mut u8).expect("alignment is non-zero");
            return AlignedBuf {
                ptr,
                len,
                cap: 0,
                align: VALUE_ALIGN,
            };
        }
        let (ptr, cap, align) = if len >= HUGE_MIN {
            Self::alloc_large(len)
        } else {
            let layout =
                Layout::from_size_align(len, VALUE_ALIGN).expect("blob size overflows a Layout");
            (alloc_layout(layout), len, VALUE_ALIGN)
        };
        // SAFETY: `ptr` has room for `len` bytes; the allocation is new or
        // was freed, so nothing else refers to it, and it cannot overlap
        // `src`.
        let dst = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) };
        copy(dst, src);
        AlignedBuf {
            ptr,
            len,
            cap,
            align,
        }
    }

    /// A large allocation: a cached one of fitting size, or a fresh one
    /// advised to use huge pages.
    fn alloc_large(len: usize) -> (NonNull<u8>, usize, usize) {
        {
            let mut cache = LARGE_CACHE.lock().unwrap_or_else(|e| e.into_inner());
            // The smallest cached buffer that fits without wasting half.
            let best = cache
                .iter()
                .enumerate()
                .filter(|(_, b)| b.1 >= len && b.1 / 2 <= len)
                .min_by_key(|(_, b)| b.1)
                .map(|(i, _)| i);
            if let Some(i) = best {
                let FreeBuf(ptr, cap) = cache.swap_remove(i);
                return (ptr, cap, HUGE_ALIGN);
            }
        }
        let cap = len.div_ceil(HUGE_ALIGN) * HUGE_ALIGN;
        let layout =
            Layout::from_size_align(cap, HUGE_ALIGN).expect("blob size overflows a Layout");
        let ptr = alloc_layout(layout);
        // SAFETY: the range is our own fresh allocation. Advice is a hint:
        // its failure changes nothing but speed.
        unsafe { libc::madvise(ptr.as_ptr().cast(), cap, libc::MADV_HUGEPAGE) };
        (ptr, cap, HUGE_ALIGN)
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialised bytes (or dangling and
        // aligned with len 0) for the life of self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.cap == 0 {
            return;
        }
        if self.align == HUGE_ALIGN {
            let mut cache = LARGE_CACHE.lock().unwrap_or_else(|e| e.into_inner());
            let cached: usize = cache.iter().map(|b| b.1).sum();
            if cached + self.cap <= LARGE_CACHE_BYTES {
                cache.push(FreeBuf(self.ptr, self.cap));
                return;
            }
        }
        let layout = Layout::from_size_align(self.cap, self.align).expect("layout was valid");
        // SAFETY: allocated by `alloc_layout` with this very layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
    }
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
    buf: AlignedBuf,
    digest: [u8; 32],
    refs: Box<[ObjectId]>,
    stats: Arc<StoreStats>,
}

impl Blob {
    /// Copies `bytes` into a new blob that refers to `refs`.
    pub(crate) fn copy_from(bytes: &[u8], refs: Vec<ObjectId>, stats: &Arc<StoreStats>) -> Blob {
        let buf = AlignedBuf::copy_of(bytes);
        let digest = digest(buf.as_slice());
        stats.bytes.fetch_add(buf.len as u64, Ordering::Relaxed);
        stats.blobs.fetch_add(1, Ordering::Relaxed);
        Blob {
            buf,
            digest,
            refs: refs.into_boxed_slice(),
            stats: stats.clone(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.as_slice()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len
    }

    /// The blake3 digest of the bytes.
    pub fn digest(&self) -> ObjectId {
        ObjectId(self.digest)
    }

    /// The objects the value refers to.
    pub fn refs(&self) -> &[ObjectId] {
        &self.refs
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        self.stats
            .bytes
            .fetch_sub(self.buf.len as u64, Ordering::Relaxed);
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
    fn blobs_are_aligned_and_counted() {
        let stats = Arc::new(StoreStats::default());
        let sizes = [0usize, 1, 17, 4096, HUGE_MIN + 3];
        let blobs: Vec<Blob> = sizes
            .iter()
            .map(|&n| Blob::copy_from(&vec![7u8; n], vec![], &stats))
            .collect();
        for (b, &n) in blobs.iter().zip(&sizes) {
            assert_eq!(b.len(), n);
            assert_eq!(b.bytes().as_ptr() as usize % VALUE_ALIGN, 0);
            assert!(b.bytes().iter().all(|&x| x == 7));
            assert_eq!(b.digest().0, *blake3::hash(b.bytes()).as_bytes());
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
