//! The engine handle: it wires the parts together and owns what belongs
//! to no single part: open (validate, lock, recover, start threads), the
//! read path and conditional operations, close. Where the parts are:
//!
//! * `hstable/`: HSTable files, the file table and their maps (`map.rs`);
//! * `write/`: the writer and the active file, roll-over, the roller,
//!   streamed values;
//! * `keydir.rs` (over `index/`): the index and the stripe locks;
//! * `durability.rs`: group commit and its waiters; `compaction.rs`,
//!   `snapshot.rs`, `recovery.rs`: as named;
//! * `context.rs`: the directory, options and format fixed at open, with
//!   the counters and test faults every part touches;
//! * `lock_order.rs`: the order the locks are taken in, checked in debug
//!   builds.
//!
//! [`Inner`] holds one of each part, every field private: a part reaches
//! another only through the references this file hands it (the `Deps` of
//! `write/` and `compaction.rs`, or a method's arguments), and calls that
//! part's methods. The handles that outlive a call, [`Snapshot`] and
//! [`crate::ValueWriter`], keep an `Arc<Inner>` and use the few operations
//! `Inner` offers them.
//!
//! ```text
//!  get(k) ──────► index shard read lock ─► location ─► header/key/value in the map
//! ```

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tracing::{info, warn};

use crate::compaction::{self, CompactionReport, CompactionState};
use crate::context::Context;
use crate::durability::{SyncShared, SyncTicket};
use crate::error::{OpenError, ReadError, WriteError};
use crate::format::{self, RecordHeader, RecordKind, MAX_VALUE_LEN, RECORD_HEADER_LEN};
use crate::hstable::FileTable;
use crate::hstable::MappedFile;
use crate::keydir::{KeyDir, Placed};
use crate::lock_order::{lock, Rank, RankedRwLock};
use crate::options::{Durability, Options};
use crate::recovery;
use crate::snapshot::{Registry, Snapshot};
use crate::stats::{Counters, EngineStats};
use crate::types::{Condition, Item, Meta, PutOutcome, Update, Value, Written};
use crate::write::{self, check_key, check_value_len, Record, WritePath};

/// Largest allowed `max_file_size`: offsets in a sealed index are u32.
const MAX_FILE_SIZE: u64 = 3 << 30;

/// The state the engine's threads and handles share. Each part is owned by
/// its module and private here: the parts meet only in this file, which
/// hands each operation the parts it works on.
pub(crate) struct Inner {
    /// The directory, options, format, counters and faults (`context.rs`).
    ctx: Context,
    /// The index and the stripe locks (`keydir.rs`).
    keys: KeyDir,
    /// Every open HSTable by id; a location's file id indexes it (`hstable/`).
    files: RankedRwLock<FileTable>,
    /// The writer, the active file and the roller (`write/`).
    writes: WritePath,
    /// Group commit (`durability.rs`).
    sync: SyncShared,
    compaction: CompactionState,
    /// Live snapshots and the old versions they may still read (`snapshot.rs`).
    snapshots: Registry,
    /// Set first by close: reads and writes return `Closed`.
    closed: AtomicBool,
    lock_file: Mutex<Option<File>>,
}

/// The storage engine. `Send + Sync`; share it as `Arc<Engine>`.
pub struct Engine {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    /// Asks every background thread to exit.
    fn stop_threads(&self) {
        self.sync.stop();
        self.writes.stop();
        self.compaction.stop();
    }

    fn release_lock(&self) {
        if let Some(f) = lock(&self.lock_file).take() {
            let _ = f.unlock();
        }
    }

