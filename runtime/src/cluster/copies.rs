//! Copies of objects across nodes, as Ray's object directory keeps them.
//!
//! A node keeps the large objects it pulled for calls ([`Copies`]) while
//! memory allows, as Ray keeps secondary copies: a later call here with
//! the same argument finds it rather than pulling it again, and other
//! nodes may pull it from here. Memory pressure drops them first (before
//! anything is spilled). The node that lends an object remembers which
//! nodes took it ([`Holders`]), and names them in the next loan, so the
//! next node pulls from one of them rather than from the lender: a large
//! object sent to many nodes spreads from node to node. Every pull is
//! checked against the digest that names the object, whoever serves it.

use crate::objects::blob::Blob;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Objects lent whose holders are remembered, at most.
const MAX_TRACKED: usize = 4096;
/// Holders remembered per object, at most (the latest).
const MAX_HOLDERS: usize = 8;

/// Large objects this node pulled, kept for reuse within a memory budget,
/// the least recently used dropped first.
pub(crate) struct Copies {
    inner: Mutex<Kept>,
    budget: u64,
}

#[derive(Default)]
struct Kept {
    /// Each copy, and when it was last used (a tick).
    map: HashMap<[u8; 32], (Arc<Blob>, u64)>,
    bytes: u64,
    tick: u64,
}

impl Copies {
    /// Copies of at most `budget` bytes together.
    pub fn new(budget: u64) -> Copies {
        Copies {
            inner: Mutex::default(),
            budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `blob`, dropping the least recently used copies past the
    /// budget (a blob larger than the budget is not kept).
    pub fn keep(&self, blob: &Arc<Blob>) {
        let len = blob.len() as u64;
        if len > self.budget {
            return;
        }
        let mut k = self.lock();
        k.tick += 1;
        let tick = k.tick;
        if let Some(old) = k.map.insert(blob.digest().0, (blob.clone(), tick)) {
            k.bytes -= old.0.len() as u64;
        }
        k.bytes += len;
        while k.bytes > self.budget {
            let Some(oldest) = k.map.iter().min_by_key(|(_, (_, t))| *t).map(|(d, _)| *d) else {
                break;
            };
            if let Some((b, _)) = k.map.remove(&oldest) {
                k.bytes -= b.len() as u64;
            }
        }
    }

    /// The copy of the object `digest`, if kept (now the most recently
    /// used).
    pub fn get(&self, digest: &[u8; 32]) -> Option<Arc<Blob>> {
        let mut k = self.lock();
        k.tick += 1;
        let tick = k.tick;
        let (blob, used) = k.map.get_mut(digest)?;
        *used = tick;
        Some(blob.clone())
    }

    /// Drops every copy (memory is short).
    pub fn clear(&self) {
        let dropped = {
            let mut k = self.lock();
            k.bytes = 0;
            std::mem::take(&mut k.map)
        };
        // The blobs go outside the lock.
        drop(dropped);
    }

    /// How many copies are kept, and their bytes.
    pub fn usage(&self) -> (u64, u64) {
        let k = self.lock();
        (k.map.len() as u64, k.bytes)
    }
}

/// The nodes (by RPC address) that took each object this node lent,
/// latest first.
#[derive(Default)]
pub(crate) struct Holders(Mutex<Tracked>);

#[derive(Default)]
struct Tracked {
    by_digest: HashMap<[u8; 32], VecDeque<String>>,
    /// Digests in the order first tracked, to forget the oldest.
    order: VecDeque<[u8; 32]>,
}

impl Holders {
    fn lock(&self) -> MutexGuard<'_, Tracked> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Node `address` took the object `digest`.
    pub fn add(&self, digest: [u8; 32], address: &str) {
        let mut t = self.lock();
        if !t.by_digest.contains_key(&digest) {
            if t.order.len() >= MAX_TRACKED
                && let Some(old) = t.order.pop_front()
            {
                t.by_digest.remove(&old);
            }
            t.order.push_back(digest);
        }
        let holders = t.by_digest.entry(digest).or_default();
        holders.retain(|a| a != address);
        holders.push_front(address.to_string());
        holders.truncate(MAX_HOLDERS);
    }

    /// The nodes that took the object `digest`, other than `except`.
    pub fn of(&self, digest: &[u8; 32], except: &str) -> Vec<String> {
        let t = self.lock();
        t.by_digest.get(digest).map_or_else(Vec::new, |h| {
            h.iter().filter(|a| *a != except).cloned().collect()
        })
    }

    /// Whether node `address` took the object `digest`.
    pub fn has(&self, digest: &[u8; 32], address: &str) -> bool {
        let t = self.lock();
        t.by_digest
            .get(digest)
            .is_some_and(|h| h.iter().any(|a| a == address))
    }

    /// Forgets node `address` (it left the cluster).
    pub fn forget(&self, address: &str) {
        let mut t = self.lock();
        for holders in t.by_digest.values_mut() {
            holders.retain(|a| a != address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::blob::StoreStats;

    fn blob(fill: u8, len: usize, stats: &Arc<StoreStats>) -> Arc<Blob> {
        Arc::new(Blob::copy_from(&vec![fill; len], vec![], stats))
    }

    #[test]
    fn copies_stay_within_their_budget_the_least_recently_used_going_first() {
        let stats = Arc::new(StoreStats::default());
        let copies = Copies::new(300);
        let (a, b, c) = (
            blob(1, 100, &stats),
            blob(2, 100, &stats),
            blob(3, 150, &stats),
        );
        copies.keep(&a);
        copies.keep(&b);
        assert!(copies.get(&a.digest().0).is_some()); // a is now newer than b
        copies.keep(&c);
        assert_eq!(copies.usage(), (2, 250));
        assert!(
            copies.get(&b.digest().0).is_none(),
            "b was least recently used"
        );
        assert!(copies.get(&a.digest().0).is_some());
        // Kept again: counted once.
        copies.keep(&c);
        assert_eq!(copies.usage(), (2, 250));
        // Larger than the budget: not kept, nothing dropped for it.
        copies.keep(&blob(4, 301, &stats));
        assert_eq!(copies.usage(), (2, 250));
        copies.clear();
        assert_eq!(copies.usage(), (0, 0));
        assert!(copies.get(&a.digest().0).is_none());
    }

    #[test]
    fn holders_are_the_latest_few_and_forgotten_with_their_node() {
        let h = Holders::default();
        let d = [7; 32];
        for i in 0..10 {
            h.add(d, &format!("n{i}:1"));
        }
        h.add(d, "n3:1");
        let of = h.of(&d, "n9:1");
        assert_eq!(of.len(), MAX_HOLDERS - 1, "{of:?}");
        assert_eq!(of[0], "n3:1", "the latest first, the one asking left out");
        assert!(h.has(&d, "n3:1") && !h.has(&d, "n0:1") && !h.has(&[8; 32], "n3:1"));
        h.forget("n3:1");
        assert!(!h.of(&d, "").contains(&"n3:1".to_string()));
        assert!(h.of(&[8; 32], "").is_empty());
        // Past the tracked objects, the oldest is forgotten.
        for i in 0..MAX_TRACKED as u64 {
            let mut other = [1u8; 32];
            other[..8].copy_from_slice(&i.to_le_bytes());
            h.add(other, "x:1");
        }
        assert!(h.of(&d, "").is_empty());
    }
}
