//! Fault injection for the engine's own tests: a sync, a file creation or
//! an unlink made to fail on purpose. The hooks exist only with the
//! `fault-injection` cargo feature (the engine's tests turn it on through
//! a dev-dependency on the crate itself); without it every check is a
//! constant `false` and the release API has no test hooks.

#[cfg(feature = "fault-injection")]
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The faults armed by a test, each one shot (the unlink one stays until
/// changed).
#[derive(Default)]
pub(crate) struct Faults {
    /// The next fdatasync fails with an I/O error.
    #[cfg(feature = "fault-injection")]
    next_sync: AtomicBool,
    /// The next new HSTable of a roll-over fails as if the disk were full.
    #[cfg(feature = "fault-injection")]
    next_create: AtomicBool,
    /// Compaction's unlink of this file id fails (0: none).
    #[cfg(feature = "fault-injection")]
    unlink: AtomicU32,
}

impl Faults {
    /// Whether this fdatasync is to fail (disarms the fault).
    #[inline]
    pub fn sync_fails(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.next_sync.swap(false, Ordering::AcqRel)
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }

    /// Whether this roll-over's new file is to fail (disarms the fault).
    #[inline]
    pub fn create_fails(&self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.next_create.swap(false, Ordering::AcqRel)
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }

    /// Whether the unlink of file `id` is to fail.
    #[inline]
    pub fn unlink_fails(&self, id: u32) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            id != 0 && self.unlink.load(Ordering::Acquire) == id
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            let _ = id;
            false
        }
    }
}

/// Which thread start of the next open fails (1: the first; 0: none).
/// Process-wide, as open has no engine yet to arm: a test that uses it
/// runs in a test binary of its own.
#[cfg(feature = "fault-injection")]
static THREAD_START: AtomicU32 = AtomicU32::new(0);

/// Whether the `nth` thread start (1-based) of this open is to fail
/// (disarms the fault).
#[inline]
pub(crate) fn thread_start_fails(nth: u32) -> bool {
    #[cfg(feature = "fault-injection")]
    {
        THREAD_START
            .compare_exchange(nth, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = nth;
        false
    }
}

#[cfg(feature = "fault-injection")]
pub(crate) fn arm_thread_start(nth: u32) {
    THREAD_START.store(nth, Ordering::Release);
}

#[cfg(feature = "fault-injection")]
impl Faults {
    pub fn arm_sync(&self) {
        self.next_sync.store(true, Ordering::Release);
    }

    pub fn arm_create(&self) {
        self.next_create.store(true, Ordering::Release);
    }

    pub fn arm_unlink(&self, id: u32) {
        self.unlink.store(id, Ordering::Release);
    }
}
