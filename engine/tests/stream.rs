//! Streaming writes: visible only at commit, nothing left by an abandoned
//! or crashed stream, values larger than a data file in a file of their
//! own, read back in slices of the map.

use engine::{Condition, Durability, Engine, Meta, Options, PutOutcome, WriteError};

fn opts() -> Options {
    Options {
        durability: Durability::None,
        max_file_size: 256 << 10,
        background_compaction: false,
        stream_buffer_limit: 64 << 10,
        ..Options::default()
    }
}

fn big(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".streaming"))
        .collect()
}

fn stream(e: &Engine, key: &[u8], v: &[u8], chunk: usize) -> u64 {
    let seq_of = |e: &Engine| e.get(key).expect("get").map(|i| i.seq);
    let before = seq_of(e);
    let mut w = e
        .put_stream(
            key,
            v.len(),
            Meta {
                flags: 5,
                expiry: 0,
            },
        )
        .expect("begin");
    for c in v.chunks(chunk) {
        w.write(c).expect("chunk");
        assert_eq!(seq_of(e), before, "visible before commit");
    }
    match w.commit(Condition::Always).expect("commit").result {
        PutOutcome::Stored { seq } => seq,
        other => panic!("{other:?}"),
    }
}

#[test]
fn complete_streams_become_visible_at_commit_and_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    let large = big(3 << 20, 1); // 12 data files' worth
    let small = big(10_000, 2); // gathered in memory
    stream(&e, b"large", &large, 64 << 10);
    stream(&e, b"small", &small, 1000);
    let item = e.get(b"large").expect("get").expect("large");
    assert_eq!(item.flags, 5);
    assert_eq!(item.value.len(), large.len());
    // A streaming read: slices of the map, chunk by chunk.
    let mut off = 0;
    for c in item.value.chunks(1 << 20) {
        assert_eq!(c, &large[off..off + c.len()]);
        off += c.len();
    }
    assert_eq!(off, large.len());
    assert_eq!(
        &*e.get(b"small").expect("get").expect("small").value,
        &small[..]
    );
    drop(item);
    // Overwrite the large value: its file is all garbage, compaction drops it.
    stream(&e, b"large", &large[..100_000], 30_000);
    let before = e.stats().files;
    assert!(e.compact().expect("compact").files_in >= 1);
    assert!(e.stats().files < before);
    e.close().expect("close");
    let e = Engine::open(dir.path(), opts()).expect("reopen");
    assert_eq!(
        &*e.get(b"large").expect("get").expect("large").value,
        &large[..100_000]
    );
    assert_eq!(
        &*e.get(b"small").expect("get").expect("small").value,
        &small[..]
    );
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn abandoned_and_short_streams_leave_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    e.put(b"k", b"old", Meta::default(), Condition::Always)
        .expect("put");
    let v = big(500_000, 3);
    {
        let mut w = e.put_stream(b"k", v.len(), Meta::default()).expect("begin");
        w.write(&v[..200_000]).expect("chunk");
        assert_eq!(leftovers(dir.path()).len(), 1);
        // dropped here
    }
    assert!(leftovers(dir.path()).is_empty(), "space not given back");
    assert_eq!(&*e.get(b"k").expect("get").expect("k").value, b"old");

    let mut w = e.put_stream(b"k", 100, Meta::default()).expect("begin");
    assert!(matches!(
        w.write(&[0; 101]),
        Err(WriteError::StreamLength { .. })
    ));
    w.write(&[0; 50]).expect("chunk");
    assert!(matches!(
        w.commit(Condition::Always),
        Err(WriteError::StreamLength {
            declared: 100,
            got: 50
        })
    ));
    assert_eq!(&*e.get(b"k").expect("get").expect("k").value, b"old");

    // Conditions apply at commit.
    let mut w = e.put_stream(b"k", v.len(), Meta::default()).expect("begin");
    w.write(&v).expect("chunk");
    assert_eq!(
        w.commit(Condition::IfAbsent).expect("commit").result,
        PutOutcome::NotStored
    );
    assert!(leftovers(dir.path()).is_empty());
    assert!(matches!(
        e.put_stream(b"k", (1 << 30) + 5, Meta::default()),
        Err(WriteError::ValueTooLarge { .. })
    ));
}

#[test]
fn a_crash_mid_stream_leaves_nothing_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    e.put(b"k", b"old", Meta::default(), Condition::Always)
        .expect("put");
    let v = big(400_000, 4);
    let mut w = e.put_stream(b"k", v.len(), Meta::default()).expect("begin");
    w.write(&v[..300_000]).expect("chunk");
    e.crash_for_tests();
    std::mem::forget(w); // the process died: no destructor runs
    assert_eq!(leftovers(dir.path()).len(), 1);
    let e = Engine::open(dir.path(), opts()).expect("reopen");
    assert!(leftovers(dir.path()).is_empty());
    assert_eq!(&*e.get(b"k").expect("get").expect("k").value, b"old");
    assert_eq!(e.stats().bad_records, 0);
}
