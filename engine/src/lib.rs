//! A KingDB-style log-structured hash store.
//!
//! Records are appended to data files (HSTables, rolled over at
//! [`Options::max_file_size`]); an in-memory index maps the 64-bit hash of
//! each key to the location of its latest record; reads go through
//! memory maps and hand out values without copying. The byte layout is in
//! `FORMAT.md`.
//!
//! # Writes and group commit
//!
//! The active HSTable is preallocated (`posix_fallocate`) and mapped
//! `MAP_SHARED` read-write. A write takes the key's stripe lock, then the
//! writer lock just long enough to assign the next sequence number and copy
//! the record into the map, then publishes the location in the index. No
//! write makes a syscall, and a record is readable through the same map the
//! moment it is published; because the records live in the kernel's page
//! cache, a killed process loses nothing it wrote.
//!
//! Durability is the batching point: one `fdatasync` of the active file
//! covers every record copied before it started (pages dirtied through a
//! shared map are the file's page cache). Under [`Durability::Always`] a
//! sync thread runs one fdatasync whenever someone waits on a ticket not yet
//! covered, and completes all tickets up to what it synced: writes that
//! arrive during one sync form the next batch. Callers choose how to wait:
//! [`Engine::wait_durable`] blocks, [`Engine::on_durable`] calls back (an
//! event loop wakes itself from the callback and never blocks). Under
//! [`Durability::Interval`] a thread syncs on a timer; under
//! [`Durability::None`] only close (and compaction) syncs.
//!
//! Roll-over does not stop writers either: the writer that finds the active
//! file full swaps in a spare preallocated ahead of time, and a roller
//! thread seals the full file (index, footer, fdatasync) in the background.
//! Until the roller has synced it, a group commit syncs the full file too,
//! so a ticket still means its record is on disk.
//!
//! Preallocation is also how disk-full stays clean: the space of a file is
//! reserved when it is created, so a full disk is an `ENOSPC` error from the
//! roll-over that needed the new file, returned to that write, never a
//! SIGBUS on a store into the map. Each file also reserves room for its
//! sealed index, so sealing never needs space. Open does not need space
//! either: with no room for a new active file it serves reads, and writes
//! fail with `ENOSPC` until space is freed, then resume without a reopen.
//!
//! # Failures
//!
//! A failed write or sync is returned to the caller. After a failed sync the
//! engine is poisoned: the kernel may have dropped the dirty pages, so no
//! later sync can vouch for them; every later write and every pending waiter
//! gets [`WriteError::Poisoned`] (or the sync's error) until the directory is
//! reopened. Reads keep working.
//!
//! # Recovery
//!
//! See [`recovery`](crate#recovery-rules): sealed files load from their
//! footers; a file without one is scanned, checksums verified, corrupt
//! records skipped and reported, the torn tail cut, and the file sealed.
//! One process at a time: the directory is locked with `flock`.
//!
//! ## Recovery rules
//!
//! * Sealed files load from index + footer without reading values.
//! * Unsealed files are scanned; a record that fails its checksum is never
//!   served, counted in [`EngineStats::bad_records`] and logged with file and
//!   offset; the rest of the file stays readable.
//! * Versions are ordered by sequence number (file id, then offset);
//!   tombstones and Clear records are record kinds.
//!
//! mmap caveat: another process that ignores the directory lock and
//! truncates an HSTable can make this one fault (SIGBUS); that is inherent to
//! memory-mapped files.
//!
//! # Index
//!
//! Keys hash with xxh3 and the store's own random seed (the `SEED` file,
//! format version 3), so clients cannot craft colliding keys; stores made
//! before version 3 keep the public constant seed.
//!
//! 18 to 26 bytes of RAM per live key, about 20 on average (see `index/mod.rs`:
//! sorted linear probing, 1.4x growth, 16-byte slots); [`EngineStats::index_bytes`]
//! reports it from allocated capacity. Large tables sit on transparent huge
//! pages.
//!
//! # Memory maps and huge pages
//!
//! With [`Options::huge_pages`] the HSTable maps are advised `MADV_HUGEPAGE`:
//! on file systems with large folios a random record read then costs one TLB
//! entry per 2 MiB instead of per 4 KiB, which cuts random-read latency
//! markedly, most of all on virtual machines (compare `engine-bench
//! --huge-pages true` and `false`). It is off by default
//! (cold reads fetch 2 MiB; each sync writes back a whole dirty 2 MiB folio).

