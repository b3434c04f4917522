//! The HSTable: one data file of records, then (once sealed) its index
//! and footer (byte layout in FORMAT.md). This module owns what is known
//! about such a file: its name, creating one preallocated and mapped,
//! sealing one, reading a sealed one's index back, scanning an unsealed
//! one, and the [`FileTable`] of every open HSTable by id; and the map
//! itself, [`MappedFile`] with the active file's write handle
//! [`ActiveFile`] (`map.rs`, where the `unsafe` is).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::warn;

use crate::error::WriteError;
use crate::format::{
    self, Footer, IndexEntry, RecordHeader, RecordKind, StoreFormat, FILE_HEADER_LEN, FOOTER_LEN,
    INDEX_ENTRY_LEN, RECORD_HEADER_LEN,
};
use crate::index;
pub(crate) mod map;

pub(crate) use map::{ActiveFile, MappedFile};

/// Every open HSTable by id: a location's file id indexes it. Ids are
/// dense from 1 (0 is never used), so a vector with holes for files gone.
#[derive(Default)]
pub(crate) struct FileTable {
    files: Vec<Option<Arc<MappedFile>>>,
}

impl FileTable {
    /// Puts `file` in at its id, growing the table as needed (replaces a
    /// file of the same id).
    pub fn insert(&mut self, file: Arc<MappedFile>) {
        let id = file.id() as usize;
        if self.files.len() <= id {
            self.files.resize(id + 1, None);
        }
        self.files[id] = Some(file);
    }

    /// Takes file `id` out of the table.
    pub fn remove(&mut self, id: u32) -> Option<Arc<MappedFile>> {
        self.files.get_mut(id as usize)?.take()
    }

    #[inline]
    pub fn get(&self, id: u32) -> Option<&Arc<MappedFile>> {
        self.files.get(id as usize)?.as_ref()
    }

    /// The open files in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<MappedFile>> {
        self.files.iter().flatten()
    }

    /// One past the highest id the table has room for (the id a new file
    /// after every file in the table gets).
    pub fn end_id(&self) -> u32 {
        // NOTE: ids are at most index::MAX_FILE_ID (24 bits).
        self.files.len() as u32
    }

    /// The file and offset of a location, if the file exists.
    #[inline]
    pub fn file_of(&self, loc: u64) -> Option<(&Arc<MappedFile>, usize)> {
        let (id, off) = index::unpack(loc);
        self.get(id).map(|f| (f, off))
    }

    /// The key and header of the record at `loc`, unverified.
    #[inline]
    pub fn key_at(&self, loc: u64) -> Option<(&[u8], RecordHeader)> {
        let (f, off) = self.file_of(loc)?;
        let h = RecordHeader::decode(f.get(off, RECORD_HEADER_LEN)?).ok()?;
        Some((f.get(off + RECORD_HEADER_LEN, h.key_len as usize)?, h))
    }

    /// Bytes of the record at `loc` (0 if it cannot be read).
    #[inline]
    pub fn len_at(&self, loc: u64) -> u64 {
        self.key_at(loc).map_or(0, |(_, h)| h.record_len() as u64)
    }

    /// Counts every record so far as dead (a Clear record was written; it
    /// is dead too).
    pub fn kill_all(&self) {
        for f in self.iter() {
            let end = f.records_end.load(Ordering::Relaxed);
            f.dead.store(
                end.saturating_sub(FILE_HEADER_LEN as u64),
                Ordering::Relaxed,
            );
        }
    }

    /// Counts the record at `loc` as dead in its file; returns its bytes.
    #[inline]
    pub fn kill_at(&self, loc: u64) -> u64 {
        let len = self.len_at(loc);
        if let Some((f, _)) = self.file_of(loc) {
            f.dead.fetch_add(len, Ordering::Relaxed);
        }
        len
    }
}

pub(crate) fn file_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.hst"))
}

/// fsync of the directory, so created, renamed or deleted names persist.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The length of a sealed file whose records end at `data_end`.
pub(crate) fn sealed_len(data_end: usize, entries: usize) -> usize {
    data_end + entries * INDEX_ENTRY_LEN + FOOTER_LEN
}

/// Seals an HSTable: writes its index and footer after the records, cuts the
/// file there, and syncs it. Returns the sealed length.
///
/// Without `sync` (durability `none`) the kernel writes the file back when it
/// likes; a machine crash may then lose it, as it may lose anything under `none`.
pub(crate) fn seal(
    file: &File,
    path: &Path,
    data_end: usize,
    entries: &[IndexEntry],
    sync: bool,
    version: u32,
) -> Result<u64, WriteError> {
    let mut buf = Vec::with_capacity(entries.len() * INDEX_ENTRY_LEN + FOOTER_LEN);
    for e in entries {
        e.encode(&mut buf);
    }
    let footer = format::Footer {
        index_offset: data_end as u64,
        entry_count: entries.len() as u64,
        index_crc: crc32fast::hash(&buf),
        version,
    };
    buf.extend_from_slice(&footer.encode());
    let end = (data_end + buf.len()) as u64;
    file.write_all_at(&buf, data_end as u64)
        .map_err(|e| WriteError::io("writing the index of", path, e))?;
    // Shrinking under a live map is safe: see map.rs, invariant 1.
    file.set_len(end)
        .map_err(|e| WriteError::io("truncating", path, e))?;
    if sync {
        file.sync_data()
            .map_err(|e| WriteError::io("syncing", path, e))?;
    }
    Ok(end)
}

