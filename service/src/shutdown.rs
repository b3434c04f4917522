//! The shutdown handle both front-ends share. The binaries connect
//! SIGINT/SIGTERM to it through [`crate::install_signal_handlers`]; tests
//! pull it to stop an in-process server.
//!
//! [`Shutdown`] is a cloneable flag that
//! * is read without a lock on hot paths ([`Shutdown::is_triggered`]);
//! * lets a thread sleep until it is pulled ([`Shutdown::wait_timeout`]:
//!   the thread pool's accept thread and workers);
//! * runs wake-ups registered with [`Shutdown::on_trigger`] when pulled (the
//!   event loops' mio wakers, so each leaves `poll` at once instead of at
//!   its next timeout);
//! * records why the server is stopping abnormally ([`Shutdown::fail`]),
//!   which [`PanicGuard`] does when a thread the server cannot lose
//!   panics: the whole server stops and reports it, never a half-alive
//!   server with some connections silently gone.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

type Wake = Arc<dyn Fn() + Send + Sync>;

/// A request to stop, shared by everyone who must notice it.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Read on hot paths without a lock.
    triggered: AtomicBool,
    /// Orders a trigger before any waiter's re-check, so that
    /// [`Shutdown::wait_timeout`] cannot miss the notification.
    lock: Mutex<()>,
    changed: Condvar,
    /// Run on trigger.
    wakers: Mutex<Vec<Wake>>,
    /// Why the server is stopping abnormally, if it is.
    failure: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent whatever a panicking
    // holder was doing (pushes and reads of whole values), so poisoning is
    // not a reason to fail the shutdown path.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .field("failure", &self.failure())
            .finish_non_exhaustive()
    }
}

impl Shutdown {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the server to stop: wakes every waiter and runs every
    /// registered wake-up. Idempotent; returns whether this call was the
    /// first to trigger it.
    pub fn trigger(&self) -> bool {
        let first = !self.inner.triggered.swap(true, Ordering::SeqCst);
        {
            let _ordered = lock(&self.inner.lock);
            self.inner.changed.notify_all();
        }
        let wakers: Vec<Wake> = lock(&self.inner.wakers).clone();
        for wake in wakers {
            wake();
        }
        first
    }

    /// Whether a stop has been asked for.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Sleeps until triggered or until `timeout` passes; returns
    /// [`Shutdown::is_triggered`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = lock(&self.inner.lock);
        if self.is_triggered() {
            return true;
        }
        let _unused = self
            .inner
            .changed
            .wait_timeout_while(guard, timeout, |_| !self.is_triggered());
        self.is_triggered()
    }

    /// Runs `wake` when the stop is asked for, or at once if it already
    /// was, so that a thread registering late cannot miss it. `wake` must
    /// be quick and must not block (a mio `Waker::wake`).
    pub fn on_trigger(&self, wake: impl Fn() + Send + Sync + 'static) {
        let wake: Wake = Arc::new(wake);
        lock(&self.inner.wakers).push(Arc::clone(&wake));
        if self.is_triggered() {
            wake();
        }
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
}

/// Marks the server failed if the thread holding it unwinds from a panic.
/// Created at the top of every thread the server cannot run without.
pub struct PanicGuard {
    pub shutdown: Shutdown,
    /// The thread, as the failure names it ("event loop 3").
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
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

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
    fn wait_timeout_times_out_when_not_triggered() {
        let s = Shutdown::new();
        let start = Instant::now();
        assert!(!s.wait_timeout(Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn wait_timeout_wakes_on_trigger_from_another_thread() {
        let s = Shutdown::new();
        let t = {
            let s = s.clone();
            std::thread::spawn(move || s.wait_timeout(Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(10));
        s.trigger();
        assert!(t.join().expect("waiter thread"));
    }

    #[test]
    fn wake_ups_run_on_trigger_and_at_once_when_registered_late() {
        let s = Shutdown::new();
        let woken = Arc::new(AtomicUsize::new(0));
        let w = Arc::clone(&woken);
        s.on_trigger(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(woken.load(Ordering::SeqCst), 0);
        s.trigger();
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        let w = Arc::clone(&woken);
        s.on_trigger(move || {
            w.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(
            woken.load(Ordering::SeqCst),
            11,
            "late registration woken at once"
        );
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
        assert!(s.is_triggered());
        assert!(s.failure().expect("failure").contains("event loop 3"));
    }

    #[test]
    fn panic_guard_is_silent_without_a_panic() {
        let s = Shutdown::new();
        drop(PanicGuard {
            shutdown: s.clone(),
            thread: "acceptor".into(),
        });
        assert!(!s.is_triggered());
        assert_eq!(s.failure(), None);
    }
}
