//! Group commit: sync tickets, the sync thread, waiters and callbacks, and
//! the poisoned state after a failed sync.
//!
//! A ticket is the sequence number of a write. Writers never sync: they copy
//! their record into the active file's map and return. Under `Always`, a
//! waiter (`wait_durable` or `on_durable`) raises `requested` and wakes the
//! sync thread, which reads the last sequence number appended so far, runs
//! one fdatasync, and then completes every ticket up to that number: all the
//! writes that arrived while the previous sync ran form the next batch. Under
//! `Interval` a thread does the same on a timer and tickets count as durable
//! at once.
//!
//! After a failed sync the kernel may have dropped the dirty pages, so no
//! later sync can vouch for them: the engine is poisoned, every pending and
//! later waiter gets the error and every later write is refused.
//!
//! This module owns the sync serial lock (one group commit at a time), the
//! list of rolled files not synced yet, and [`SyncShared::sync_now`], the
//! group commit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::context::Context;
use crate::error::WriteError;
use crate::hstable::MappedFile;
use crate::lock_order::{lock, Rank, RankedMutex};
use crate::write::WritePath;

/// A position in the write stream; a write is durable once the engine has
/// synced past it. A write that wrote nothing gets [`SyncTicket::DURABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncTicket(pub(crate) u64);

impl SyncTicket {
    /// A ticket that is durable from the start.
    pub const DURABLE: SyncTicket = SyncTicket(0);

    /// The sequence number of the write.
    pub fn seq(self) -> u64 {
        self.0
    }
}

type Callback = Box<dyn FnOnce(Result<(), WriteError>) + Send>;

#[derive(Default)]
struct State {
    /// Highest ticket someone waits for.
    requested: u64,
    waiters: Vec<(u64, Callback)>,
    /// The engine is closing: the sync thread exits.
    stop: bool,
    /// The engine is gone: remaining waiters fail with `Closed`.
    shut_down: bool,
}

pub(crate) struct SyncShared {
    state: Mutex<State>,
    /// Wakes the sync thread.
    work: Condvar,
    /// Wakes blocked waiters.
    done: Condvar,
    /// Highest sequence number known to be on disk.
    synced: AtomicU64,
    poisoned: AtomicBool,
    cause: Mutex<Option<WriteError>>,
    /// Serialises group commits so a caller that waited finds its work done.
    serial: RankedMutex<()>,
    /// Rolled files whose records may not be on disk yet: a group commit
    /// syncs them before it counts them durable. Under every durability,
    /// `none` included: compaction's sync before it unlinks old versions,
    /// and close, must cover their replacements in rolled files too.
    rolled: RankedMutex<Vec<Arc<MappedFile>>>,
}

