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
//! * `lock_order.rs`: the order the locks are taken in, checked in debug
//!   builds.
//!
//! ```text
//!  get(k) ──────► index shard read lock ─► location ─► header/key/value in the map
//! ```

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tracing::{info, warn};

use crate::compaction::CompactionReport;
use crate::durability::{SyncShared, SyncTicket};
use crate::error::{OpenError, ReadError, WriteError};
use crate::format::{
    self, RecordHeader, RecordKind, FILE_HEADER_LEN, MAX_VALUE_LEN, RECORD_HEADER_LEN,
};
use crate::hstable::FileTable;
use crate::hstable::MappedFile;
use crate::keydir::KeyDir;
use crate::lock_order::{lock, Held, Rank, RankedMutex, RankedRwLock};
use crate::options::{Durability, Options};
use crate::recovery;
use crate::snapshot::Snapshot;
use crate::stats::{Counters, EngineStats};
use crate::types::{Condition, Item, Meta, PutOutcome, Update, Value, Written};
use crate::write::{check_key, check_value_len, Writer};

/// Largest allowed `max_file_size`: offsets in a sealed index are u32.
const MAX_FILE_SIZE: u64 = 3 << 30;

pub(crate) struct Inner {
    pub dir: PathBuf,
    pub opts: Options,
    /// The store's format version and key-hash seed.
    pub format: format::StoreFormat,
    /// The index and the stripe locks (`keydir.rs`).
    pub keys: KeyDir,
    /// Every open HSTable by id; a location's file id indexes it.
    pub files: RankedRwLock<FileTable>,
    pub writer: RankedMutex<Writer>,
    pub sync: SyncShared,
    pub roller: crate::write::roller::Roller,
    pub closed: AtomicBool,
    pub counters: Counters,
    lock_file: Mutex<Option<File>>,
    /// Test-only faults (`fault-injection` feature).
    pub faults: crate::fault::Faults,
    pub compaction: crate::compaction::CompactionState,
    /// Live snapshots and the old versions they may still read.
    pub snapshots: crate::snapshot::Registry,
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
        self.roller.stop();
        self.compaction.stop();
    }

    fn release_lock(&self) {
        if let Some(f) = lock(&self.lock_file).take() {
            let _ = f.unlock();
        }
    }

    /// Every stripe lock: no write is then between its append and its publish.
    pub(crate) fn all_stripes(&self) -> Vec<Held<MutexGuard<'_, ()>>> {
        self.keys.all_stripes()
    }

    #[inline]
    pub(crate) fn stripe(&self, hash: u64) -> Held<MutexGuard<'_, ()>> {
        self.keys.stripe(hash)
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
            self.counters.bad_records.fetch_add(1, Ordering::Relaxed);
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
        if self.opts.verify_checksums {
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
        if header.expiry != 0 && header.expiry <= (self.opts.clock)() {
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
    pub(crate) fn refusal(
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
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ReadError::Closed);
        }
        self.inner.lookup(self.inner.format.hash(key), key)
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
        check_value_len(value.len(), &self.inner.opts)?;
        self.inner.write_gate()?;
        let hash = self.inner.format.hash(key);
        let _key_lock = self.inner.stripe(hash);
        if let Some(result) = self.inner.refusal(hash, key, cond)? {
            return Ok(Written {
                result,
                ticket: SyncTicket::DURABLE,
            });
        }
        let seq = self.inner.write_put(hash, key, value, meta)?;
        Ok(Written {
            result: PutOutcome::Stored { seq },
            ticket: SyncTicket(seq),
        })
    }

    /// Deletes `key`; `false` if it was missing or expired (nothing written).
    pub fn delete(&self, key: &[u8]) -> Result<Written<bool>, WriteError> {
        check_key(key)?;
        self.inner.write_gate()?;
        let hash = self.inner.format.hash(key);
        let _key_lock = self.inner.stripe(hash);
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
        let hash = self.inner.format.hash(key);
        let _key_lock = self.inner.stripe(hash);
        let current = self.inner.lookup(hash, key)?;
        let (update, result) = f(current.as_ref());
        let ticket = match update {
            Update::Keep => SyncTicket::DURABLE,
            Update::Put { value, meta } => {
                check_value_len(value.len(), &self.inner.opts)?;
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
        self.inner.write_gate()?;
        // All stripes: no write may sit between its append and its publish
        // while the index is emptied, or it would survive in memory but not
        // at recovery.
        let _all = self.inner.all_stripes();
        let (seq, _) = self.inner.append(
            RecordKind::Clear,
            format::ENCODING_RAW,
            0,
            &[],
            &[],
            Meta::default(),
        )?;
        if self.inner.snapshots.any() {
            let files = self.inner.files.read();
            self.inner.keys.index().for_each(|hash, loc| {
                self.inner.snapshots.superseded(&files, hash, loc, seq);
            });
        }
        self.inner.keys.index().clear();
        for f in self.inner.files.read().iter() {
            // Every record so far is dead, the Clear record included.
            let end = f.records_end.load(Ordering::Relaxed);
            f.dead.store(
                end.saturating_sub(FILE_HEADER_LEN as u64),
                Ordering::Relaxed,
            );
        }
        let c = &self.inner.counters;
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
        crate::write::stream::begin(&self.inner, key, len, meta)
    }

    /// A consistent read view at the current sequence number: later writes
    /// are invisible to it; [`Snapshot::iter`] walks every live key once.
    /// Cheap: it copies the list of files, not the index.
    pub fn snapshot(&self) -> Snapshot {
        crate::snapshot::take(&self.inner)
    }

    /// Runs a full compaction now: every sealed HSTable with reclaimable
    /// garbage is rewritten (the background thread only takes files at or
    /// above [`Options::compaction_threshold`]). Blocks until done; waits
    /// for a background compaction in progress first. The active file is
    /// never compacted: it has not been sealed.
    pub fn compact(&self) -> Result<CompactionReport, WriteError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(WriteError::Closed);
        }
        crate::compaction::compact(&self.inner, true)
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
        self.inner.opts.durability != Durability::Always || t.0 <= self.inner.sync.synced()
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
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(WriteError::Closed);
        }
        crate::durability::sync_now(&self.inner)
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        let w = {
            let w = self.inner.writer.lock();
            (
                w.last_seq(),
                w.active().tail() as u64,
                u64::from(w.active().id()),
            )
        };
        EngineStats {
            keys: self.inner.keys.index().len(),
            live_bytes: c.live_bytes.load(Ordering::Relaxed),
            dead_bytes: c.dead_bytes.load(Ordering::Relaxed),
            files: c.files.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            bad_records: c.bad_records.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            index_bytes: self.inner.keys.index().bytes(),
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
        self.inner.writer.lock().close();
        // Full files queued for sealing are sealed (and synced) first.
        self.inner.roller.drain();
        let result = self.inner.seal_active();
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
        self.inner.writer.lock().close();
        self.stop_threads();
        self.inner.sync.shut_down();
        self.release_lock();
    }

    /// Makes the next fdatasync fail with an I/O error (fault-injection for tests).
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_sync_for_tests(&self) {
        self.inner.faults.arm_sync();
    }

    /// Makes the next roll-over fail as if the disk were full (ENOSPC from
    /// preallocation), for tests.
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_roll_over_for_tests(&self) {
        self.inner.faults.arm_create();
    }

    /// Makes compaction's unlink of HSTable `id` fail (as an I/O error
    /// would), for tests.
    #[cfg(feature = "fault-injection")]
    pub fn fail_unlink_for_tests(&self, id: u32) {
        self.inner.faults.arm_unlink(id);
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
        self.inner.roller.hold(held);
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.dir)
            .field("durability", &self.inner.opts.durability)
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
        let writer = Writer::open(&dir, &options, rec.format.version, &mut files, rec.last_seq)?;
        let file_count = files.iter().count() as u64;

        let counters = Counters::default();
        counters.live_bytes.store(rec.live_bytes, Ordering::Relaxed);
        counters.dead_bytes.store(rec.dead_bytes, Ordering::Relaxed);
        counters.files.store(file_count, Ordering::Relaxed);
        counters
            .bad_records
            .store(rec.bad_records, Ordering::Relaxed);
        counters
            .truncated_bytes
            .store(rec.truncated_bytes, Ordering::Relaxed);

        let inner = Inner {
            dir,
            opts: options,
            format: rec.format,
            keys: KeyDir::new(rec.index),
            files: RankedRwLock::new(Rank::Files, files),
            writer: RankedMutex::new(Rank::Writer, writer),
            sync: SyncShared::new(rec.last_seq),
            roller: crate::write::roller::Roller::default(),
            closed: AtomicBool::new(false),
            counters,
            lock_file: Mutex::new(Some(lock_file)),
            faults: crate::fault::Faults::default(),
            compaction: crate::compaction::CompactionState::default(),
            snapshots: crate::snapshot::Registry::default(),
        };
        info!(
            dir = %inner.dir.display(),
            keys = inner.keys.index().len(),
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
        crate::write::roller::roller_loop(&i)
    })?;
    let i = inner.clone();
    match inner.opts.durability {
        Durability::None => {}
        Durability::Always => {
            started.spawn("engine-sync", "starting the sync thread for", move || {
                crate::durability::sync_loop(&i)
            })?
        }
        Durability::Interval(every) => {
            started.spawn("engine-sync", "starting the sync thread for", move || {
                crate::durability::interval_loop(&i, every)
            })?
        }
    }
    if inner.opts.background_compaction {
        let i = inner.clone();
        started.spawn(
            "engine-compact",
            "starting the compaction thread for",
            move || crate::compaction::background_loop(&i),
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
        .map_err(|e| OpenError::io(op, &self.inner.dir, e))?;
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
