//! Behaviour of the public API: operations, conditions, expiry, restart,
//! locking, durability tickets and the poisoned state.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use engine::{
    Condition, Durability, Engine, Meta, OpenError, Options, PutOutcome, Update, WriteError,
};

fn opts(durability: Durability) -> Options {
    Options {
        durability,
        max_file_size: 64 << 10,
        ..Options::default()
    }
}

fn meta(flags: u32) -> Meta {
    Meta { flags, expiry: 0 }
}

fn stored(seq_of: PutOutcome) -> u64 {
    match seq_of {
        PutOutcome::Stored { seq } => seq,
        other => panic!("expected Stored, got {other:?}"),
    }
}

#[test]
fn put_get_delete_and_conditions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
    assert!(e.get(b"a").expect("get").is_none());

    let s1 = stored(
        e.put(b"a", b"one", meta(5), Condition::Always)
            .expect("put")
            .result,
    );
    let item = e.get(b"a").expect("get").expect("present");
    assert_eq!(&*item.value, b"one");
    assert_eq!((item.flags, item.expiry, item.seq), (5, 0, s1));

    assert_eq!(
        e.put(b"a", b"x", meta(0), Condition::IfAbsent)
            .expect("add")
            .result,
        PutOutcome::NotStored
    );
    assert_eq!(
        e.put(b"b", b"x", meta(0), Condition::IfPresent)
            .expect("replace")
            .result,
        PutOutcome::NotStored
    );
    assert_eq!(
        e.put(b"b", b"x", meta(0), Condition::IfSeq(1))
            .expect("cas")
            .result,
        PutOutcome::NotFound
    );
    assert_eq!(
        e.put(b"a", b"x", meta(0), Condition::IfSeq(s1 + 100))
            .expect("cas")
            .result,
        PutOutcome::Exists
    );
    let s2 = stored(
        e.put(b"a", b"two", meta(0), Condition::IfSeq(s1))
            .expect("cas")
            .result,
    );
    assert!(s2 > s1);
    stored(
        e.put(b"b", b"bee", meta(0), Condition::IfAbsent)
            .expect("add")
            .result,
    );
    stored(
        e.put(b"b", b"bee2", meta(0), Condition::IfPresent)
            .expect("replace")
            .result,
    );
    assert_eq!(&*e.get(b"b").expect("get").expect("b").value, b"bee2");

    assert!(e.delete(b"a").expect("delete").result);
    assert!(!e.delete(b"a").expect("delete again").result);
    assert!(e.get(b"a").expect("get").is_none());

    // Read-modify-write: append.
    let r = e
        .update(b"b", |cur| {
            let mut v = cur.map(|i| i.value.to_vec()).unwrap_or_default();
            v.extend_from_slice(b"+tail");
            (
                Update::Put {
                    value: v,
                    meta: meta(9),
                },
                "appended",
            )
        })
        .expect("update");
    assert_eq!(r.result, "appended");
    let b = e.get(b"b").expect("get").expect("b");
    assert_eq!((&*b.value, b.flags), (&b"bee2+tail"[..], 9));
    let kept = e
        .update(b"missing", |cur| (Update::Keep, cur.is_none()))
        .expect("keep");
    assert!(kept.result);
    assert!(e.is_durable(kept.ticket));
    e.update(b"b", |_| (Update::Delete, ()))
        .expect("update delete");
    assert!(e.get(b"b").expect("get").is_none());

    assert!(matches!(
        e.put(b"", b"v", meta(0), Condition::Always),
        Err(WriteError::KeyTooLarge { .. })
    ));
}

#[test]
fn clear_survives_restart_and_later_writes_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
        for i in 0..100u32 {
            e.put(format!("k{i}").as_bytes(), b"v", meta(0), Condition::Always)
                .expect("put");
        }
        e.clear().expect("clear");
        assert_eq!(e.stats().keys, 0);
        e.put(b"after", b"yes", meta(0), Condition::Always)
            .expect("put");
        e.close().expect("close");
    }
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("reopen");
    assert!(e.get(b"k1").expect("get").is_none());
    assert_eq!(
        &*e.get(b"after").expect("get").expect("after").value,
        b"yes"
    );
    assert_eq!(e.stats().keys, 1);
}

static NOW: AtomicU32 = AtomicU32::new(1_000_000);
fn test_clock() -> u32 {
    NOW.load(Ordering::SeqCst)
}

