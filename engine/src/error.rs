//! Errors, one enum per kind of operation: opening, reading, writing.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Why [`crate::Engine::open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A file system operation failed.
    #[error("I/O error while {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Another process (or another `Engine` in this process) has the
    /// directory open.
    #[error("data directory {dir} is locked by another process; stop it or use another directory")]
    Locked { dir: PathBuf },
    /// A data file's header is not an HSTable's. The file is left alone.
    #[error(
        "{file} at offset {offset} is not an HSTable ({reason}); move it out of the data directory"
    )]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A data file was written by a format version this build cannot read.
    #[error("{file} has format version {version}, this build reads version {supported}; use a matching build")]
    UnsupportedVersion {
        file: PathBuf,
        version: u32,
        supported: u32,
    },
    /// The options are unusable.
    #[error("invalid option: {0}")]
    InvalidOptions(String),
}

/// Why a read failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The record the index points at fails its checksum; it is not served.
    #[error(
        "corrupt record in {file} at offset {offset}: {reason}; the value is lost, rewrite the key"
    )]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The engine was closed.
    #[error("the engine is closed")]
    Closed,
}

/// Why a write (or a wait for durability) failed. `Clone`: one failed sync
/// is reported to every waiter of its batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// A write, sync or file creation failed (disk full, I/O error). The
    /// write it belonged to did not happen.
    #[error("I/O error while {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    /// An earlier sync failed, so what the kernel holds for the data files
    /// can no longer be trusted to reach the disk; the engine refuses writes
    /// until it is reopened (which re-reads the files and recovers).
    #[error("writes refused after a failed sync ({cause}); reopen the data directory to recover")]
    Poisoned { cause: String },
    /// The engine was closed.
    #[error("the engine is closed")]
    Closed,
    /// The key is empty or longer than the record format allows.
    #[error("key length {len} is outside 1..={max}")]
    KeyTooLarge { len: usize, max: usize },
    /// The value is larger than the record format allows.
    #[error("value length {len} exceeds the maximum {max}")]
    ValueTooLarge { len: usize, max: usize },
    /// A streaming write was committed with fewer or more bytes than it
    /// declared; nothing was written.
    #[error("streamed value has {got} bytes, {declared} were declared")]
    StreamLength { declared: usize, got: usize },
    /// Every sequence number up to [`crate::format::MAX_SEQ`] has been
    /// handed out; no record can be numbered any more.
    #[error("sequence numbers are exhausted (last {last}); copy the live keys into a new data directory")]
    SequenceExhausted { last: u64 },
    /// A read-modify-write found the current record corrupt.
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl WriteError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> WriteError {
        WriteError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

impl OpenError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> OpenError {
        OpenError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// A write-path failure during open (creating the active file, sealing a
/// scanned one). The I/O error is kept as it was, errno included.
impl From<WriteError> for OpenError {
    fn from(e: WriteError) -> OpenError {
        match e {
            WriteError::Io { op, path, source } => OpenError::Io {
                op,
                path,
                source: Arc::try_unwrap(source).unwrap_or_else(|shared| {
                    // Shared (a clone was kept somewhere): the errno, or
                    // the error itself as the source.
                    match shared.raw_os_error() {
                        Some(code) => io::Error::from_raw_os_error(code),
                        None => io::Error::new(shared.kind(), shared),
                    }
                }),
            },
            other => OpenError::InvalidOptions(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_error_from_write_error_keeps_the_errno() {
        let w = WriteError::io(
            "preallocating",
            "/d/00000001.hst",
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        let kept = w.clone();
        for e in [w, kept] {
            match OpenError::from(e) {
                OpenError::Io { op, path, source } => {
                    assert_eq!(op, "preallocating");
                    assert_eq!(path, PathBuf::from("/d/00000001.hst"));
                    assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
                }
                other => panic!("not an I/O error: {other:?}"),
            }
        }
    }
}
