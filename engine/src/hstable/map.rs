//! Memory-mapped HSTables and preallocation: one of the two modules with
//! `unsafe` (the other is the index's slot array, `index/slots.rs`).
//!
//! Every HSTable is mapped `MAP_SHARED` for its whole life. The active file
//! is mapped read-write at its preallocated size and records are copied into
//! the map; readers read published records through the same map, so a record
//! is visible the moment its index entry is published. Sealed files are
//! mapped read-write too (the mapping is simply never written again).
//!
//! The invariants that make the raw accesses below sound, upheld by the
//! engine (the write path in `write/`, readers through the index) and
//! stated once here:
//!
//! 1. **No access beyond the file's length.** Accessing a page of a shared
//!    mapping past end-of-file raises SIGBUS. A sealed file keeps the map it
//!    was written through (its preallocated size) but is cut to its sealed
//!    length, so the map is longer than the file: every access is checked
//!    against [`MappedFile::file_len`] (lowered before the file is cut), not
//!    against the map, and a length read from a corrupt record can at worst
//!    fail that check. The active file is
//!    preallocated with `fallocate` to at least the mapped length before it
//!    is mapped, so every byte of its map is backed by allocated disk blocks
//!    (a full disk shows up as ENOSPC from `fallocate` at roll-over, never as
//!    SIGBUS on a write). When a file is sealed it is truncated to
//!    `records + index + footer`, which is never below the end of any record
//!    the index points at; readers only ever touch ranges of records, so
//!    truncation under a live map cannot make a reader fault. Recovery maps
//!    a file at its current length and truncates only after unmapping.
//!    Compaction (which deletes files) only unlinks: the inode and map
//!    live on while any [`std::sync::Arc`] of [`MappedFile`] (held by every
//!    `Value`, snapshot and iterator) exists, and an unlinked file is never
//!    truncated. Compaction outputs are written with `pwrite` and mapped
//!    only once sealed, at their final length.
//! 2. **No data race.** The only way to write into a map is the
//!    [`ActiveFile`] handle, made once per file when it is created (not
//!    `Clone`, owned by the engine's writer behind the writer lock). It
//!    writes only at its tail and moves the tail past what it wrote, so a
//!    byte range is written exactly once, before the record's index entry
//!    is published (under an index `RwLock`, which orders the write before
//!    any reader's read). Readers only read ranges they found through the
//!    index or, in recovery, before any writer exists. Writes therefore
//!    never overlap reads of the same bytes.
//! 3. **No other process writes these files**: the data directory is locked
//!    with `flock` for as long as the engine is open. (Another process that
//!    ignores the lock and truncates a file can still crash us with SIGBUS;
//!    that is the general limit of mmap, documented in the crate docs.)

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

/// An HSTable and its shared mapping.
#[derive(Debug)]
pub struct MappedFile {
    file: File,
    map: MmapRaw,
    /// Bytes of the map the file backs: the map's length until the file is
    /// sealed, then its sealed length. No access goes past it (invariant 1).
    file_len: AtomicUsize,
    path: PathBuf,
    id: u32,
    /// Bytes of this file's records that are dead (overwritten, deleted,
    /// tombstones): compaction picks files by `dead / records_end`.
    pub dead: AtomicU64,
    /// Where this file's records end (the active file: its tail so far).
    pub records_end: AtomicU64,
    /// A lower bound of the sequence numbers in this file (`u64::MAX`:
    /// none yet). Compaction drops a tombstone only when every other file
    /// holds newer records only.
    pub min_seq: AtomicU64,
    /// The highest sequence number in this file (0: none yet). Compaction
    /// keeps the store's highest record, so a reopen never reissues a
    /// sequence number (a CAS value) handed out before.
    pub max_seq: AtomicU64,
    /// The file has its index and footer (always, but for the active file
    /// and a full one the roller has not sealed yet).
    pub sealed: AtomicBool,
    /// Dead bytes compaction had to keep (tombstones an older version in
    /// another file still needs); not counted as garbage when picking files,
    /// so such a file is not rewritten again and again for nothing.
    pub pinned: AtomicU64,
}

