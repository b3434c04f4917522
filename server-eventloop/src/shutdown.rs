//! The shutdown handle (the binary connects SIGINT/SIGTERM to it through
//! `service::install_signal_handlers`), and what happens when a loop dies.
//!
//! [`Shutdown`] is a cloneable flag that also knows every loop's mio
//! [`Waker`]: pulling it wakes each loop out of `poll` so it stops accepting
//! and starts draining at once, instead of at its next timeout. A loop that
//! panics pulls it too, with the panic's message recorded, so the whole server
//! stops and [`crate::run`] reports the failure: never a half-alive server
//! with one core's connections silently gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mio::Waker;

/// A request to stop, shared by the loops, the acceptor and whoever started
/// the server.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Read every loop turn without a lock.
    triggered: AtomicBool,
    /// The loops to wake when triggered.
    wakers: Mutex<Vec<Arc<Waker>>>,
    /// Why the server is stopping abnormally (a loop panicked), if it is.
    failure: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent whatever a panicking
    // holder was doing (pushes and reads of whole values), so poisoning is
    // not a reason to fail the shutdown path.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shutdown {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the server to stop and wakes every loop. Idempotent; returns
    /// whether this call was the first to trigger it.
    pub fn trigger(&self) -> bool {
        let first = !self.inner.triggered.swap(true, Ordering::SeqCst);
        for waker in lock(&self.inner.wakers).iter() {
            // A loop that already exited has dropped its Poll; waking it fails
            // harmlessly.
            let _ = waker.wake();
        }
        first
    }

    /// Whether a stop has been asked for.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Records that the server failed (the first failure wins) and stops it.
    pub fn fail(&self, message: String) {
        {
            let mut failure = lock(&self.inner.failure);
            if failure.is_none() {
                *failure = Some(message);
            }
        }
        self.trigger();
    }

    /// The failure recorded by [`Shutdown::fail`], if any.
    pub fn failure(&self) -> Option<String> {
        lock(&self.inner.failure).clone()
    }

    /// Adds a loop's waker; wakes it at once if the stop was already asked
    /// for, so a loop registering late cannot miss it.
    pub(crate) fn register(&self, waker: Arc<Waker>) {
        let mut wakers = lock(&self.inner.wakers);
        wakers.push(Arc::clone(&waker));
        drop(wakers);
        if self.is_triggered() {
            let _ = waker.wake();
        }
    }
}

/// Marks the server failed if the thread holding it unwinds from a panic.
/// Created at the top of every loop and acceptor thread.
pub(crate) struct PanicGuard {
    pub shutdown: Shutdown,
    pub thread: String,
}

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.shutdown.fail(format!(
                "{} panicked; the server is stopping (see the panic message above)",
                self.thread
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    #[test]
    fn trigger_is_seen_by_clones_and_only_first_reports_first() {
        let a = Shutdown::new();
        let b = a.clone();
        assert!(!b.is_triggered());
        assert!(a.trigger());
        assert!(!a.trigger());
        assert!(b.is_triggered());
    }

    #[test]
    fn trigger_wakes_a_registered_poll() {
        let mut poll = Poll::new().expect("poll");
        let waker = Arc::new(Waker::new(poll.registry(), Token(7)).expect("waker"));
        let shutdown = Shutdown::new();
        shutdown.register(waker);
        let remote = shutdown.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            remote.trigger();
        });
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .expect("poll");
        assert!(events.iter().any(|e| e.token() == Token(7)));
        t.join().expect("trigger thread");
    }

    #[test]
    fn first_failure_wins_and_triggers() {
        let s = Shutdown::new();
        s.fail("loop 1 panicked".into());
        s.fail("loop 0 panicked".into());
        assert!(s.is_triggered());
        assert_eq!(s.failure().as_deref(), Some("loop 1 panicked"));
    }

    #[test]
    fn panic_guard_records_a_panic() {
        let s = Shutdown::new();
        let guard_shutdown = s.clone();
        let r = std::thread::spawn(move || {
            let _guard = PanicGuard {
                shutdown: guard_shutdown,
                thread: "event loop 3".into(),
            };
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        assert!(s.failure().expect("failure").contains("event loop 3"));
    }
}
