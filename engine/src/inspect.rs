//! Offline checks of a data directory for `kvtool verify`: every record's
//! checksum, every sealed file's index and footer, read with plain file I/O
//! and without changing a byte (unlike opening the engine, which recovers).
//!
//! The directory lock is taken for the duration, so a running engine and a
//! verify never overlap.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::OpenError;
use crate::format::{
    self, FileHeaderError, Footer, RecordKind, FILE_HEADER_LEN, FOOTER_LEN, FOOTER_MAGIC,
    RECORD_HEADER_LEN,
};
use crate::hstable::file_path;

/// A problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub offset: u64,
    pub what: String,
}

/// What verify found in one HSTable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub path: PathBuf,
    pub id: u32,
    pub len: u64,
    /// Records whose checksum verifies.
    pub records: u64,
    /// Whether the file ends with a valid index and footer.
    pub sealed: bool,
}

/// The result of [`verify_dir`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub files: Vec<FileReport>,
    /// Corruption: bad records, bad index entries, bad footers.
    pub problems: Vec<Problem>,
    /// Not corruption: unsealed files (a crash; the next open recovers them)
    /// and unfinished compaction outputs (the next open deletes them).
    pub notes: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn records(&self) -> u64 {
        self.files.iter().map(|f| f.records).sum()
    }
}

/// What a data directory holds, by kind of file: what open recovers from
/// and what `kvtool verify` checks, listed by one function for both.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// HSTable ids, sorted.
    pub ids: Vec<u32>,
    /// Unfinished compaction outputs and uncommitted streamed values.
    pub temps: Vec<PathBuf>,
    /// Lists of compacted files (`NNNNNNNN.obsolete`), sorted.
    pub obsolete_lists: Vec<PathBuf>,
}

