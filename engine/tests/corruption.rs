//! Corrupt bytes anywhere in a store: the engine opens (and then serves
//! only values that were written, or reports a corrupt record) or refuses
//! to open with an error naming the file; it never crashes (no panic, no
//! SIGBUS) and never serves a value nobody wrote.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::{Condition, Durability, Engine, Meta, OpenError, Options, ReadError};

fn opts() -> Options {
    Options {
        durability: Durability::None,
        max_file_size: 16 << 10,
        background_compaction: false,
        ..Options::default()
    }
}

/// splitmix64: a seeded, dependency-free generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn hst_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|d| d.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "hst"))
        .collect();
    v.sort();
    v
}

/// Every value ever written, by key.
type Written = HashMap<Vec<u8>, Vec<Vec<u8>>>;

/// A store over several files with overwrites, deletes and a compaction;
/// `crashed` leaves the last files unsealed (recovery scans them).
fn build_store(dir: &Path, rng: &mut Rng, crashed: bool) -> Written {
    let e = Engine::open(dir, opts()).expect("open");
    let mut written = Written::new();
    for i in 0..400u64 {
        let key = format!("key{:03}", rng.below(120)).into_bytes();
        if i % 9 == 8 {
            e.delete(&key).expect("delete");
            continue;
        }
        let len = 10 + rng.below(300) as usize;
        let value: Vec<u8> = format!("{i}:")
            .bytes()
            .chain(std::iter::repeat_n(b'a' + (i % 26) as u8, len))
            .collect();
        e.put(&key, &value, Meta::default(), Condition::Always)
            .expect("put");
        written.entry(key).or_default().push(value);
        if i == 250 {
            e.compact().expect("compact");
        }
    }
    if crashed {
        e.crash_for_tests();
    } else {
        e.close().expect("close");
    }
    written
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("list") {
        let p = entry.expect("entry").path();
        std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
    }
}

/// Every key reads as missing, as a value that was written for it, or as a
/// reported corruption; so does every entry of a full snapshot.
fn check_served(e: &Engine, written: &Written, what: &str) {
    for (key, values) in written {
        match e.get(key) {
            Ok(None) | Err(ReadError::Corrupt { .. }) => {}
            Ok(Some(item)) => assert!(
                values.iter().any(|v| v[..] == *item.value),
                "{what}: {} served a value never written",
                String::from_utf8_lossy(key)
            ),
            Err(other) => panic!("{what}: unexpected read error {other}"),
        }
    }
    for entry in e.snapshot().iter() {
        let Ok(entry) = entry else { continue };
        let values = written
            .get(&entry.key[..])
            .unwrap_or_else(|| panic!("{what}: a key never written: {:?}", entry.key));
        assert!(
            values.iter().any(|v| v[..] == *entry.item.value),
            "{what}: the snapshot served a value never written"
        );
    }
}

/// Opens the corrupted copy; if it opens, checks what it serves, compacts,
/// writes, and checks again after a reopen.
fn open_and_check(dir: &Path, written: &Written, what: &str) -> bool {
    match Engine::open(dir, opts()) {
        Ok(e) => {
            check_served(&e, written, what);
            // Compaction over corrupt files must not crash or copy garbage.
            let _ = e.compact();
            check_served(&e, written, what);
            e.close().expect("close");
            let e = Engine::open(dir, opts())
                .unwrap_or_else(|err| panic!("{what}: reopen after repair: {err}"));
            check_served(&e, written, what);
            true
        }
        Err(err @ (OpenError::Corrupt { .. } | OpenError::UnsupportedVersion { .. })) => {
            let msg = err.to_string();
            assert!(
                msg.contains(".hst") || msg.contains("SEED"),
                "{what}: the error names no file: {err}"
            );
            false
        }
        Err(other) => panic!("{what}: unexpected open error: {other}"),
    }
}

