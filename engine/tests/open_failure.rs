//! Open that fails half-way: a thread that cannot start. The threads
//! started before it must be stopped and joined, and the directory lock
//! released, so the next open works at once and finds the data.
//!
//! The fault is process-wide (it hits the next open), hence a test binary
//! of its own.

use engine::{Condition, Durability, Engine, Meta, OpenError, Options};

#[test]
fn a_thread_that_fails_to_start_leaves_nothing_running_and_the_directory_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        durability: Durability::Always,
        background_compaction: true,
        ..Options::default()
    };
    {
        let e = Engine::open(dir.path(), opts.clone()).unwrap();
        let w = e
            .put(b"key", b"value", Meta::default(), Condition::Always)
            .unwrap();
        e.wait_durable(w.ticket).unwrap();
        e.close().unwrap();
    }
    let threads = [
        "starting the roller thread for",
        "starting the sync thread for",
        "starting the compaction thread for",
    ];
    for (nth, what) in (1..).zip(threads) {
        Engine::fail_thread_start_for_tests(nth);
        match Engine::open(dir.path(), opts.clone()) {
            Err(OpenError::Io { op, path, source }) => {
                assert_eq!(op, what);
                assert_eq!(path, dir.path());
                assert_eq!(source.to_string(), "injected thread start failure");
            }
            other => panic!("thread {nth}: expected an I/O error, got {other:?}"),
        }
        let e = Engine::open(dir.path(), opts.clone())
            .unwrap_or_else(|err| panic!("reopen after thread {nth} failed: {err}"));
        let item = e.get(b"key").unwrap().expect("the key survives");
        assert_eq!(&*item.value, b"value");
        e.close().unwrap();
    }
}
