//! The write path: the writer (behind the writer lock) and the active
//! HSTable it owns, appending a record, rolling over to the next file, the
//! roller thread that seals full files and makes spares (`roller.rs`),
//! streamed values (`stream.rs`), and sealing the active file at close.
//! Only this module writes into a map, through the active file's
//! [`ActiveFile`] handle.
//!
//! ```text
//!  put(k, v) ──► stripe lock(hash k)          (serialises one key's writers)
//!                 ├─ check condition (reads the index + record header)
//!                 ├─ writer lock: seq += 1, copy record into the map,
//!                 │               push (hash, offset) for the sealed index
//!                 └─ index shard write lock: publish location
//! ```

mod roller;
pub(crate) mod stream;

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;

use tracing::warn;

use crate::context::Context;
use crate::durability::SyncShared;
use crate::error::{OpenError, WriteError};
use crate::format::{
    self, IndexEntry, RecordKind, FILE_HEADER_LEN, FOOTER_LEN, INDEX_ENTRY_LEN, MAX_KEY_LEN,
    MAX_VALUE_LEN, RECORD_HEADER_LEN,
};
use crate::hstable::{create_file, file_path, seal, sealed_len, sync_dir, FileTable};
use crate::hstable::{ActiveFile, MappedFile};
use crate::index;
use crate::keydir::Placed;
use crate::lock_order::{Rank, RankedMutex, RankedRwLock};
use crate::options::{Compression, Options, MIN_COMPRESS_LEN};
use crate::types::Meta;

/// The write path's state: the writer (behind the writer lock) and the
/// roller's queue. Others append, read the writer's position and take file
/// ids and sequence numbers through its methods.
pub(crate) struct WritePath {
    writer: RankedMutex<Writer>,
    roller: roller::Roller,
}

/// What an append touches outside the write path: the configuration and
/// counters, group commit (its poisoned state and the rolled list) and the
/// file table (a roll-over adds the new file).
#[derive(Clone, Copy)]
pub(crate) struct Deps<'a> {
    pub ctx: &'a Context,
    pub sync: &'a SyncShared,
    pub files: &'a RankedRwLock<FileTable>,
}

/// A record to append.
#[derive(Clone, Copy)]
pub(crate) struct Record<'a> {
    pub kind: RecordKind,
    pub encoding: u8,
    pub hash: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub meta: Meta,
}

/// State of the append path, behind the writer lock. Its fields are
/// private to the write path; others read its position through methods.
pub(crate) struct Writer {
    /// The active HSTable's write handle (the only one there is).
    active: ActiveFile,
    /// `active` is a real HSTable; false for the stand-in a full disk at
    /// open leaves (no room, never sealed, not in the file table).
    active_on_disk: bool,
    /// Preallocated (and mapped) bytes of the active file.
    capacity: usize,
    /// The active file's future sealed index.
    entries: Vec<IndexEntry>,
    last_seq: u64,
    next_file_id: u32,
    /// A preallocated file of `max_file_size` bytes for the next roll-over,
    /// made ahead by the roller.
    spare: Option<ActiveFile>,
    /// The roller was asked for a spare that has not arrived yet.
    spare_asked: bool,
    /// The last spare could not be made (a full disk): none is asked for
    /// again until a roll-over has made a file, so a full disk costs one
    /// attempt and one warning per file, not per write, and burns no ids.
    spare_failed: bool,
    /// Set by close: nothing may be appended any more.
    closed: bool,
}

impl Writer {
    /// The highest sequence number assigned.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The active file (read-only: appending is the write path's).
    pub fn active(&self) -> &ActiveFile {
        &self.active
    }

    /// Takes the id of the next new HSTable; an error once ids would pass
    /// what an index location can hold (they would alias file 0 on).
    fn take_file_id(&mut self, dir: &Path) -> Result<u32, WriteError> {
        let id = self.next_file_id;
        if id > index::MAX_FILE_ID {
            return Err(file_ids_exhausted(dir, id));
        }
        self.next_file_id += 1;
        Ok(id)
    }

    /// A spare asked for as `id` could not be made: its id is free again
    /// unless a later one was taken, and no spare is asked for until the
    /// next roll-over.
    pub fn spare_failed(&mut self, id: u32) {
        self.spare_asked = false;
        self.spare_failed = true;
        if self.next_file_id == id + 1 {
            self.next_file_id = id;
        }
    }

