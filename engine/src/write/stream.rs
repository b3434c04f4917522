//! Large values in parts (KingDB's multipart): a streaming write declares
//! key, total length and metadata, takes the value in chunks, and makes the
//! record visible atomically at commit, never partially.
//!
//! Two paths, by the declared length:
//!
//! * up to [`Options::stream_buffer_limit`] (1 MiB): chunks are gathered in
//!   memory and committed as one ordinary put (compressed if configured);
//! * longer: the record goes into an HSTable of its own, written under a
//!   temporary name (`NNNNNNNN.hst.streaming`) with `pwrite` as chunks
//!   arrive, its checksum computed chunk by chunk (CRC32 of header and key
//!   combined with the value's at commit, when the sequence number is
//!   known). Commit writes the header, seals the file (index + footer),
//!   fdatasyncs it and the active file (so no earlier write can be lost
//!   while this later one survives), renames it to `NNNNNNNN.hst`, fsyncs the directory, and
//!   publishes the record in the index: only then is it visible. Such a
//!   value is never in memory on the writer's side, and reads hand it out
//!   as a slice of the map (`item.value.chunks(n)` gives slices of it).
//!
//! A writer dropped before commit leaves nothing visible: the buffer is
//! freed, or the temporary file deleted. After a crash, recovery deletes
//! `*.streaming` files. The file of a streamed value is an ordinary sealed
//! HSTable from then on: when the value is overwritten, the whole file is
//! garbage and compaction unlinks it.
//!
//! [`Options::stream_buffer_limit`]: crate::Options::stream_buffer_limit

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{check_key, check_value_len, Deps, WritePath};
use crate::engine::Inner;
use crate::error::WriteError;
use crate::format::{self, IndexEntry, RecordKind, FILE_HEADER_LEN, RECORD_HEADER_LEN};
use crate::hstable::MappedFile;
use crate::hstable::{file_path, seal, sync_dir};
use crate::index;
use crate::keydir::Placed;
use crate::types::{Condition, Meta, PutOutcome, Written};

/// Suffix of a streamed value's own file until its commit.
pub const TEMP_SUFFIX: &str = ".streaming";

/// A streaming write in progress: see [`crate::Engine::put_stream`].
/// `Send`; dropping it without [`ValueWriter::commit`] abandons it.
pub struct ValueWriter {
    inner: Arc<Inner>,
    key: Vec<u8>,
    meta: Meta,
    declared: usize,
    written: usize,
    target: Target,
}

enum Target {
    Buffer(Vec<u8>),
    File(OwnFile),
}

/// The HSTable of its own a long value is written into.
struct OwnFile {
    id: u32,
    tmp: PathBuf,
    /// `None` once committed or abandoned.
    file: Option<File>,
    crc: crc32fast::Hasher,
}

impl std::fmt::Debug for ValueWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueWriter")
            .field("key_len", &self.key.len())
            .field("declared", &self.declared)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// Starts a streaming write for the engine `inner`, whose write path is
/// `writes`.
pub(crate) fn begin(
    inner: &Arc<Inner>,
    writes: &WritePath,
    key: &[u8],
    len: usize,
    meta: Meta,
) -> Result<ValueWriter, WriteError> {
    let ctx = inner.ctx();
    check_key(key)?;
    check_value_len(len, ctx.opts())?;
    inner.write_gate()?;
    let target = if len <= ctx.opts().stream_buffer_limit {
        Target::Buffer(Vec::with_capacity(len))
    } else {
        let id = writes.take_file_id(ctx.dir())?;
        let mut tmp = file_path(ctx.dir(), id).into_os_string();
        tmp.push(TEMP_SUFFIX);
        let tmp = PathBuf::from(tmp);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| WriteError::io("creating", &tmp, e))?;
        let fail = |e| {
            let _ = fs::remove_file(&tmp);
            WriteError::io("writing", &tmp, e)
        };
        file.write_all_at(&format::encode_file_header(id, ctx.version()), 0)
            .map_err(fail)?;
        file.write_all_at(key, (FILE_HEADER_LEN + RECORD_HEADER_LEN) as u64)
            .map_err(fail)?;
        Target::File(OwnFile {
            id,
            tmp,
            file: Some(file),
            crc: crc32fast::Hasher::new(),
        })
    };
    Ok(ValueWriter {
        inner: inner.clone(),
        key: key.to_vec(),
        meta,
        declared: len,
        written: 0,
        target,
    })
}

impl ValueWriter {
    /// Appends the next chunk of the value. More bytes than declared is an
    /// error (and nothing is written).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), WriteError> {
        let got = self.written + chunk.len();
        if got > self.declared {
            return Err(WriteError::StreamLength {
                declared: self.declared,
                got,
            });
        }
        match &mut self.target {
            Target::Buffer(b) => b.extend_from_slice(chunk),
            Target::File(OwnFile { tmp, file, crc, .. }) => {
                let at = FILE_HEADER_LEN + RECORD_HEADER_LEN + self.key.len() + self.written;
                if let Some(f) = file {
                    f.write_all_at(chunk, at as u64)
                        .map_err(|e| WriteError::io("writing", tmp.as_path(), e))?;
                }
                crc.update(chunk);
            }
        }
        self.written = got;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// Bytes declared at the start.
    pub fn declared(&self) -> usize {
        self.declared
    }

