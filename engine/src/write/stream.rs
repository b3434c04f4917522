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

use super::{check_key, check_value_len};
use crate::durability::SyncTicket;
use crate::engine::Inner;
use crate::error::WriteError;
use crate::format::{self, IndexEntry, RecordKind, FILE_HEADER_LEN, RECORD_HEADER_LEN};
use crate::hstable::MappedFile;
use crate::hstable::{file_path, seal, sync_dir};
use crate::index;
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
    File {
        id: u32,
        tmp: PathBuf,
        file: Option<File>,
        crc: crc32fast::Hasher,
    },
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

pub(crate) fn begin(
    inner: &Arc<Inner>,
    key: &[u8],
    len: usize,
    meta: Meta,
) -> Result<ValueWriter, WriteError> {
    check_key(key)?;
    check_value_len(len, &inner.opts)?;
    inner.write_gate()?;
    let target = if len <= inner.opts.stream_buffer_limit {
        Target::Buffer(Vec::with_capacity(len))
    } else {
        let id = {
            let mut w = inner.writer.lock();
            w.take_file_id(&inner.dir)?
        };
        let mut tmp = file_path(&inner.dir, id).into_os_string();
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
        file.write_all_at(&format::encode_file_header(id, inner.format.version), 0)
            .map_err(fail)?;
        file.write_all_at(key, (FILE_HEADER_LEN + RECORD_HEADER_LEN) as u64)
            .map_err(fail)?;
        Target::File {
            id,
            tmp,
            file: Some(file),
            crc: crc32fast::Hasher::new(),
        }
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
            Target::File { tmp, file, crc, .. } => {
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
        let inner = self.inner.clone();
        inner.write_gate()?;
        let key = std::mem::take(&mut self.key);
        let hash = inner.format.hash(&key);
        let _key_lock = inner.stripe(hash);
        if let Some(result) = inner.refusal(hash, &key, cond)? {
            return Ok(Written {
                result,
                ticket: SyncTicket::DURABLE,
            });
        }
        let seq = match &mut self.target {
            Target::Buffer(b) => inner.write_put(hash, &key, b, self.meta)?,
            Target::File { id, tmp, file, crc } => {
                let file = file.take().ok_or(WriteError::Closed)?;
                let id = *id;
                let tmp = tmp.clone();
                let result =
                    commit_file(&inner, id, &tmp, file, &key, crc, self.meta, self.declared);
                if result.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                let (seq, loc, len) = result?;
                inner.publish(hash, &key, loc, len, seq);
                seq
            }
        };
        Ok(Written {
            result: PutOutcome::Stored { seq },
            ticket: SyncTicket(seq),
        })
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site, all parts of one record"
)]
fn commit_file(
    inner: &Inner,
    id: u32,
    tmp: &std::path::Path,
    file: File,
    key: &[u8],
    crc: &crc32fast::Hasher,
    meta: Meta,
    len: usize,
) -> Result<(u64, u64, u64), WriteError> {
    let rec_len = RECORD_HEADER_LEN + key.len() + len;
    // The sequence number is taken under the writer lock like any append's,
    // and the write is counted in the active file's group commits: its own
    // file is synced here, before its ticket exists.
    let seq = {
        let mut w = inner.writer.lock();
        if w.closed {
            return Err(WriteError::Closed);
        }
        w.last_seq = w.next_seq()?;
        w.last_seq
    };
    let header = format::encode_header_streamed(key, len, crc, meta.flags, meta.expiry, seq);
    file.write_all_at(&header, FILE_HEADER_LEN as u64)
        .map_err(|e| WriteError::io("writing", tmp, e))?;
    let entry = IndexEntry {
        hash: inner.format.hash(key),
        seq,
        offset: FILE_HEADER_LEN as u32,
        // NOTE: at most MAX_VALUE_LEN + 64 KiB + header: fits u32.
        len: rec_len as u32,
        kind: RecordKind::Put,
    };
    let end = FILE_HEADER_LEN + rec_len;
    let sealed = seal(&file, tmp, end, &[entry], true, inner.format.version)?;
    // Everything written before this record must be on disk before it is:
    // otherwise a machine crash could keep the streamed value and lose
    // earlier writes, a state that never existed.
    crate::durability::sync_now(inner)?;
    let path = file_path(&inner.dir, id);
    fs::rename(tmp, &path).map_err(|e| WriteError::io("renaming", tmp, e))?;
    sync_dir(&inner.dir).map_err(|e| WriteError::io("syncing directory", &inner.dir, e))?;
    // NOTE: sealed length < 4 GiB fits usize.
    let mapped = MappedFile::map(
        file,
        sealed as usize,
        path.clone(),
        id,
        inner.opts.huge_pages,
    )
    .map_err(|e| WriteError::io("mapping", &path, e))?;
    mapped.records_end.store(end as u64, Ordering::Relaxed);
    mapped.min_seq.store(seq, Ordering::Relaxed);
    mapped.max_seq.store(seq, Ordering::Relaxed);
    mapped.sealed.store(true, Ordering::Relaxed);
    inner.files.write().insert(Arc::new(mapped));
    let c = &inner.counters;
    c.files.fetch_add(1, Ordering::Relaxed);
    c.syncs.fetch_add(1, Ordering::Relaxed);
    c.bytes_written.fetch_add(rec_len as u64, Ordering::Relaxed);
    Ok((seq, index::pack(id, FILE_HEADER_LEN as u64), rec_len as u64))
}

impl Drop for ValueWriter {
    fn drop(&mut self) {
        if let Target::File { tmp, file, .. } = &mut self.target {
            if file.take().is_some() {
                // Abandoned: nothing was published; give the space back.
                let _ = fs::remove_file(tmp.as_path());
            }
        }
    }
}