/// Creates HSTable `id` preallocated to `capacity` bytes and maps it;
/// returns its write handle.
pub(crate) fn create_file(
    dir: &Path,
    id: u32,
    capacity: usize,
    huge_pages: bool,
    version: u32,
) -> Result<ActiveFile, WriteError> {
    let path = file_path(dir, id);
    let result = (|| {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| WriteError::io("creating", &path, e))?;
        file.write_all_at(&format::encode_file_header(id, version), 0)
            .map_err(|e| WriteError::io("writing the header of", &path, e))?;
        map::preallocate(&file, capacity as u64)
            .map_err(|e| WriteError::io("preallocating", &path, e))?;
        let mapped = MappedFile::map_for_append(
            file,
            capacity,
            path.clone(),
            id,
            huge_pages,
            FILE_HEADER_LEN,
        )
        .map_err(|e| WriteError::io("mapping", &path, e))?;
        mapped
            .records_end
            .store(FILE_HEADER_LEN as u64, Ordering::Relaxed);
        sync_dir(dir).map_err(|e| WriteError::io("syncing directory", dir, e))?;
        Ok(mapped)
    })();
    if result.is_err() {
        // Leave no half-made file behind (e.g. after ENOSPC); recovery would
        // cope, but a full disk should not also fill up with empty files.
        let _ = fs::remove_file(&path);
    }
    result
}

/// The entries of a sealed file, if its footer and index verify.
pub(crate) fn read_sealed_index(file: &std::fs::File, len: u64) -> Option<Vec<IndexEntry>> {
    if len < (FILE_HEADER_LEN + FOOTER_LEN) as u64 {
        return None;
    }
    let mut fb = [0u8; FOOTER_LEN];
    file.read_exact_at(&mut fb, len - FOOTER_LEN as u64).ok()?;
    let footer = Footer::decode(&fb)?;
    let index_len = footer.entry_count.checked_mul(INDEX_ENTRY_LEN as u64)?;
    if footer.index_offset < FILE_HEADER_LEN as u64
        || footer
            .index_offset
            .checked_add(index_len)?
            .checked_add(FOOTER_LEN as u64)?
            != len
    {
        return None;
    }
    let mut ib = vec![0u8; usize::try_from(index_len).ok()?];
    file.read_exact_at(&mut ib, footer.index_offset).ok()?;
    if crc32fast::hash(&ib) != footer.index_crc {
        return None;
    }
    let mut entries = Vec::with_capacity(ib.len() / INDEX_ENTRY_LEN);
    for chunk in ib.chunks_exact(INDEX_ENTRY_LEN) {
        let e = IndexEntry::decode(chunk).ok()?;
        let end = u64::from(e.offset) + u64::from(e.len);
        if u64::from(e.offset) < FILE_HEADER_LEN as u64
            || end > footer.index_offset
            || !(1..=format::MAX_SEQ).contains(&e.seq)
        {
            return None;
        }
        entries.push(e);
    }
    Some(entries)
}

/// Scans records from the file header on. Returns the valid records, where
/// the valid data ends, and how many corrupt stretches were skipped.
pub(crate) fn scan(
    f: &MappedFile,
    path: &Path,
    store: StoreFormat,
) -> (Vec<IndexEntry>, usize, u64) {
    let len = f.map_len();
    let all = f.bytes(0, len);
    let mut entries = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    let mut bad = 0u64;
    while pos + RECORD_HEADER_LEN <= len {
        match format::decode_record(&all[pos..]) {
            Ok(r) => {
                let rl = r.header.record_len();
                // NOTE: files are < 4 GiB (MAX_FILE_SIZE + one record), so u32 holds offsets.
                entries.push(IndexEntry {
                    hash: if r.header.kind == RecordKind::Clear {
                        0
                    } else {
                        store.hash(r.key)
                    },
                    seq: r.header.seq,
                    offset: pos as u32,
                    len: rl as u32,
                    kind: r.header.kind,
                });
                pos += rl;
            }
            Err(e) => match resync_from(all, pos) {
                Some(next) => {
                    bad += 1;
                    warn!(
                        file = %path.display(),
                        offset = pos,
                        bytes = next - pos,
                        error = %e,
                        "skipping a corrupt record; it will not be served"
                    );
                    pos = next;
                }
                None => return (entries, pos, bad),
            },
        }
    }
    (entries, pos.min(len), bad)
}

