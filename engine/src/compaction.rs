//! Compaction: rewrites the live records of sealed HSTables that hold much
//! garbage into new HSTables, switches the index to the copies, and unlinks
//! the old files.
//!
//! ```text
//!  pick sealed files: (dead - pinned) / record bytes >= threshold
//!  ├─ for each record of each picked file (from its sealed index):
//!  │     Put, index still points here ─► copy  (expired and droppable ─► drop)
//!  │       (checked under the key's stripe lock: a record appended but not
//!  │        yet published counts as live)
//!  │     Put, index points elsewhere   ─► drop (dead)
//!  │     Delete / Clear                ─► keep only if another file may hold
//!  │                                      an older version (seq >= min_seq of
//!  │                                      every other file), else drop
//!  ├─ outputs: NNNNNNNN.hst.compacting, written with pwrite, sealed, fsynced,
//!  │           renamed to NNNNNNNN.hst, directory fsynced
//!  ├─ switch (snapshots wait): outputs join the file table; each index entry
//!  │           moves only if it still points at the old place (compare and
//!  │           swap under the shard lock: a concurrent overwrite wins);
//!  │           old files leave the table
//!  └─ write the list of old files (NNNNNNNN.obsolete, synced), unlink
//!     them, fsync the directory, remove the list
//! ```
//!
//! # Why a crash at any point loses nothing
//!
//! * Before a rename, an output exists only as `*.compacting`; recovery
//!   deletes such files. The old files are untouched.
//! * After the renames and before the unlinks, both the old files and the
//!   outputs exist: every copied record is there twice with the same
//!   sequence number. Recovery replays records in sequence order, so the
//!   duplicate is the same version twice and harmless (the second copy wins,
//!   the first counts as dead and goes at the next compaction).
//! * After the list of old files is synced, they are gone for good: a
//!   crash between two unlinks, or an unlink that fails, leaves files that
//!   recovery deletes before it loads anything. Without it, the file with a
//!   Put could survive the file whose tombstone (dropped, since its Put was
//!   in the group too) hid it.
//! * A record is dropped only when nothing can bring back an older version:
//!   a dead Put is older than what replaced it; a tombstone or Clear record
//!   (or an expired Put) is dropped only when every file outside the
//!   compacted set holds newer records only (its `min_seq` is higher), so no
//!   older version of the key survives anywhere to be resurrected.
//! * Outputs are fsynced before any old file is unlinked, whatever the
//!   durability setting: compaction never makes a durable record less so.
//!   So is the active file (one group commit): a record dropped as dead was
//!   replaced by a newer one, which must be on disk before the old one
//!   goes, or a machine crash could lose both.
//!
//! # Files still in use
//!
//! "Deleting" an old file is an unlink: its name goes at once (so a crash
//! cannot bring its records back next to the copies), while its inode and
//! map live on until the last `Arc<MappedFile>` drops: values handed out,
//! snapshots and iterators keep reading it. The kernel frees its blocks
//! then. KingDB deleted files that live snapshots still read; this cannot.
//!
//! # Throttling
//!
//! Compaction reads and writes at most [`Options::compaction_rate`] bytes
//! per second (sleeping between 256 KiB steps), and it never holds a lock a
//! writer needs while copying: foreground writes only contend with it for
//! the index shard locks during the switch, one entry at a time.
//!
//! [`Options::compaction_rate`]: crate::Options::compaction_rate

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLockReadGuard};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::context::Context;
use crate::durability::SyncShared;
use crate::error::WriteError;
use crate::format::{self, IndexEntry, RecordKind, FILE_HEADER_LEN, FOOTER_LEN, INDEX_ENTRY_LEN};
use crate::hstable::MappedFile;
use crate::hstable::{file_path, seal, sync_dir, FileTable};
use crate::index;
use crate::keydir::KeyDir;
use crate::lock_order::{lock, Held, Rank, RankedMutex, RankedRwLock};
use crate::write::WritePath;