#[test]
fn random_flips_and_truncations_of_every_file_never_crash_or_lie() {
    let started = Instant::now();
    let (mut opened, mut refused) = (0u32, 0u32);
    for (seed, crashed) in [(1u64, false), (2, true), (3, false), (4, true)] {
        let mut rng = Rng(seed);
        let base = tempfile::tempdir().expect("tempdir");
        let written = build_store(base.path(), &mut rng, crashed);
        let mut files = hst_files(base.path());
        assert!(files.len() >= 3, "want several files, got {}", files.len());
        // The key-hash seed is one of the store's files too.
        files.push(base.path().join("SEED"));
        for file in &files {
            let name = file.file_name().expect("name").to_owned();
            let len = std::fs::metadata(file).expect("metadata").len();
            // 6 single flips, 2 bursts of 16 flips, 4 truncations per file.
            for case in 0..12u32 {
                let copy = tempfile::tempdir().expect("tempdir");
                copy_dir(base.path(), copy.path());
                let target = copy.path().join(&name);
                let what = match case {
                    0..=7 => {
                        let f = std::fs::OpenOptions::new()
                            .read(true)
                            .write(true)
                            .open(&target)
                            .expect("open copy");
                        let flips = if case < 6 { 1 } else { 16 };
                        let mut at = Vec::new();
                        for _ in 0..flips {
                            let off = rng.below(len);
                            let mut b = [0u8];
                            f.read_exact_at(&mut b, off).expect("read");
                            b[0] ^= 1 + rng.below(255) as u8;
                            f.write_all_at(&b, off).expect("write");
                            at.push(off);
                        }
                        format!("seed {seed} {name:?} flipped at {at:?}")
                    }
                    _ => {
                        let cut = rng.below(len);
                        std::fs::OpenOptions::new()
                            .write(true)
                            .open(&target)
                            .expect("open copy")
                            .set_len(cut)
                            .expect("truncate");
                        format!("seed {seed} {name:?} cut to {cut}")
                    }
                };
                if open_and_check(copy.path(), &written, &what) {
                    opened += 1;
                } else {
                    refused += 1;
                }
            }
        }
    }
    eprintln!(
        "corruption cases: {opened} opened, {refused} refused, {:?}",
        started.elapsed()
    );
    assert!(opened > 0, "no corrupted store opened at all");
}

/// A sealed file keeps the map it was written through, longer than the
/// file once it is cut to its sealed length. A record length corrupted to
/// reach past the end of the file (but not of the map) must be refused,
/// not read (which would be SIGBUS).
#[test]
fn a_corrupt_length_past_a_sealed_file_is_an_error_not_sigbus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Options {
        max_file_size: 64 << 10,
        ..opts()
    };
    let e = Engine::open(dir.path(), o).expect("open");
    for i in 0..10u32 {
        e.put(
            format!("key{i}").as_bytes(),
            &[b'v'; 100],
            Meta::default(),
            Condition::Always,
        )
        .expect("put");
    }
    // Does not fit in what is left: file 1 rolls over with ~1 KiB used.
    e.put(
        b"big",
        &vec![b'b'; 63 << 10],
        Meta::default(),
        Condition::Always,
    )
    .expect("put big");
    let first = dir.path().join("00000001.hst");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&first).expect("metadata").len() >= 64 << 10 {
        assert!(Instant::now() < deadline, "the roller never sealed file 1");
        std::thread::sleep(Duration::from_millis(5));
    }
    // key0's record is the first: value_len at file offset 16 + 8.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .expect("open");
    f.write_all_at(&50_000u32.to_le_bytes(), 16 + 8)
        .expect("corrupt the length");
    match e.get(b"key0") {
        Err(ReadError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, first);
            assert_eq!(offset, 16);
        }
        other => panic!("expected a corrupt record, got {other:?}"),
    }
    assert_eq!(
        &*e.get(b"key1").expect("get").expect("key1").value,
        &[b'v'; 100]
    );
    let _ = e.snapshot().iter().count();
}
