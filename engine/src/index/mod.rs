//! The in-memory index: 64-bit key hash -> record location, about 20 bytes
//! of RAM per live key.
//!
//! Layout: 8 shards (by the hash's top 3 bits), each an `RwLock` around an
//! open-addressing table of 16-byte slots `(hash, location)`. Few shards
//! keep each table big enough (2 MiB and up from about 130,000 keys per
//! shard) to sit on transparent huge pages (see `slots::SlotArray`): an index
//! probe is a random access, and its TLB miss costs as much as its cache
//! miss. Eight write locks are plenty on the machines this targets: a
//! writer holds one only to publish a location. Within a table,
//! occupied slots are kept sorted by (rotated) hash and every entry sits at or
//! after its home slot (linear probing with ordered runs, i.e. Robin Hood with
//! a monotone home function). That buys three things:
//!
//! * a lookup stops at the first slot whose hash is larger, so a miss costs
//!   about as much as a hit, even at 87.5% load;
//! * a delete shifts the rest of its run back by one, so there are no
//!   tombstones and the load never degrades;
//! * capacity need not be a power of two (the home slot is `hash * cap >> 64`),
//!   so tables grow by 1.4x, not 2x: the load stays between 62% and 87.5%,
//!   i.e. 18 to 26 bytes per key, measured by [`Index::bytes`] from capacity.
//!
//! * crafted keys cannot grow the table: a run that reaches the end spills
//!   into overflow slots past the last home slot, as many as it needs
//!   (see `Table::rebuild`); capacity grows with the number of keys only.
//!   Such keys still share one long run, so they cost probe time; what
//!   keeps clients from making them is the store's secret hash seed
//!   (FORMAT.md, "Key hash"; stores made before format version 3 keep the
//!   public one).
//!
//! Keys whose 64-bit hashes collide are simply adjacent entries with the same
//! hash; callers tell them apart by comparing the key stored in the record
//! (the `same_key` callbacks). There is no side table.
//!
//! A location packs the file id (high 24 bits) and the record offset (low 40
//! bits); 0 means an empty slot, which no record can have (records start
//! after the file header).

mod slots;

use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use crate::lock_order::{Held, Rank, RankedRwLock};

use slots::SlotArray;

const SHARD_BITS: u32 = 3;
const SHARDS: usize = 1 << SHARD_BITS;
/// Slots past the last home slot, so runs near the end need no wrap-around.
/// A run that outgrows them gets more overflow slots (see
/// [`Table::rebuild`]), never a larger capacity.
const SLACK: usize = 64;
const OFFSET_BITS: u32 = 40;
/// The largest file id a location can hold (24 bits). The engine never
/// makes a file past it, and recovery refuses one.
pub const MAX_FILE_ID: u32 = (1 << (64 - OFFSET_BITS)) - 1;

/// Packs a file id and offset into an index location.
#[inline]
pub fn pack(file_id: u32, offset: u64) -> u64 {
    debug_assert!(offset < (1 << OFFSET_BITS) && file_id < (1 << 24));
    (u64::from(file_id) << OFFSET_BITS) | offset
}

/// The file id and offset of a location.
#[inline]
pub fn unpack(loc: u64) -> (u32, usize) {
    // NOTE: the high 24 bits fit u32 by construction; the offset fits usize on 64-bit targets.
    (
        (loc >> OFFSET_BITS) as u32,
        (loc & ((1 << OFFSET_BITS) - 1)) as usize,
    )
}

// A slot is `[r, loc]`: `r` is the key hash rotated so the shard bits are
// at the bottom (the table orders and places entries by the remaining,
// uniformly spread bits); `loc` is the packed location, 0 = empty.
const R: usize = 0;
const LOC: usize = 1;

/// One shard's table.
#[derive(Default)]
pub struct Table {
    slots: SlotArray,
    /// Home slots are `0..cap`; `slots.len() >= cap + SLACK` (or 0): the
    /// slots past `cap` are overflow for the run that ends the table.
    cap: usize,
    len: usize,
}

#[inline]
fn rot(hash: u64) -> u64 {
    hash.rotate_left(SHARD_BITS)
}

impl Table {
    #[inline]
    fn home(&self, r: u64) -> usize {
        // NOTE: the product's high 64 bits are < cap, so the cast is exact.
        ((u128::from(r) * self.cap as u128) >> 64) as usize
    }

    /// First slot that may hold `r`: skips entries with smaller hashes.
    #[inline]
    fn start(&self, r: u64) -> usize {
        let mut i = self.home(r);
        while i < self.slots.len() && self.slots[i][LOC] != 0 && self.slots[i][R] < r {
            i += 1;
        }
        i
    }

