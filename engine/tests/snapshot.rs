//! Snapshots: later writes are invisible, iteration yields every live key
//! exactly once, and compaction neither breaks a snapshot nor is held back
//! by one beyond its files' lifetime.

use std::collections::BTreeMap;

use engine::{Condition, Durability, Engine, Meta, Options};

fn opts() -> Options {
    Options {
        durability: Durability::None,
        max_file_size: 32 << 10,
        background_compaction: false,
        compaction_rate: 0,
        ..Options::default()
    }
}

fn put(e: &Engine, k: &str, v: &str) -> u64 {
    match e
        .put(
            k.as_bytes(),
            v.as_bytes(),
            Meta::default(),
            Condition::Always,
        )
        .expect("put")
        .result
    {
        engine::PutOutcome::Stored { seq } => seq,
        other => panic!("{other:?}"),
    }
}

fn collect(s: &engine::Snapshot) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for entry in s.iter() {
        let entry = entry.expect("entry");
        let k = String::from_utf8(entry.key.to_vec()).expect("utf8");
        let v = String::from_utf8(entry.item.value.to_vec()).expect("utf8");
        assert!(m.insert(k.clone(), v).is_none(), "key {k} yielded twice");
    }
    m
}

#[test]
fn later_writes_are_invisible_and_iteration_is_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    let mut model = BTreeMap::new();
    for i in 0..500 {
        let k = format!("k{}", i % 200);
        let v = format!("v{i}-{}", "x".repeat(i % 50));
        put(&e, &k, &v);
        model.insert(k, v);
    }
    for i in 0..20 {
        let k = format!("k{i}");
        e.delete(k.as_bytes()).expect("delete");
        model.remove(&k);
    }
    let snap = e.snapshot();
    assert_eq!(e.stats().snapshots, 1);
    // Overwrite, delete, add and clear after the snapshot.
    for i in 0..200 {
        put(&e, &format!("k{i}"), "later");
    }
    e.delete(b"k150").expect("delete");
    put(&e, "new-key", "later");
    for (k, v) in &model {
        let item = snap.get(k.as_bytes()).expect("get").expect("visible");
        assert_eq!(&*item.value, v.as_bytes(), "{k}");
    }
    assert!(snap.get(b"k3").expect("get").is_none(), "deleted before");
    assert!(snap.get(b"new-key").expect("get").is_none(), "added after");
    assert_eq!(collect(&snap), model);
    e.clear().expect("clear");
    assert_eq!(collect(&snap), model, "clear after the snapshot");

    // Compaction while the snapshot lives: files go, the snapshot stays.
    let report = e.compact().expect("compact");
    assert!(report.files_in > 0);
    assert_eq!(collect(&snap), model);
    assert_eq!(
        &*snap.get(b"k100").expect("get").expect("k100").value,
        model["k100"].as_bytes()
    );
    assert!(e.stats().superseded_versions > 0);
    drop(snap);
    let s = e.stats();
    assert_eq!((s.snapshots, s.superseded_versions), (0, 0));
    assert!(e.snapshot().iter().next().is_none(), "cleared");
}

#[test]
fn snapshot_iteration_sees_moved_records_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    let mut model = BTreeMap::new();
    for round in 0..5 {
        for i in 0..300 {
            let (k, v) = (format!("key{i}"), format!("r{round}-{i}"));
            put(&e, &k, &v);
            model.insert(k, v);
        }
    }
    // Compact first, then snapshot, then compact again and overwrite.
    e.compact().expect("compact");
    let snap = e.snapshot();
    for i in 0..300 {
        put(&e, &format!("key{i}"), "after");
    }
    e.compact().expect("compact");
    assert_eq!(collect(&snap), model);
    drop(snap);
    e.close().expect("close");
    let e = Engine::open(dir.path(), opts()).expect("reopen");
    let all = collect(&e.snapshot());
    assert_eq!(all.len(), 300);
    assert!(all.values().all(|v| v == "after"));
}
