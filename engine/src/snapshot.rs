//! Snapshots (a consistent read view at a sequence number) and iterators
//! over them, without copying the index.
//!
//! A snapshot pins two things:
//!
//! * a sequence number `S`: every write with a higher number is invisible;
//! * the set of HSTables alive when it was taken (a `Vec` of `Arc`s: one
//!   pointer per file, not per key). Compaction may unlink them; their maps
//!   stay readable until the snapshot drops (see `compaction.rs`).
//!
//! Reads at `S` need the version of a key that was live at `S`. The index
//! holds only the newest; while any snapshot is alive, a write that replaces
//! or deletes a version records the old one in a side list (key hash ->
//! old record's file `Arc`, offset, its sequence number and the sequence
//! number of the write that superseded it). A snapshot read looks in the
//! index first (newest version `<= S`: done) and then in the side list (the
//! version with `seq <= S < superseded_by`). Entries leave the side list as
//! soon as no live snapshot is old enough to need them; with no snapshot
//! alive the list is empty and writes pay one atomic load.
//!
//! The side list costs memory per overwrite made while a snapshot lives
//! (about 64 bytes each): keep long-lived snapshots rare under heavy
//! overwrites.
//!
//! Taking a snapshot takes every stripe lock for a moment (so no write sits
//! between its append and its publish: `S` is exactly what readers could
//! see) and compaction's switch lock for reading (so it never pins a file
//! and its compacted copy both).
//!
//! # Iteration order
//!
//! An iterator walks the pinned files in file id order and each file in
//! record order, and yields a record when it is the version of its key
//! visible at `S`. So every live key comes exactly once, in no particular
//! key order (roughly write order, reshuffled by compaction). Expired
//! records are skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::engine::Inner;
use crate::error::ReadError;
use crate::format::{IndexEntry, RecordHeader, RecordKind, FILE_HEADER_LEN, RECORD_HEADER_LEN};
use crate::hstable::FileTable;
use crate::hstable::MappedFile;
use crate::index;
use crate::lock_order::lock;
use crate::types::{Item, Value};

/// An old version a live snapshot may still read.
struct Superseded {
    file: Arc<MappedFile>,
    off: usize,
    seq: u64,
    /// Sequence number of the write that replaced or deleted it.
    until: u64,
}

/// Live snapshots and the side list of superseded versions.
#[derive(Default)]
pub(crate) struct Registry {
    count: AtomicUsize,
    /// Live snapshots by sequence number (value: how many).
    live: Mutex<BTreeMap<u64, usize>>,
    superseded: Mutex<HashMap<u64, Vec<Superseded>>>,
}

impl Registry {
    /// Whether any snapshot is alive.
    #[inline]
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Records that the version at `old` was superseded by the write `until`,
    /// if a snapshot may need it. Called under the key's stripe lock and
    /// index shard write lock.
    #[inline]
    pub fn superseded(&self, files: &FileTable, hash: u64, old: u64, until: u64) {
        if !self.any() {
            return;
        }
        let Some((file, off)) = files.file_of(old) else {
            return;
        };
        let Some((_, h)) = files.key_at(old) else {
            return;
        };
        lock(&self.superseded)
            .entry(hash)
            .or_default()
            .push(Superseded {
                file: file.clone(),
                off,
                seq: h.seq,
                until,
            });
    }

    /// Counts a snapshot at `seq` as live.
    pub fn register(&self, seq: u64) {
        *lock(&self.live).entry(seq).or_insert(0) += 1;
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    /// A snapshot at `seq` is gone: drops the old versions no live one needs.
    pub fn release(&self, seq: u64) {
        let oldest = {
            let mut live = lock(&self.live);
            if let Some(n) = live.get_mut(&seq) {
                *n -= 1;
                if *n == 0 {
                    live.remove(&seq);
                }
            }
            self.count.fetch_sub(1, Ordering::AcqRel);
            live.keys().next().copied()
        };
        let mut sup = lock(&self.superseded);
        match oldest {
            None => sup.clear(),
            // A snapshot at S needs an entry only while S < until.
            Some(min) => sup.retain(|_, v| {
                v.retain(|s| s.until > min);
                !v.is_empty()
            }),
        }
    }

    pub fn live_count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Entries in the side list (for stats and tests).
    pub fn side_len(&self) -> usize {
        lock(&self.superseded).values().map(Vec::len).sum()
    }

    /// The file, offset and sequence number of the version of `key` visible
    /// at `seq`: the live record at `live` (the index's entry for the key,
    /// looked up under its shard lock, which the caller still holds) if it
    /// is old enough, else the side list's.
    pub fn visible(
        &self,
        files: &FileTable,
        live: Option<u64>,
        hash: u64,
        key: &[u8],
        seq: u64,
    ) -> Option<(Arc<MappedFile>, usize, u64)> {
        if let Some(loc) = live {
            if let (Some((f, off)), Some((_, h))) = (files.file_of(loc), files.key_at(loc)) {
                if h.seq <= seq {
                    return Some((f.clone(), off, h.seq));
                }
            }
        }
        let sup = lock(&self.superseded);
        let v = sup.get(&hash)?;
        v.iter()
            .filter(|s| s.seq <= seq && seq < s.until)
            .find(|s| {
                s.file
                    .get(s.off, RECORD_HEADER_LEN)
                    .and_then(|b| RecordHeader::decode(b).ok())
                    .and_then(|h| s.file.get(s.off + RECORD_HEADER_LEN, h.key_len as usize))
                    == Some(key)
            })
            .map(|s| (s.file.clone(), s.off, s.seq))
    }
}

/// A consistent read view: later writes are invisible to it. Cheap to take
/// (no copy of the index); `Send + Sync`. Dropping it releases the old
/// versions and files it kept.
pub struct Snapshot {
    inner: Arc<Inner>,
    seq: u64,
    files: Vec<Arc<MappedFile>>,
    /// Where the records of the then-active file ended.
    active: (u32, u64),
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("seq", &self.seq)
            .field("files", &self.files.len())
            .finish()
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.inner.release_snapshot(self.seq);
    }
}

