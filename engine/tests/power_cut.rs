//! The states a power cut can leave that a killed process cannot: data
//! writes nobody synced are gone while the metadata the journal committed
//! (a file's name, its preallocated size) survives. Each test builds such a
//! state by hand from a store and checks that open copes by itself.

use std::path::{Path, PathBuf};

use engine::{Condition, Durability, Engine, Meta, OpenError, Options};

fn opts() -> Options {
    Options {
        durability: Durability::None,
        max_file_size: 64 << 10,
        background_compaction: false,
        ..Options::default()
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

fn fill(e: &Engine, n: u32) {
    for i in 0..n {
        e.put(
            format!("key{i}").as_bytes(),
            format!("value{i}").as_bytes(),
            Meta::default(),
            Condition::Always,
        )
        .expect("put");
    }
}

fn check(e: &Engine, n: u32) {
    for i in 0..n {
        let item = e
            .get(format!("key{i}").as_bytes())
            .expect("get")
            .unwrap_or_else(|| panic!("key{i} lost"));
        assert_eq!(&*item.value, format!("value{i}").as_bytes());
    }
}

/// The roller's spare (or any new file) after a power cut: full length,
/// its header never written back, so all zeros; or a header torn part way.
#[test]
fn a_preallocated_file_without_its_header_does_not_stop_open() {
    for torn in [0usize, 5, 11] {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Engine::open(dir.path(), opts()).expect("open");
        fill(&e, 20);
        e.close().expect("close");
        let next = hst_files(dir.path()).len() + 1;
        let spare = dir.path().join(format!("{next:08}.hst"));
        let mut bytes = vec![0u8; 64 << 10];
        let header =
            engine::format::encode_file_header(next as u32, engine::format::FORMAT_VERSION);
        bytes[..torn].copy_from_slice(&header[..torn]);
        std::fs::write(&spare, &bytes).expect("write spare");

        let e = Engine::open(dir.path(), opts())
            .unwrap_or_else(|err| panic!("open with a header torn at {torn}: {err}"));
        check(&e, 20);
        fill(&e, 30);
        e.close().expect("close");
        let e = Engine::open(dir.path(), opts()).expect("reopen");
        check(&e, 30);
    }
}

/// Records reached the disk, the page with the header did not: the records
/// after the first page are kept, nothing is made up.
#[test]
fn an_active_file_that_lost_its_header_page_is_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    // Values big enough that most records lie past the first 4 KiB page.
    let value = |i: u32| format!("{i:0>400}");
    for i in 0..60u32 {
        e.put(
            format!("key{i}").as_bytes(),
            value(i).as_bytes(),
            Meta::default(),
            Condition::Always,
        )
        .expect("put");
    }
    e.crash_for_tests();
    let files = hst_files(dir.path());
    let active = files.last().expect("a data file");
    let mut bytes = std::fs::read(active).expect("read");
    bytes[..4096].fill(0);
    std::fs::write(active, &bytes).expect("write");

    let e = Engine::open(dir.path(), opts()).expect("open after losing a header page");
    let mut kept = 0;
    for i in 0..60u32 {
        if let Some(item) = e.get(format!("key{i}").as_bytes()).expect("get") {
            assert_eq!(&*item.value, value(i).as_bytes());
            kept += 1;
        }
    }
    assert!(kept >= 40, "only {kept} of 60 records kept");
}

/// A file with someone else's magic is still left alone and reported.
#[test]
fn a_foreign_file_is_still_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Engine::open(dir.path(), opts()).expect("open");
    fill(&e, 5);
    e.close().expect("close");
    let foreign = dir.path().join("00000009.hst");
    let mut bytes = vec![0u8; 4096];
    bytes[..8].copy_from_slice(b"NOTMINE!");
    std::fs::write(&foreign, &bytes).expect("write");
    match Engine::open(dir.path(), opts()) {
        Err(OpenError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, foreign);
            assert_eq!(offset, 0);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(foreign.exists(), "a foreign file is never deleted");
}

/// A sealed file whose index and footer did not reach the disk (zeros in
/// their place, or the file cut inside them): every record is found by
/// scanning instead.
#[test]
fn a_sealed_file_with_a_lost_or_cut_index_keeps_its_records() {
    for cut_inside in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Engine::open(dir.path(), opts()).expect("open");
        fill(&e, 50);
        e.close().expect("close");
        let files = hst_files(dir.path());
        assert_eq!(files.len(), 1, "one sealed file");
        let mut bytes = std::fs::read(&files[0]).expect("read");
        let index_bytes = 50 * engine::format::INDEX_ENTRY_LEN + engine::format::FOOTER_LEN;
        let index_at = bytes.len() - index_bytes;
        if cut_inside {
            bytes.truncate(index_at + index_bytes / 2);
        } else {
            bytes[index_at..].fill(0);
        }
        std::fs::write(&files[0], &bytes).expect("write");

        let e = Engine::open(dir.path(), opts()).expect("open after losing the index");
        check(&e, 50);
        assert_eq!(e.stats().bad_records, 0);
    }
}

