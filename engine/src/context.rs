//! What every part of the engine reads and nobody owns alone: the data
//! directory, the options and the store's format, fixed at open, plus the
//! lock-free counters every part adds to (`stats.rs`) and the test faults
//! (`fault.rs`). Shared by reference; no lock, nothing in it changes after
//! open but the atomics inside the counters and faults.

use std::path::{Path, PathBuf};

use crate::fault::Faults;
use crate::format::StoreFormat;
use crate::options::Options;
use crate::stats::Counters;

pub(crate) struct Context {
    dir: PathBuf,
    opts: Options,
    /// The store's format version and key-hash seed.
    format: StoreFormat,
    counters: Counters,
    /// Test-only faults (`fault-injection` feature).
    faults: Faults,
}

impl Context {
    pub fn new(dir: PathBuf, opts: Options, format: StoreFormat, counters: Counters) -> Context {
        Context {
            dir,
            opts,
            format,
            counters,
            faults: Faults::default(),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn opts(&self) -> &Options {
        &self.opts
    }

    /// The format version new files are written in.
    pub fn version(&self) -> u32 {
        self.format.version
    }

    /// The hash of `key` in this store.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.format.hash(key)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}