/// Where the scan goes on after the record at `pos` failed: the next valid
/// record that cannot lie inside the failed one's body, or `None` if the
/// failed record is the torn tail.
///
/// A record's body is a client's key and value, which may hold bytes that
/// form a well-formed record (a forged Put, a Clear, a huge sequence
/// number). When the failed record's header is plausible (a known kind and
/// encoding, possible lengths) its lengths are trusted: the search starts
/// after its whole extent, and a record whose extent runs past the end of
/// the file is the torn tail (a power cut or crash cut it short). Only a
/// header that is itself garbage makes the search go byte by byte.
/// Failed records back to back with plausible headers are skipped whole, one
/// after the other.
fn resync_from(all: &[u8], pos: usize) -> Option<usize> {
    let mut p = pos;
    loop {
        match RecordHeader::decode(&all[p..]) {
            Ok(h) => {
                let end = p.checked_add(h.record_len())?;
                if end > all.len() {
                    return None;
                }
                if format::decode_record(&all[end..]).is_ok() {
                    return Some(end);
                }
                p = end;
            }
            Err(_) => return next_valid(all, p + 1),
        }
    }
}

/// The first offset at or after `from` where a whole valid record starts.
pub(crate) fn next_valid(all: &[u8], from: usize) -> Option<usize> {
    let mut p = from;
    while p + RECORD_HEADER_LEN <= all.len() {
        // A record's kind byte (offset 4) is never zero: skip zero runs
        // eight bytes at a time.
        let k = p + 4;
        if all[k] == 0 {
            let mut q = k;
            while q + 8 <= all.len() && all[q..q + 8] == [0u8; 8] {
                q += 8;
            }
            while q < all.len() && all[q] == 0 {
                q += 1;
            }
            if q >= all.len() {
                return None;
            }
            p = q - 4;
            continue;
        }
        if matches!(all[k], 1..=3)
            && all[k + 1] <= format::ENCODING_LZ4
            && format::decode_record(&all[p..]).is_ok()
        {
            return Some(p);
        }
        p += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_file(id: u32) -> Arc<MappedFile> {
        MappedFile::placeholder(PathBuf::from(format!("{id:08}.hst")), id, FILE_HEADER_LEN)
            .unwrap()
            .into_mapped()
    }

    #[test]
    fn file_table_grows_to_each_id_and_keeps_holes() {
        let mut t = FileTable::default();
        assert_eq!(t.end_id(), 0);
        t.insert(table_file(3));
        t.insert(table_file(1));
        assert_eq!(t.end_id(), 4);
        assert!(t.get(2).is_none() && t.get(7).is_none());
        assert_eq!(t.iter().map(|f| f.id()).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(t.remove(3).map(|f| f.id()), Some(3));
        assert!(t.remove(3).is_none());
        // Removing leaves the slot: ids are never reused.
        assert_eq!(t.end_id(), 4);
        assert_eq!(t.iter().count(), 1);
    }

    #[test]
    fn a_location_finds_its_file_key_and_length() {
        let id = 2;
        let mut active =
            MappedFile::placeholder(PathBuf::from("00000002.hst"), id, FILE_HEADER_LEN).unwrap();
        let rec = format::encode_record(RecordKind::Put, b"key", b"value", 0, 0, 9);
        let off = active.append(&[&rec]);
        let mut t = FileTable::default();
        t.insert(active.mapped().clone());
        let loc = index::pack(id, off as u64);
        let (key, header) = t.key_at(loc).unwrap();
        assert_eq!((key, header.seq), (&b"key"[..], 9));
        assert_eq!(t.len_at(loc), rec.len() as u64);
        assert_eq!(t.kill_at(loc), rec.len() as u64);
        assert_eq!(
            t.get(id).unwrap().dead.load(Ordering::Relaxed),
            rec.len() as u64
        );
        // A location in a file the table does not have reads as nothing.
        assert!(t.key_at(index::pack(5, off as u64)).is_none());
        assert_eq!(t.kill_at(index::pack(5, off as u64)), 0);
    }

    #[test]
    fn next_valid_skips_garbage_and_zeros() {
        let rec = format::encode_record(RecordKind::Put, b"k", b"v", 0, 0, 1);
        let mut buf = vec![0u8; 100];
        buf.extend_from_slice(&[7u8; 13]);
        buf.extend_from_slice(&[0u8; 50]);
        let at = buf.len();
        buf.extend_from_slice(&rec);
        buf.extend_from_slice(&[0u8; 40]);
        assert_eq!(next_valid(&buf, 1), Some(at));
        assert_eq!(next_valid(&buf, at + 1), None);
    }
}
