//! Hash flooding. A store hashes keys with its own random seed, so keys
//! brute-forced against the public constant of older versions do not
//! collide in it. Even an attacker who knows the seed (read here from the
//! store's `SEED` file) and makes every key land on the last home slots of
//! one index shard costs index memory only in proportion to the keys, when
//! written and again when recovery rebuilds the index.

use engine::format::{decode_seed, key_hash, StoreFormat, FORMAT_VERSION};
use engine::{Condition, Durability, Engine, Meta, Options};

/// Keys whose hash has its top 3 bits clear (shard 0) and the next `BITS`
/// set: their home slot is in the last 2^-BITS of the shard's table.
const BITS: u32 = 12;

fn flood_keys(n: usize, hash: impl Fn(&[u8]) -> u64) -> Vec<Vec<u8>> {
    let want = ((1u64 << BITS) - 1) << (61 - BITS);
    let mask = (7u64 << 61) | want;
    (0u64..)
        .map(|i| format!("flood-{i}").into_bytes())
        .filter(|k| hash(k) & mask == want)
        .take(n)
        .collect()
}

fn opts() -> Options {
    Options {
        durability: Durability::None,
        background_compaction: false,
        max_file_size: 1 << 20,
        ..Options::default()
    }
}

fn seed_of(dir: &std::path::Path) -> u64 {
    decode_seed(&std::fs::read(dir.join("SEED")).expect("read SEED")).expect("a valid seed")
}

#[test]
fn every_store_has_its_own_seed_and_keys_forced_for_the_old_one_spread() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    drop(Engine::open(a.path(), opts()).expect("open"));
    drop(Engine::open(b.path(), opts()).expect("open"));
    let (sa, sb) = (seed_of(a.path()), seed_of(b.path()));
    assert_ne!(sa, sb, "two stores, one seed");
    // Keys that share 15 hash bits under the public constant share about
    // none under a store's seed.
    let store = StoreFormat {
        version: FORMAT_VERSION,
        seed: sa,
    };
    let keys = flood_keys(100, key_hash);
    let top = |h: u64| h >> (61 - BITS);
    let forced = keys
        .iter()
        .filter(|k| top(key_hash(k)) == top(key_hash(&keys[0])));
    assert_eq!(forced.count(), keys.len());
    let same = keys
        .iter()
        .filter(|k| top(store.hash(k)) == top(store.hash(&keys[0])))
        .count();
    assert!(
        same < 10,
        "{same} of 100 keys still collide under the store's seed"
    );
}

#[test]
fn keys_brute_forced_against_the_known_seed_do_not_grow_the_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = opts();
    let e = Engine::open(dir.path(), opts.clone()).expect("open");
    let store = StoreFormat {
        version: FORMAT_VERSION,
        seed: seed_of(dir.path()),
    };
    let keys = flood_keys(200, |k| store.hash(k));
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