    /// What an append works on besides the write path.
    fn write_deps(&self) -> write::Deps<'_> {
        write::Deps {
            ctx: &self.ctx,
            sync: &self.sync,
            files: &self.files,
        }
    }

    /// What compaction works on besides its own state.
    fn compaction_deps(&self) -> compaction::Deps<'_> {
        compaction::Deps {
            ctx: &self.ctx,
            writes: &self.writes,
            sync: &self.sync,
            files: &self.files,
            keys: &self.keys,
            closed: &self.closed,
        }
    }

    /// The directory, options, format and counters.
    pub(crate) fn ctx(&self) -> &Context {
        &self.ctx
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Refuses a write once closed or poisoned.
    pub(crate) fn write_gate(&self) -> Result<(), WriteError> {
        if self.is_closed() {
            return Err(WriteError::Closed);
        }
        if let Some(e) = self.sync.poisoned() {
            return Err(e);
        }
        Ok(())
    }

    /// A put of `key` if `cond` holds: under the key's stripe lock, checks
    /// the condition, has `write` append the record (given the write path,
    /// what it appends with, and the key's hash) and publishes it.
    pub(crate) fn put_if<'k>(
        &self,
        key: &'k [u8],
        cond: Condition,
        write: impl FnOnce(&WritePath, write::Deps<'_>, u64) -> Result<Placed<'k>, WriteError>,
    ) -> Result<Written<PutOutcome>, WriteError> {
        self.write_gate()?;
        let hash = self.ctx.hash(key);
        let _key_lock = self.keys.stripe(hash);
        if let Some(result) = self.refusal(hash, key, cond)? {
            return Ok(Written {
                result,
                ticket: SyncTicket::DURABLE,
            });
        }
        let placed = write(&self.writes, self.write_deps(), hash)?;
        self.publish(placed);
        Ok(Written {
            result: PutOutcome::Stored { seq: placed.seq },
            ticket: SyncTicket(placed.seq),
        })
    }

    /// Puts `key` in the index at the record just written.
    fn publish(&self, placed: Placed<'_>) {
        self.keys.publish(
            &self.files.read(),
            &self.snapshots,
            self.ctx.counters(),
            placed,
        );
    }

    fn write_put(
        &self,
        hash: u64,
        key: &[u8],
        value: &[u8],
        meta: Meta,
    ) -> Result<u64, WriteError> {
        let placed = self.writes.put(self.write_deps(), hash, key, value, meta)?;
        self.publish(placed);
        Ok(placed.seq)
    }

    fn write_delete(&self, hash: u64, key: &[u8]) -> Result<u64, WriteError> {
        let tomb = self.writes.delete(self.write_deps(), hash, key)?;
        self.keys.unpublish(
            &self.files.read(),
            &self.snapshots,
            self.ctx.counters(),
            tomb,
        );
        Ok(tomb.seq)
    }

    /// The file, offset and sequence number of the version of `key` a
    /// snapshot at `seq` sees.
    pub(crate) fn version_at(
        &self,
        seq: u64,
        hash: u64,
        key: &[u8],
    ) -> Option<(Arc<MappedFile>, usize, u64)> {
        let files = self.files.read();
        self.keys.with_location(&files, hash, key, |live| {
            self.snapshots.visible(&files, live, hash, key, seq)
        })
    }

    /// A snapshot at `seq` is gone.
    pub(crate) fn release_snapshot(&self, seq: u64) {
        self.snapshots.release(seq);
    }

    /// The live item of `key`, if any.
    fn lookup(&self, hash: u64, key: &[u8]) -> Result<Option<Item>, ReadError> {
        let files = self.files.read();
        let Some(loc) = self.keys.find(&files, hash, key) else {
            return Ok(None);
        };
        let Some((file, off)) = files.file_of(loc) else {
            return Ok(None);
        };
        self.read_item(file, off, key)
    }

    /// The item of the Put record of `key` at `off` in `file`, checksum
    /// verified if configured; `None` if expired.
    pub(crate) fn read_item(
        &self,
        file: &Arc<MappedFile>,
        off: usize,
        key: &[u8],
    ) -> Result<Option<Item>, ReadError> {
        let corrupt = |reason: String| {
            self.ctx
                .counters()
                .bad_records
                .fetch_add(1, Ordering::Relaxed);
            ReadError::Corrupt {
                file: file.path().to_path_buf(),
                offset: off as u64,
                reason,
            }
        };
        let header = file
            .get(off, RECORD_HEADER_LEN)
            .ok_or(format::RecordError::Truncated)
            .and_then(RecordHeader::decode)
            .map_err(|e| corrupt(e.to_string()))?;
        let len = header.record_len();
        if file.get(off, len).is_none() {
            return Err(corrupt(format!(
                "record of {len} bytes runs past the end of the file ({} bytes)",
                file.file_len()
            )));
        }
        let value_off = off + RECORD_HEADER_LEN + header.key_len as usize;
        if self.ctx.opts().verify_checksums {
            let computed = format::record_crc(
                file.bytes(off + 4, RECORD_HEADER_LEN - 4),
                key,
                file.bytes(value_off, header.value_len as usize),
            );
            if computed != header.crc {
                return Err(corrupt(
                    format::RecordError::Checksum {
                        stored: header.crc,
                        computed,
                    }
                    .to_string(),
                ));
            }
        }
        if header.expiry != 0 && header.expiry <= (self.ctx.opts().clock)() {
            return Ok(None);
        }
        let value = if header.encoding == format::ENCODING_LZ4 {
            let stored = file.bytes(value_off, header.value_len as usize);
            let raw_len = stored.get(..4).map_or(usize::MAX, |b| {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
            });
            if raw_len > MAX_VALUE_LEN {
                return Err(corrupt(
                    "compressed value claims an impossible length".into(),
                ));
            }
            let raw = lz4_flex::decompress_size_prepended(stored)
                .map_err(|e| corrupt(format!("LZ4 value does not decompress: {e}")))?;
            Value::owned(raw)
        } else {
            Value::mapped(file.clone(), value_off, header.value_len as usize)
        };
        Ok(Some(Item {
            value,
            flags: header.flags,
            expiry: header.expiry,
            seq: header.seq,
        }))
    }

    /// Why `cond` refuses a put of `key` now, if it does. Call under the
    /// key's stripe lock.
    fn refusal(
        &self,
        hash: u64,
        key: &[u8],
        cond: Condition,
    ) -> Result<Option<PutOutcome>, ReadError> {
        if cond == Condition::Always {
            return Ok(None);
        }
        let current = self.lookup(hash, key)?;
        Ok(match (cond, &current) {
            (Condition::IfAbsent, Some(_)) | (Condition::IfPresent, None) => {
                Some(PutOutcome::NotStored)
            }
            (Condition::IfSeq(_), None) => Some(PutOutcome::NotFound),
            (Condition::IfSeq(s), Some(item)) if item.seq != s => Some(PutOutcome::Exists),
            _ => None,
        })
    }
}