/// Suffix of a compaction output that is not complete yet.
pub const TEMP_SUFFIX: &str = ".compacting";
/// Suffix of the list of a group's old files, written before they are
/// unlinked: until every unlink has happened, recovery finishes them.
pub const OBSOLETE_SUFFIX: &str = ".obsolete";

/// Writes the list of the old files of a group (named after the lowest
/// id), synced, with the directory synced: from here on the old files are
/// gone whatever happens to their unlinks.
fn write_obsolete(dir: &Path, ids: &[u32]) -> Result<PathBuf, WriteError> {
    let first = ids.iter().min().copied().unwrap_or(0);
    let path = dir.join(format!("{first:08}{OBSOLETE_SUFFIX}"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| WriteError::io("creating", &path, e))?;
    file.write_all_at(&format::encode_obsolete(ids), 0)
        .and_then(|()| file.sync_data())
        .map_err(|e| WriteError::io("writing", &path, e))?;
    sync_dir(dir).map_err(|e| WriteError::io("syncing directory", dir, e))?;
    Ok(path)
}

/// Bytes between two throttle checks.
const THROTTLE_STEP: u64 = 256 << 10;
/// At most this many files are rewritten in one group (bounds the memory of
/// the pending index switches: 24 bytes per live record of the group).
const GROUP_FILES: usize = 8;

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Old HSTables rewritten and unlinked.
    pub files_in: u64,
    /// New HSTables written.
    pub files_out: u64,
    /// Record bytes of the old files.
    pub bytes_in: u64,
    /// Record bytes written to the new files.
    pub bytes_out: u64,
    /// Live records copied.
    pub records_moved: u64,
    /// Records dropped (dead, expired, tombstones no longer needed).
    pub records_dropped: u64,
}

/// What compaction works on besides its own state: it takes file ids from
/// the write path and waits for its roller, reads and switches the file
/// table and the index, and runs a group commit before it unlinks.
#[derive(Clone, Copy)]
pub(crate) struct Deps<'a> {
    pub ctx: &'a Context,
    pub writes: &'a WritePath,
    pub sync: &'a SyncShared,
    pub files: &'a RankedRwLock<FileTable>,
    pub keys: &'a KeyDir,
    /// The engine is closed: no new group starts.
    pub closed: &'a AtomicBool,
}

/// Coordination between compaction, its background thread and snapshots.
pub(crate) struct CompactionState {
    /// One compaction at a time (background or on demand).
    run: RankedMutex<()>,
    /// Held for writing while outputs join the file table and old files
    /// leave it; a snapshot takes it for reading, so it never pins both an
    /// old file and its copy.
    switch: RankedRwLock<()>,
    /// A wake-up is pending.
    wake: Mutex<bool>,
    cv: Condvar,
    stop: AtomicBool,
}

impl Default for CompactionState {
    fn default() -> Self {
        CompactionState {
            run: RankedMutex::new(Rank::CompactionRun, ()),
            switch: RankedRwLock::new(Rank::Switch, ()),
            wake: Mutex::new(false),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
        }
    }
}

impl CompactionState {
    /// Waits for a compaction round in progress to end (close: after
    /// `stop`, it gives up soon).
    pub fn wait_for_round(&self) {
        drop(self.run.lock());
    }

    /// Keeps compaction from switching files (a snapshot pinning the file
    /// set): never an old file and its copy both, nor neither.
    pub fn hold_switch(&self) -> Held<RwLockReadGuard<'_, ()>> {
        self.switch.read()
    }

    /// Asks the background thread to look for work now.
    pub fn wake(&self) {
        *lock(&self.wake) = true;
        self.cv.notify_one();
    }

    /// Asks the background thread and a running compaction to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps up to `d` or until woken; false once stopped.
    fn sleep(&self, d: Duration) -> bool {
        let mut woken = lock(&self.wake);
        if !*woken && !self.stopped() {
            woken = self
                .cv
                .wait_timeout(woken, d)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *woken = false;
        !self.stopped()
    }

    /// The background compaction thread.
    pub fn run_background(&self, d: Deps<'_>) {
        while self.sleep(d.ctx.opts().compaction_interval) {
            match self.compact(d, false) {
                Ok(r) if r.files_in > 0 => info!(
                    files_in = r.files_in,
                    files_out = r.files_out,
                    bytes_in = r.bytes_in,
                    bytes_out = r.bytes_out,
                    "compaction done"
                ),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "compaction failed; will retry"),
            }
        }
    }
}

