//! `kvtool` end to end: verify finds a flipped byte in a record and in a
//! footer; stats, dump and compact work on a closed directory; clear
//! messages for a missing or locked directory and an unknown version.

use std::path::Path;
use std::process::{Command, Output};

use engine::{Condition, Durability, Engine, Meta, Options};

fn kvtool(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .arg(args[0])
        .arg(dir)
        .args(&args[1..])
        .output()
        .expect("run kvtool")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A closed directory with a few sealed files; returns the sealed files.
fn populate(dir: &Path) -> Vec<std::path::PathBuf> {
    let e = Engine::open(
        dir,
        Options {
            durability: Durability::None,
            max_file_size: 16 << 10,
            background_compaction: false,
            ..Options::default()
        },
    )
    .expect("open");
    for round in 0..3 {
        for k in 0..100 {
            let v = format!("value {k} round {round} \t\n\u{1}");
            e.put(
                format!("key-{k}").as_bytes(),
                v.as_bytes(),
                Meta {
                    flags: 3,
                    expiry: 0,
                },
                Condition::Always,
            )
            .expect("put");
        }
    }
    e.close().expect("close");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "hst"))
        .collect();
    files.sort();
    files
}

#[test]
fn verify_stats_dump_compact_on_a_clean_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path());
    let o = kvtool(&["verify"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("records: 300"), "{}", text(&o));

    let o = kvtool(&["stats"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("keys: 100"), "{}", text(&o));

    let o = kvtool(&["dump"], dir.path());
    assert!(o.status.success());
    let mut keys: Vec<&str> = std::str::from_utf8(&o.stdout)
        .expect("utf8")
        .lines()
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 100);

    let o = kvtool(&["dump", "--values"], dir.path());
    let out = String::from_utf8(o.stdout).expect("utf8");
    assert!(
        out.lines()
            .any(|l| l.starts_with("key-7\t3\t0\t") && l.ends_with("\tvalue 7 round 2 \\t\\n\\x01")),
        "{out}"
    );

    let o = kvtool(&["compact"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("compacted"), "{}", text(&o));
    let o = kvtool(&["verify"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("records: 100"), "{}", text(&o));
}

#[test]
fn verify_finds_a_flipped_byte_in_a_record_and_in_a_footer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = populate(dir.path());
    assert!(files.len() >= 2);

    // A byte inside the value of the second record of the first file.
    let mut b = std::fs::read(&files[0]).expect("read");
    let first_len = 28
        + u16::from_le_bytes([b[16 + 6], b[16 + 7]]) as usize
        + u32::from_le_bytes(b[16 + 8..16 + 12].try_into().expect("4")) as usize;
    let at = 16 + first_len + 40;
    b[at] ^= 0x20;
    std::fs::write(&files[0], &b).expect("write");
    let o = kvtool(&["verify"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let name = files[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let expect = format!("{name} at offset {}", 16 + first_len);
    assert!(
        text(&o).contains(&expect),
        "want {expect:?} in {}",
        text(&o)
    );
    b[at] ^= 0x20;
    std::fs::write(&files[0], &b).expect("restore");
    assert!(kvtool(&["verify"], dir.path()).status.success());

    // A byte of the footer of the second file (its entry count).
    let mut b = std::fs::read(&files[1]).expect("read");
    let n = b.len();
    b[n - 40 + 8] ^= 0x01;
    std::fs::write(&files[1], &b).expect("write");
    let o = kvtool(&["verify"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("footer"), "{}", text(&o));
    let name = files[1]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(text(&o).contains(&name), "{}", text(&o));
}

#[test]
fn clear_messages_for_missing_locked_and_unknown_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let o = kvtool(&["stats"], &missing);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no data directory"), "{}", text(&o));

    let data = dir.path().join("data");
    let files = populate(&data);
    {
        let _open = Engine::open(&data, Options::default()).expect("open");
        for cmd in ["verify", "stats", "compact", "dump"] {
            let o = kvtool(&[cmd], &data);
            assert_eq!(o.status.code(), Some(2), "{cmd}");
            assert!(text(&o).contains("locked"), "{cmd}: {}", text(&o));
        }
    }
    let mut b = std::fs::read(&files[0]).expect("read");
    b[8] = 9; // format version
    std::fs::write(&files[0], &b).expect("write");
    for cmd in ["verify", "stats"] {
        let o = kvtool(&[cmd], &data);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(text(&o).contains("format version 9"), "{cmd}: {}", text(&o));
    }
}

/// The records count `kvtool verify` prints.
fn records(o: &Output) -> u64 {
    text(o)
        .lines()
        .find_map(|l| l.strip_prefix("records: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no records line in {}", text(o)))
}

#[test]
fn verify_reads_the_lists_of_compacted_files_as_open_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = populate(dir.path());
    let old = std::fs::read(&files[0]).expect("read");
    assert!(kvtool(&["compact"], dir.path()).status.success());
    let compacted = kvtool(&["verify"], dir.path());
    assert!(compacted.status.success(), "{}", text(&compacted));
    assert!(!files[0].exists(), "compaction replaced the first file");

    // A crash after the list was synced and before the unlinks: the old
    // file is back, named by a list. Its byte flipped shows that verify
    // does not judge a file the store no longer uses, and its records are
    // not counted twice.
    let mut torn = old.clone();
    torn[40] ^= 0x20;
    std::fs::write(&files[0], &torn).expect("put the old file back");
    let id: u32 = files[0]
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("numeric file name");
    let list = dir.path().join(format!("{id:08}.obsolete"));
    std::fs::write(&list, engine::format::encode_obsolete(&[id])).expect("write the list");
    let o = kvtool(&["verify"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("replaced by a compaction"),
        "{}",
        text(&o)
    );
    assert_eq!(records(&o), records(&compacted));

    // A torn list is noted, and its file is then judged like any other.
    std::fs::write(&list, b"torn").expect("tear the list");
    let o = kvtool(&["verify"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("torn list"), "{}", text(&o));

    // Open finishes the compaction the list describes: the file goes.
    std::fs::write(&list, engine::format::encode_obsolete(&[id])).expect("write the list");
    assert!(kvtool(&["stats"], dir.path()).status.success());
    assert!(!files[0].exists() && !list.exists());
    let o = kvtool(&["verify"], dir.path());
    assert!(
        o.status.success() && !text(&o).contains("note:"),
        "{}",
        text(&o)
    );
}
