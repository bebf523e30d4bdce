//! The memo table: results of pure calls by key, in memory and, with a
//! memo directory, on disk across runs (`docs/memo.md`).
//!
//! This layer knows keys (32 bytes the task layer derives from a call) and
//! values (blobs without references), not tasks. A hit hands back the
//! stored blobs themselves, shared: nothing is copied or run.
//!
//! # Memory
//!
//! Entries live in one map under one mutex (held for a lookup or an
//! insert, never across I/O of another entry), each stamped with the
//! table's logical clock when last used. Past the memory budget the least
//! recently used entries go (a sort, amortized over the inserts that
//! overflowed by a tenth of the budget).
//!
//! # Disk
//!
//! With a directory, every stored entry is also a file named by the key's
//! hex, written to a temporary name (`.tmp-<pid>-<random>`) and renamed, so
//! that a reader sees a whole file or none, and two processes may share a
//! directory. A file holds a header (magic, count, each value's length and
//! blake3 digest) and the values' bytes; a read checks every digest, and a
//! file that does not check is removed and counted as corrupt (the call is
//! then a miss, and its result is written again). The directory is bounded
//! by the same budget: past it, the least recently used files (by
//! modification time, which a hit read from disk refreshes) are removed.
//! Only files named by a key are ever removed, and temporary files only
//! when their process is gone: a write in progress elsewhere is never cut.

use crate::objects::blob::{Blob, StoreStats};
use rustc_hash::FxHashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The key of a memoized call (see the task layer's `memo` module).
pub(crate) type MemoKey = [u8; 32];

/// The values of one stored call, one per return.
pub(crate) type MemoValues = Arc<[Arc<Blob>]>;

const MAGIC: &[u8; 8] = b"WRAYMEMO";
const VERSION: u32 = 1;
/// Most values one entry holds (a task's most returns).
const MAX_VALUES: u32 = 16;

/// What the memo table did, cumulatively (for metrics and `wray run`).
#[derive(Default, Debug)]
pub(crate) struct MemoStats {
    /// Calls answered from the table.
    pub hits: AtomicU64,
    /// Memoized calls that found nothing and ran.
    pub misses: AtomicU64,
    /// Results stored.
    pub stored: AtomicU64,
    /// Entries evicted (memory or disk) to stay within the budget.
    pub evicted: AtomicU64,
    /// Files whose bytes did not match their digests (removed).
    pub corrupt: AtomicU64,
    /// Bytes of values held in memory now.
    pub bytes: AtomicU64,
    /// Bytes of entry files on disk now (as far as this process knows).
    pub disk_bytes: AtomicU64,
    /// Entries in memory now.
    pub entries: AtomicU64,
}

/// The results of pure calls, by key.
pub(crate) struct MemoTable {
    mem: Mutex<Mem>,
    /// Bytes of values kept in memory.
    mem_limit: u64,
    disk: Option<Disk>,
    /// Counts blobs read from disk into the object store's memory.
    store_stats: Arc<StoreStats>,
    pub stats: MemoStats,
}

#[derive(Default)]
struct Mem {
    entries: FxHashMap<MemoKey, Entry>,
    bytes: u64,
    clock: u64,
}

struct Entry {
    values: MemoValues,
    bytes: u64,
    used: u64,
}

struct Disk {
    dir: PathBuf,
    limit: u64,
    /// When this process last wrote or read each entry file, on the
    /// table's clock: the order among files whose modification times are
    /// equal (file times are coarse, a few milliseconds apart).
    used: Mutex<FxHashMap<String, u64>>,
}

impl Disk {
    fn touch(&self, name: String, now: u64) {
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, now);
    }
}

fn values_len(values: &[Arc<Blob>]) -> u64 {
    values.iter().map(|b| b.len() as u64).sum()
}