    /// The sequence number the next record gets (the caller stores it in
    /// `last_seq` once the record is written).
    fn next_seq(&self) -> Result<u64, WriteError> {
        if self.last_seq >= format::MAX_SEQ {
            return Err(WriteError::SequenceExhausted {
                last: self.last_seq,
            });
        }
        Ok(self.last_seq + 1)
    }
}

/// The error for a new HSTable whose id an index location cannot hold.
fn file_ids_exhausted(dir: &Path, id: u32) -> WriteError {
    WriteError::io(
        "creating",
        file_path(dir, id),
        std::io::Error::other(format!(
            "file id {id} is past the largest an index location holds ({}); \
             copy the live keys into a new data directory",
            index::MAX_FILE_ID
        )),
    )
}

impl WritePath {
    /// Makes the active file of a store just recovered (`files`, whose
    /// highest id is below the new one), or, on a full disk, a stand-in
    /// with no room so reads are served and writes fail until space is
    /// freed.
    pub fn open(
        ctx: &Context,
        files: &mut FileTable,
        last_seq: u64,
    ) -> Result<WritePath, OpenError> {
        let (dir, options) = (ctx.dir(), ctx.opts());
        let next_id = files.end_id().max(1);
        let capacity = options.max_file_size as usize;
        let made = if next_id > index::MAX_FILE_ID {
            Err(file_ids_exhausted(dir, next_id))
        } else {
            new_file(ctx, next_id, capacity)
        };
        let (active, capacity, on_disk, next_file_id) = match made {
            Ok(active) => {
                files.insert(active.mapped().clone());
                (active, capacity, true, next_id + 1)
            }
            // A full disk must not stop reads: open with a stand-in for
            // the active file that has no room, so the first write tries
            // to create the file again (and fails with ENOSPC until
            // space is freed).
            Err(WriteError::Io { source, path, .. })
                if next_id > index::MAX_FILE_ID
                    || matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) =>
            {
                warn!(
                    file = %path.display(),
                    error = %source,
                    "cannot create a new HSTable: serving reads, writes fail until this is resolved"
                );
                let stand_in = MappedFile::placeholder(path.clone(), next_id, FILE_HEADER_LEN)
                    .map_err(|e| OpenError::io("creating a stand-in for", &path, e))?;
                (stand_in, 0, false, next_id)
            }
            Err(e) => return Err(e.into()),
        };
        let writer = Writer {
            active,
            active_on_disk: on_disk,
            capacity,
            entries: Vec::new(),
            last_seq,
            next_file_id,
            spare: None,
            spare_asked: false,
            spare_failed: false,
            closed: false,
        };
        Ok(WritePath {
            writer: RankedMutex::new(Rank::Writer, writer),
            roller: roller::Roller::default(),
        })
    }
}