impl SyncShared {
    pub fn new(synced: u64) -> Self {
        SyncShared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            synced: AtomicU64::new(synced),
            poisoned: AtomicBool::new(false),
            cause: Mutex::new(None),
            serial: RankedMutex::new(Rank::SyncSerial, ()),
            rolled: RankedMutex::new(Rank::Rolled, Vec::new()),
        }
    }

    /// A full file was rolled: its records may not be on disk yet.
    pub fn rolled(&self, file: Arc<MappedFile>) {
        self.rolled.lock().push(file);
    }

    /// The roller synced a rolled file: group commits need not any more.
    pub fn rolled_synced(&self, file: &Arc<MappedFile>) {
        self.rolled.lock().retain(|r| !Arc::ptr_eq(r, file));
    }

    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// The error writes must return, if a sync has failed.
    pub fn poisoned(&self) -> Option<WriteError> {
        if !self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        let cause = lock(&self.cause)
            .as_ref()
            .map_or_else(String::new, |e| e.to_string());
        Some(WriteError::Poisoned { cause })
    }

    /// Everything up to `seq` is on disk. Wakes blocked waiters and the
    /// sync thread, which runs the callbacks (never the caller: it may hold
    /// the writer lock).
    pub fn advance(&self, seq: u64) {
        self.synced.fetch_max(seq, Ordering::AcqRel);
        let _st = lock(&self.state);
        self.done.notify_all();
        self.work.notify_all();
    }

    /// A sync failed: refuse writes from now on and fail every waiter (the
    /// sync thread runs the failed callbacks).
    pub fn poison(&self, err: &WriteError) {
        {
            let mut cause = lock(&self.cause);
            if cause.is_none() {
                *cause = Some(err.clone());
            }
        }
        self.poisoned.store(true, Ordering::Release);
        let _st = lock(&self.state);
        self.done.notify_all();
        self.work.notify_all();
    }

    /// Runs the callbacks whose tickets are synced, or all of them with the
    /// error once poisoned. Called by the sync thread only.
    fn complete_ready(&self) {
        let synced = self.synced();
        let poisoned = self.poisoned.load(Ordering::Acquire);
        let ready: Vec<(u64, Callback)> = {
            let mut st = lock(&self.state);
            let (ready, pending): (Vec<_>, Vec<_>) = st
                .waiters
                .drain(..)
                .partition(|(t, _)| *t <= synced || poisoned);
            st.waiters = pending;
            ready
        };
        for (t, cb) in ready {
            cb(if t <= synced {
                Ok(())
            } else {
                Err(self.failure())
            });
        }
    }

    fn failure(&self) -> WriteError {
        lock(&self.cause).clone().unwrap_or(WriteError::Closed)
    }

    /// Blocks until `seq` is synced.
    pub fn wait(&self, seq: u64) -> Result<(), WriteError> {
        let mut st = lock(&self.state);
        st.requested = st.requested.max(seq);
        self.work.notify_one();
        loop {
            if self.synced() >= seq {
                return Ok(());
            }
            if self.poisoned.load(Ordering::Acquire) {
                return Err(self.failure());
            }
            if st.shut_down {
                return Err(WriteError::Closed);
            }
            st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Calls `cb` once `seq` is synced (from the sync thread), or at once.
    pub fn on_durable(&self, seq: u64, cb: Callback) {
        let result = {
            let mut st = lock(&self.state);
            if self.synced() >= seq {
                Ok(())
            } else if self.poisoned.load(Ordering::Acquire) {
                Err(self.failure())
            } else if st.shut_down {
                Err(WriteError::Closed)
            } else {
                st.requested = st.requested.max(seq);
                st.waiters.push((seq, cb));
                self.work.notify_one();
                return;
            }
        };
        cb(result);
    }

    /// Forgets requests past `last` (the last sequence number assigned): a
    /// ticket from another engine must not keep the sync thread spinning.
    fn clamp_requested(&self, last: u64) {
        let mut st = lock(&self.state);
        st.requested = st.requested.min(last);
    }

    /// Asks the sync thread to exit.
    pub fn stop(&self) {
        lock(&self.state).stop = true;
        self.work.notify_all();
    }

    /// The engine is closed: waiters not yet covered fail with `Closed`.
    pub fn shut_down(&self) {
        let synced = self.synced();
        let rest: Vec<(u64, Callback)> = {
            let mut st = lock(&self.state);
            st.shut_down = true;
            st.stop = true;
            self.done.notify_all();
            self.work.notify_all();
            st.waiters.drain(..).collect()
        };
        for (t, cb) in rest {
            cb(if t <= synced {
                Ok(())
            } else {
                Err(WriteError::Closed)
            });
        }
    }

    fn wait_for_work(&self) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.stop {
                return false;
            }
            let synced = self.synced();
            let poisoned = self.poisoned.load(Ordering::Acquire);
            if (st.requested > synced && !poisoned)
                || st.waiters.iter().any(|(t, _)| *t <= synced || poisoned)
            {
                return true;
            }
            st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn sleep(&self, d: Duration) -> bool {
        let st = lock(&self.state);
        if st.stop {
            return false;
        }
        let (st, _) = self
            .work
            .wait_timeout(st, d)
            .unwrap_or_else(|e| e.into_inner());
        !st.stop
    }

    /// The `Always` sync thread: one fdatasync per batch of waiting tickets.
    pub fn run_always(&self, ctx: &Context, writes: &WritePath) {
        while self.wait_for_work() {
            if self.poisoned().is_none() {
                // Errors poison the engine; complete_ready delivers them.
                let _ = self.sync_now(ctx, writes);
            }
            self.clamp_requested(writes.last_seq());
            self.complete_ready();
        }
    }

    /// The `Interval` sync thread.
    pub fn run_interval(&self, ctx: &Context, writes: &WritePath, every: Duration) {
        while self.sleep(every) {
            if self.poisoned().is_none() {
                let _ = self.sync_now(ctx, writes);
            }
        }
    }

    /// Syncs the active file up to everything appended so far (one group
    /// commit), rolled files not synced yet first.
    pub fn sync_now(&self, ctx: &Context, writes: &WritePath) -> Result<(), WriteError> {
        let _one_at_a_time = self.serial.lock();
        if let Some(e) = self.poisoned() {
            return Err(e);
        }
        // The rolled list is read under the writer lock: a roll-over
        // between the two could otherwise hide a file from this commit.
        let (active, rolled, upto) = writes.read(|w| {
            (
                w.active().mapped().clone(),
                self.rolled.lock().clone(),
                w.last_seq(),
            )
        });
        if upto <= self.synced() {
            return Ok(());
        }
        // Rolled files the roller has not synced yet hold records up to
        // `upto` too: they go first. fdatasync writes back the pages dirtied
        // through the shared map too: they are the file's page cache.
        for file in rolled.iter().chain(std::iter::once(&active)) {
            let synced = if ctx.faults().sync_fails() {
                Err(std::io::Error::other("injected sync failure"))
            } else {
                file.file().sync_data()
            };
            if let Err(e) = synced {
                let err = WriteError::io("syncing", file.path(), e);
                tracing::error!(error = %err, "sync failed; refusing further writes until reopened");
                self.poison(&err);
                return Err(err);
            }
            ctx.counters().syncs.fetch_add(1, Ordering::Relaxed);
        }
        if !rolled.is_empty() {
            self.rolled
                .lock()
                .retain(|r| !rolled.iter().any(|s| Arc::ptr_eq(r, s)));
        }
        self.advance(upto);
        Ok(())
    }

    /// At close: syncs every rolled file not synced yet (durability `none`
    /// seals without a sync; a seal may have failed), so they are on disk
    /// before the durable mark moves. A failure poisons the engine.
    pub fn sync_rolled(&self, ctx: &Context) -> Result<(), WriteError> {
        let rolled = std::mem::take(&mut *self.rolled.lock());
        for f in &rolled {
            if let Err(e) = f.file().sync_data() {
                let err = WriteError::io("syncing", f.path(), e);
                self.poison(&err);
                return Err(err);
            }
            ctx.counters().syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
