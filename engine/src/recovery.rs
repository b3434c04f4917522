//! Opening a data directory: load every HSTable, scan the ones without a
//! valid footer, rebuild the index.
//!
//! Rules (also in FORMAT.md):
//!
//! * A file with a valid footer and index checksum loads from its index
//!   alone; its values are never read.
//! * A file without one (the active file at a crash, or a crash while
//!   sealing) is scanned record by record from the header, every checksum
//!   verified. A record that fails is skipped if a valid record follows it
//!   (found after the failed record's whole extent when its header is
//!   plausible, so a record forged inside a value is never found; byte by
//!   byte only past a garbage header): it is counted in
//!   `bad_records` and logged with file and offset, and never served. If
//!   nothing valid follows, it is the torn tail: the file is cut there.
//!   The scanned file is then sealed (index + footer + fdatasync), so the
//!   next open loads it from its footer.
//! * A file shorter than its header is a torn creation and is deleted; so is
//!   a scanned file with no records, and a file whose header never reached
//!   the disk (zeros, or part of the header then zeros: a power cut after
//!   the preallocation of a spare) if nothing but zeros follows. If records
//!   follow such a header, the header is rewritten and the file scanned.
//! * Records are replayed in sequence order (file order, re-sorted by
//!   sequence number when compaction outputs hold older records than files
//!   before them): a Put replaces the key's older version, a Delete removes
//!   it, a Clear empties the index. A record present twice (a crash between
//!   a compaction's rename and its unlink) is the same version twice.
//! * `*.compacting` files are unfinished compaction outputs, `*.streaming`
//!   files uncommitted streamed values: deleted.
//! * After a crash (some file had to be scanned) sequence numbers continue
//!   2^32 past the highest one recovered, so the number of a write lost
//!   with the torn tail (a CAS value a client may hold) is never reused.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use tracing::{info, warn};

use crate::error::OpenError;
use crate::format::{self, FileHeaderError, IndexEntry, RecordKind, StoreFormat, FILE_HEADER_LEN};
use crate::hstable::MappedFile;
use crate::hstable::{file_path, read_sealed_index, scan, seal, sync_dir, FileTable};
use crate::index::{self, Index};
use crate::options::Options;

/// How far sequence numbers jump after recovering from a crash.
const SEQ_GAP_AFTER_CRASH: u64 = 1 << 32;

pub(crate) struct Recovered {
    /// Files by id (index = id); the vector ends with the highest id.
    pub files: FileTable,
    pub index: Index,
    pub live_bytes: u64,
    pub dead_bytes: u64,
    pub bad_records: u64,
    pub truncated_bytes: u64,
    pub last_seq: u64,
    /// Some file had to be scanned: the engine stopped without closing.
    pub scanned: bool,
    /// The store's format version and key-hash seed.
    pub format: StoreFormat,
}