impl MemoTable {
    /// A table keeping at most `mem_limit` bytes of values in memory and,
    /// with `dir`, at most `disk_limit` bytes of files there. A directory
    /// that cannot be made is an error.
    pub fn new(
        mem_limit: u64,
        dir: Option<(PathBuf, u64)>,
        store_stats: Arc<StoreStats>,
    ) -> std::io::Result<MemoTable> {
        let stats = MemoStats::default();
        let disk = match dir {
            Some((dir, limit)) => {
                std::fs::create_dir_all(&dir)?;
                sweep_temporaries(&dir);
                let total: u64 = entry_files(&dir).iter().map(|f| f.1).sum();
                stats.disk_bytes.store(total, Ordering::Relaxed);
                Some(Disk {
                    dir,
                    limit,
                    used: Mutex::default(),
                })
            }
            None => None,
        };
        Ok(MemoTable {
            mem: Mutex::default(),
            mem_limit,
            disk,
            store_stats,
            stats,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.mem.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored values of `key` (from memory, else from disk), counting
    /// a hit or a miss.
    pub fn lookup(&self, key: &MemoKey) -> Option<MemoValues> {
        if let Some(v) = self.lookup_memory(key) {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Some(v);
        }
        let found = self.disk.as_ref().and_then(|d| self.read(d, key));
        let counter = match found {
            Some(_) => &self.stats.hits,
            None => &self.stats.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The next tick of the table's clock.
    fn tick(&self) -> u64 {
        let mut g = self.lock();
        g.clock += 1;
        g.clock
    }

    fn lookup_memory(&self, key: &MemoKey) -> Option<MemoValues> {
        let mut g = self.lock();
        g.clock += 1;
        let now = g.clock;
        let e = g.entries.get_mut(key)?;
        e.used = now;
        Some(e.values.clone())
    }

    /// Whether values of `len` bytes in all fit the table.
    pub fn fits(&self, len: u64) -> bool {
        len <= self.mem_limit || self.disk.as_ref().is_some_and(|d| len <= d.limit)
    }

    /// Stores `values` (blobs without references) under `key`: in memory,
    /// and in the directory if there is one.
    pub fn insert(&self, key: MemoKey, values: Vec<Arc<Blob>>) {
        debug_assert!(values.iter().all(|b| b.refs().is_empty()));
        let values: MemoValues = values.into();
        if let Some(d) = &self.disk
            && values_len(&values) <= d.limit
        {
            self.write(d, &key, &values);
        }
        self.keep_in_memory(key, values);
        self.stats.stored.fetch_add(1, Ordering::Relaxed);
    }

    fn keep_in_memory(&self, key: MemoKey, values: MemoValues) {
        let bytes = values_len(&values);
        if bytes > self.mem_limit {
            return;
        }
        let mut g = self.lock();
        g.clock += 1;
        let used = g.clock;
        let old = g.entries.insert(
            key,
            Entry {
                values,
                bytes,
                used,
            },
        );
        g.bytes += bytes;
        if let Some(old) = old {
            g.bytes -= old.bytes;
        }
        if g.bytes > self.mem_limit {
            // Down to 90%, so the sort is paid once per tenth of the budget.
            let target = self.mem_limit - self.mem_limit / 10;
            let mut by_use: Vec<(u64, MemoKey)> =
                g.entries.iter().map(|(k, e)| (e.used, *k)).collect();
            by_use.sort_unstable();
            let mut evicted = 0;
            for (_, k) in by_use {
                if g.bytes <= target {
                    break;
                }
                if let Some(e) = g.entries.remove(&k) {
                    g.bytes -= e.bytes;
                    evicted += 1;
                }
            }
            self.stats.evicted.fetch_add(evicted, Ordering::Relaxed);
        }
        self.stats.bytes.store(g.bytes, Ordering::Relaxed);
        self.stats
            .entries
            .store(g.entries.len() as u64, Ordering::Relaxed);
    }

    /// The entry of `key` read from its file, checked against its digests,
    /// and kept in memory; a file that does not check is removed.
    fn read(&self, d: &Disk, key: &MemoKey) -> Option<MemoValues> {
        let path = d.dir.join(hex(key));
        let bytes = std::fs::read(&path).ok()?;
        match decode(&bytes, &self.store_stats) {
            Some(values) => {
                let values: MemoValues = values.into();
                // Recently used: the disk's eviction goes by this time.
                if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(std::time::SystemTime::now());
                }
                d.touch(hex(key), self.tick());
                self.keep_in_memory(*key, values.clone());
                Some(values)
            }
            None => {
                self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                if std::fs::remove_file(&path).is_ok() {
                    self.stats
                        .disk_bytes
                        .fetch_sub(bytes.len() as u64, Ordering::Relaxed);
                }
                None
            }
        }
    }

    /// Writes the entry of `key` (a temporary file, then a rename) and
    /// trims the directory to its budget. Failures are ignored: the table
    /// is a cache.
    fn write(&self, d: &Disk, key: &MemoKey, values: &[Arc<Blob>]) {
        let name = hex(key);
        let path = d.dir.join(&name);
        let tmp = d.dir.join(format!(
            ".tmp-{}-{:016x}",
            std::process::id(),
            rand_suffix()
        ));
        let written = (|| -> std::io::Result<u64> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            let mut len = 0u64;
            let mut put = |f: &mut std::io::BufWriter<std::fs::File>, b: &[u8]| {
                len += b.len() as u64;
                f.write_all(b)
            };
            put(&mut f, MAGIC)?;
            put(&mut f, &VERSION.to_le_bytes())?;
            put(&mut f, &(values.len() as u32).to_le_bytes())?;
            for v in values {
                put(&mut f, &(v.len() as u64).to_le_bytes())?;
                put(&mut f, &v.digest().0)?;
            }
            for v in values {
                let bytes = v
                    .load_blocking()
                    .map_err(|l| std::io::Error::other(l.why))?;
                put(&mut f, &bytes)?;
            }
            f.into_inner().map_err(|e| e.into_error())?;
            Ok(len)
        })();
        let Ok(len) = written else {
            let _ = std::fs::remove_file(&tmp);
            return;
        };
        if std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        d.touch(name.clone(), self.tick());
        let total = self.stats.disk_bytes.fetch_add(len, Ordering::Relaxed) + len;
        if total > d.limit {
            self.trim_disk(d, &name);
        }
    }

    /// Removes the least recently used entry files until the directory
    /// holds at most its budget, sparing `keep` (just written).
    fn trim_disk(&self, d: &Disk, keep: &str) {
        let files = entry_files(&d.dir);
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        let mut files: Vec<_> = {
            let used = d.used.lock().unwrap_or_else(|e| e.into_inner());
            files
                .into_iter()
                .map(|(when, len, name)| ((when, used.get(&name).copied().unwrap_or(0)), len, name))
                .collect()
        };
        files.sort_unstable_by_key(|f| f.0);
        for (_, len, name) in files {
            if total <= d.limit {
                break;
            }
            if name != keep && std::fs::remove_file(d.dir.join(&name)).is_ok() {
                total -= len;
                self.stats.evicted.fetch_add(1, Ordering::Relaxed);
                d.used
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&name);
            }
        }
        self.stats.disk_bytes.store(total, Ordering::Relaxed);
    }
}

/// The values of an entry file, if it is whole and every digest matches.
fn decode(bytes: &[u8], stats: &Arc<StoreStats>) -> Option<Vec<Arc<Blob>>> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = bytes.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    if take(8)? != MAGIC {
        return None;
    }
    let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    if u32_of(take(4)?) != VERSION {
        return None;
    }
    let count = u32_of(take(4)?);
    if count > MAX_VALUES {
        return None;
    }
    let mut heads = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let digest: [u8; 32] = take(32)?.try_into().expect("32 bytes");
        heads.push((usize::try_from(len).ok()?, digest));
    }
    let mut values = Vec::with_capacity(heads.len());
    for (len, digest) in heads {
        let blob = Blob::copy_from(take(len)?, Vec::new(), stats);
        if blob.digest().0 != digest {
            return None;
        }
        values.push(Arc::new(blob));
    }
    (at == bytes.len()).then_some(values)
}

