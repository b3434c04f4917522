//! Roll-over off the write path: sealing full HSTables and preallocating
//! the next one on a thread of their own.
//!
//! When the active file is full, the writer that finds it so swaps in a
//! spare file made ahead of time and hands the full file to this thread,
//! which writes its index and footer, cuts it to length and, under a
//! durability that syncs, fdatasyncs it. Creating a file (fallocate, map,
//! directory fsync) and sealing one (an index write of up to megabytes and
//! a sync) took tens of milliseconds on the writer's thread before, and
//! every other writer waited behind the writer lock: an event loop that
//! wrote stopped serving all its connections for that long.
//!
//! Why this keeps every promise:
//! * Durability. A rolled file joins the rolled list (`durability.rs`) until some fdatasync
//!   of it completes (under `None` the seal does not sync, so it stays
//!   there until compaction's sync or close). A group commit
//!   syncs every file on that list before the active one and only then
//!   counts their records durable, so a ticket is never completed for a
//!   record that sits in a rolled file not yet on disk.
//! * Recovery. A crash before the seal leaves a full file without footer;
//!   recovery scans every such file, not only the last. A spare that was
//!   never used holds no records and recovery deletes it.
//! * Compaction only picks sealed files (it reads their sealed index).
//! * Close waits for this thread to finish its queue, then seals the
//!   active file itself and deletes the unused spare.

use std::collections::VecDeque;
use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

use tracing::{debug, warn};

use super::{new_file, WritePath};
use crate::context::Context;
use crate::durability::SyncShared;
use crate::format::IndexEntry;
use crate::hstable::MappedFile;
use crate::hstable::{seal, sealed_len, sync_dir};
use crate::lock_order::lock;
use crate::options::Durability;

/// A full file to seal.
pub(crate) struct SealJob {
    pub file: Arc<MappedFile>,
    /// Where its records end: the index goes there.
    pub data_end: usize,
    pub entries: Vec<IndexEntry>,
}

#[derive(Default)]
struct State {
    seals: VecDeque<SealJob>,
    /// A spare file to create: its id and capacity.
    spare: Option<(u32, usize)>,
    /// A job is being worked on.
    busy: bool,
    stop: bool,
    /// Test hook: jobs wait while set.
    held: bool,
}

/// The queue between writers and the roller thread.
#[derive(Default)]
pub(crate) struct Roller {
    state: Mutex<State>,
    /// Wakes the thread.
    work: Condvar,
    /// Wakes `drain`.
    idle: Condvar,
}

enum Job {
    Seal(SealJob),
    Spare(u32, usize),
}

impl Roller {
    /// Queues a full file for sealing.
    pub fn seal(&self, job: SealJob) {
        lock(&self.state).seals.push_back(job);
        self.work.notify_all();
    }

    /// Asks for a spare file `id` of `capacity` bytes.
    pub fn want_spare(&self, id: u32, capacity: usize) {
        lock(&self.state).spare = Some((id, capacity));
        self.work.notify_all();
    }

    /// Waits until every queued job is done (releasing a test hold: close
    /// and compaction must be able to finish).
    pub fn drain(&self) {
        let mut st = lock(&self.state);
        st.held = false;
        self.work.notify_all();
        while !st.stop && (st.busy || !st.seals.is_empty() || st.spare.is_some()) {
            st = self.idle.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Asks the thread to exit; jobs still queued are left undone, as a
    /// crash would leave them (recovery finishes them).
    pub fn stop(&self) {
        lock(&self.state).stop = true;
        self.work.notify_all();
        self.idle.notify_all();
    }

    /// Test hook: while held, queued jobs wait.
    #[cfg(feature = "fault-injection")]
    pub fn hold(&self, held: bool) {
        lock(&self.state).held = held;
        self.work.notify_all();
    }

    /// The next job, or `None` once stopped. Seals come first: compaction
    /// and close wait for them, and until a rolled file's seal has synced
    /// it, every group commit must sync it too.
    fn next(&self) -> Option<Job> {
        let mut st = lock(&self.state);
        st.busy = false;
        self.idle.notify_all();
        loop {
            if st.stop {
                return None;
            }
            if !st.held {
                if let Some(job) = st.seals.pop_front() {
                    st.busy = true;
                    return Some(Job::Seal(job));
                }
                if let Some((id, capacity)) = st.spare.take() {
                    st.busy = true;
                    return Some(Job::Spare(id, capacity));
                }
            }
            st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl WritePath {
    /// The roller thread: seals full files, makes spares. `on_sealed` runs
    /// after each seal (compaction looks for work then).
    pub fn run_roller(&self, ctx: &Context, sync: &SyncShared, on_sealed: impl Fn()) {
        while let Some(job) = self.roller.next() {
            match job {
                Job::Seal(job) => {
                    if seal_rolled(ctx, sync, job) {
                        on_sealed();
                    }
                }
                Job::Spare(id, capacity) => self.make_spare(ctx, id, capacity),
            }
        }
    }

    fn make_spare(&self, ctx: &Context, id: u32, capacity: usize) {
        match new_file(ctx, id, capacity) {
            Ok(file) => {
                let mut w = self.writer.lock();
                w.spare_asked = false;
                if w.closed || w.spare.is_some() {
                    drop(w);
                    discard(ctx.dir(), &file);
                } else {
                    w.spare = Some(file);
                }
            }
            // The next roll-over creates its file itself and reports the error
            // to its writer if it fails again; the file after it asks again.
            Err(e) => {
                warn!(error = %e, "could not preallocate the next HSTable");
                self.writer.lock().spare_failed(id);
            }
        }
    }
}

/// Seals a full file; true if it is sealed now.
fn seal_rolled(ctx: &Context, sync: &SyncShared, job: SealJob) -> bool {
    if sync.poisoned().is_some() {
        // Sealing needs a sync the engine can no longer vouch for; recovery
        // scans the file instead.
        return false;
    }
    let synced = ctx.opts().durability != Durability::None;
    let f = &job.file;
    // Reads are bounded by the sealed length before the file is cut to it.
    f.shrink_to(sealed_len(job.data_end, job.entries.len()));
    match seal(
        f.file(),
        f.path(),
        job.data_end,
        &job.entries,
        synced,
        ctx.version(),
    ) {
        Ok(_) => {
            if synced {
                ctx.counters().syncs.fetch_add(1, Ordering::Relaxed);
                // Its records are on disk: group commits need not sync it.
                sync.rolled_synced(f);
            }
            f.sealed.store(true, Ordering::Release);
            debug!(file = %f.path().display(), records = job.entries.len(), "sealed");
            true
        }
        Err(e) => {
            warn!(error = %e, "sealing a full HSTable failed; refusing further writes");
            sync.poison(&e);
            false
        }
    }
}

/// Deletes a spare file that will not be used.
pub(crate) fn discard(dir: &Path, file: &MappedFile) {
    if let Err(e) = fs::remove_file(file.path()).and_then(|()| sync_dir(dir)) {
        warn!(file = %file.path().display(), error = %e, "could not delete an unused HSTable");
    }
}