impl Engine {
    /// Opens (creating if needed) the data directory `dir`, recovering after
    /// a crash: see the crate docs for the rules.
    ///
    /// Four steps: check the options, lock the directory, recover (and make
    /// the active file), start the threads. A step that fails undoes the
    /// ones before it: threads already started are stopped and joined, and
    /// the directory lock is released.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Engine, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        validate(&options)?;
        let lock_file = lock_dir(&dir)?;
        let inner = Arc::new(Inner::recover(dir, options, lock_file)?);
        let threads = start_threads(&inner)?;
        Ok(Engine {
            inner,
            threads: Mutex::new(threads),
        })
    }

    /// The live item of `key`; `None` if missing or expired.
    pub fn get(&self, key: &[u8]) -> Result<Option<Item>, ReadError> {
        if self.inner.is_closed() {
            return Err(ReadError::Closed);
        }
        self.inner.lookup(self.inner.ctx.hash(key), key)
    }

    /// Writes `value` under `key` if `cond` holds. Applies at once; see
    /// [`Written::ticket`] for durability.
    pub fn put(
        &self,
        key: &[u8],
        value: &[u8],
        meta: Meta,
        cond: Condition,
    ) -> Result<Written<PutOutcome>, WriteError> {
        check_key(key)?;
        check_value_len(value.len(), self.inner.ctx.opts())?;
        self.inner.put_if(key, cond, |writes, d, hash| {
            writes.put(d, hash, key, value, meta)
        })
    }

    /// Deletes `key`; `false` if it was missing or expired (nothing written).
    pub fn delete(&self, key: &[u8]) -> Result<Written<bool>, WriteError> {
        check_key(key)?;
        self.inner.write_gate()?;
        let hash = self.inner.ctx.hash(key);
        let _key_lock = self.inner.keys.stripe(hash);
        if self.inner.lookup(hash, key)?.is_none() {
            return Ok(Written {
                result: false,
                ticket: SyncTicket::DURABLE,
            });
        }
        let seq = self.inner.write_delete(hash, key)?;
        Ok(Written {
            result: true,
            ticket: SyncTicket(seq),
        })
    }

    /// Atomic read-modify-write of one key (append, prepend, incr, decr,
    /// touch): `f` sees the current live item (None if missing or expired)
    /// under the key's lock and says what to write; its second value is
    /// returned. `f` must not call back into the engine for the same key.
    pub fn update<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&Item>) -> (Update, R),
    ) -> Result<Written<R>, WriteError> {
        check_key(key)?;
        self.inner.write_gate()?;
        let hash = self.inner.ctx.hash(key);
        let _key_lock = self.inner.keys.stripe(hash);
        let current = self.inner.lookup(hash, key)?;
        let (update, result) = f(current.as_ref());
        let ticket = match update {
            Update::Keep => SyncTicket::DURABLE,
            Update::Put { value, meta } => {
                check_value_len(value.len(), self.inner.ctx.opts())?;
                SyncTicket(self.inner.write_put(hash, key, &value, meta)?)
            }
            Update::Delete if current.is_some() => SyncTicket(self.inner.write_delete(hash, key)?),
            Update::Delete => SyncTicket::DURABLE,
        };
        Ok(Written { result, ticket })
    }

    /// Removes every key (memcached flush_all) by writing a Clear record:
    /// at recovery every record with a lower sequence number is dead.
    pub fn clear(&self) -> Result<Written<()>, WriteError> {
        let inner = &*self.inner;
        inner.write_gate()?;
        // All stripes: no write may sit between its append and its publish
        // while the index is emptied, or it would survive in memory but not
        // at recovery.
        let _all = inner.keys.all_stripes();
        let clear = Record {
            kind: RecordKind::Clear,
            encoding: format::ENCODING_RAW,
            hash: 0,
            key: &[],
            value: &[],
            meta: Meta::default(),
        };
        let (seq, _) = inner.writes.append(inner.write_deps(), clear)?;
        let files = inner.files.read();
        inner.keys.clear(&files, &inner.snapshots, seq);
        files.kill_all();
        drop(files);
        let c = inner.ctx.counters();
        let live = c.live_bytes.swap(0, Ordering::Relaxed);
        c.dead_bytes
            .fetch_add(live + RECORD_HEADER_LEN as u64, Ordering::Relaxed);
        Ok(Written {
            result: (),
            ticket: SyncTicket(seq),
        })
    }

    /// Starts a streaming write of a `len`-byte value under `key`: hand the
    /// value to [`crate::ValueWriter::write`] in chunks, then
    /// [`crate::ValueWriter::commit`] makes the record visible atomically (a
    /// dropped writer leaves nothing). Values above
    /// [`Options::stream_buffer_limit`] go into an HSTable of their own and
    /// are never held in memory. Reading one back: `get` hands out the value
    /// as a slice of the map; `item.value.chunks(n)` streams it.
    pub fn put_stream(
        &self,
        key: &[u8],
        len: usize,
        meta: Meta,
    ) -> Result<crate::ValueWriter, WriteError> {
        write::stream::begin(&self.inner, &self.inner.writes, key, len, meta)
    }

    /// A consistent read view at the current sequence number: later writes
    /// are invisible to it; [`Snapshot::iter`] walks every live key once.
    /// Cheap: it copies the list of files, not the index.
    pub fn snapshot(&self) -> Snapshot {
        let inner = &self.inner;
        // Every stripe, so no write sits between its append and its publish,
        // and compaction's switch, so no file is pinned with its compacted
        // copy (see `snapshot.rs`).
        let _all = inner.keys.all_stripes();
        let _switch = inner.compaction.hold_switch();
        let (seq, active) = inner
            .writes
            .read(|w| (w.last_seq(), (w.active().id(), w.active().tail() as u64)));
        inner.snapshots.register(seq);
        let files = inner.files.read().iter().cloned().collect();
        Snapshot::new(inner.clone(), seq, files, active)
    }

    /// Runs a full compaction now: every sealed HSTable with reclaimable
    /// garbage is rewritten (the background thread only takes files at or
    /// above [`Options::compaction_threshold`]). Blocks until done; waits
    /// for a background compaction in progress first. The active file is
    /// never compacted: it has not been sealed.
    pub fn compact(&self) -> Result<CompactionReport, WriteError> {
        if self.inner.is_closed() {
            return Err(WriteError::Closed);
        }
        let inner = &self.inner;
        inner.compaction.compact(inner.compaction_deps(), true)
    }

    /// Wakes the background compaction thread to look for work now
    /// (it also looks every [`Options::compaction_interval`] and at each
    /// roll-over).
    pub fn request_compaction(&self) {
        self.inner.compaction.wake();
    }

    /// Whether `t` is durable under the configured durability: at once for
    /// `None` and `Interval`; for `Always` once an fdatasync covered it.
    pub fn is_durable(&self, t: SyncTicket) -> bool {
        self.inner.ctx.opts().durability != Durability::Always || t.0 <= self.inner.sync.synced()
    }

    /// Blocks until `t` is durable. Errors if the covering sync failed or the
    /// engine was closed (or crashed) before it.
    pub fn wait_durable(&self, t: SyncTicket) -> Result<(), WriteError> {
        if self.is_durable(t) {
            return Ok(());
        }
        self.inner.sync.wait(t.0)
    }

    /// Calls `done` once `t` is durable (or its sync failed): from the
    /// engine's sync thread, or at once on this thread if already durable.
    pub fn on_durable(&self, t: SyncTicket, done: Box<dyn FnOnce(Result<(), WriteError>) + Send>) {
        if self.is_durable(t) {
            done(Ok(()));
            return;
        }
        self.inner.sync.on_durable(t.0, done);
    }

    /// Syncs everything written so far.
    pub fn sync(&self) -> Result<(), WriteError> {
        if self.inner.is_closed() {
            return Err(WriteError::Closed);
        }
        self.inner
            .sync
            .sync_now(&self.inner.ctx, &self.inner.writes)
    }

    pub fn stats(&self) -> EngineStats {
        let c = self.inner.ctx.counters();
        let w = self.inner.writes.read(|w| {
            (
                w.last_seq(),
                w.active().tail() as u64,
                u64::from(w.active().id()),
            )
        });
        EngineStats {
            keys: self.inner.keys.len(),
            live_bytes: c.live_bytes.load(Ordering::Relaxed),
            dead_bytes: c.dead_bytes.load(Ordering::Relaxed),
            files: c.files.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            bad_records: c.bad_records.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            index_bytes: self.inner.keys.bytes(),
            truncated_bytes: c.truncated_bytes.load(Ordering::Relaxed),
            last_seq: w.0,
            durable_seq: self.inner.sync.synced(),
            active_file_bytes: w.1,
            active_file_id: w.2,
            compacted_bytes: c.compacted_bytes.load(Ordering::Relaxed),
            reclaimed_bytes: c.reclaimed_bytes.load(Ordering::Relaxed),
            snapshots: self.inner.snapshots.live_count() as u64,
            superseded_versions: self.inner.snapshots.side_len() as u64,
        }
    }

    /// Seals the active file, syncs, stops the sync thread and releases the
    /// directory lock. Idempotent; afterwards reads and writes return `Closed`.
    pub fn close(&self) -> Result<(), WriteError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Stop compaction first and wait for a round in progress to give up.
        self.inner.compaction.stop();
        self.inner.compaction.wait_for_round();
        // No append from here on: a write that passed the write gate before
        // `closed` was set could otherwise roll a file after the roller
        // drained, and that file would be neither sealed nor synced.
        self.inner.writes.close();
        // Full files queued for sealing are sealed (and synced) first.
        self.inner.writes.drain();
        let result = self.inner.writes.seal_active(self.inner.write_deps());
        self.stop_threads();
        self.inner.sync.shut_down();
        self.release_lock();
        result
    }

    fn stop_threads(&self) {
        self.inner.stop_threads();
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
    }

    fn release_lock(&self) {
        self.inner.release_lock();
    }

    /// Simulates a crash of the process for tests: stops without sealing or
    /// syncing anything and releases the directory lock, so the directory can
    /// be reopened and recovered in the same process.
    #[cfg(feature = "fault-injection")]
    pub fn crash_for_tests(self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.writes.close();
        self.stop_threads();
        self.inner.sync.shut_down();
        self.release_lock();
    }

    /// Makes the next fdatasync fail with an I/O error (fault-injection for tests).
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_sync_for_tests(&self) {
        self.inner.ctx.faults().arm_sync();
    }

    /// Makes the next roll-over fail as if the disk were full (ENOSPC from
    /// preallocation), for tests.
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_roll_over_for_tests(&self) {
        self.inner.ctx.faults().arm_create();
    }

    /// Makes compaction's unlink of HSTable `id` fail (as an I/O error
    /// would), for tests.
    #[cfg(feature = "fault-injection")]
    pub fn fail_unlink_for_tests(&self, id: u32) {
        self.inner.ctx.faults().arm_unlink(id);
    }

    /// Makes the `nth` thread start (1: the roller, then the sync thread
    /// if the durability has one, then background compaction) of the next
    /// open in this process fail, for tests of open's clean-up.
    #[cfg(feature = "fault-injection")]
    pub fn fail_thread_start_for_tests(nth: u32) {
        crate::fault::arm_thread_start(nth);
    }

    /// Holds (true) or releases (false) the sealing of full files and the
    /// preallocation of the next one, for tests of roll-over.
    #[cfg(feature = "fault-injection")]
    pub fn hold_roll_over_for_tests(&self, held: bool) {
        self.inner.writes.hold(held);
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.inner.ctx.dir()
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.ctx.dir())
            .field("durability", &self.inner.ctx.opts().durability)
            .finish_non_exhaustive()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            warn!(error = %e, "closing the engine on drop failed");
        }
    }
}