impl Snapshot {
    /// A snapshot at `seq` (registered already) of the pinned `files`;
    /// `active` is the then-active file's id and where its records ended.
    pub(crate) fn new(
        inner: Arc<Inner>,
        seq: u64,
        files: Vec<Arc<MappedFile>>,
        active: (u32, u64),
    ) -> Snapshot {
        Snapshot {
            inner,
            seq,
            files,
            active,
        }
    }

    /// The sequence number of the view: writes up to it are visible.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The item of `key` as it was at the snapshot; `None` if missing,
    /// deleted or expired (expiry is judged by the clock now).
    pub fn get(&self, key: &[u8]) -> Result<Option<Item>, ReadError> {
        if self.inner.is_closed() {
            return Err(ReadError::Closed);
        }
        let hash = self.inner.ctx().hash(key);
        match self.resolve(hash, key) {
            Some((file, off, _)) => self.inner.read_item(&file, off, key),
            None => Ok(None),
        }
    }

    /// The file, offset and sequence number of the version of `key`
    /// visible at the snapshot.
    fn resolve(&self, hash: u64, key: &[u8]) -> Option<(Arc<MappedFile>, usize, u64)> {
        self.inner.version_at(self.seq, hash, key)
    }

    /// Every live key of the snapshot exactly once, with its item, in file
    /// order (see the module docs); not key order.
    pub fn iter(&self) -> SnapshotIter<'_> {
        SnapshotIter {
            snap: self,
            file: 0,
            entries: Vec::new(),
            pos: 0,
        }
    }
}

/// A record of a snapshot: its key (a slice of the map) and its item.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Value,
    pub item: Item,
}

/// Iterator over a [`Snapshot`]: see [`Snapshot::iter`].
#[derive(Debug)]
pub struct SnapshotIter<'a> {
    snap: &'a Snapshot,
    /// Next file of `snap.files` to load.
    file: usize,
    /// Records of the current file (offset, kind, seq).
    entries: Vec<(u32, RecordKind, u64)>,
    pos: usize,
}

impl SnapshotIter<'_> {
    /// Loads the records of the next pinned file; false when there is none.
    fn load_next(&mut self) -> bool {
        let snap = self.snap;
        while self.file < snap.files.len() {
            let f = &snap.files[self.file];
            self.file += 1;
            self.pos = 0;
            self.entries.clear();
            let walk_to = if f.id() == snap.active.0 {
                // The then-active file: up to its end at the snapshot.
                Some(snap.active.1)
            } else if !f.sealed.load(Ordering::Acquire) {
                // A full file the roller has not sealed yet (if it has by
                // now, its records are where they were): all of it.
                Some(f.records_end.load(Ordering::Acquire))
            } else {
                None
            };
            if let Some(end) = walk_to {
                // No sealed index to read: walk the records (all published
                // at the snapshot, so written).
                let mut off = FILE_HEADER_LEN;
                let end = end as usize;
                while off + RECORD_HEADER_LEN <= end {
                    let Some(Ok(h)) = f.get(off, RECORD_HEADER_LEN).map(RecordHeader::decode)
                    else {
                        break;
                    };
                    self.entries.push((off as u32, h.kind, h.seq));
                    off += h.record_len();
                }
            } else {
                let len = f.file().metadata().map(|m| m.len()).unwrap_or(0);
                if let Some(entries) = crate::hstable::read_sealed_index(f.file(), len) {
                    self.entries.extend(
                        entries
                            .iter()
                            .map(|e: &IndexEntry| (e.offset, e.kind, e.seq)),
                    );
                }
            }
            if !self.entries.is_empty() {
                return true;
            }
        }
        false
    }
}

impl Iterator for SnapshotIter<'_> {
    type Item = Result<Entry, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let snap = self.snap;
        loop {
            if self.pos >= self.entries.len() && !self.load_next() {
                return None;
            }
            let (off, kind, seq) = self.entries[self.pos];
            self.pos += 1;
            if kind != RecordKind::Put || seq > snap.seq {
                continue;
            }
            let f = &snap.files[self.file - 1];
            let off = off as usize;
            let Some(Ok(h)) = f.get(off, RECORD_HEADER_LEN).map(RecordHeader::decode) else {
                continue;
            };
            let Some(key) = f.get(off + RECORD_HEADER_LEN, h.key_len as usize) else {
                continue;
            };
            let hash = snap.inner.ctx().hash(key);
            let Some((vf, voff, vseq)) = snap.resolve(hash, key) else {
                continue;
            };
            if vseq != seq {
                continue;
            }
            // One copy per version: this one, unless the visible copy is
            // another pinned file's (duplicates left by a crash between a
            // compaction's rename and unlink).
            let here = index::pack(f.id(), off as u64);
            let there = index::pack(vf.id(), voff as u64);
            if here != there && snap.files.iter().any(|p| Arc::ptr_eq(p, &vf)) {
                continue;
            }
            return match snap.inner.read_item(f, off, key) {
                Ok(Some(item)) => Some(Ok(Entry {
                    key: Value::mapped(f.clone(), off + RECORD_HEADER_LEN, h.key_len as usize),
                    item,
                })),
                Ok(None) => continue,
                Err(e) => Some(Err(e)),
            };
        }
    }
}