#[test]
fn expired_records_read_as_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Options {
        clock: test_clock,
        ..opts(Durability::None)
    };
    let e = Engine::open(dir.path(), o).expect("open");
    let m = Meta {
        flags: 0,
        expiry: 1_000_010,
    };
    e.put(b"t", b"v", m, Condition::Always).expect("put");
    assert!(e.get(b"t").expect("get").is_some());
    NOW.store(1_000_010, Ordering::SeqCst);
    assert!(e.get(b"t").expect("get").is_none());
    // An expired key counts as absent for add, and as missing for delete.
    assert!(!e.delete(b"t").expect("delete").result);
    stored(
        e.put(b"t", b"new", meta(0), Condition::IfAbsent)
            .expect("add")
            .result,
    );
    assert_eq!(&*e.get(b"t").expect("get").expect("t").value, b"new");
}

#[test]
fn values_survive_restart_and_roll_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let value = |i: u32| format!("value-{i}-{}", "x".repeat((i % 200) as usize)).into_bytes();
    {
        let e = Engine::open(
            dir.path(),
            opts(Durability::Interval(Duration::from_millis(5))),
        )
        .expect("open");
        for i in 0..3000u32 {
            e.put(
                format!("key{i}").as_bytes(),
                &value(i),
                meta(i),
                Condition::Always,
            )
            .expect("put");
        }
        for i in (0..3000u32).step_by(3) {
            e.delete(format!("key{i}").as_bytes()).expect("delete");
        }
        let s = e.stats();
        assert!(s.files > 3, "expected roll-overs, got {} files", s.files);
        assert_eq!(s.keys, 2000);
        e.close().expect("close");
        assert!(matches!(
            e.put(b"k", b"v", meta(0), Condition::Always),
            Err(WriteError::Closed)
        ));
        e.close().expect("close is idempotent");
    }
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("reopen");
    let s = e.stats();
    assert_eq!(s.keys, 2000);
    assert_eq!(s.bad_records, 0);
    for i in 0..3000u32 {
        let got = e.get(format!("key{i}").as_bytes()).expect("get");
        if i % 3 == 0 {
            assert!(got.is_none(), "key{i} was deleted");
        } else {
            let item = got.expect("present");
            assert_eq!(&*item.value, &value(i)[..]);
            assert_eq!(item.flags, i);
        }
    }
    // A value outlives the engine that handed it out.
    let v = e.get(b"key1").expect("get").expect("key1").value;
    drop(e);
    assert_eq!(&*v, &value(1)[..]);
}

#[test]
fn second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
    match Engine::open(dir.path(), opts(Durability::None)) {
        Err(OpenError::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    e.close().expect("close");
    Engine::open(dir.path(), opts(Durability::None)).expect("open after close");
}

#[test]
fn always_tickets_complete_by_wait_and_callback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::Always)).expect("open");
    let w = e.put(b"a", b"1", meta(0), Condition::Always).expect("put");
    e.wait_durable(w.ticket).expect("durable");
    assert!(e.is_durable(w.ticket));
    let w2 = e.put(b"b", b"2", meta(0), Condition::Always).expect("put");
    let (tx, rx) = mpsc::channel();
    e.on_durable(
        w2.ticket,
        Box::new(move |r| tx.send(r.is_ok()).expect("send")),
    );
    assert!(rx
        .recv_timeout(Duration::from_secs(10))
        .expect("callback ran"));
    assert!(e.stats().syncs >= 1);
}

#[test]
fn failed_sync_poisons_writes_but_keeps_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::Always)).expect("open");
    let ok = e
        .put(b"kept", b"v1", meta(0), Condition::Always)
        .expect("put");
    e.wait_durable(ok.ticket).expect("durable");
    let w = e
        .put(b"lost", b"v2", meta(0), Condition::Always)
        .expect("put");
    e.fail_next_sync_for_tests();
    assert!(
        e.wait_durable(w.ticket).is_err(),
        "a failed sync must not be reported as success"
    );
    let (tx, rx) = mpsc::channel();
    e.on_durable(
        w.ticket,
        Box::new(move |r| tx.send(r.is_err()).expect("send")),
    );
    assert!(rx
        .recv_timeout(Duration::from_secs(10))
        .expect("callback ran"));
    match e.put(b"more", b"v", meta(0), Condition::Always) {
        Err(WriteError::Poisoned { cause }) => assert!(cause.contains("injected"), "{cause}"),
        other => panic!("expected Poisoned, got {other:?}"),
    }
    assert!(e.sync().is_err());
    assert_eq!(&*e.get(b"kept").expect("get").expect("kept").value, b"v1");
    drop(e);
    let e = Engine::open(dir.path(), opts(Durability::Always)).expect("reopen after poison");
    assert_eq!(&*e.get(b"kept").expect("get").expect("kept").value, b"v1");
    e.put(b"more", b"v", meta(0), Condition::Always)
        .expect("writes work again");
}