/// Step 1 of open: options that cannot work are refused before anything
/// touches the disk.
fn validate(options: &Options) -> Result<(), OpenError> {
    if !(4096..=MAX_FILE_SIZE).contains(&options.max_file_size) {
        return Err(OpenError::InvalidOptions(format!(
            "max_file_size {} is outside 4096..={MAX_FILE_SIZE}",
            options.max_file_size
        )));
    }
    if !(options.compaction_threshold > 0.0 && options.compaction_threshold <= 1.0) {
        return Err(OpenError::InvalidOptions(format!(
            "compaction_threshold {} is outside (0, 1]",
            options.compaction_threshold
        )));
    }
    if let Durability::Interval(d) = options.durability {
        if d.is_zero() {
            return Err(OpenError::InvalidOptions(
                "sync interval must be at least 1 ms".into(),
            ));
        }
    }
    Ok(())
}

/// Step 2 of open: creates the directory and takes its lock (released when
/// the returned file is closed).
fn lock_dir(dir: &Path) -> Result<File, OpenError> {
    fs::create_dir_all(dir).map_err(|e| OpenError::io("creating", dir, e))?;
    let lock_path = dir.join("LOCK");
    let lock_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| OpenError::io("opening", &lock_path, e))?;
    match lock_file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(OpenError::Locked {
                dir: dir.to_path_buf(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(OpenError::io("locking", &lock_path, e))
        }
    }
    Ok(lock_file)
}