    /// Calls `f` with each location stored under `hash` until it returns true;
    /// returns that location.
    #[inline]
    pub fn find(&self, hash: u64, mut f: impl FnMut(u64) -> bool) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let r = rot(hash);
        let mut i = self.start(r);
        while i < self.slots.len() && self.slots[i][LOC] != 0 && self.slots[i][R] == r {
            if f(self.slots[i][LOC]) {
                return Some(self.slots[i][LOC]);
            }
            i += 1;
        }
        None
    }

    /// Inserts or replaces the entry of the key for which `same_key` holds;
    /// returns the replaced location.
    pub fn insert(
        &mut self,
        hash: u64,
        loc: u64,
        mut same_key: impl FnMut(u64) -> bool,
    ) -> Option<u64> {
        debug_assert!(loc != 0);
        let r = rot(hash);
        if self.len + 1 > self.cap / 8 * 7 {
            self.grow();
        }
        loop {
            let n = self.slots.len();
            let mut i = self.start(r);
            while i < n && self.slots[i][LOC] != 0 && self.slots[i][R] == r {
                if same_key(self.slots[i][LOC]) {
                    let old = self.slots[i][LOC];
                    self.slots[i][LOC] = loc;
                    return Some(old);
                }
                i += 1;
            }
            let Some(empty) = (i..n).find(|&j| self.slots[j][LOC] == 0) else {
                // The run reaches the end of the overflow slots: more of
                // them, at the same capacity, and retry.
                self.rebuild(self.cap);
                continue;
            };
            self.slots.copy_within(i..empty, i + 1);
            self.slots[i] = [r, loc];
            self.len += 1;
            return None;
        }
    }

    /// Moves the entry at location `old` to `new` if it is still there
    /// (compaction: a concurrent overwrite has replaced `old` and wins).
    pub fn replace(&mut self, hash: u64, old: u64, new: u64) -> bool {
        debug_assert!(new != 0);
        if self.len == 0 {
            return false;
        }
        let r = rot(hash);
        let mut i = self.start(r);
        while i < self.slots.len() && self.slots[i][LOC] != 0 && self.slots[i][R] == r {
            if self.slots[i][LOC] == old {
                self.slots[i][LOC] = new;
                return true;
            }
            i += 1;
        }
        false
    }

    /// Removes the entry of the key for which `same_key` holds; returns its location.
    pub fn remove(&mut self, hash: u64, mut same_key: impl FnMut(u64) -> bool) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let r = rot(hash);
        let n = self.slots.len();
        let mut i = self.start(r);
        while i < n && self.slots[i][LOC] != 0 && self.slots[i][R] == r {
            if same_key(self.slots[i][LOC]) {
                let old = self.slots[i][LOC];
                // Backward shift: entries after i that are not at their home
                // slot move one step closer to it.
                let mut j = i + 1;
                while j < n && self.slots[j][LOC] != 0 && self.home(self.slots[j][R]) < j {
                    j += 1;
                }
                self.slots.copy_within(i + 1..j, i);
                self.slots[j - 1] = [0, 0];
                self.len -= 1;
                return Some(old);
            }
            i += 1;
        }
        None
    }

    fn grow(&mut self) {
        self.rebuild((self.cap * 7 / 5).max(64));
    }

    /// Re-places every entry in a table of `cap` home slots, with overflow
    /// slots past them for the last run: at least [`SLACK`], and twice what
    /// that run already spills past `cap`, so inserts into a long last run
    /// rebuild only now and then.
    ///
    /// Growing the capacity instead (until every run fits in a fixed slack)
    /// let keys whose hashes all land near the last home slot force the
    /// array to grow by about 2^k slots per key for k bits of brute force:
    /// hash flooding as memory exhaustion, and the same again at every
    /// recovery. Overflow slots grow with the number of such keys only.
    fn rebuild(&mut self, cap: usize) {
        let home = |r: u64| ((u128::from(r) * cap as u128) >> 64) as usize;
        let mut end = 0usize;
        for s in self.slots.iter().filter(|s| s[LOC] != 0) {
            end = home(s[R]).max(end) + 1;
        }
        let spill = end.saturating_sub(cap);
        let mut slots = SlotArray::zeroed(cap + SLACK.max(2 * spill + SLACK));
        let mut next = 0usize;
        for s in self.slots.iter().filter(|s| s[LOC] != 0) {
            let p = home(s[R]).max(next);
            slots[p] = *s;
            next = p + 1;
        }
        self.slots = slots;
        self.cap = cap;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn bytes(&self) -> usize {
        self.slots.bytes() + std::mem::size_of::<std::sync::RwLock<Table>>()
    }
}

/// The sharded index.
pub struct Index {
    shards: Box<[RankedRwLock<Table>]>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            shards: (0..SHARDS)
                .map(|_| RankedRwLock::new(Rank::IndexShard, Table::default()))
                .collect(),
        }
    }
}

impl Index {
    #[inline]
    fn shard(&self, hash: u64) -> &RankedRwLock<Table> {
        // NOTE: the shift leaves SHARD_BITS bits, which fit usize.
        &self.shards[(hash >> (64 - SHARD_BITS)) as usize]
    }