pub(crate) fn recover(dir: &Path, opts: &Options) -> Result<Recovered, OpenError> {
    let crate::inspect::Listing {
        mut ids,
        temps,
        obsolete_lists: lists,
    } = crate::inspect::list(dir)?;
    let mut removed_temp = false;
    for p in temps {
        info!(
            file = %p.display(),
            "deleting an unfinished compaction output or streamed value"
        );
        fs::remove_file(&p).map_err(|e| OpenError::io("removing", &p, e))?;
        removed_temp = true;
    }
    // Compactions whose old files were not all unlinked: finish them. The
    // list was written after the outputs and the active file were synced,
    // so nothing in those files is still needed.
    for list in lists {
        let bytes = fs::read(&list).map_err(|e| OpenError::io("reading", &list, e))?;
        match format::decode_obsolete(&bytes) {
            Some(old) => {
                for id in old {
                    let path = file_path(dir, id);
                    match fs::remove_file(&path) {
                        Ok(()) => {
                            info!(file = %path.display(), "deleting a file an unfinished compaction replaced");
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(OpenError::io("removing a compacted file", &path, e)),
                    }
                    ids.retain(|&i| i != id);
                }
            }
            // Torn: written by a crash before any unlink it was to cover.
            None => warn!(file = %list.display(), "ignoring a torn list of compacted files"),
        }
        fs::remove_file(&list).map_err(|e| OpenError::io("removing", &list, e))?;
        removed_temp = true;
    }
    ids.sort_unstable();
    if removed_temp {
        sync_dir(dir).map_err(|e| OpenError::io("syncing directory", dir, e))?;
    }
    let format = store_format(dir, !ids.is_empty(), true)?;

    let mut rec = Recovered {
        files: FileTable::default(),
        index: Index::default(),
        live_bytes: 0,
        dead_bytes: 0,
        bad_records: 0,
        truncated_bytes: 0,
        last_seq: 0,
        scanned: false,
        format,
    };
    let mut loaded: Vec<(u32, Vec<IndexEntry>)> = Vec::new();
    for id in ids {
        if let Some((file, entries)) = load_file(dir, id, opts, &mut rec)? {
            rec.files.insert(file);
            loaded.push((id, entries));
        }
    }

    let files = &rec.files;
    for (id, entries) in &loaded {
        let Some(f) = files.get(*id) else {
            continue;
        };
        let min = entries.iter().map(|e| e.seq).min().unwrap_or(u64::MAX);
        let end = entries
            .iter()
            .map(|e| u64::from(e.offset) + u64::from(e.len))
            .max()
            .unwrap_or(FILE_HEADER_LEN as u64);
        f.min_seq.store(min, std::sync::atomic::Ordering::Relaxed);
        let max = entries.iter().map(|e| e.seq).max().unwrap_or(0);
        f.max_seq.store(max, std::sync::atomic::Ordering::Relaxed);
        f.records_end
            .store(end, std::sync::atomic::Ordering::Relaxed);
    }
    // Replay in sequence order: file order is sequence order unless a
    // compaction output (a newer file id) holds older records.
    let mut order: Vec<(u64, u32, u32)> = Vec::new();
    let mut sorted = true;
    let mut prev = 0u64;
    for (id, entries) in &loaded {
        for (i, e) in entries.iter().enumerate() {
            sorted &= e.seq >= prev;
            prev = e.seq;
            // NOTE: a file holds far fewer than 2^32 records.
            order.push((e.seq, *id, i as u32));
        }
    }
    if !sorted {
        // Stable: two copies of one record (same seq) keep file order.
        order.sort_by_key(|&(seq, _, _)| seq);
    }
    let by_id: std::collections::HashMap<u32, &Vec<IndexEntry>> =
        loaded.iter().map(|(id, e)| (*id, e)).collect();
    let (mut live, mut dead) = (0u64, 0u64);
    for &(_, id, i) in &order {
        let e = &by_id[&id][i as usize];
        rec.last_seq = rec.last_seq.max(e.seq);
        let loc = index::pack(id, u64::from(e.offset));
        let same = |l: u64| match (files.key_at(l), files.key_at(loc)) {
            (Some((a, _)), Some((b, _))) => a == b,
            _ => false,
        };
        let own = || {
            if let Some(f) = files.get(id) {
                f.dead
                    .fetch_add(u64::from(e.len), std::sync::atomic::Ordering::Relaxed);
            }
        };
        match e.kind {
            RecordKind::Put => {
                live += u64::from(e.len);
                if let Some(old) = rec.index.write(e.hash).insert(e.hash, loc, same) {
                    let ol = files.kill_at(old);
                    // A corrupt header can claim another length than
                    // the index entry counted.
                    live = live.saturating_sub(ol);
                    dead += ol;
                }
            }
            RecordKind::Delete => {
                dead += u64::from(e.len);
                own();
                if let Some(old) = rec.index.write(e.hash).remove(e.hash, same) {
                    let ol = files.kill_at(old);
                    // A corrupt header can claim another length than
                    // the index entry counted.
                    live = live.saturating_sub(ol);
                    dead += ol;
                }
            }
            RecordKind::Clear => {
                rec.index.for_each(|_, l| {
                    files.kill_at(l);
                });
                rec.index.clear();
                dead += live + u64::from(e.len);
                own();
                live = 0;
            }
        }
    }
    rec.live_bytes = live;
    rec.dead_bytes = dead;
    if rec.scanned && rec.last_seq > 0 {
        // After a crash, writes that readers saw (and whose sequence numbers
        // clients may hold as CAS values) can be lost with the torn tail.
        // Skip far ahead so such a number is never handed out again.
        rec.last_seq = rec
            .last_seq
            .saturating_add(SEQ_GAP_AFTER_CRASH)
            .min(format::MAX_SEQ);
    }
    Ok(rec)
}

/// A loaded HSTable and its records' index entries in file order.
type LoadedFile = (Arc<MappedFile>, Vec<IndexEntry>);

/// Loads one HSTable: from its footer if valid, else by scanning and sealing
/// it. `None` if the file was empty and has been deleted.
fn load_file(
    dir: &Path,
    id: u32,
    opts: &Options,
    rec: &mut Recovered,
) -> Result<Option<LoadedFile>, OpenError> {
    let path = file_path(dir, id);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| OpenError::io("opening", &path, e))?;
    let len = file
        .metadata()
        .map_err(|e| OpenError::io("reading metadata of", &path, e))?
        .len();
    let mut header = [0u8; FILE_HEADER_LEN];
    let mut header_lost = false;
    if len < FILE_HEADER_LEN as u64 || file.read_exact_at(&mut header, 0).is_err() {
        warn!(file = %path.display(), len, "deleting a torn HSTable shorter than its header");
        drop(file);
        fs::remove_file(&path).map_err(|e| OpenError::io("removing", &path, e))?;
        sync_dir(dir).map_err(|e| OpenError::io("syncing directory", dir, e))?;
        return Ok(None);
    }
    match format::decode_file_header_version(&header) {
        Ok((found, version)) if found == id => {
            // Sealed indexes hold hashes with the store's seed: a file of
            // the other kind would be looked up with the wrong one.
            if (version >= 3) != (rec.format.version >= 3) {
                return Err(OpenError::Corrupt {
                    file: path,
                    offset: 8,
                    reason: if version >= 3 {
                        format!(
                            "format version {version} needs the store's key-hash seed, \
                             but the directory has no valid {SEED_FILE} file"
                        )
                    } else {
                        format!(
                            "format version {version} in a store of version {}, \
                             whose keys hash with its own seed",
                            rec.format.version
                        )
                    },
                });
            }
        }
        // A power cut after a file's creation can leave its size (the
        // preallocation is metadata, journalled) without its header (a data
        // write nobody synced yet): zeros, or part of the header and then
        // zeros. Anything else is corruption or someone else's file.
        _ if is_unwritten_header(&header, id) => {
            if is_zero_tail(&file, FILE_HEADER_LEN as u64, len) {
                info!(
                    file = %path.display(),
                    len,
                    "deleting an HSTable whose header never reached the disk; it holds no record"
                );
                drop(file);
                fs::remove_file(&path).map_err(|e| OpenError::io("removing", &path, e))?;
                sync_dir(dir).map_err(|e| OpenError::io("syncing directory", dir, e))?;
                return Ok(None);
            }
            // Records reached the disk but the header's page did not (a
            // durability that does not sync every write): give the file its
            // header back and let the scan below verify every record.
            warn!(
                file = %path.display(),
                "rewriting an HSTable header that never reached the disk; scanning the file"
            );
            file.write_all_at(&format::encode_file_header(id, rec.format.version), 0)
                .map_err(|e| OpenError::io("rewriting the header of", &path, e))?;
            // The first records shared the header's page: a footer, if any,
            // may point at them, so verify every record instead.
            header_lost = true;
        }
        Ok((found, _)) => {
            return Err(OpenError::Corrupt {
                file: path,
                offset: 12,
                reason: format!("header says file id {found}"),
            })
        }
        Err(FileHeaderError::Version(version)) => {
            return Err(OpenError::UnsupportedVersion {
                file: path,
                version,
                supported: format::FORMAT_VERSION,
            })
        }
        Err(FileHeaderError::BadMagic) | Err(FileHeaderError::Truncated) => {
            return Err(OpenError::Corrupt {
                file: path,
                offset: 0,
                reason: "bad magic".into(),
            });
        }
    }

    if let Some(entries) = read_sealed_index(&file, len).filter(|_| !header_lost) {
        // NOTE: len fits usize on 64-bit targets.
        let mapped = MappedFile::map(file, len as usize, path.clone(), id, opts.huge_pages)
            .map_err(|e| OpenError::io("mapping", &path, e))?;
        mapped
            .sealed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        return Ok(Some((Arc::new(mapped), entries)));
    }

    // No valid footer: scan.
    let mapped = MappedFile::map(file, len as usize, path.clone(), id, opts.huge_pages)
        .map_err(|e| OpenError::io("mapping", &path, e))?;
    let (entries, data_end, bad) = scan(&mapped, &path, rec.format);
    rec.scanned = true;
    rec.bad_records += bad;
    let cut = len as usize - data_end;
    let file = mapped
        .file()
        .try_clone()
        .map_err(|e| OpenError::io("opening", &path, e))?;
    // Unmap before shrinking the file (hstable/map.rs, invariant 1).
    drop(mapped);
    if entries.is_empty() && bad == 0 {
        info!(file = %path.display(), "deleting an HSTable without records");
        drop(file);
        fs::remove_file(&path).map_err(|e| OpenError::io("removing", &path, e))?;
        sync_dir(dir).map_err(|e| OpenError::io("syncing directory", dir, e))?;
        return Ok(None);
    }
    let trailing_zeros = is_zero_tail(&file, data_end as u64, len);
    if !trailing_zeros {
        rec.truncated_bytes += cut as u64;
        warn!(file = %path.display(), offset = data_end, bytes = cut, "truncating a torn tail");
    }
    let sealed_len = seal(&file, &path, data_end, &entries, true, rec.format.version)?;
    info!(
        file = %path.display(),
        records = entries.len(),
        bad_records = bad,
        "recovered an unsealed HSTable by scanning it"
    );
    let mapped = MappedFile::map(file, sealed_len as usize, path.clone(), id, opts.huge_pages)
        .map_err(|e| OpenError::io("mapping", &path, e))?;
    mapped
        .sealed
        .store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(Some((Arc::new(mapped), entries)))
}

