//! The key directory: the index (key hash -> location of the live record,
//! `index/`) together with the per-key stripe locks, and the operations
//! that keep both consistent: looking a key up, publishing a new version,
//! unpublishing a deleted one, emptying it for a Clear; and the moves
//! compaction makes by location.
//!
//! A writer holds its key's stripe from before its append until after its
//! publish, so one key's versions publish in sequence order and a
//! condition checked under the stripe still holds at the write. The index
//! itself compares only hashes; keys whose hashes collide are told apart
//! by the key stored in each record (`FileTable::key_at`).

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use crate::hstable::FileTable;
use crate::index::Index;
use crate::lock_order::{Held, Rank, RankedMutex};
use crate::snapshot::Registry;
use crate::stats::Counters;

const STRIPES: usize = 256;

/// A record just written, to be published (or, for a tombstone,
/// unpublished) for its key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed<'a> {
    pub hash: u64,
    pub key: &'a [u8],
    /// Location of the record (a Put, or the Delete's tombstone).
    pub loc: u64,
    /// Bytes of the record.
    pub len: u64,
    pub seq: u64,
}

pub(crate) struct KeyDir {
    index: Index,
    /// Per-key-hash locks held across check + append + publish.
    stripes: Box<[RankedMutex<()>]>,
}

impl KeyDir {
    pub fn new(index: Index) -> KeyDir {
        KeyDir {
            index,
            stripes: (0..STRIPES)
                .map(|_| RankedMutex::new(Rank::Stripe, ()))
                .collect(),
        }
    }

    /// Keys in the index.
    pub fn len(&self) -> u64 {
        self.index.len()
    }

    /// Bytes of RAM the index holds.
    pub fn bytes(&self) -> u64 {
        self.index.bytes()
    }

    /// The stripe lock of a key hash.
    #[inline]
    pub fn stripe(&self, hash: u64) -> Held<MutexGuard<'_, ()>> {
        // NOTE: the low 8 bits pick the stripe; shards use the top bits.
        self.stripes[(hash as usize) % STRIPES].lock()
    }

    /// Every stripe lock: no write is then between its append and its publish.
    pub fn all_stripes(&self) -> Vec<Held<MutexGuard<'_, ()>>> {
        self.stripes.iter().map(RankedMutex::lock_again).collect()
    }

    /// The location of the live record of `key`, if any.
    #[inline]
    pub fn find(&self, files: &FileTable, hash: u64, key: &[u8]) -> Option<u64> {
        self.with_location(files, hash, key, |loc| loc)
    }

    /// Calls `f` with the location of the live record of `key` while its
    /// shard is still read-locked: a version being superseded meanwhile is
    /// then either here or, already, in the snapshot side list.
    #[inline]
    pub fn with_location<R>(
        &self,
        files: &FileTable,
        hash: u64,
        key: &[u8],
        f: impl FnOnce(Option<u64>) -> R,
    ) -> R {
        let shard = self.index.read(hash);
        f(shard.find(hash, |l| files.key_at(l).is_some_and(|(k, _)| k == key)))
    }

    /// Whether the index entry of `hash` is the record at `loc` (for
    /// compaction, which knows records by place, not by key).
    pub fn points_at(&self, hash: u64, loc: u64) -> bool {
        self.index.read(hash).find(hash, |l| l == loc).is_some()
    }

    /// Removes the index entry of `hash` if it is the record at `loc`;
    /// whether it was.
    pub fn remove_at(&self, hash: u64, loc: u64) -> bool {
        self.index.write(hash).remove(hash, |l| l == loc).is_some()
    }

    /// Moves the index entry of `hash` from `old` to `new` if it still
    /// points at `old` (a concurrent overwrite wins); whether it did.
    pub fn replace(&self, hash: u64, old: u64, new: u64) -> bool {
        self.index.write(hash).replace(hash, old, new)
    }

    /// Empties the index for the Clear record `seq`, handing every version
    /// to the snapshots that may still read it. Call under every stripe.
    pub fn clear(&self, files: &FileTable, snapshots: &Registry, seq: u64) {
        if snapshots.any() {
            self.index.for_each(|hash, loc| {
                snapshots.superseded(files, hash, loc, seq);
            });
        }
        self.index.clear();
    }

    /// Puts the Put record `r` in the index for its key, replacing an
    /// older version.
    pub fn publish(
        &self,
        files: &FileTable,
        snapshots: &Registry,
        counters: &Counters,
        r: Placed<'_>,
    ) {
        let mut shard = self.index.write(r.hash);
        let old = shard.insert(r.hash, r.loc, |l| {
            files.key_at(l).is_some_and(|(k, _)| k == r.key)
        });
        if let Some(old) = old {
            // Under the shard lock, so a snapshot read sees the old version
            // either in the index or in the side list.
            snapshots.superseded(files, r.hash, old, r.seq);
        }
        drop(shard);
        counters.live_bytes.fetch_add(r.len, Ordering::Relaxed);
        if let Some(old) = old {
            let ol = files.kill_at(old);
            counters.live_bytes.fetch_sub(ol, Ordering::Relaxed);
            counters.dead_bytes.fetch_add(ol, Ordering::Relaxed);
        }
    }

    /// Removes the key of the tombstone `r` from the index.
    pub fn unpublish(
        &self,
        files: &FileTable,
        snapshots: &Registry,
        counters: &Counters,
        r: Placed<'_>,
    ) {
        let mut shard = self.index.write(r.hash);
        let old = shard.remove(r.hash, |l| files.key_at(l).is_some_and(|(k, _)| k == r.key));
        if let Some(old) = old {
            snapshots.superseded(files, r.hash, old, r.seq);
        }
        drop(shard);
        counters.dead_bytes.fetch_add(r.len, Ordering::Relaxed);
        if let Some((f, _)) = files.file_of(r.loc) {
            f.dead.fetch_add(r.len, Ordering::Relaxed);
        }
        if let Some(old) = old {
            let ol = files.kill_at(old);
            counters.live_bytes.fetch_sub(ol, Ordering::Relaxed);
            counters.dead_bytes.fetch_add(ol, Ordering::Relaxed);
        }
    }
}