/// The garbage of a file that compaction can reclaim, and its record bytes.
fn garbage(f: &MappedFile) -> (u64, u64) {
    let data = f
        .records_end
        .load(Ordering::Relaxed)
        .saturating_sub(FILE_HEADER_LEN as u64);
    let dead = f.dead.load(Ordering::Relaxed);
    let pinned = f.pinned.load(Ordering::Relaxed);
    (dead.saturating_sub(pinned), data)
}

impl CompactionState {
    /// Compacts every sealed file with garbage (`full`) or those at or above the
    /// configured threshold.
    pub fn compact(&self, d: Deps<'_>, full: bool) -> Result<CompactionReport, WriteError> {
        let _one = self.run.lock();
        // Full files still waiting for their seal are candidates too.
        d.writes.drain();
        let mut report = CompactionReport::default();
        // The writer lock keeps the active file from changing while the
        // table is read (writer before files table: the engine's lock order).
        let victims: Vec<Arc<MappedFile>> = d.writes.read(|w| {
            let active = w.active().id();
            let files = d.files.read();
            let mut v: Vec<_> = files
                .iter()
                // The active file, and full ones the roller has not sealed yet,
                // have no sealed index to read.
                .filter(|f| f.id() != active && f.sealed.load(Ordering::Acquire))
                .filter(|f| {
                    let (g, data) = garbage(f);
                    if full {
                        g > 0
                    } else {
                        data > 0 && g as f64 >= d.ctx.opts().compaction_threshold * data as f64
                    }
                })
                .cloned()
                .collect();
            // Most garbage first: the best return for the bytes rewritten.
            v.sort_by(|a, b| {
                let r = |f: &MappedFile| {
                    let (g, d) = garbage(f);
                    g as f64 / d.max(1) as f64
                };
                r(b).total_cmp(&r(a))
            });
            v
        });
        for group in victims.chunks(GROUP_FILES) {
            if self.stopped() || d.closed.load(Ordering::Acquire) {
                break;
            }
            self.compact_group(d, group, &mut report)?;
        }
        if report.files_in > 0 {
            d.ctx.counters().compactions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(report)
    }
}

/// An output HSTable being written under its temporary name.
struct Output {
    id: u32,
    tmp: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    flushed: usize,
    entries: Vec<IndexEntry>,
    min_seq: u64,
    max_seq: u64,
    /// Bytes of tombstones and Clear records kept.
    pinned: u64,
}

impl Output {
    fn create(d: Deps<'_>) -> Result<Output, WriteError> {
        let id = d.writes.take_file_id(d.ctx.dir())?;
        let tmp = temp_path(d.ctx.dir(), id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| WriteError::io("creating", &tmp, e))?;
        Ok(Output {
            id,
            tmp,
            file,
            buf: format::encode_file_header(id, d.ctx.version()).to_vec(),
            flushed: 0,
            entries: Vec::new(),
            min_seq: u64::MAX,
            max_seq: 0,
            pinned: 0,
        })
    }

    fn end(&self) -> usize {
        self.flushed + self.buf.len()
    }

    fn fits(&self, len: usize, max: usize) -> bool {
        self.entries.is_empty()
            || self.end() + len + (self.entries.len() + 1) * INDEX_ENTRY_LEN + FOOTER_LEN <= max
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        self.file
            .write_all_at(&self.buf, self.flushed as u64)
            .map_err(|e| WriteError::io("writing", &self.tmp, e))?;
        self.flushed += self.buf.len();
        self.buf.clear();
        Ok(())
    }

    /// Appends a record (already encoded, checksum included); returns its offset.
    fn push(&mut self, e: &IndexEntry, bytes: &[u8]) -> Result<usize, WriteError> {
        let off = self.end();
        self.buf.extend_from_slice(bytes);
        self.entries.push(IndexEntry {
            offset: off as u32,
            ..*e
        });
        self.min_seq = self.min_seq.min(e.seq);
        self.max_seq = self.max_seq.max(e.seq);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(off)
    }