//! # Compaction
//!
//! A background thread (and [`Engine::compact`], and `kvtool compact`)
//! rewrites the live records of sealed HSTables whose dead bytes reach
//! [`Options::compaction_threshold`] (default 0.5) into new HSTables, moves
//! each index entry only if it still points at the old copy (a concurrent
//! overwrite wins), drops dead and expired records and tombstones that no
//! older version needs any more, and unlinks the old files. Space: every
//! sealed file is at most about half garbage once compaction has caught up,
//! so disk bytes stay under about 2x the live bytes (measured: see
//! engine-bench's `compact` and `overwrite-bg` rows). It is throttled by
//! [`Options::compaction_rate`]. Crash safety and file lifetime (unlink
//! only; readers, snapshots and iterators keep their maps) are in
//! `compaction.rs` and `FORMAT.md`.
//!
//! # Snapshots and iterators
//!
//! [`Engine::snapshot`] pins a sequence number and the current file set
//! (one `Arc` per file, no copy of the index); old versions overwritten
//! while a snapshot lives are kept in a small side list until no snapshot
//! needs them. [`Snapshot::iter`] yields every live key of the snapshot once,
//! in file order (not key order). Details in `snapshot.rs`.
//!
//! # Large values
//!
//! [`Engine::put_stream`] takes a value in chunks and makes it visible
//! atomically at [`ValueWriter::commit`]; above
//! [`Options::stream_buffer_limit`] the value is written straight into an
//! HSTable of its own and never held in memory. Reads hand out any value as
//! a slice of the map ([`Value`] derefs to `[u8]`; `.chunks(n)` streams it).
//! [`Options::max_value_size`] caps values (default and maximum 1 GiB - 1).
//!
//! # Compression and checksums
//!
//! [`Options::compression`] = [`Compression::Lz4`] compresses each value of
//! 64 bytes or more with LZ4 if that shrinks it; the record's header says
//! which, so files mix both and every build of format version 2 reads
//! them. A compressed value is decompressed into memory on each read (it is
//! no longer a slice of the map). Checksums are verified on every read
//! unless [`Options::verify_checksums`] is off (its cost is documented
//! there).
//!
//! # Offline tool
//!
//! `kvtool verify|stats|compact|dump <dir>` (src/bin/kvtool.rs) works on a
//! directory no process has open; [`inspect`] is its checking library.
//!
//! # Test hooks
//!
//! The fault hooks the engine's own tests use (a failing sync, roll-over,
//! unlink or thread start, a simulated crash) exist only with the
//! `fault-injection` cargo feature; release builds have none.

#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod compaction;
mod context;
mod durability;
mod engine;
mod error;
mod fault;
pub mod format;
mod hstable;
mod index;
pub mod inspect;
mod keydir;
mod lock_order;
mod options;
mod recovery;
mod snapshot;
mod stats;
mod types;
mod write;

pub use compaction::CompactionReport;
pub use durability::SyncTicket;
pub use engine::Engine;
pub use error::{OpenError, ReadError, WriteError};
pub use options::{
    unix_now, Compression, Durability, Options, ParseCompressionError, ParseDurabilityError,
    DEFAULT_SYNC_INTERVAL, MIN_COMPRESS_LEN,
};
pub use snapshot::{Entry, Snapshot, SnapshotIter};
pub use stats::EngineStats;
pub use types::{Condition, Item, Meta, PutOutcome, Update, Value, Written};
pub use write::stream::ValueWriter;