    /// Makes the record visible if `cond` holds (checked now, under the
    /// key's lock), atomically. Fails with [`WriteError::StreamLength`] if
    /// fewer bytes than declared were written; the write is then abandoned.
    pub fn commit(mut self, cond: Condition) -> Result<Written<PutOutcome>, WriteError> {
        if self.written != self.declared {
            return Err(WriteError::StreamLength {
                declared: self.declared,
                got: self.written,
            });
        }
        let key = std::mem::take(&mut self.key);
        let (meta, len) = (self.meta, self.declared);
        let target = &mut self.target;
        self.inner
            .put_if(&key, cond, |writes, d, hash| match target {
                Target::Buffer(b) => writes.put(d, hash, &key, b, meta),
                Target::File(own) => own.commit(writes, d, hash, &key, meta, len),
            })
    }
}

impl WritePath {
    /// Assigns the next sequence number to a record written outside the
    /// active file.
    fn take_seq(&self) -> Result<u64, WriteError> {
        let mut w = self.writer.lock();
        if w.closed {
            return Err(WriteError::Closed);
        }
        w.last_seq = w.next_seq()?;
        Ok(w.last_seq)
    }
}

impl OwnFile {
    /// Writes the record's header, seals and syncs the file, renames it to
    /// its final name and adds it to the file table; returns the record to
    /// publish. On an error the temporary file is deleted.
    fn commit<'k>(
        &mut self,
        writes: &WritePath,
        d: Deps<'_>,
        hash: u64,
        key: &'k [u8],
        meta: Meta,
        len: usize,
    ) -> Result<Placed<'k>, WriteError> {
        let file = self.file.take().ok_or(WriteError::Closed)?;
        let result = self.commit_file(writes, d, file, hash, key, meta, len);
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        result
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, all parts of one record"
    )]
    fn commit_file<'k>(
        &self,
        writes: &WritePath,
        d: Deps<'_>,
        file: File,
        hash: u64,
        key: &'k [u8],
        meta: Meta,
        len: usize,
    ) -> Result<Placed<'k>, WriteError> {
        let (ctx, id, tmp) = (d.ctx, self.id, self.tmp.as_path());
        let rec_len = RECORD_HEADER_LEN + key.len() + len;
        // The sequence number is taken under the writer lock like any
        // append's, and the write is counted in the active file's group
        // commits: its own file is synced here, before its ticket exists.
        let seq = writes.take_seq()?;
        let header =
            format::encode_header_streamed(key, len, &self.crc, meta.flags, meta.expiry, seq);
        file.write_all_at(&header, FILE_HEADER_LEN as u64)
            .map_err(|e| WriteError::io("writing", tmp, e))?;
        let entry = IndexEntry {
            hash,
            seq,
            offset: FILE_HEADER_LEN as u32,
            // NOTE: at most MAX_VALUE_LEN + 64 KiB + header: fits u32.
            len: rec_len as u32,
            kind: RecordKind::Put,
        };
        let end = FILE_HEADER_LEN + rec_len;
        let sealed = seal(&file, tmp, end, &[entry], true, ctx.version())?;
        // Everything written before this record must be on disk before it is:
        // otherwise a machine crash could keep the streamed value and lose
        // earlier writes, a state that never existed.
        d.sync.sync_now(ctx, writes)?;
        let path = file_path(ctx.dir(), id);
        fs::rename(tmp, &path).map_err(|e| WriteError::io("renaming", tmp, e))?;
        sync_dir(ctx.dir()).map_err(|e| WriteError::io("syncing directory", ctx.dir(), e))?;
        // NOTE: sealed length < 4 GiB fits usize.
        let mapped = MappedFile::map(
            file,
            sealed as usize,
            path.clone(),
            id,
            ctx.opts().huge_pages,
        )
        .map_err(|e| WriteError::io("mapping", &path, e))?;
        mapped.records_end.store(end as u64, Ordering::Relaxed);
        mapped.min_seq.store(seq, Ordering::Relaxed);
        mapped.max_seq.store(seq, Ordering::Relaxed);
        mapped.sealed.store(true, Ordering::Relaxed);
        d.files.write().insert(Arc::new(mapped));
        let c = ctx.counters();
        c.files.fetch_add(1, Ordering::Relaxed);
        c.syncs.fetch_add(1, Ordering::Relaxed);
        c.bytes_written.fetch_add(rec_len as u64, Ordering::Relaxed);
        Ok(Placed {
            hash,
            key,
            loc: index::pack(id, FILE_HEADER_LEN as u64),
            len: rec_len as u64,
            seq,
        })
    }
}

impl Drop for ValueWriter {
    fn drop(&mut self) {
        if let Target::File(OwnFile { tmp, file, .. }) = &mut self.target {
            if file.take().is_some() {
                // Abandoned: nothing was published; give the space back.
                let _ = fs::remove_file(tmp.as_path());
            }
        }
    }
}
