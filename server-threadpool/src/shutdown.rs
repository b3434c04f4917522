//! The shutdown handle.
//!
//! [`Shutdown`] is a cloneable flag: the accept thread polls it between
//! accepts, workers check it before taking a queued connection, and tests pull
//! it to stop an in-process server. The binary connects SIGINT/SIGTERM to it
//! through `service::install_signal_handlers`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A request to stop, shared by everyone who must notice it.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Read on hot paths without a lock.
    triggered: AtomicBool,
    /// Lets [`Shutdown::wait_timeout`] sleep instead of polling.
    lock: Mutex<()>,
    changed: Condvar,
}

impl Shutdown {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the server to stop. Idempotent; returns whether this call was the
    /// first one to trigger it.
    pub fn trigger(&self) -> bool {
        let first = !self.inner.triggered.swap(true, Ordering::SeqCst);
        // Taking the lock orders the store before any waiter's re-check, so a
        // waiter cannot miss the notification.
        let _guard = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.inner.changed.notify_all();
        first
    }

    /// Whether a stop has been asked for.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Sleeps until triggered or until `timeout` passes; returns
    /// [`Shutdown::is_triggered`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.is_triggered() {
            return true;
        }
        let _unused = self
            .inner
            .changed
            .wait_timeout_while(guard, timeout, |_| !self.is_triggered());
        self.is_triggered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
