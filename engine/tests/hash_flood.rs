//! Hash flooding: keys brute-forced against the key hash (its seed is a
//! documented constant) so that they all land on the last home slots of one
//! index shard. They must cost index memory in proportion to their number,
//! when written and again when recovery rebuilds the index.

use engine::format::key_hash;
use engine::{Condition, Durability, Engine, Meta, Options};

/// Keys whose hash has its top 3 bits clear (shard 0) and the next `BITS`
/// set: their home slot is in the last 2^-BITS of the shard's table.
const BITS: u32 = 12;

fn flood_keys(n: usize) -> Vec<Vec<u8>> {
    let want = ((1u64 << BITS) - 1) << (61 - BITS);
    let mask = (7u64 << 61) | want;
    (0u64..)
        .map(|i| format!("flood-{i}").into_bytes())
        .filter(|k| key_hash(k) & mask == want)
        .take(n)
        .collect()
}

#[test]
fn keys_brute_forced_onto_the_last_slot_do_not_grow_the_index() {
    let keys = flood_keys(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        durability: Durability::None,
        background_compaction: false,
        max_file_size: 1 << 20,
        ..Options::default()
    };
    let e = Engine::open(dir.path(), opts.clone()).expect("open");
    for k in &keys {
        e.put(k, b"v", Meta::default(), Condition::Always)
            .expect("put");
    }
    // Without a bound, each shard's table grows until 2^BITS home slots
    // share the last run: about 2^BITS * 200 * 16 bytes (~13 MiB) here.
    let limit = 1 << 20;
    let bytes = e.stats().index_bytes;
    assert!(
        bytes < limit,
        "{bytes} bytes of index for {} keys",
        keys.len()
    );
    e.close().expect("close");

    let e = Engine::open(dir.path(), opts).expect("reopen");
    let bytes = e.stats().index_bytes;
    assert!(bytes < limit, "recovery: {bytes} bytes of index");
    for k in &keys {
        assert!(e.get(k).expect("get").is_some(), "a flood key lost");
    }
}
