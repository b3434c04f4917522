//! The engine's counters: [`EngineStats`] (what a caller reads) and the
//! atomics behind it, which every module updates without a lock.

use std::sync::atomic::AtomicU64;

/// Plain counters, cheap to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Keys in the index (expired ones included until overwritten).
    pub keys: u64,
    /// Bytes of the records the index points at.
    pub live_bytes: u64,
    /// Bytes of records that are overwritten, deleted, or tombstones.
    pub dead_bytes: u64,
    /// HSTables, sealed and active.
    pub files: u64,
    /// Record bytes appended since open.
    pub bytes_written: u64,
    /// fdatasync calls since open (group commits, roll-overs, close).
    pub syncs: u64,
    /// Corrupt records found (recovery scans and reads); never served.
    pub bad_records: u64,
    /// Compaction rounds completed since open.
    pub compactions: u64,
    /// RAM held by the index, from its allocated capacity.
    pub index_bytes: u64,
    /// Torn-tail bytes cut off by recovery at open.
    pub truncated_bytes: u64,
    /// Highest sequence number assigned.
    pub last_seq: u64,
    /// Highest sequence number known to be on disk.
    pub durable_seq: u64,
    /// Bytes used in the active HSTable (header and records).
    pub active_file_bytes: u64,
    /// File id of the active HSTable (compaction outputs may have higher ids).
    pub active_file_id: u64,
    /// Record bytes compaction wrote (live records moved) since open.
    pub compacted_bytes: u64,
    /// Record bytes compaction freed (dead records dropped) since open.
    pub reclaimed_bytes: u64,
    /// Live snapshots.
    pub snapshots: u64,
    /// Old versions kept in memory for live snapshots (the side list).
    pub superseded_versions: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub live_bytes: AtomicU64,
    pub dead_bytes: AtomicU64,
    pub files: AtomicU64,
    pub bytes_written: AtomicU64,
    pub syncs: AtomicU64,
    pub bad_records: AtomicU64,
    pub truncated_bytes: AtomicU64,
    pub compactions: AtomicU64,
    pub compacted_bytes: AtomicU64,
    pub reclaimed_bytes: AtomicU64,
}