/// A client's value holding `forged` records, then `tail` bytes that a
/// power cut leaves as zeros.
fn victim_value(forged: &[Vec<u8>], tail: usize) -> Vec<u8> {
    let mut v = vec![b'x'; 100];
    for f in forged {
        v.extend_from_slice(f);
    }
    v.extend(std::iter::repeat_n(b'y', tail));
    v
}

/// Writes `key0..key4`, then `victim` with `value` as the last record, crashes,
/// and zeros the last `torn` bytes of the victim's record.
fn store_with_torn_victim(dir: &Path, value: &[u8], torn: usize) {
    let e = Engine::open(dir, opts()).expect("open");
    fill(&e, 5);
    e.put(b"victim", value, Meta::default(), Condition::Always)
        .expect("put victim");
    e.crash_for_tests();
    let files = hst_files(dir);
    let active = files.last().expect("a data file");
    let mut bytes = std::fs::read(active).expect("read");
    let end = bytes
        .windows(value.len())
        .position(|w| w == value)
        .expect("the victim's value on disk")
        + value.len();
    bytes[end - torn..end].fill(0);
    std::fs::write(active, &bytes).expect("write");
}

/// A record whose tail is torn must not let the scan find records inside
/// its value: here a Put of another key and a Clear of everything.
#[test]
fn a_record_forged_inside_a_torn_value_is_not_accepted() {
    use engine::format::{encode_record, RecordKind};
    let forged = vec![
        encode_record(RecordKind::Put, b"forged", b"evil", 0, 0, 1_000_000),
        encode_record(RecordKind::Clear, b"", b"", 0, 0, 1_000_001),
    ];
    let value = victim_value(&forged, 64);
    let dir = tempfile::tempdir().expect("tempdir");
    store_with_torn_victim(dir.path(), &value, 32);

    let e = Engine::open(dir.path(), opts()).expect("open");
    assert!(
        e.get(b"forged").expect("get").is_none(),
        "a record forged inside a value was served"
    );
    assert!(e.get(b"victim").expect("get").is_none(), "a torn record");
    check(&e, 5);
    // After a crash numbers continue 2^32 past the highest real one.
    assert!(
        e.stats().last_seq < (1 << 32) + 1_000_000,
        "numbering continues from a forged sequence number"
    );
}

/// A forged sequence number near u64::MAX is no record at all: the
/// sequence numbers after a crash neither overflow nor come from it.
#[test]
fn a_forged_huge_sequence_number_neither_overflows_nor_sticks() {
    use engine::format::{encode_record, RecordKind, MAX_SEQ};
    let forged = vec![encode_record(
        RecordKind::Put,
        b"forged",
        b"evil",
        0,
        0,
        u64::MAX - 1,
    )];
    let value = victim_value(&forged, 64);
    let dir = tempfile::tempdir().expect("tempdir");
    store_with_torn_victim(dir.path(), &value, 32);
    let e = Engine::open(dir.path(), opts()).expect("open");
    assert!(e.get(b"forged").expect("get").is_none());
    let seq = match e
        .put(b"after", b"v", Meta::default(), Condition::Always)
        .expect("put after recovery")
        .result
    {
        engine::PutOutcome::Stored { seq } => seq,
        other => panic!("expected Stored, got {other:?}"),
    };
    assert!(seq < MAX_SEQ, "seq {seq}");
    check(&e, 5);
}