impl MappedFile {
    /// Maps `len` bytes of `file`. The caller guarantees the file is at least
    /// `len` bytes long (invariant 1).
    /// With `huge_pages`, the map is advised to use huge page-cache folios
    /// (see [`crate::Options::huge_pages`]).
    pub fn map(
        file: File,
        len: usize,
        path: PathBuf,
        id: u32,
        huge_pages: bool,
    ) -> io::Result<MappedFile> {
        if len == 0 {
            // mmap rejects an empty range; the engine never maps a file
            // shorter than its header.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map an empty file",
            ));
        }
        let map = MmapOptions::new().len(len).map_raw(&file)?;
        if huge_pages {
            // Purely advisory; setups without large folio support ignore it.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Ok(MappedFile {
            file,
            file_len: AtomicUsize::new(map.len()),
            map,
            path,
            id,
            dead: AtomicU64::new(0),
            records_end: AtomicU64::new(0),
            min_seq: AtomicU64::new(u64::MAX),
            max_seq: AtomicU64::new(0),
            pinned: AtomicU64::new(0),
            sealed: AtomicBool::new(false),
        })
    }

    /// A stand-in for the active HSTable when none could be created (a full
    /// disk at open): one page of anonymous shared memory (memfd), not in the
    /// data directory, never written (the engine gives it no room for a
    /// record, so the first write makes a real file or fails).
    pub fn placeholder(path: PathBuf, id: u32, tail: usize) -> io::Result<ActiveFile> {
        // SAFETY: plain syscall; the name is a valid NUL-terminated string
        // that outlives the call.
        let fd = unsafe { libc::memfd_create(c"hstable-placeholder".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by memfd_create and is owned by
        // nothing else.
        let file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        file.set_len(4096)?;
        MappedFile::map_for_append(file, 4096, path, id, false, tail)
    }

    /// Maps a new, preallocated HSTable like [`Self::map`] and returns the
    /// one handle that may write into it, its tail at `tail`.
    pub fn map_for_append(
        file: File,
        len: usize,
        path: PathBuf,
        id: u32,
        huge_pages: bool,
        tail: usize,
    ) -> io::Result<ActiveFile> {
        let mapped = MappedFile::map(file, len, path, id, huge_pages)?;
        Ok(ActiveFile {
            file: Arc::new(mapped),
            tail,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// Bytes of the mapping.
    pub fn map_len(&self) -> usize {
        self.map.len()
    }

    /// Bytes of the file that may be read through the map.
    #[inline]
    pub fn file_len(&self) -> usize {
        self.file_len.load(Ordering::Acquire)
    }

    /// Says the file is about to be cut to `len` bytes: from now on no
    /// access goes past it. Call before cutting.
    pub fn shrink_to(&self, len: usize) {
        self.file_len.fetch_min(len, Ordering::AcqRel);
    }

    /// The bytes `off..off + len` of the file, or `None` if the range is
    /// not inside it (a length from a corrupt record).
    #[inline]
    pub fn get(&self, off: usize, len: usize) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        (end <= self.file_len()).then(|| self.bytes(off, len))
    }

    /// The bytes `off..off + len` of the file.
    ///
    /// Panics if the range is outside the file. The engine calls it only for
    /// ranges of published records it has checked with [`Self::get`], or
    /// during recovery for any range below the mapped length (invariants 1
    /// and 2).
    #[inline]
    pub fn bytes(&self, off: usize, len: usize) -> &[u8] {
        let end = off.checked_add(len).expect("range overflow");
        assert!(end <= self.file_len(), "read past the end of the file");
        // SAFETY: the range is inside the file and so inside the mapping
        // (checked above; `file_len <= map.len()`, and it is lowered before
        // the file is cut: invariant 1). No one writes
        // it concurrently (invariant 2), and the mapping lives as long as
        // `self`, which the returned borrow cannot outlive.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(off), len) }
    }

    /// Copies `data` into the file at `off` through the map.
    ///
    /// Panics if the range is outside the mapping. Only [`ActiveFile`]
    /// calls it, at its tail (invariant 2).
    #[inline]
    fn write(&self, off: usize, data: &[u8]) {
        let end = off.checked_add(data.len()).expect("range overflow");
        assert!(end <= self.map.len(), "write past the mapping");
        // SAFETY: in bounds (checked above); the range is preallocated on disk
        // (invariant 1), so the store cannot SIGBUS; it lies at or past the
        // tail of the file's one ActiveFile, which `&mut` makes exclusive, so
        // it is not yet visible to any reader and nothing reads or writes it
        // concurrently (invariant 2). `data` cannot overlap the map's
        // unpublished range because no one has a reference to that range.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.as_mut_ptr().add(off),
                data.len(),
            );
        }
    }
}

/// The one write handle of the active HSTable (invariant 2): made with
/// the map, not `Clone`, owned by the writer. It appends at its tail and
/// never writes below it; readers see the file through the shared
/// [`MappedFile`] it derefs to.
#[derive(Debug)]
pub struct ActiveFile {
    file: Arc<MappedFile>,
    /// Offset of the next write: everything below it has been handed out.
    tail: usize,
}

impl ActiveFile {
    /// The shared file, for the file table and readers.
    pub fn mapped(&self) -> &Arc<MappedFile> {
        &self.file
    }

    /// Offset of the next record.
    pub fn tail(&self) -> usize {
        self.tail
    }

    /// Copies `parts` back to back at the tail, moves the tail past them
    /// and returns where they start. Panics past the mapping (the writer
    /// checks room first).
    #[inline]
    pub fn append(&mut self, parts: &[&[u8]]) -> usize {
        let start = self.tail;
        for p in parts {
            self.file.write(self.tail, p);
            self.tail += p.len();
        }
        start
    }

    /// Gives up the handle: the file is full or closing, nothing is
    /// written into it any more.
    pub fn into_mapped(self) -> Arc<MappedFile> {
        self.file
    }
}

impl std::ops::Deref for ActiveFile {
    type Target = MappedFile;
    fn deref(&self) -> &MappedFile {
        &self.file
    }
}

/// Allocates disk blocks for `file` up to `len` bytes (extending it), so
/// later writes through a map cannot fail for lack of space.
pub fn preallocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file size too large"))?;
    // SAFETY: plain syscall on a valid open descriptor owned by `file`; no
    // memory is passed to the kernel.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 {
        Ok(())
    } else {
        // posix_fallocate returns the error number instead of setting errno.
        Err(io::Error::from_raw_os_error(rc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_file_appends_at_its_tail_and_readers_see_it() {
        let mut active = MappedFile::placeholder(PathBuf::from("x.hst"), 1, 16).unwrap();
        assert_eq!(active.append(&[b"ab", b"", b"cde"]), 16);
        assert_eq!(active.append(&[b"f"]), 21);
        assert_eq!(active.tail(), 22);
        let reader = active.mapped().clone();
        assert_eq!(reader.get(16, 6), Some(&b"abcdef"[..]));
        assert_eq!(active.into_mapped().bytes(16, 2), b"ab");
    }

    #[test]
    #[should_panic(expected = "write past the mapping")]
    fn an_append_past_the_map_panics() {
        let mut active = MappedFile::placeholder(PathBuf::from("x.hst"), 1, 4090).unwrap();
        active.append(&[&[1u8; 7]]);
    }
}
