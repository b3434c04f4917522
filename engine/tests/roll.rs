//! Roll-over: a full HSTable is sealed, and the next one preallocated, off
//! the writing thread. What that must not change: a write that rolls the
//! file returns without waiting for the seal, tickets still mean "on disk"
//! (a group commit syncs full files not yet sealed), snapshots iterate
//! unsealed files, a crash before the seals recovers every record, and
//! close leaves every file sealed.

use std::path::Path;

use engine::inspect::verify_dir;
use engine::{Condition, Durability, Engine, Meta, Options};

const FILE: u64 = 4096;

fn opts(durability: Durability) -> Options {
    Options {
        durability,
        max_file_size: FILE,
        background_compaction: false,
        ..Options::default()
    }
}

fn key(k: u32) -> Vec<u8> {
    format!("key-{k:05}").into_bytes()
}

fn value(k: u32) -> Vec<u8> {
    let mut v = format!("{k}:").into_bytes();
    v.resize(300, b'v');
    v
}

/// Writes keys `0..n` (about a dozen per 4 KiB file); returns the last ticket.
fn fill(e: &Engine, n: u32) -> engine::SyncTicket {
    let mut last = engine::SyncTicket::DURABLE;
    for k in 0..n {
        last = e
            .put(&key(k), &value(k), Meta::default(), Condition::Always)
            .expect("put")
            .ticket;
    }
    last
}

fn check_all(e: &Engine, n: u32) {
    for k in 0..n {
        let got = e.get(&key(k)).expect("get").expect("present");
        assert_eq!(&*got.value, &value(k)[..], "key {k}");
    }
}

/// (sealed, unsealed) HSTables in `dir`, which no engine may have open.
fn seal_counts(dir: &Path) -> (usize, usize) {
    let report = verify_dir(dir).expect("verify");
    assert!(report.is_clean(), "{report:?}");
    let sealed = report.files.iter().filter(|f| f.sealed).count();
    (sealed, report.files.len() - sealed)
}

#[test]
fn a_write_that_rolls_the_file_does_not_wait_for_the_seal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
    e.hold_roll_over_for_tests(true);
    // Every write returns while no full file can be sealed, and every value
    // reads back, from full files and the active one alike.
    fill(&e, 100);
    check_all(&e, 100);
    let files = e.stats().files;
    assert!(files >= 5, "the writes filled several files: {files}");
    // A snapshot iterates the full files without their sealed index too.
    let snap = e.snapshot();
    let mut seen: Vec<Vec<u8>> = snap
        .iter()
        .map(|r| r.expect("entry").key.to_vec())
        .collect();
    seen.sort();
    let mut all: Vec<Vec<u8>> = (0..100).map(key).collect();
    all.sort();
    assert_eq!(seen, all, "snapshot iteration");
    drop(snap);
    e.crash_for_tests();
    // Nothing was sealed: the writers never did it themselves.
    let (sealed, unsealed) = seal_counts(dir.path());
    assert_eq!(sealed, 0, "a writer sealed a file itself");
    assert!(
        unsealed as u64 >= files - 1,
        "{unsealed} unsealed of {files}"
    );

    // Recovery scans every one of them, not only the last.
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("reopen");
    check_all(&e, 100);
    e.close().expect("close");
    let (sealed, unsealed) = seal_counts(dir.path());
    assert_eq!(unsealed, 0);
    assert!(sealed as u64 >= files - 1);
}

#[test]
fn close_seals_every_full_file_and_leaves_no_spare() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
    fill(&e, 100);
    let files = e.stats().files;
    e.close().expect("close");
    let (sealed, unsealed) = seal_counts(dir.path());
    assert_eq!(unsealed, 0, "close left a file unsealed");
    // Exactly the engine's files: no preallocated spare was left behind.
    assert_eq!(sealed as u64, files);
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("reopen");
    check_all(&e, 100);
}

#[test]
fn a_ticket_is_durable_only_once_the_full_files_before_it_are_synced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::Always)).expect("open");
    e.hold_roll_over_for_tests(true);
    let before = e.stats().syncs;
    let last = fill(&e, 60);
    let full = e.stats().files - 1;
    assert!(full >= 3, "{full} full files");
    e.wait_durable(last).expect("durable");
    // The roller synced none of them (it is held): the group commit that
    // completed the ticket synced each full file as well as the active one.
    let synced = e.stats().syncs - before;
    assert!(
        synced > full,
        "{synced} fdatasyncs for {full} full files and the active one"
    );
    e.crash_for_tests();
    let e = Engine::open(dir.path(), opts(Durability::Always)).expect("reopen");
    check_all(&e, 60);
}

/// Under durability `none` the roller seals full files without a sync. Close
/// must sync them (a clean close means everything is on disk), and so must
/// compaction before it unlinks the old versions their records replaced.
#[test]
fn under_none_close_and_compaction_sync_the_rolled_files() {
    for compact in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
        fill(&e, 60);
        // Overwrites: the first files become garbage compaction can drop.
        fill(&e, 60);
        let full = e.stats().files - 1;
        assert!(full >= 6, "{full} full files");
        // Let the roller seal them (without a sync, under `none`).
        e.sync().ok();
        let before = e.stats().syncs;
        fill(&e, 40);
        let rolled = e.stats().files - 1 - full;
        assert!(rolled >= 2, "{rolled} more full files");
        std::thread::sleep(std::time::Duration::from_millis(200));
        if compact {
            e.compact().expect("compact");
        } else {
            e.close().expect("close");
        }
        let synced = e.stats().syncs - before;
        assert!(
            synced > rolled,
            "compact {compact}: {synced} fdatasyncs for {rolled} rolled files and the active one"
        );
    }
}