impl Inner {
    /// Step 3 of open: recovers the directory, makes the active file and
    /// sets up the state every thread shares.
    fn recover(dir: PathBuf, options: Options, lock_file: File) -> Result<Inner, OpenError> {
        let rec = recovery::recover(&dir, &options)?;
        let mut files = rec.files;

        let counters = Counters::default();
        counters.live_bytes.store(rec.live_bytes, Ordering::Relaxed);
        counters.dead_bytes.store(rec.dead_bytes, Ordering::Relaxed);
        counters
            .bad_records
            .store(rec.bad_records, Ordering::Relaxed);
        counters
            .truncated_bytes
            .store(rec.truncated_bytes, Ordering::Relaxed);
        let ctx = Context::new(dir, options, rec.format, counters);
        let writes = WritePath::open(&ctx, &mut files, rec.last_seq)?;
        let file_count = files.iter().count() as u64;
        ctx.counters().files.store(file_count, Ordering::Relaxed);

        let inner = Inner {
            ctx,
            keys: KeyDir::new(rec.index),
            files: RankedRwLock::new(Rank::Files, files),
            writes,
            sync: SyncShared::new(rec.last_seq),
            compaction: CompactionState::default(),
            snapshots: Registry::default(),
            closed: AtomicBool::new(false),
            lock_file: Mutex::new(Some(lock_file)),
        };
        info!(
            dir = %inner.ctx.dir().display(),
            keys = inner.keys.len(),
            files = file_count,
            bad_records = rec.bad_records,
            last_seq = rec.last_seq,
            "engine opened"
        );
        Ok(inner)
    }
}