/// The entry files of `dir`: modification time, length, name.
fn entry_files(dir: &Path) -> Vec<(std::time::SystemTime, u64, String)> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if !is_key_name(&name) {
            continue;
        }
        if let Ok(meta) = f.metadata()
            && meta.is_file()
        {
            let when = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            out.push((when, meta.len(), name));
        }
    }
    out
}

fn is_key_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes the temporary files of processes that are gone (a crash
/// mid-write); those of live processes may be writes in progress.
fn sweep_temporaries(dir: &Path) {
    for f in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".tmp-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(f.path());
        }
    }
}

fn hex(key: &MemoKey) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(stats: &Arc<StoreStats>, bytes: &[u8]) -> Arc<Blob> {
        Arc::new(Blob::copy_from(bytes, Vec::new(), stats))
    }

    fn table(mem: u64, dir: Option<(&Path, u64)>) -> MemoTable {
        MemoTable::new(
            mem,
            dir.map(|(d, l)| (d.to_path_buf(), l)),
            Arc::new(StoreStats::default()),
        )
        .unwrap()
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("wray-memo-test-{:016x}", rand_suffix()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_stored_entry_is_found_and_counted() {
        let t = table(1 << 20, None);
        let s = t.store_stats.clone();
        assert!(t.lookup(&[1; 32]).is_none());
        t.insert([1; 32], vec![blob(&s, b"one"), blob(&s, b"two")]);
        let v = t.lookup(&[1; 32]).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(&*v[1].loaded().unwrap(), b"two");
        assert_eq!(t.stats.hits.load(Ordering::Relaxed), 1);
        assert_eq!(t.stats.misses.load(Ordering::Relaxed), 1);
        assert_eq!(t.stats.bytes.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn the_least_recently_used_go_past_the_memory_budget() {
        let t = table(1000, None);
        let s = t.store_stats.clone();
        for k in 0..3u8 {
            t.insert([k; 32], vec![blob(&s, &[k; 400])]);
            // Key 0 is used after each insert: it stays.
            t.lookup(&[0; 32]);
        }
        assert!(t.lookup(&[0; 32]).is_some());
        assert!(t.lookup(&[1; 32]).is_none(), "the least recently used");
        assert!(t.lookup(&[2; 32]).is_some());
        assert!(t.stats.bytes.load(Ordering::Relaxed) <= 1000);
        t.insert([9; 32], vec![blob(&s, &[9; 2000])]);
        assert!(t.lookup(&[9; 32]).is_none(), "larger than the budget");
    }

    #[test]
    fn entries_survive_on_disk_and_a_corrupt_file_is_dropped() {
        let dir = tempdir();
        let t = table(1 << 20, Some((&dir, 1 << 20)));
        let s = t.store_stats.clone();
        t.insert([7; 32], vec![blob(&s, b"seven"), blob(&s, b"")]);
        t.insert([8; 32], vec![blob(&s, b"eight")]);
        drop(t);
        let t = table(1 << 20, Some((&dir, 1 << 20)));
        let v = t.lookup(&[7; 32]).expect("read back from disk");
        assert_eq!(&*v[0].loaded().unwrap(), b"seven");
        assert_eq!(v[1].len(), 0);
        // One byte of the value changed: the digest catches it.
        let path = dir.join(hex(&[8; 32]));
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(t.lookup(&[8; 32]).is_none());
        assert_eq!(t.stats.corrupt.load(Ordering::Relaxed), 1);
        assert!(!path.exists(), "removed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_directory_stays_within_its_budget_and_spares_others_temporaries() {
        let dir = tempdir();
        // A live process's write in progress (this one's parent's pid is
        // alive), and a dead one's leftover.
        let live = dir.join(format!(".tmp-{}-1", std::os::unix::process::parent_id()));
        let dead = dir.join(".tmp-4294967295-1");
        std::fs::write(&live, b"x").unwrap();
        std::fs::write(&dead, b"x").unwrap();
        let t = table(1 << 20, Some((&dir, 3000)));
        let s = t.store_stats.clone();
        for k in 0..5u8 {
            t.insert([k; 32], vec![blob(&s, &[k; 1000])]);
        }
        let files = entry_files(&dir);
        let total: u64 = files.iter().map(|f| f.1).sum();
        assert!(total <= 3000, "{total} bytes");
        assert!(files.len() < 5);
        assert!(
            files.iter().any(|f| f.2 == hex(&[4; 32])),
            "the newest stays"
        );
        assert!(live.exists(), "another process's write is left alone");
        assert!(!dead.exists(), "a dead process's leftover is swept");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