/// Lists `dir`. A file id past what the index can address is an error: its
/// locations would alias another file's.
pub(crate) fn list(dir: &Path) -> Result<Listing, OpenError> {
    let mut l = Listing::default();
    for entry in fs::read_dir(dir).map_err(|e| OpenError::io("listing", dir, e))? {
        let entry = entry.map_err(|e| OpenError::io("listing", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(crate::compaction::TEMP_SUFFIX)
            || name.ends_with(crate::write::stream::TEMP_SUFFIX)
        {
            l.temps.push(entry.path());
        } else if name.ends_with(crate::compaction::OBSOLETE_SUFFIX) {
            l.obsolete_lists.push(entry.path());
        } else if let Some(id) = name
            .strip_suffix(".hst")
            .and_then(|n| n.parse::<u32>().ok())
        {
            if file_path(dir, id).file_name() != Some(entry.file_name().as_os_str()) {
                continue;
            }
            if id > crate::index::MAX_FILE_ID {
                return Err(OpenError::Corrupt {
                    file: entry.path(),
                    offset: 12,
                    reason: format!(
                        "file id {id} is past the largest this format can address ({})",
                        crate::index::MAX_FILE_ID
                    ),
                });
            }
            l.ids.push(id);
        }
    }
    l.ids.sort_unstable();
    l.obsolete_lists.sort();
    Ok(l)
}

/// Takes the directory lock, or says who holds it.
pub fn lock_dir(dir: &Path) -> Result<File, OpenError> {
    if !dir.is_dir() {
        return Err(OpenError::io(
            "opening",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
        ));
    }
    let path = dir.join("LOCK");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| OpenError::io("opening", &path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(OpenError::io("locking", &path, e)),
    }
}

/// Verifies every HSTable of `dir`. Errors only for what stops the check
/// (missing or locked directory, unreadable file, unknown format version);
/// corruption is in the report.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, OpenError> {
    let _lock = lock_dir(dir)?;
    let Listing {
        mut ids,
        temps,
        obsolete_lists,
    } = list(dir)?;
    let store = crate::recovery::store_format(dir, !ids.is_empty(), false)?;
    let mut report = VerifyReport::default();
    let note = |file: PathBuf, what: &str| Problem {
        file,
        offset: 0,
        what: what.into(),
    };
    for t in temps {
        report.notes.push(note(
            t,
            "unfinished compaction output or uncommitted streamed value; the next open deletes it",
        ));
    }
    // A compaction that crashed between its list and its unlinks: the
    // files it names are replaced (their live records are in its outputs)
    // and not part of the store, whatever their state.
    for list in obsolete_lists {
        let bytes = fs::read(&list).map_err(|e| OpenError::io("reading", &list, e))?;
        match format::decode_obsolete(&bytes) {
            Some(replaced) => {
                for id in replaced {
                    if let Ok(at) = ids.binary_search(&id) {
                        ids.remove(at);
                        report.notes.push(note(
                            file_path(dir, id),
                            "replaced by a compaction; the next open deletes it",
                        ));
                    }
                }
            }
            None => report.notes.push(note(
                list.clone(),
                "torn list of compacted files (written by a crash before any unlink); the next open ignores it",
            )),
        }
    }
    for id in ids {
        verify_file(&file_path(dir, id), id, store, &mut report)?;
    }
    Ok(report)
}

fn verify_file(
    path: &Path,
    id: u32,
    store: format::StoreFormat,
    report: &mut VerifyReport,
) -> Result<(), OpenError> {
    let bytes = fs::read(path).map_err(|e| OpenError::io("reading", path, e))?;
    let len = bytes.len() as u64;
    let problem = |offset: u64, what: String| Problem {
        file: path.to_path_buf(),
        offset,
        what,
    };
    match format::decode_file_header(&bytes) {
        Ok(found) if found == id => {}
        Ok(found) => report
            .problems
            .push(problem(12, format!("header says file id {found}"))),
        Err(FileHeaderError::Version(version)) => {
            return Err(OpenError::UnsupportedVersion {
                file: path.to_path_buf(),
                version,
                supported: format::FORMAT_VERSION,
            })
        }
        Err(e) => {
            report
                .problems
                .push(problem(0, format!("not an HSTable header ({e:?})")));
            report.files.push(FileReport {
                path: path.to_path_buf(),
                id,
                len,
                records: 0,
                sealed: false,
            });
            return Ok(());
        }
    }
    let file = File::open(path).map_err(|e| OpenError::io("opening", path, e))?;
    let sealed = crate::hstable::read_sealed_index(&file, len);
    let data_end = match &sealed {
        Some(_) => {
            let mut fb = [0u8; FOOTER_LEN];
            file.read_exact_at(&mut fb, len - FOOTER_LEN as u64)
                .map_err(|e| OpenError::io("reading", path, e))?;
            Footer::decode(&fb).map_or(len as usize, |f| f.index_offset as usize)
        }
        None => bytes.len(),
    };

    // Walk the records.
    let mut records = 0u64;
    let mut walked = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    while pos + RECORD_HEADER_LEN <= data_end {
        match format::decode_record(&bytes[pos..data_end]) {
            Ok(r) => {
                records += 1;
                walked.push((pos as u32, r.header.record_len() as u32, r.header.seq));
                pos += r.header.record_len();
            }
            Err(e) => {
                if sealed.is_none() && bytes[pos..].iter().all(|&b| b == 0) {
                    break; // preallocated, never written
                }
                match crate::hstable::next_valid(&bytes[..data_end], pos + 1) {
                    Some(next) => {
                        report.problems.push(problem(
                            pos as u64,
                            format!("bad record ({e}); {} bytes skipped", next - pos),
                        ));
                        pos = next;
                    }
                    None => {
                        let tail_zero = bytes[pos..].iter().all(|&b| b == 0);
                        if sealed.is_some() || !tail_zero {
                            report.problems.push(problem(
                                pos as u64,
                                format!(
                                    "bad record ({e}); {} bytes up to the {} are unreadable",
                                    data_end - pos,
                                    if sealed.is_some() {
                                        "index"
                                    } else {
                                        "end of the file"
                                    }
                                ),
                            ));
                        }
                        break;
                    }
                }
            }
        }
    }

    match &sealed {
        Some(entries) => {
            // The index must describe exactly the records walked.
            let listed: Vec<(u32, u32, u64)> =
                entries.iter().map(|e| (e.offset, e.len, e.seq)).collect();
            if listed != walked {
                report.problems.push(problem(
                    data_end as u64,
                    format!(
                        "the index lists {} records, the file holds {} valid ones",
                        listed.len(),
                        walked.len()
                    ),
                ));
            }
            for e in entries {
                if e.kind != RecordKind::Clear {
                    let at = e.offset as usize;
                    if let Ok(r) = format::decode_record(&bytes[at..data_end]) {
                        if store.hash(r.key) != e.hash || r.header.kind != e.kind {
                            report.problems.push(problem(
                                at as u64,
                                "index entry does not match its record".into(),
                            ));
                        }
                    }
                }
            }
        }
        None => {
            let ends_like_footer = len >= FOOTER_LEN as u64
                && bytes[bytes.len() - 16..bytes.len() - 8] == FOOTER_MAGIC;
            let zero_tail = bytes[pos.min(bytes.len())..].iter().all(|&b| b == 0);
            if ends_like_footer || !zero_tail {
                report.problems.push(problem(
                    len.saturating_sub(FOOTER_LEN as u64),
                    "index or footer corrupt (checksum, magic or lengths do not verify)".into(),
                ));
            } else {
                report.notes.push(problem(
                    pos as u64,
                    "not sealed (the engine stopped without closing); the next open scans and seals it"
                        .into(),
                ));
            }
        }
    }
    report.files.push(FileReport {
        path: path.to_path_buf(),
        id,
        len,
        records,
        sealed: sealed.is_some(),
    });
    Ok(())
}