/// Step 4 of open: starts the roller, the sync thread (if the durability
/// has one) and background compaction.
fn start_threads(inner: &Arc<Inner>) -> Result<Vec<JoinHandle<()>>, OpenError> {
    let mut started = Started {
        inner,
        threads: Vec::new(),
    };
    let i = inner.clone();
    started.spawn("engine-roll", "starting the roller thread for", move || {
        // After a seal, compaction may have a file to take.
        i.writes.run_roller(&i.ctx, &i.sync, || i.compaction.wake())
    })?;
    let i = inner.clone();
    match inner.ctx.opts().durability {
        Durability::None => {}
        Durability::Always => {
            started.spawn("engine-sync", "starting the sync thread for", move || {
                i.sync.run_always(&i.ctx, &i.writes)
            })?
        }
        Durability::Interval(every) => {
            started.spawn("engine-sync", "starting the sync thread for", move || {
                i.sync.run_interval(&i.ctx, &i.writes, every)
            })?
        }
    }
    if inner.ctx.opts().background_compaction {
        let i = inner.clone();
        started.spawn(
            "engine-compact",
            "starting the compaction thread for",
            move || i.compaction.run_background(i.compaction_deps()),
        )?;
    }
    Ok(std::mem::take(&mut started.threads))
}

/// The threads open has started so far. If a later one fails to start,
/// dropping this stops and joins them, so nothing keeps the engine (and
/// its directory lock) alive after open returned the error.
struct Started<'a> {
    inner: &'a Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl Started<'_> {
    fn spawn(
        &mut self,
        name: &str,
        op: &'static str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), OpenError> {
        // NOTE: at most three threads.
        let nth = self.threads.len() as u32 + 1;
        let t = if crate::fault::thread_start_fails(nth) {
            Err(std::io::Error::other("injected thread start failure"))
        } else {
            std::thread::Builder::new().name(name.into()).spawn(f)
        }
        .map_err(|e| OpenError::io(op, self.inner.ctx.dir(), e))?;
        self.threads.push(t);
        Ok(())
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        self.inner.stop_threads();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.inner.release_lock();
    }
}
