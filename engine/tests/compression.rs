//! LZ4 per record: compressible values shrink, others are stored raw, files
//! with both kinds (and version-1 files) stay readable whatever the option,
//! and compaction and snapshots carry compressed records through.

use engine::{Compression, Condition, Durability, Engine, Meta, Options};

fn opts(compression: Compression) -> Options {
    Options {
        durability: Durability::None,
        max_file_size: 64 << 10,
        background_compaction: false,
        compression,
        ..Options::default()
    }
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn put(e: &Engine, k: &str, v: &[u8]) {
    e.put(
        k.as_bytes(),
        v,
        Meta {
            flags: 9,
            expiry: 0,
        },
        Condition::Always,
    )
    .expect("put");
}

#[test]
fn compressed_and_raw_records_mix_and_survive_reopen_and_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = b"the quick brown fox jumps over the lazy dog; ".repeat(40);
    let random = noise(2000, 7);
    {
        let e = Engine::open(dir.path(), opts(Compression::None)).expect("open");
        put(&e, "raw-text", &text);
        e.close().expect("close");
    }
    let e = Engine::open(dir.path(), opts(Compression::Lz4)).expect("open");
    let before = e.stats().live_bytes;
    put(&e, "lz4-text", &text);
    let grown = e.stats().live_bytes - before;
    assert!(
        grown < text.len() as u64 / 4,
        "{grown} bytes for {}",
        text.len()
    );
    put(&e, "random", &random);
    put(&e, "small", b"tiny value");
    let item = e.get(b"lz4-text").expect("get").expect("present");
    assert_eq!((&*item.value, item.flags), (&text[..], 9));
    // update sees the decompressed value.
    e.update(b"lz4-text", |cur| {
        let mut v = cur.expect("present").value.to_vec();
        v.extend_from_slice(b"!");
        (
            engine::Update::Put {
                value: v,
                meta: Meta::default(),
            },
            (),
        )
    })
    .expect("update");
    let mut appended = text.clone();
    appended.push(b'!');
    let snap = e.snapshot();
    let seen: Vec<_> = snap.iter().map(|x| x.expect("entry")).collect();
    assert_eq!(seen.len(), 4);
    drop(snap);
    e.compact().expect("compact");
    e.close().expect("close");

    let e = Engine::open(dir.path(), opts(Compression::None)).expect("reopen");
    for (k, v) in [
        ("raw-text", &text[..]),
        ("lz4-text", &appended[..]),
        ("random", &random[..]),
        ("small", b"tiny value"),
    ] {
        assert_eq!(
            &*e.get(k.as_bytes()).expect("get").expect(k).value,
            v,
            "{k}"
        );
    }
}

/// Rewrites the sealed HSTable at `path`, whose index holds the hash of
/// `key` only, as format `version` (1 or 2) wrote it: version fields, the
/// hash with the public constant seed, index and footer CRCs.
fn rewrite_as_legacy(path: &std::path::Path, version: u32, key: &[u8]) {
    let mut b = std::fs::read(path).expect("read");
    b[8..12].copy_from_slice(&version.to_le_bytes());
    let f = b.len() - 40;
    let index = u64::from_le_bytes(b[f..f + 8].try_into().expect("8 bytes")) as usize;
    b[index..index + 8].copy_from_slice(&engine::format::key_hash(key).to_le_bytes());
    let index_crc = crc32fast::hash(&b[index..f]);
    b[f + 16..f + 20].copy_from_slice(&index_crc.to_le_bytes());
    b[f + 20..f + 24].copy_from_slice(&version.to_le_bytes());
    let crc = crc32fast::hash(&b[f..f + 36]);
    b[f + 36..f + 40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, &b).expect("write");
}

#[test]
fn version_1_and_2_stores_stay_readable_and_writable() {
    for version in [1u32, 2] {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let e = Engine::open(dir.path(), opts(Compression::None)).expect("open");
            put(&e, "old", b"from an old file");
            e.close().expect("close");
        }
        // A store from before version 3: no seed file, the constant seed.
        std::fs::remove_file(dir.path().join("SEED")).expect("remove SEED");
        rewrite_as_legacy(&dir.path().join("00000001.hst"), version, b"old");
        let e = Engine::open(dir.path(), opts(Compression::Lz4)).expect("reopen");
        assert_eq!(
            &*e.get(b"old").expect("get").expect("old").value,
            b"from an old file"
        );
        // It goes on writing version 2 files with the constant seed.
        put(&e, "new", b"written by this build");
        e.close().expect("close");
        assert!(!dir.path().join("SEED").exists(), "an old store got a seed");
        let newest = std::fs::read(dir.path().join("00000002.hst")).expect("read");
        assert_eq!(newest[8..12], 2u32.to_le_bytes(), "version of a new file");
        let e = Engine::open(dir.path(), opts(Compression::None)).expect("reopen");
        assert_eq!(
            &*e.get(b"old").expect("get").expect("old").value,
            b"from an old file"
        );
        assert_eq!(
            &*e.get(b"new").expect("get").expect("new").value,
            b"written by this build"
        );
    }
}

/// A version 3 store whose seed file is gone cannot be read with the
/// constant seed: open says so instead of serving nothing.
#[test]
fn a_version_3_store_without_its_seed_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let e = Engine::open(dir.path(), opts(Compression::None)).expect("open");
        put(&e, "k", b"v");
        e.close().expect("close");
    }
    std::fs::remove_file(dir.path().join("SEED")).expect("remove SEED");
    match Engine::open(dir.path(), opts(Compression::None)) {
        Err(engine::OpenError::Corrupt { reason, .. }) => {
            assert!(reason.contains("SEED"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn compression_parses_and_round_trips() {
    for c in [Compression::None, Compression::Lz4] {
        assert_eq!(c.to_string().parse::<Compression>(), Ok(c));
    }
    assert!("zstd".parse::<Compression>().is_err());
}
