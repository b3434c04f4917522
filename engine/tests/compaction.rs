//! Compaction: space is reclaimed, nothing live is lost, values handed out
//! before stay readable, concurrent overwrites win, tombstones and expired
//! records do not resurrect older versions, and crashes at any point of a
//! compaction leave a directory that reopens to exactly the same contents.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;

use engine::{Condition, Durability, Engine, Meta, Options};

fn opts() -> Options {
    Options {
        durability: Durability::None,
        max_file_size: 64 << 10,
        background_compaction: false,
        compaction_rate: 0,
        ..Options::default()
    }
}

fn key(k: u32) -> Vec<u8> {
    format!("key-{k:05}").into_bytes()
}

fn value(k: u32, round: u32) -> Vec<u8> {
    let mut v = format!("{k}:{round}:").into_bytes();
    v.resize(100 + (k % 7) as usize * 10, b'a' + (round % 26) as u8);
    v
}

fn put(e: &Engine, k: &[u8], v: &[u8]) {
    e.put(k, v, Meta::default(), Condition::Always)
        .expect("put");
}

fn contents(e: &Engine, keys: u32) -> BTreeMap<u32, Vec<u8>> {
    (0..keys)
        .filter_map(|k| e.get(&key(k)).expect("get").map(|i| (k, i.value.to_vec())))
        .collect()
}

fn hst_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hst") || n.ends_with(".compacting"))
        .collect();
    v.sort();
    v
}

fn disk_bytes(dir: &Path) -> u64 {
    hst_files(dir)
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).expect("meta").len())
        .sum()
}

#[test]
fn overwrites_are_reclaimed_and_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    const KEYS: u32 = 300;
    for round in 0..10 {
        for k in 0..KEYS {
            put(&e, &key(k), &value(k, round));
        }
    }
    // A value handed out before compaction stays readable after its file
    // is unlinked.
    let held = e.get(&key(0)).expect("get").expect("live");
    let before = e.stats();
    let expected = contents(&e, KEYS);
    let report = e.compact().expect("compact");
    assert!(report.files_in > 0, "{report:?}");
    assert!(report.bytes_out < report.bytes_in, "{report:?}");
    let after = e.stats();
    assert_eq!(after.live_bytes, before.live_bytes);
    assert!(after.dead_bytes < before.dead_bytes / 4, "{after:?}");
    assert!(after.files < before.files, "{after:?}");
    assert_eq!(after.compactions, 1);
    assert_eq!(contents(&e, KEYS), expected);
    assert_eq!(&*held.value, &value(0, 9)[..]);
    drop(held);
    // Nothing left to do.
    assert_eq!(e.compact().expect("again").files_in, 0);
    e.close().expect("close");

    let e = Engine::open(dir.path(), opts()).expect("reopen");
    assert_eq!(contents(&e, KEYS), expected);
    let s = e.stats();
    assert_eq!(s.keys, u64::from(KEYS));
    // Space amplification after compaction: the live data plus the sealed
    // indexes and the (empty, preallocated) active file.
    let live = s.live_bytes;
    let sealed: u64 = disk_bytes(dir.path()) - s.active_file_bytes.max(64 << 10);
    assert!(
        sealed as f64 <= 1.5 * live as f64,
        "{sealed} on disk for {live} live"
    );
}

