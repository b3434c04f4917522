//! A real full disk: the store on a size-limited tmpfs, written until the
//! file system is full. Reads go on, writes get a clear error, open works
//! with no room for a new HSTable, and writing resumes once space is freed,
//! with every acknowledged write intact.
//!
//! Mounting needs root. Without it the test says it is skipped, unless
//! `CI=true`, where a missing capability is a failure.

use std::collections::BTreeMap;

use engine::{Condition, Durability, Engine, Meta, Options, WriteError};
use testkit::disk::Tmpfs;

fn opts() -> Options {
    Options {
        durability: Durability::Always,
        max_file_size: 256 << 10,
        background_compaction: false,
        ..Options::default()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    let mut v = format!("{i}:").into_bytes();
    v.resize(2000, b'a' + (i % 26) as u8);
    v
}

fn is_enospc(e: &WriteError) -> bool {
    match e {
        WriteError::Io { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
        _ => false,
    }
}

/// Puts `key(i)` and waits until it is durable; `Err` if either fails.
fn put_acked(e: &Engine, i: u32) -> Result<(), WriteError> {
    let w = e.put(&key(i), &value(i), Meta::default(), Condition::Always)?;
    e.wait_durable(w.ticket)
}

/// The ids of the HSTables in `dir`, sorted.
fn hstable_ids(dir: &std::path::Path) -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            name.to_str()?.strip_suffix(".hst")?.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    ids
}

fn check(e: &Engine, acked: &BTreeMap<u32, ()>) {
    for &i in acked.keys() {
        let item = e
            .get(&key(i))
            .expect("get")
            .unwrap_or_else(|| panic!("acknowledged key {i} lost"));
        assert_eq!(&*item.value, &value(i)[..], "key {i}");
    }
}

#[test]
fn a_full_disk_keeps_reads_refuses_writes_clearly_and_resumes() {
    let Some(mnt) = Tmpfs::or_skip("4m") else {
        return;
    };
    let dir = mnt.path.join("store");
    let mut acked = BTreeMap::new();
    // Someone else's 1 MiB, deleted at the end to give space back.
    let ballast = mnt.path.join("ballast");
    std::fs::write(&ballast, vec![0x55u8; 1 << 20]).expect("ballast");

    // Write until the file system is full.
    let e = Engine::open(&dir, opts()).expect("open");
    let mut i = 0u32;
    let err = loop {
        assert!(i < 10_000, "4 MiB never filled up");
        match put_acked(&e, i) {
            Ok(()) => {
                acked.insert(i, ());
                i += 1;
            }
            Err(err) => break err,
        }
    };
    assert!(is_enospc(&err), "not a disk-full error: {err}");
    assert!(
        err.to_string().contains(".hst"),
        "the error names no file: {err}"
    );
    assert!(acked.len() > 100, "only {} writes fit", acked.len());
    check(&e, &acked);
    e.close().expect("close on a full disk");

    // Take whatever space is left, so open has no room for a new HSTable.
    let filler = mnt.fill("filler");

    let e = Engine::open(&dir, opts()).expect("open on a full disk");
    check(&e, &acked);
    let err = put_acked(&e, i).expect_err("a write on a full disk");
    assert!(is_enospc(&err), "not a disk-full error: {err}");
    check(&e, &acked);

    // Space comes back: writing resumes without a reopen.
    std::fs::remove_file(&filler).expect("remove filler");
    std::fs::remove_file(&ballast).expect("remove ballast");
    put_acked(&e, i).expect("a write once space is freed");
    acked.insert(i, ());
    check(&e, &acked);
    e.close().expect("close");

    let e = Engine::open(&dir, opts()).expect("reopen");
    check(&e, &acked);
    assert_eq!(e.stats().bad_records, 0);
    e.close().expect("close");
}

#[test]
fn a_full_disk_burns_no_file_ids() {
    let Some(mnt) = Tmpfs::or_skip("4m") else {
        return;
    };
    let dir = mnt.path.join("store");
    let ballast = mnt.path.join("ballast");
    std::fs::write(&ballast, vec![0x55u8; 1 << 20]).expect("ballast");
    let e = Engine::open(&dir, opts()).expect("open");
    let mut i = 0u32;
    // Writes go on into the active file's preallocated room while its
    // successor cannot be made, until the roll-over fails.
    while put_acked(&e, i).is_ok() {
        i += 1;
        assert!(i < 10_000, "4 MiB never filled up");
    }
    let before = hstable_ids(&dir);
    std::fs::remove_file(&ballast).expect("remove ballast");
    while hstable_ids(&dir).len() <= before.len() {
        put_acked(&e, i).expect("a write once space is freed");
        i += 1;
    }
    // The file made once there was room takes the next id: the failed
    // attempts while the disk was full cost one per file, not one per write.
    let after = hstable_ids(&dir);
    let newest = *after.last().expect("files");
    assert!(
        newest <= before.last().copied().unwrap_or(0) + 2,
        "file ids burned while the disk was full: {before:?} then {after:?}"
    );
    e.close().expect("close");
}
