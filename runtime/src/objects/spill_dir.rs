//! The spill directory a process owns.
//!
//! Objects spill into a directory that one process made and holds for its
//! life: `wray-spill-<pid>-<nonce>`, inside the directory the user chose
//! (`--spill-dir`) or the system's temporary directory. The owner holds an
//! exclusive `flock` on the `lock` file in it; the kernel drops that lock
//! when the owner exits, however it exits (`kill -9` included). So:
//!
//! - processes given the same `--spill-dir` never share a file, and each
//!   removes only its own directory (on a normal end; the CLI turns SIGINT
//!   and SIGTERM into one);
//! - [`sweep`] removes the directories whose lock it can take: their owner
//!   is gone. It removes nothing else: only directories named
//!   `wray-spill-*` that hold a `lock` file, never a symbolic link.
//!
//! A directory appears whole: it is made under a staging name (which a
//! sweep ignores), its lock taken, and only then renamed into place, so a
//! sweep never finds an owned directory with its lock not yet held.
//!
//! The directory is made on the first spill (most runs never spill), and
//! the sweep runs once, off the start-up path.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What every owned directory's name starts with.
const PREFIX: &str = "wray-spill-";
/// The file whose lock says the owner lives.
const LOCK: &str = "lock";

/// Where this process spills: its own directory under `parent`, made on
/// first use and removed by [`SpillDir::remove`].
pub(crate) struct SpillDir {
    parent: PathBuf,
    own: Mutex<Option<Owned>>,
}

/// The directory made, and its lock (held while the file is open).
struct Owned {
    path: PathBuf,
    _lock: File,
}

impl SpillDir {
    /// Spills will go to a directory of this process's under `parent`.
    pub fn new(parent: PathBuf) -> SpillDir {
        SpillDir {
            parent,
            own: Mutex::new(None),
        }
    }

    /// The directory the user or the system chose, which holds ours.
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// This process's directory, made (with `parent`, if need be) on the
    /// first call. Blocks on file I/O.
    pub fn path(&self) -> io::Result<PathBuf> {
        let mut own = self.lock();
        if let Some(o) = &*own {
            return Ok(o.path.clone());
        }
        let o = make_owned(&self.parent)?;
        let path = o.path.clone();
        *own = Some(o);
        Ok(path)
    }

    /// Removes this process's directory and everything in it, if it made
    /// one. Idempotent.
    pub fn remove(&self) {
        if let Some(o) = self.lock().take() {
            let _ = std::fs::remove_dir_all(&o.path);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Owned>> {
        self.own.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Makes a directory of this process's under `parent`, locked, then
/// renamed into place.
fn make_owned(parent: &Path) -> io::Result<Owned> {
    std::fs::create_dir_all(parent)?;
    let name = format!(
        "{PREFIX}{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    );
    let staging = parent.join(format!(".{name}.new"));
    std::fs::create_dir(&staging)?;
    let made = (|| {
        let lock = File::create(staging.join(LOCK))?;
        if !try_lock(&lock)? {
            return Err(io::Error::other("a new spill directory's lock is taken"));
        }
        let path = parent.join(&name);
        std::fs::rename(&staging, &path)?;
        Ok(Owned { path, _lock: lock })
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    made
}

/// Takes an exclusive lock on `f` without waiting (an `flock`): false if
/// another open file holds one.
fn try_lock(f: &File) -> io::Result<bool> {
    match f.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Removes the spill directories under `parent` whose owner is gone, and
/// returns how many. Leaves everything else alone (see the module doc).
///
/// A dead owner's directory is first renamed `.<name>.dead`, its lock still
/// held, then removed: a sweep cut short (its process ended) leaves a
/// `.dead` directory, which only a sweep makes, and which the next sweep
/// removes.
pub(crate) fn sweep(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        // `file_type` does not follow symbolic links.
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = e.path();
        if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(".dead") {
            if std::fs::remove_dir_all(&dir).is_ok() {
                removed += 1;
            }
            continue;
        }
        if !name.starts_with(PREFIX) {
            continue;
        }
        let Ok(lock) = open_lock(&dir) else {
            continue;
        };
        // Held while renaming: a live owner keeps its lock, and a second
        // sweep cannot take this one meanwhile.
        if try_lock(&lock).unwrap_or(false) {
            let dead = parent.join(format!(".{name}.dead"));
            if std::fs::rename(&dir, &dead).is_ok() && std::fs::remove_dir_all(&dead).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Opens `dir`'s lock file, refusing a symbolic link.
fn open_lock(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(LOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn each_owner_gets_its_own_directory_and_removes_only_it() {
        let parent = tempfile::tempdir().unwrap();
        let a = SpillDir::new(parent.path().to_path_buf());
        let b = SpillDir::new(parent.path().to_path_buf());
        assert!(
            names(parent.path()).is_empty(),
            "nothing until the first spill"
        );
        let (pa, pb) = (a.path().unwrap(), b.path().unwrap());
        assert_ne!(pa, pb);
        assert_eq!(a.path().unwrap(), pa, "made once");
        std::fs::write(pa.join("x"), b"a").unwrap();
        std::fs::write(pb.join("x"), b"b").unwrap();
        // Both owners live: a sweep takes neither.
        assert_eq!(sweep(parent.path()), 0);
        a.remove();
        assert!(!pa.exists());
        assert_eq!(std::fs::read(pb.join("x")).unwrap(), b"b");
        drop(b);
        assert!(names(parent.path()).is_empty());
    }

    #[test]
    fn a_sweep_removes_what_dead_owners_left_and_nothing_else() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        // An owner that died: its directory and lock file, no lock held.
        let dead = p.join(format!("{PREFIX}1-dead"));
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        std::fs::write(dead.join("blob.tmp"), b"left behind").unwrap();
        // Not ours: no lock file, another name, a file, a symbolic link to
        // a dead owner's directory elsewhere.
        std::fs::create_dir(p.join(format!("{PREFIX}2-nolock"))).unwrap();
        std::fs::create_dir(p.join("user-data")).unwrap();
        std::fs::write(p.join("user-data").join(LOCK), b"").unwrap();
        std::fs::write(p.join(format!("{PREFIX}3-file")), b"").unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("d");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join(LOCK), b"").unwrap();
        std::os::unix::fs::symlink(&target, p.join(format!("{PREFIX}4-link"))).unwrap();
        // A sweep cut short.
        let half = p.join(format!(".{PREFIX}5-gone.dead"));
        std::fs::create_dir(&half).unwrap();
        std::fs::write(half.join("blob"), b"").unwrap();
        // A live owner.
        let live = SpillDir::new(p.to_path_buf());
        let live_path = live.path().unwrap();
        assert_eq!(sweep(p), 2);
        assert!(!half.exists());
        assert!(!dead.exists());
        assert!(live_path.exists());
        assert!(target.join(LOCK).exists());
        assert_eq!(names(p).len(), 5, "{:?}", names(p));
    }

    #[test]
    fn a_parent_that_is_a_file_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let d = SpillDir::new(file.path().to_path_buf());
        assert!(d.path().is_err());
        assert_eq!(sweep(file.path()), 0);
    }
}