#[test]
fn corrupt_record_in_unsealed_file_is_skipped_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
    for i in 0..10u32 {
        e.put(
            format!("key{i}").as_bytes(),
            format!("value{i}").as_bytes(),
            meta(0),
            Condition::Always,
        )
        .expect("put");
    }
    e.crash_for_tests();
    // Flip a byte in the value of key3 in the (only, unsealed) data file.
    let path = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|d| d.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "hst"))
        .expect("data file");
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes
        .windows(6)
        .position(|w| w == b"value3")
        .expect("value3 on disk");
    bytes[at + 5] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write");

    let e = Engine::open(dir.path(), opts(Durability::None)).expect("reopen");
    assert_eq!(e.stats().bad_records, 1);
    assert!(
        e.get(b"key3").expect("get").is_none(),
        "a corrupt record is never served"
    );
    for i in (0..10u32).filter(|&i| i != 3) {
        let item = e
            .get(format!("key{i}").as_bytes())
            .expect("get")
            .expect("present");
        assert_eq!(&*item.value, format!("value{i}").as_bytes());
    }
    // After a crash, sequence numbers (CAS values) jump past any that a lost
    // write may have had.
    let seq = stored(
        e.put(b"new", b"v", meta(0), Condition::Always)
            .expect("put")
            .result,
    );
    assert!(
        seq > 1 << 32,
        "seq {seq} continues too close to the crashed run"
    );
}

#[test]
fn index_ram_per_key_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(
        dir.path(),
        Options {
            max_file_size: 16 << 20,
            ..opts(Durability::None)
        },
    )
    .expect("open");
    for i in 0..50_000u32 {
        e.put(
            format!("{i:016}").as_bytes(),
            b"v",
            meta(0),
            Condition::Always,
        )
        .expect("put");
    }
    let s = e.stats();
    assert_eq!(s.keys, 50_000);
    let per_key = s.index_bytes as f64 / s.keys as f64;
    assert!(per_key <= 32.0, "{per_key} index bytes per key");
}

#[test]
fn engine_and_values_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send + Clone>() {}
    assert_send_sync::<Engine>();
    assert_send::<engine::Value>();
    assert_send::<engine::SyncTicket>();
    assert_send::<WriteError>();
}

#[test]
fn sealed_files_open_from_footer_and_corrupt_reads_carry_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
        e.put(b"good", b"fine-value", meta(0), Condition::Always)
            .expect("put");
        e.put(b"victim", b"precious-value", meta(0), Condition::Always)
            .expect("put");
        e.close().expect("close");
    }
    let path = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|d| d.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "hst"))
        .expect("sealed file");
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes
        .windows(14)
        .position(|w| w == b"precious-value")
        .expect("value on disk");
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).expect("write");

    // The footer is intact, so opening reads no value and sees nothing wrong.
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("reopen");
    assert_eq!(e.stats().bad_records, 0);
    assert_eq!(
        &*e.get(b"good").expect("get").expect("good").value,
        b"fine-value"
    );
    match e.get(b"victim") {
        Err(engine::ReadError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, path);
            assert!(offset > 0 && (offset as usize) < at);
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    assert_eq!(e.stats().bad_records, 1);
}

#[test]
fn disk_full_at_roll_over_is_returned_and_recoverable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
    let big = vec![7u8; 30_000];
    e.put(b"a", &big, meta(0), Condition::Always)
        .expect("first fits");
    e.put(b"b", &big, meta(0), Condition::Always)
        .expect("second fits");
    e.fail_next_roll_over_for_tests();
    // The third needs a new file: the error reaches the caller...
    match e.put(b"c", &big, meta(0), Condition::Always) {
        Err(WriteError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(28)),
        other => panic!("expected ENOSPC, got {other:?}"),
    }
    // ...nothing of it is visible, and once space is back writes go on.
    assert!(e.get(b"c").expect("get").is_none());
    e.put(b"c", &big, meta(0), Condition::Always)
        .expect("retry succeeds");
    for k in [&b"a"[..], b"b", b"c"] {
        assert_eq!(
            e.get(k).expect("get").expect("present").value.len(),
            big.len()
        );
    }
    e.close().expect("close");
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("reopen");
    assert_eq!(e.stats().keys, 3);
}