/// Name of the file with a version 3 store's key-hash seed.
pub(crate) const SEED_FILE: &str = "SEED";

/// The format of the store in `dir`: from its `SEED` file; without one, a
/// store made before version 3 if it has HSTables (`has_files`), else a
/// new store, whose seed is made (random, from the OS) and written, synced
/// with the directory, before any HSTable exists (when `create`).
pub(crate) fn store_format(
    dir: &Path,
    has_files: bool,
    create: bool,
) -> Result<StoreFormat, OpenError> {
    let path = dir.join(SEED_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            if let Some(seed) = format::decode_seed(&bytes) {
                return Ok(StoreFormat {
                    version: format::FORMAT_VERSION,
                    seed,
                });
            }
            if has_files {
                return Err(OpenError::Corrupt {
                    file: path,
                    offset: 0,
                    reason: "not a valid key-hash seed, and HSTables need it".into(),
                });
            }
            // Torn by a crash while the store was created: made again.
            warn!(file = %path.display(), "replacing a torn seed file of a store without HSTables");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if has_files {
                return Ok(StoreFormat::LEGACY);
            }
        }
        Err(e) => return Err(OpenError::io("reading", &path, e)),
    }
    if !create {
        return Ok(StoreFormat::LEGACY);
    }
    let mut seed = [0u8; 8];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
        .map_err(|e| OpenError::io("reading a random seed from", "/dev/urandom", e))?;
    let seed = u64::from_le_bytes(seed);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| OpenError::io("creating", &path, e))?;
    file.write_all_at(&format::encode_seed(seed), 0)
        .and_then(|()| file.sync_all())
        .map_err(|e| OpenError::io("writing", &path, e))?;
    sync_dir(dir).map_err(|e| OpenError::io("syncing directory", dir, e))?;
    Ok(StoreFormat {
        version: format::FORMAT_VERSION,
        seed,
    })
}

/// Whether `header` is what an unsynced creation of HSTable `id` can leave
/// after a power cut: every byte either zero or the byte this file's header
/// (of any version this build reads) has there.
fn is_unwritten_header(header: &[u8; FILE_HEADER_LEN], id: u32) -> bool {
    (format::MIN_FORMAT_VERSION..=format::FORMAT_VERSION).any(|version| {
        let want = format::encode_file_header(id, version);
        header.iter().zip(want).all(|(&b, w)| b == 0 || b == w)
    })
}

/// Whether `from..to` of the file is all zeros (preallocated, never written):
/// cutting it is not a torn tail worth reporting.
fn is_zero_tail(file: &std::fs::File, from: u64, to: u64) -> bool {
    let mut buf = vec![0u8; 1 << 16];
    let mut pos = from;
    while pos < to {
        let n = ((to - pos) as usize).min(buf.len());
        if file.read_exact_at(&mut buf[..n], pos).is_err() {
            return false;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return false;
        }
        pos += n as u64;
    }
    true
}