#[test]
fn tombstones_and_expired_records_do_not_resurrect_older_versions() {
    static NOW: AtomicU32 = AtomicU32::new(1_000_000);
    fn clock() -> u32 {
        NOW.load(Ordering::SeqCst)
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Options { clock, ..opts() };
    let e = Engine::open(dir.path(), o.clone()).expect("open");
    let filler = |e: &Engine, tag: u32| {
        for k in 0..200 {
            put(e, format!("fill-{tag}-{k}").as_bytes(), &[b'f'; 300]);
        }
    };
    put(&e, b"gone", b"old value");
    put(&e, b"expiring", b"old value");
    filler(&e, 1);
    e.delete(b"gone").expect("delete");
    e.put(
        b"expiring",
        b"new value",
        Meta {
            flags: 0,
            expiry: 1_000_010,
        },
        Condition::Always,
    )
    .expect("put");
    // Make the files holding the tombstone and the expiring record garbage.
    for k in 0..200 {
        e.delete(format!("fill-1-{k}").as_bytes()).expect("delete");
    }
    filler(&e, 2);
    NOW.store(1_000_020, Ordering::SeqCst);
    for _ in 0..3 {
        e.compact().expect("compact");
    }
    assert!(e.get(b"gone").expect("get").is_none());
    assert!(e.get(b"expiring").expect("get").is_none());
    e.close().expect("close");
    let e = Engine::open(dir.path(), o).expect("reopen");
    assert!(e.get(b"gone").expect("get").is_none(), "tombstone lost");
    assert!(
        e.get(b"expiring").expect("get").is_none(),
        "old version back"
    );
    assert!(e.get(b"fill-2-5").expect("get").is_some());
}

#[test]
fn concurrent_overwrite_wins_over_the_copy() {
    // Writers overwrite keys while compaction moves them; after everything,
    // each key holds its writer's last value, also after a restart.
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Arc::new(Engine::open(dir.path(), opts()).expect("open"));
    const KEYS: u32 = 200;
    for k in 0..KEYS {
        put(&e, &key(k), &value(k, 0));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u32)
        .map(|w| {
            let e = e.clone();
            thread::spawn(move || {
                for round in 1..=30 {
                    for k in (w..KEYS).step_by(2) {
                        put(&e, &key(k), &value(k, round));
                    }
                }
            })
        })
        .collect();
    let compactor = {
        let e = e.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += e.compact().expect("compact").files_in;
            }
            n
        })
    };
    for w in writers {
        w.join().expect("writer");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        compactor.join().expect("compactor") > 0,
        "no compaction ran"
    );
    let expected: BTreeMap<u32, Vec<u8>> = (0..KEYS).map(|k| (k, value(k, 30))).collect();
    assert_eq!(contents(&e, KEYS), expected);
    e.compact().expect("compact");
    assert_eq!(contents(&e, KEYS), expected);
    drop(e);
    let e = Engine::open(dir.path(), opts()).expect("reopen");
    assert_eq!(contents(&e, KEYS), expected);
}

#[test]
fn crash_between_rename_and_unlink_keeps_the_same_state() {
    // Simulates the window where the outputs are renamed but the old files
    // not yet unlinked: restore copies of the old files after compacting.
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    const KEYS: u32 = 150;
    for round in 0..6 {
        for k in 0..KEYS {
            put(&e, &key(k), &value(k, round));
        }
        e.delete(&key(round)).expect("delete");
    }
    let saved: Vec<(String, Vec<u8>)> = hst_files(dir.path())
        .into_iter()
        .map(|n| {
            let b = std::fs::read(dir.path().join(&n)).expect("read");
            (n, b)
        })
        .collect();
    let expected = contents(&e, KEYS);
    assert!(e.compact().expect("compact").files_in > 0);
    e.crash_for_tests();
    for (n, b) in &saved {
        let p = dir.path().join(n);
        if !p.exists() {
            std::fs::write(&p, b).expect("restore");
        }
    }
    // And an unfinished output of a later compaction.
    std::fs::write(
        dir.path().join("00000999.hst.compacting"),
        b"HSTABLE\0partial",
    )
    .expect("temp");
    let e = Engine::open(dir.path(), opts()).expect("reopen");
    assert_eq!(contents(&e, KEYS), expected);
    assert!(!hst_files(dir.path())
        .iter()
        .any(|n| n.ends_with(".compacting")));
    // The duplicates are garbage the next compaction reclaims.
    e.compact().expect("compact");
    assert_eq!(contents(&e, KEYS), expected);
    drop(e);
    let e = Engine::open(dir.path(), opts()).expect("reopen");
    assert_eq!(contents(&e, KEYS), expected);
}