#[test]
fn a_value_larger_than_a_file_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    {
        let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
        e.put(b"small", b"s", meta(0), Condition::Always)
            .expect("put");
        e.put(b"big", &big, meta(3), Condition::Always)
            .expect("put big");
        e.put(b"after", b"a", meta(0), Condition::Always)
            .expect("put");
        assert_eq!(&*e.get(b"big").expect("get").expect("big").value, &big[..]);
        e.close().expect("close");
    }
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("reopen");
    assert_eq!(&*e.get(b"big").expect("get").expect("big").value, &big[..]);
    assert_eq!(&*e.get(b"after").expect("get").expect("after").value, b"a");
    assert_eq!(&*e.get(b"small").expect("get").expect("small").value, b"s");
}

#[test]
fn huge_page_maps_survive_roll_over_and_reopen() {
    // Files several huge pages long, so sealing truncates a file that may be
    // mapped with 2 MiB folios while its records stay readable.
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Options {
        durability: Durability::None,
        max_file_size: 5 << 20,
        huge_pages: true,
        ..Options::default()
    };
    let value = |i: u32| format!("{i:08}-{}", "v".repeat(90)).into_bytes();
    let e = Engine::open(dir.path(), o.clone()).expect("open");
    for i in 0..60_000u32 {
        e.put(
            format!("{i:016}").as_bytes(),
            &value(i),
            meta(0),
            Condition::Always,
        )
        .expect("put");
    }
    assert!(e.stats().files >= 2);
    let early = e
        .get(format!("{:016}", 7).as_bytes())
        .expect("get")
        .expect("7")
        .value;
    for i in (0..60_000u32).step_by(97) {
        let got = e
            .get(format!("{i:016}").as_bytes())
            .expect("get")
            .expect("present");
        assert_eq!(&*got.value, &value(i)[..]);
    }
    e.close().expect("close");
    assert_eq!(&*early, &value(7)[..]);
    let e = Engine::open(dir.path(), o).expect("reopen");
    for i in (0..60_000u32).step_by(89) {
        let got = e
            .get(format!("{i:016}").as_bytes())
            .expect("get")
            .expect("present");
        assert_eq!(&*got.value, &value(i)[..]);
    }
}

/// Index locations hold 24 bits of file id. A store whose files reached the
/// last id opens and serves reads; new files are refused with a clear error
/// instead of aliasing file 0 on; a file past the last id is refused at open.
#[test]
fn file_ids_past_what_a_location_holds_are_refused() {
    let last = (1u32 << 24) - 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts(Durability::None)).expect("open");
    e.put(b"k", b"v", meta(0), Condition::Always).expect("put");
    e.close().expect("close");
    // The only file becomes the one with the last id.
    let renumber = |id: u32| {
        let from = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|d| d.expect("entry").path())
            .find(|p| p.extension().is_some_and(|x| x == "hst"))
            .expect("data file");
        let mut bytes = std::fs::read(&from).expect("read");
        bytes[12..16].copy_from_slice(&id.to_le_bytes());
        std::fs::remove_file(&from).expect("remove");
        std::fs::write(dir.path().join(format!("{id:08}.hst")), &bytes).expect("write");
    };
    renumber(last);

    let e = Engine::open(dir.path(), opts(Durability::None)).expect("open at the last id");
    assert_eq!(&*e.get(b"k").expect("get").expect("k").value, b"v");
    let err = e
        .put(b"k2", b"v2", meta(0), Condition::Always)
        .expect_err("no file id left");
    assert!(
        err.to_string().contains("past the largest"),
        "unclear error: {err}"
    );
    assert_eq!(&*e.get(b"k").expect("get").expect("k").value, b"v");
    e.close().expect("close");

    renumber(last + 1);
    match Engine::open(dir.path(), opts(Durability::None)) {
        Err(OpenError::Corrupt { reason, .. }) => {
            assert!(reason.contains("past the largest"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