pub(crate) fn check_key(key: &[u8]) -> Result<(), WriteError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(WriteError::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

pub(crate) fn check_value_len(len: usize, opts: &Options) -> Result<(), WriteError> {
    let max = opts.max_value_size.min(MAX_VALUE_LEN);
    if len > max {
        return Err(WriteError::ValueTooLarge { len, max });
    }
    Ok(())
}

impl WritePath {
    /// Runs `f` on the writer under the writer lock: its position, read
    /// together with what may not change meanwhile (the active file, the
    /// rolled list). `f` may take locks after the writer's only (see
    /// `lock_order.rs`).
    pub fn read<R>(&self, f: impl FnOnce(&Writer) -> R) -> R {
        f(&self.writer.lock())
    }

    /// The highest sequence number assigned.
    pub fn last_seq(&self) -> u64 {
        self.writer.lock().last_seq
    }

    /// Takes the id of the next new HSTable (a compaction output, a
    /// streamed value's file).
    pub fn take_file_id(&self, dir: &Path) -> Result<u32, WriteError> {
        self.writer.lock().take_file_id(dir)
    }

    /// Nothing may be appended any more (close, or a simulated crash).
    pub fn close(&self) {
        self.writer.lock().closed = true;
    }

    /// Waits until the roller has sealed every full file queued and made
    /// the spare asked for.
    pub fn drain(&self) {
        self.roller.drain();
    }

    /// Asks the roller thread to exit.
    pub fn stop(&self) {
        self.roller.stop();
    }

    /// Test hook: while held, the roller's jobs wait.
    #[cfg(feature = "fault-injection")]
    pub fn hold(&self, held: bool) {
        self.roller.hold(held);
    }

    /// Appends one record; returns its sequence number and location.
    pub fn append(&self, d: Deps<'_>, rec: Record<'_>) -> Result<(u64, u64), WriteError> {
        let Record {
            kind,
            encoding,
            hash,
            key,
            value,
            meta,
        } = rec;
        let len = RECORD_HEADER_LEN + key.len() + value.len();
        let mut w = self.writer.lock();
        if w.closed {
            return Err(WriteError::Closed);
        }
        if let Some(e) = d.sync.poisoned() {
            return Err(e);
        }
        // Room for the record and for the sealed index entry it will need,
        // so sealing never has to grow the file.
        if w.active.tail() + len + (w.entries.len() + 1) * INDEX_ENTRY_LEN + FOOTER_LEN > w.capacity
        {
            self.roll(d, &mut w, len)?;
        }
        let seq = w.next_seq()?;
        let header =
            format::encode_header_with(kind, encoding, key, value, meta.flags, meta.expiry, seq);
        let off = w.active.append(&[&header, key, value]);
        // NOTE: offsets and lengths fit u32: files are at most MAX_FILE_SIZE
        // plus one record of at most MAX_VALUE_LEN.
        w.entries.push(IndexEntry {
            hash,
            seq,
            offset: off as u32,
            len: len as u32,
            kind,
        });
        w.last_seq = seq;
        let tail = w.active.tail();
        w.active.records_end.store(tail as u64, Ordering::Relaxed);
        if w.active.min_seq.load(Ordering::Relaxed) == u64::MAX {
            w.active.min_seq.store(seq, Ordering::Relaxed);
        }
        w.active.max_seq.store(seq, Ordering::Relaxed);
        if tail > w.capacity / 2 && w.spare.is_none() && !w.spare_asked && !w.spare_failed {
            // Half full: the next file gets made while this one fills. (No
            // id left: the roll-over reports it.)
            if let Ok(id) = w.take_file_id(d.ctx.dir()) {
                self.roller
                    .want_spare(id, d.ctx.opts().max_file_size as usize);
                w.spare_asked = true;
            }
        }
        let loc = index::pack(w.active.id(), off as u64);
        drop(w);
        d.ctx
            .counters()
            .bytes_written
            .fetch_add(len as u64, Ordering::Relaxed);
        Ok((seq, loc))
    }

    /// Makes the next file active (the spare, or one made now if there is
    /// none or the record of `need` bytes needs a bigger one) and hands the
    /// full one to the roller to seal: see `roller.rs`.
    fn roll(&self, d: Deps<'_>, w: &mut Writer, need: usize) -> Result<(), WriteError> {
        let ctx = d.ctx;
        let standard = ctx.opts().max_file_size as usize;
        let capacity = standard.max(FILE_HEADER_LEN + need + INDEX_ENTRY_LEN + FOOTER_LEN);
        // Fails like a full disk would; the current file stays active.
        if ctx.faults().create_fails() {
            return Err(WriteError::io(
                "preallocating",
                file_path(ctx.dir(), w.next_file_id),
                std::io::Error::from_raw_os_error(libc::ENOSPC),
            ));
        }
        let next = match w.spare.take() {
            Some(spare) if capacity == standard => spare,
            spare => {
                // No spare yet (or a record too big for one): make the file
                // here. If the disk is full this fails cleanly and the
                // current file stays active (and unsealed).
                w.spare = spare;
                let id = w.take_file_id(ctx.dir())?;
                match new_file(ctx, id, capacity) {
                    Ok(file) => file,
                    Err(e) => {
                        // The id is free again for the next try.
                        w.next_file_id = id;
                        return Err(e);
                    }
                }
            }
        };
        d.files.write().insert(next.mapped().clone());
        ctx.counters().files.fetch_add(1, Ordering::Relaxed);
        let full = std::mem::replace(&mut w.active, next);
        if std::mem::replace(&mut w.active_on_disk, true) {
            let data_end = full.tail();
            let full = full.into_mapped();
            d.sync.rolled(full.clone());
            self.roller.seal(roller::SealJob {
                file: full,
                data_end,
                entries: std::mem::take(&mut w.entries),
            });
        }
        w.capacity = capacity;
        w.spare_failed = false;
        Ok(())
    }

    /// Appends a Put of `value` under `key` (compressed if configured and
    /// it shrinks); returns the record to publish.
    pub fn put<'k>(
        &self,
        d: Deps<'_>,
        hash: u64,
        key: &'k [u8],
        value: &[u8],
        meta: Meta,
    ) -> Result<Placed<'k>, WriteError> {
        let compressed = compress(d.ctx.opts(), value);
        let (encoding, stored) = match &compressed {
            Some(c) => (format::ENCODING_LZ4, &c[..]),
            None => (format::ENCODING_RAW, value),
        };
        let rec = Record {
            kind: RecordKind::Put,
            encoding,
            hash,
            key,
            value: stored,
            meta,
        };
        let (seq, loc) = self.append(d, rec)?;
        Ok(Placed {
            hash,
            key,
            loc,
            len: (RECORD_HEADER_LEN + key.len() + stored.len()) as u64,
            seq,
        })
    }

    /// Appends a Delete of `key`; returns the tombstone to unpublish.
    pub fn delete<'k>(
        &self,
        d: Deps<'_>,
        hash: u64,
        key: &'k [u8],
    ) -> Result<Placed<'k>, WriteError> {
        let rec = Record {
            kind: RecordKind::Delete,
            encoding: format::ENCODING_RAW,
            hash,
            key,
            value: &[],
            meta: Meta::default(),
        };
        let (seq, loc) = self.append(d, rec)?;
        Ok(Placed {
            hash,
            key,
            loc,
            len: (RECORD_HEADER_LEN + key.len()) as u64,
            seq,
        })
    }

    /// At close: seals the active file (or drops it if empty) after the
    /// rolled files not synced yet, and deletes the unused spare.
    pub fn seal_active(&self, d: Deps<'_>) -> Result<(), WriteError> {
        let ctx = d.ctx;
        let mut w = self.writer.lock();
        w.closed = true;
        if let Some(spare) = w.spare.take() {
            roller::discard(ctx.dir(), &spare);
        }
        if let Some(e) = d.sync.poisoned() {
            // Sealing would need another sync; leave the file to recovery.
            return Err(e);
        }
        // Rolled files not synced yet (durability `none` seals without a
        // sync; a seal that failed): on disk before the durable mark moves.
        d.sync.sync_rolled(ctx)?;
        let result = if !w.active_on_disk {
            // The stand-in of a full disk: nothing on disk to seal or drop.
            Ok(())
        } else if w.entries.is_empty() {
            // Nothing was written: drop the empty preallocated file.
            let path = w.active.path().to_path_buf();
            let id = w.active.id();
            d.files.write().remove(id);
            fs::remove_file(&path)
                .and_then(|()| sync_dir(ctx.dir()))
                .map_err(|e| WriteError::io("removing", &path, e))
        } else {
            let data_end = w.active.tail();
            w.active.shrink_to(sealed_len(data_end, w.entries.len()));
            seal(
                w.active.file(),
                w.active.path(),
                data_end,
                &w.entries,
                true,
                ctx.version(),
            )
            .map(|_| {
                ctx.counters().syncs.fetch_add(1, Ordering::Relaxed);
            })
        };
        match &result {
            Ok(()) => d.sync.advance(w.last_seq),
            Err(e) => d.sync.poison(e),
        }
        result
    }
}

/// Creates HSTable `id`, `capacity` bytes preallocated and mapped, in the
/// store's directory and format.
fn new_file(ctx: &Context, id: u32, capacity: usize) -> Result<ActiveFile, WriteError> {
    create_file(
        ctx.dir(),
        id,
        capacity,
        ctx.opts().huge_pages,
        ctx.version(),
    )
}

/// The LZ4 form of `value` if compression is on and it shrinks.
fn compress(opts: &Options, value: &[u8]) -> Option<Vec<u8>> {
    if opts.compression != Compression::Lz4 || value.len() < MIN_COMPRESS_LEN {
        return None;
    }
    let c = lz4_flex::compress_prepend_size(value);
    (c.len() < value.len()).then_some(c)
}