    /// Seals, syncs and renames the output to its final name; maps it.
    fn finish(mut self, ctx: &Context) -> Result<Arc<MappedFile>, WriteError> {
        self.flush()?;
        let end = self.flushed;
        let len = seal(
            &self.file,
            &self.tmp,
            end,
            &self.entries,
            true,
            ctx.version(),
        )?;
        let path = file_path(ctx.dir(), self.id);
        fs::rename(&self.tmp, &path).map_err(|e| WriteError::io("renaming", &self.tmp, e))?;
        // NOTE: sealed files are < 4 GiB + one record, so the length fits usize.
        let mapped = MappedFile::map(
            self.file,
            len as usize,
            path.clone(),
            self.id,
            ctx.opts().huge_pages,
        )
        .map_err(|e| WriteError::io("mapping", &path, e))?;
        mapped.records_end.store(end as u64, Ordering::Relaxed);
        mapped.min_seq.store(self.min_seq, Ordering::Relaxed);
        mapped.max_seq.store(self.max_seq, Ordering::Relaxed);
        mapped.dead.store(self.pinned, Ordering::Relaxed);
        mapped.pinned.store(self.pinned, Ordering::Relaxed);
        mapped.sealed.store(true, Ordering::Relaxed);
        Ok(Arc::new(mapped))
    }
}

pub(crate) fn temp_path(dir: &Path, id: u32) -> PathBuf {
    let mut p = file_path(dir, id).into_os_string();
    p.push(TEMP_SUFFIX);
    PathBuf::from(p)
}

/// Sleeps as needed so `bytes` since `start` stay under `rate` per second.
fn throttle(rate: u64, start: Instant, bytes: u64) {
    if rate == 0 {
        return;
    }
    let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
    let elapsed = start.elapsed();
    if due > elapsed {
        std::thread::sleep(due - elapsed);
    }
}

/// A pending index switch: key hash, old location, new (output index, offset), bytes.
struct Move {
    hash: u64,
    old: u64,
    out: usize,
    off: usize,
    len: u64,
}

impl CompactionState {
    fn compact_group(
        &self,
        d: Deps<'_>,
        group: &[Arc<MappedFile>],
        report: &mut CompactionReport,
    ) -> Result<(), WriteError> {
        let ids: HashSet<u32> = group.iter().map(|f| f.id()).collect();
        // Every record outside the group, present or future, has a sequence
        // number >= min_other.
        let min_other = d.writes.read(|w| {
            let files = d.files.read();
            files
                .iter()
                .filter(|f| !ids.contains(&f.id()))
                .map(|f| f.min_seq.load(Ordering::Relaxed))
                .min()
                .unwrap_or(u64::MAX)
                .min(w.last_seq() + 1)
        });
        // The store's highest sequence number on disk, if it is in the group:
        // that record is kept even when it could be dropped, or a clean reopen
        // would start numbering below it and hand out CAS values again. (Later
        // writes land in the active file, outside the group, with higher ones.)
        let keep_seq = {
            let files = d.files.read();
            let max_of = |inside: bool| {
                files
                    .iter()
                    .filter(|f| ids.contains(&f.id()) == inside)
                    .map(|f| f.max_seq.load(Ordering::Relaxed))
                    .max()
                    .unwrap_or(0)
            };
            let (group, other) = (max_of(true), max_of(false));
            (group > other).then_some(group)
        };
        let now = (d.ctx.opts().clock)();
        let max = d.ctx.opts().max_file_size as usize;
        let mut outputs: Vec<Output> = Vec::new();
        let mut moves: Vec<Move> = Vec::new();
        let mut done: Vec<&Arc<MappedFile>> = Vec::new();
        let (mut expired_live, mut kept) = (0u64, 0u64);
        let (mut read, mut written) = (0u64, 0u64);
        let mut since = 0u64;
        let start = Instant::now();
        let abandon = |outputs: Vec<Output>| {
            for o in outputs {
                let _ = fs::remove_file(&o.tmp);
            }
        };

        for f in group {
            let len = match f.file().metadata() {
                Ok(m) => m.len(),
                Err(e) => {
                    abandon(outputs);
                    return Err(WriteError::io("reading metadata of", f.path(), e));
                }
            };
            let Some(entries) = crate::hstable::read_sealed_index(f.file(), len) else {
                warn!(file = %f.path().display(), "not compacting a file whose footer does not verify");
                continue;
            };
            for e in &entries {
                let (off, rl) = (e.offset as usize, e.len as usize);
                read += rl as u64;
                since += rl as u64;
                let loc = index::pack(f.id(), off as u64);
                let bytes = f.get(off, rl).unwrap_or_default();
                // The index entry and the record must agree on its extent and
                // kind, or the bytes copied would not be the record.
                let rec = match format::decode_record(bytes).and_then(|r| {
                    if r.header.record_len() == rl && r.header.kind == e.kind {
                        Ok(r)
                    } else {
                        Err(format::RecordError::BadLength)
                    }
                }) {
                    Ok(r) => r,
                    Err(err) => {
                        // Never copy a corrupt record; if it was live, its key
                        // reads as missing from now on (it could not be served).
                        warn!(file = %f.path().display(), offset = off, error = %err,
                        "dropping a corrupt record during compaction");
                        d.ctx.counters().bad_records.fetch_add(1, Ordering::Relaxed);
                        if d.keys.remove_at(e.hash, loc) {
                            expired_live += rl as u64;
                        }
                        report.records_dropped += 1;
                        continue;
                    }
                };
                let keep = match e.kind {
                    RecordKind::Put => {
                        // Under the key's stripe lock: a writer holds it from
                        // before its append until after its publish, so a record
                        // appended (and sealed into this file) but not yet
                        // published is seen as live, not dropped as dead.
                        let _key = d.keys.stripe(e.hash);
                        let live = d.keys.points_at(e.hash, loc);
                        if !live {
                            false
                        } else if rec.header.expiry != 0
                            && rec.header.expiry <= now
                            && e.seq < min_other
                            && keep_seq != Some(e.seq)
                        {
                            if d.keys.remove_at(e.hash, loc) {
                                expired_live += rl as u64;
                            }
                            false
                        } else {
                            true
                        }
                    }
                    RecordKind::Delete => e.seq >= min_other || keep_seq == Some(e.seq),
                    RecordKind::Clear => {
                        // A clear holds every stripe until the index is empty.
                        drop(d.keys.stripe(0));
                        e.seq >= min_other || keep_seq == Some(e.seq)
                    }
                };
                if !keep {
                    report.records_dropped += 1;
                    continue;
                }
                if outputs.last().is_none_or(|o| !o.fits(rl, max)) {
                    match Output::create(d) {
                        Ok(o) => outputs.push(o),
                        Err(err) => {
                            abandon(outputs);
                            return Err(err);
                        }
                    }
                }
                let out = outputs.len() - 1;
                let o = &mut outputs[out];
                let new_off = match o.push(e, bytes) {
                    Ok(x) => x,
                    Err(err) => {
                        abandon(outputs);
                        return Err(err);
                    }
                };
                written += rl as u64;
                since += rl as u64;
                if e.kind == RecordKind::Put {
                    moves.push(Move {
                        hash: e.hash,
                        old: loc,
                        out,
                        off: new_off,
                        len: rl as u64,
                    });
                } else {
                    o.pinned += rl as u64;
                    kept += rl as u64;
                }
                if since >= THROTTLE_STEP {
                    since = 0;
                    throttle(d.ctx.opts().compaction_rate, start, read + written);
                    if self.stopped() {
                        abandon(outputs);
                        return Ok(());
                    }
                }
            }
            done.push(f);
        }
        if done.is_empty() {
            abandon(outputs);
            return Ok(());
        }

        // Make the outputs durable under their final names.
        let mut mapped = Vec::with_capacity(outputs.len());
        let mut outputs = outputs.into_iter();
        while let Some(o) = outputs.next() {
            let tmp = o.tmp.clone();
            match o.finish(d.ctx) {
                Ok(m) => mapped.push(m),
                Err(err) => {
                    let _ = fs::remove_file(&tmp);
                    abandon(outputs.collect());
                    // Outputs already renamed stay: they only duplicate records
                    // of files that are still there (harmless, see module docs),
                    // but must not be left out of the table either, or a later
                    // compaction could drop a tombstone they still need.
                    insert_files(d.files, &mapped);
                    return Err(err);
                }
            }
        }
        let dir = d.ctx.dir();
        sync_dir(dir).map_err(|e| WriteError::io("syncing directory", dir, e))?;

        // Switch.
        let mut lost = 0u64;
        {
            let _switch = self.switch.write();
            insert_files(d.files, &mapped);
            for m in &moves {
                let new = index::pack(mapped[m.out].id(), m.off as u64);
                if !d.keys.replace(m.hash, m.old, new) {
                    // Overwritten or deleted meanwhile: the copy is garbage.
                    lost += m.len;
                    mapped[m.out].dead.fetch_add(m.len, Ordering::Relaxed);
                }
            }
            let mut files = d.files.write();
            for f in &done {
                files.remove(f.id());
            }
        }
        // A record was dropped because a newer one replaced it; that one must
        // be on disk before the old one goes, or a machine crash could lose
        // both. One group commit covers every write published so far.
        d.sync.sync_now(d.ctx, d.writes)?;
        // The old files go together or not at all: if a crash (or a failed
        // unlink) left the file with an older Put while the one with the
        // tombstone that was dropped is gone, the deleted key would come back.
        // The list makes recovery finish the unlinks.
        let ids: Vec<u32> = done.iter().map(|f| f.id()).collect();
        let list = write_obsolete(d.ctx.dir(), &ids)?;
        let mut all_gone = true;
        for f in &done {
            let unlinked = if d.ctx.faults().unlink_fails(f.id()) {
                Err(std::io::Error::from_raw_os_error(libc::EIO))
            } else {
                fs::remove_file(f.path())
            };
            if let Err(e) = unlinked {
                all_gone = false;
                warn!(file = %f.path().display(), error = %e,
                "could not unlink a compacted file; the next open deletes it");
            }
        }
        sync_dir(dir).map_err(|e| WriteError::io("syncing directory", dir, e))?;
        if all_gone {
            // A list left behind is harmless: its files are gone already.
            if let Err(e) = fs::remove_file(&list) {
                warn!(file = %list.display(), error = %e, "could not remove a list of compacted files");
            }
        }

        // Counters: the old files' garbage is gone; kept tombstones and copies
        // that lost to an overwrite are garbage in the outputs.
        let old_dead: u64 = done.iter().map(|f| f.dead.load(Ordering::Relaxed)).sum();
        let old_bytes: u64 = done.iter().map(|f| garbage(f).1).sum();
        let c = d.ctx.counters();
        sub(&c.dead_bytes, old_dead);
        c.dead_bytes.fetch_add(kept + lost, Ordering::Relaxed);
        sub(&c.live_bytes, expired_live);
        let n_out = mapped.len() as u64;
        c.files.fetch_add(n_out, Ordering::Relaxed);
        sub(&c.files, done.len() as u64);
        c.compacted_bytes.fetch_add(written, Ordering::Relaxed);
        c.reclaimed_bytes
            .fetch_add(old_bytes.saturating_sub(written), Ordering::Relaxed);
        report.files_in += done.len() as u64;
        report.files_out += n_out;
        report.bytes_in += old_bytes;
        report.bytes_out += written;
        report.records_moved += moves.len() as u64;
        Ok(())
    }
}

fn insert_files(files: &RankedRwLock<FileTable>, mapped: &[Arc<MappedFile>]) {
    let mut files = files.write();
    for m in mapped {
        files.insert(m.clone());
    }
}

fn sub(a: &AtomicU64, v: u64) {
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| {
        Some(x.saturating_sub(v))
    });
}
