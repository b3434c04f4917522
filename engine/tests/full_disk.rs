//! A real full disk: the store on a size-limited tmpfs, written until the
//! file system is full. Reads go on, writes get a clear error, open works
//! with no room for a new HSTable, and writing resumes once space is freed,
//! with every acknowledged write intact.
//!
//! Mounting needs root. Without it the test says it is skipped, unless
//! `CI=true`, where a missing capability is a failure.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use engine::{Condition, Durability, Engine, Meta, Options, WriteError};

/// Unmounts on drop, also when the test fails.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Option<Mount> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .output()
        .ok()?;
    if out.status.success() {
        Some(Mount(at.to_path_buf()))
    } else {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true: mounting a tmpfs failed ({why}); this test needs root");
        }
        eprintln!("skipped: needs root to mount a size-limited tmpfs ({why})");
        None
    }
}

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
    let mnt = tempfile::tempdir().expect("tempdir");
    let Some(_mount) = mount_tmpfs(mnt.path(), "4m") else {
        return;
    };
    let dir = mnt.path().join("store");
    let mut acked = BTreeMap::new();
    // Someone else's 1 MiB, deleted at the end to give space back.
    let ballast = mnt.path().join("ballast");
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
    let filler = mnt.path().join("filler");
    {
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0xAAu8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }

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