#[test]
fn background_compaction_bounds_space_under_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(
        dir.path(),
        Options {
            background_compaction: true,
            compaction_interval: std::time::Duration::from_millis(20),
            ..opts()
        },
    )
    .expect("open");
    const KEYS: u32 = 400;
    for round in 0..25 {
        for k in 0..KEYS {
            put(&e, &key(k), &value(k, round));
        }
    }
    // Let it catch up (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let s = e.stats();
        if s.compactions > 0 && (s.live_bytes + s.dead_bytes) as f64 <= 2.0 * s.live_bytes as f64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not catch up: {s:?}"
        );
        e.request_compaction();
        thread::sleep(std::time::Duration::from_millis(20));
    }
    let expected: BTreeMap<u32, Vec<u8>> = (0..KEYS).map(|k| (k, value(k, 24))).collect();
    assert_eq!(contents(&e, KEYS), expected);
}

/// A compaction drops a tombstone once no file outside its group holds an
/// older version, but the group's old files are unlinked one by one: if the
/// file with the older Put survives (a failed unlink, a crash between two
/// unlinks) while the tombstone's file is gone, the deleted key must still
/// not come back at the next open.
#[test]
fn a_failed_unlink_of_a_compacted_file_does_not_bring_a_deleted_key_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    put(&e, b"gone", b"deleted later");
    for k in 0..600 {
        put(&e, &key(k), &value(k, 0));
    }
    assert!(e.delete(b"gone").expect("delete").result);
    for k in 0..600 {
        put(&e, &key(k), &value(k, 1));
    }
    let s = e.stats();
    assert!(s.files >= 3, "several files: {s:?}");
    // File 1 holds the Put of "gone"; its unlink fails.
    e.fail_unlink_for_tests(1);
    let report = e.compact().expect("compact");
    assert!(report.files_in >= 2, "{report:?}");
    assert!(e.get(b"gone").expect("get").is_none());
    assert!(
        dir.path().join("00000001.hst").exists(),
        "the injected failure left the old file"
    );
    e.close().expect("close");

    let e = Engine::open(dir.path(), opts()).expect("reopen");
    assert!(
        e.get(b"gone").expect("get").is_none(),
        "a deleted key came back"
    );
    let want: BTreeMap<u32, Vec<u8>> = (0..600).map(|k| (k, value(k, 1))).collect();
    assert_eq!(contents(&e, 600), want);
    assert!(!dir.path().join("00000001.hst").exists());
}

/// Sequence numbers are CAS values: a clean reopen must continue above
/// every one handed out, also when compaction dropped the records that
/// held the highest ones (tombstones nothing needs any more).
#[test]
fn compaction_and_a_clean_reopen_never_reissue_a_sequence_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    for k in 0..50 {
        put(&e, &key(k), &value(k, 0));
    }
    for k in 0..50 {
        assert!(e.delete(&key(k)).expect("delete").result);
    }
    let highest = e.stats().last_seq;
    e.close().expect("close");

    // Every record is droppable now: the Puts are dead, and no file but
    // the group could hold an older version for the tombstones.
    let e = Engine::open(dir.path(), opts()).expect("reopen");
    e.compact().expect("compact");
    assert_eq!(contents(&e, 50), BTreeMap::new());
    e.close().expect("close");

    let e = Engine::open(dir.path(), opts()).expect("reopen after compaction");
    assert!(
        e.stats().last_seq >= highest,
        "numbering restarts at {} below {highest}",
        e.stats().last_seq
    );
    let seq = match e
        .put(b"after", b"v", Meta::default(), Condition::Always)
        .expect("put")
        .result
    {
        engine::PutOutcome::Stored { seq } => seq,
        other => panic!("expected Stored, got {other:?}"),
    };
    assert!(
        seq > highest,
        "sequence number {seq} reissued (had {highest})"
    );
}
