//! The engine's lock order, written once, and its check.
//!
//! Locks are only ever taken in this order (a thread holding one may take
//! only locks further down the list):
//!
//! ```text
//!  CompactionRun   one compaction at a time (compaction.rs)
//!  Stripe          a key's writers (keydir.rs); all 256 only in stripe order
//!  Switch          compaction's file switch against snapshots (compaction.rs)
//!  SyncSerial      one group commit at a time (durability.rs)
//!  Writer          the active file and the append path (write/mod.rs)
//!  Files           the file table (hstable/)
//!  IndexShard      one shard of the index (index/), never two at once
//!  Rolled          rolled files not yet synced (durability.rs)
//! ```
//!
//! Leaf locks (the sync state and its waiters, the roller's queue, the
//! snapshot registry and side list, the compaction wake-up) take no ranked
//! lock after them and are not listed; they use [`lock`].
//!
//! In debug builds every ranked lock is registered in a per-thread list
//! while held, and taking one that is not below everything held panics
//! with both ranks: a violation shows up in any test that reaches it, not
//! only in the rare interleaving that deadlocks. Release builds compile
//! the check away.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Takes a mutex outside the ranked order: the leaf locks above, held
/// briefly and never while a ranked lock is taken (a condition variable
/// may wait on their guards, which a ranked guard would not allow).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of the engine's mutexes cannot leave its
    // data half-updated in a way later users could observe as unsafe; keep
    // serving rather than cascade the panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A lock's place in the order: a lock may be taken only while every lock
/// held by the thread ranks lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    CompactionRun,
    Stripe,
    Switch,
    SyncSerial,
    Writer,
    Files,
    IndexShard,
    Rolled,
}

#[cfg(debug_assertions)]
thread_local! {
    static HELD: std::cell::RefCell<Vec<Rank>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records that `rank` is about to be taken; panics (debug builds) if a
/// lock of the same or a later rank is held. `again` allows more locks of
/// the same rank (all stripes, taken in stripe order).
#[inline]
fn enter(rank: Rank, again: bool) {
    #[cfg(debug_assertions)]
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(&top) = h.iter().max() {
            assert!(
                top < rank || (again && top == rank),
                "lock order violated: taking {rank:?} while holding {top:?} (see lock_order.rs)"
            );
        }
        h.push(rank);
    });
    #[cfg(not(debug_assertions))]
    let _ = (rank, again);
}

#[cfg(debug_assertions)]
fn leave(rank: Rank) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|&r| r == rank) {
            h.remove(i);
        }
    });
}

/// A guard of a ranked lock; derefs to the lock's guard.
pub(crate) struct Held<G> {
    guard: G,
    #[cfg(debug_assertions)]
    rank: Rank,
}

impl<G> Held<G> {
    #[inline]
    fn new(rank: Rank, again: bool, take: impl FnOnce() -> G) -> Held<G> {
        enter(rank, again);
        let guard = take();
        #[cfg(not(debug_assertions))]
        let _ = rank;
        Held {
            guard,
            #[cfg(debug_assertions)]
            rank,
        }
    }
}

#[cfg(debug_assertions)]
impl<G> Drop for Held<G> {
    fn drop(&mut self) {
        leave(self.rank);
    }
}

impl<G: Deref> Deref for Held<G> {
    type Target = G::Target;
    #[inline]
    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: DerefMut> DerefMut for Held<G> {
    #[inline]
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

/// A mutex with a rank.
pub(crate) struct RankedMutex<T> {
    rank: Rank,
    inner: Mutex<T>,
}

impl<T> RankedMutex<T> {
    pub fn new(rank: Rank, value: T) -> Self {
        RankedMutex {
            rank,
            inner: Mutex::new(value),
        }
    }

    /// Takes the lock. A panic while holding one of the engine's mutexes
    /// cannot leave its data half-updated in a way later users could
    /// observe as unsafe; keep serving rather than cascade the panic.
    #[inline]
    pub fn lock(&self) -> Held<MutexGuard<'_, T>> {
        Held::new(self.rank, false, || {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        })
    }

    /// Takes the lock while holding others of the same rank (the caller
    /// takes them in one fixed order).
    #[inline]
    pub fn lock_again(&self) -> Held<MutexGuard<'_, T>> {
        Held::new(self.rank, true, || {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        })
    }
}

/// A read-write lock with a rank.
pub(crate) struct RankedRwLock<T> {
    rank: Rank,
    inner: RwLock<T>,
}

impl<T> RankedRwLock<T> {
    pub fn new(rank: Rank, value: T) -> Self {
        RankedRwLock {
            rank,
            inner: RwLock::new(value),
        }
    }

    #[inline]
    pub fn read(&self) -> Held<RwLockReadGuard<'_, T>> {
        Held::new(self.rank, false, || {
            self.inner.read().unwrap_or_else(|e| e.into_inner())
        })
    }

    #[inline]
    pub fn write(&self) -> Held<RwLockWriteGuard<'_, T>> {
        Held::new(self.rank, false, || {
            self.inner.write().unwrap_or_else(|e| e.into_inner())
        })
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn locks_in_order_pass_and_released_locks_are_forgotten() {
        let writer = RankedMutex::new(Rank::Writer, 0);
        let files = RankedRwLock::new(Rank::Files, 0);
        {
            let _w = writer.lock();
            let _f = files.read();
        }
        // Both released: the files lock alone, then the writer, is fine.
        drop(files.write());
        let w = writer.lock();
        assert_eq!(*w, 0);
    }

    #[test]
    #[should_panic(expected = "lock order violated: taking Writer while holding Files")]
    fn a_lock_taken_out_of_order_panics() {
        let writer = RankedMutex::new(Rank::Writer, ());
        let files = RankedRwLock::new(Rank::Files, ());
        let _f = files.read();
        let _w = writer.lock();
    }

    #[test]
    #[should_panic(expected = "taking Stripe while holding Stripe")]
    fn two_locks_of_one_rank_need_lock_again() {
        let a = RankedMutex::new(Rank::Stripe, ());
        let b = RankedMutex::new(Rank::Stripe, ());
        let _a = a.lock();
        let _b = b.lock();
    }

    #[test]
    fn lock_again_takes_a_whole_rank() {
        let stripes: Vec<_> = (0..4).map(|_| RankedMutex::new(Rank::Stripe, ())).collect();
        let all: Vec<_> = stripes.iter().map(RankedMutex::lock_again).collect();
        let writer = RankedMutex::new(Rank::Writer, ());
        drop(writer.lock());
        assert_eq!(all.len(), 4);
    }
}