    /// The table holding `hash`, for reading. A poisoned lock is taken over:
    /// the tables are updated in ways that leave them consistent at every
    /// panic point (a panic can only come from a caller's key comparison).
    #[inline]
    pub fn read(&self, hash: u64) -> Held<RwLockReadGuard<'_, Table>> {
        self.shard(hash).read()
    }

    #[inline]
    pub fn write(&self, hash: u64) -> Held<RwLockWriteGuard<'_, Table>> {
        self.shard(hash).write()
    }

    /// Live entries.
    pub fn len(&self) -> u64 {
        self.shards.iter().map(|s| s.read().len() as u64).sum()
    }

    /// Bytes of RAM the index holds, from allocated capacity (not from the
    /// number of entries).
    pub fn bytes(&self) -> u64 {
        let tables: usize = self.shards.iter().map(|s| s.read().bytes()).sum();
        (tables + std::mem::size_of::<Index>()) as u64
    }

    /// Calls `f(hash, location)` for every entry, one shard at a time (each
    /// shard read-locked while it is walked).
    pub fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        for s in self.shards.iter() {
            let t = s.read();
            for slot in t.slots.iter().filter(|s| s[LOC] != 0) {
                f(slot[R].rotate_right(SHARD_BITS), slot[LOC]);
            }
        }
    }

    /// Removes every entry.
    pub fn clear(&self) {
        for s in self.shards.iter() {
            *s.write() = Table::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn mix(mut x: u64) -> u64 {
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
        x ^ (x >> 31)
    }

    #[test]
    fn matches_a_hashmap_including_collisions() {
        // Keys are u64 ids; the "hash" deliberately collides for ids that
        // share id / 3, and the location is id + 16 (never 0).
        let mut t = Table::default();
        let mut model: HashMap<u64, u64> = HashMap::new();
        let hash = |id: u64| mix(id / 3);
        for step in 0..20_000u64 {
            let id = mix(step) % 3000;
            let same = |loc: u64| (loc & 0xffff_ffff) - 16 == id;
            if mix(step ^ 0xabc).is_multiple_of(3) {
                let removed = t.remove(hash(id), same);
                assert_eq!(removed.is_some(), model.remove(&id).is_some());
            } else {
                let loc = (step << 32) | (id + 16);
                let old = t.insert(hash(id), loc, same);
                assert_eq!(old, model.insert(id, loc));
            }
            assert_eq!(t.len(), model.len());
        }
        for id in 0..3000u64 {
            let got = t.find(hash(id), |loc| (loc & 0xffff_ffff) - 16 == id);
            assert_eq!(got, model.get(&id).copied(), "id {id}");
        }
    }

    #[test]
    fn bytes_per_key_within_budget() {
        let idx = Index::default();
        for n in 1..=200_000u64 {
            let h = mix(n);
            idx.write(h).insert(h, n + 16, |_| false);
        }
        let per_key = idx.bytes() as f64 / idx.len() as f64;
        assert!(per_key <= 32.0, "{per_key} bytes per key");
    }

    #[test]
    fn replace_moves_only_the_entry_still_at_the_old_place() {
        let mut t = Table::default();
        t.insert(42, 100, |_| false);
        t.insert(42, 200, |_| false); // a colliding key
        assert!(t.replace(42, 100, 300));
        assert!(!t.replace(42, 100, 400), "already moved");
        assert_eq!(t.find(42, |l| l == 300), Some(300));
        assert_eq!(t.find(42, |l| l == 200), Some(200));
        assert!(!t.replace(7, 200, 500), "another hash");
    }

    #[test]
    fn keys_on_the_last_home_slot_do_not_grow_the_table() {
        // Rotated hashes at the very top of the range: every home slot is
        // the last one, whatever the capacity.
        let mut t = Table::default();
        let n = 5_000u64;
        for i in 0..n {
            let r = u64::MAX - i;
            t.insert(r.rotate_right(SHARD_BITS), i + 16, |_| false);
        }
        assert_eq!(t.len(), n as usize);
        assert!(
            t.slots.len() <= 4 * n as usize + 2 * SLACK,
            "{} slots for {n} entries",
            t.slots.len()
        );
        for i in 0..n {
            let r = u64::MAX - i;
            assert_eq!(
                t.find(r.rotate_right(SHARD_BITS), |l| l == i + 16),
                Some(i + 16)
            );
        }
        for i in 0..n {
            let r = u64::MAX - i;
            assert_eq!(
                t.remove(r.rotate_right(SHARD_BITS), |l| l == i + 16),
                Some(i + 16)
            );
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn pack_round_trip() {
        assert_eq!(unpack(pack(7, 123_456)), (7, 123_456));
        assert_eq!(
            unpack(pack((1 << 24) - 1, (1 << 40) - 1)),
            ((1 << 24) - 1, (1 << 40) - 1)
        );
    }
}
