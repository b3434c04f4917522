//! Many threads writing and reading overlapping keys: every read returns a
//! value some writer wrote for that key, whole; read-modify-writes are atomic;
//! with compaction running, no reader sees an older version after a newer one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use engine::{Condition, Durability, Engine, Meta, Options, Update};

const KEYS: u32 = 16;
const WRITERS: u32 = 4;
const OPS: u32 = 3000;

fn key(k: u32) -> Vec<u8> {
    format!("shared-{k}").into_bytes()
}

/// A value that names its key, writer and sequence, padded with a byte
/// pattern derived from them, so a torn or misplaced value is detected.
fn value(k: u32, writer: u32, n: u32) -> Vec<u8> {
    let mut v = format!("{k}:{writer}:{n}:").into_bytes();
    let fill = b'a' + ((k + writer + n) % 26) as u8;
    v.resize(v.len() + ((n * 37 + writer * 11) % 700) as usize, fill);
    v
}

fn check(k: u32, v: &[u8]) {
    let text = String::from_utf8_lossy(v);
    let mut parts = text.splitn(4, ':');
    let vk: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .expect("key field");
    let w: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .expect("writer field");
    let n: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .expect("counter field");
    assert_eq!(vk, k, "value of another key");
    assert_eq!(v, &value(k, w, n)[..], "torn value");
}

#[test]
fn overlapping_writers_and_readers_never_see_torn_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Arc::new(
        Engine::open(
            dir.path(),
            Options {
                durability: Durability::Interval(std::time::Duration::from_millis(2)),
                // Small files: roll-overs (which truncate a mapped file)
                // happen while others read, with huge page-cache folios.
                max_file_size: 64 << 10,
                huge_pages: true,
                // The file count below counts roll-overs; compaction has
                // its own test further down.
                background_compaction: false,
                ..Options::default()
            },
        )
        .expect("open"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let e = e.clone();
        handles.push(thread::spawn(move || {
            for n in 0..OPS {
                let k = (n * 7 + w) % KEYS;
                match n % 10 {
                    0 => {
                        e.delete(&key(k)).expect("delete");
                    }
                    1 => {
                        if let Some(item) = e.get(&key(k)).expect("get") {
                            let _ = e
                                .put(
                                    &key(k),
                                    &value(k, w, n),
                                    Meta::default(),
                                    Condition::IfSeq(item.seq),
                                )
                                .expect("cas");
                        }
                    }
                    _ => {
                        e.put(&key(k), &value(k, w, n), Meta::default(), Condition::Always)
                            .expect("put");
                    }
                }
                // Atomic counter shared by all writers.
                e.update(b"counter", |cur| {
                    let n: u64 = cur.map_or(0, |i| {
                        std::str::from_utf8(&i.value)
                            .expect("utf8")
                            .parse()
                            .expect("number")
                    });
                    (
                        Update::Put {
                            value: (n + 1).to_string().into_bytes(),
                            meta: Meta::default(),
                        },
                        (),
                    )
                })
                .expect("incr");
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2u32 {
        let e = e.clone();
        let stop = stop.clone();
        readers.push(thread::spawn(move || {
            let mut seen = 0u64;
            let mut k = r;
            while !stop.load(Ordering::Relaxed) {
                k = (k + 1) % KEYS;
                if let Some(item) = e.get(&key(k)).expect("get") {
                    check(k, &item.value);
                    seen += 1;
                }
            }
            seen
        }));
    }
    for h in handles {
        h.join().expect("writer");
    }
    stop.store(true, Ordering::Relaxed);
    let seen: u64 = readers.into_iter().map(|h| h.join().expect("reader")).sum();
    assert!(seen > 0, "readers saw no values");
    let counter = e.get(b"counter").expect("get").expect("counter");
    assert_eq!(&*counter.value, (WRITERS * OPS).to_string().as_bytes());
    for k in 0..KEYS {
        if let Some(item) = e.get(&key(k)).expect("get") {
            check(k, &item.value);
        }
    }
    let stats = e.stats();
    assert!(stats.files > 2, "expected roll-overs");
    drop(e);

    // The same holds after recovery.
    let e = Engine::open(dir.path(), Options::default()).expect("reopen");
    assert_eq!(
        &*e.get(b"counter").expect("get").expect("counter").value,
        (WRITERS * OPS).to_string().as_bytes()
    );
    for k in 0..KEYS {
        if let Some(item) = e.get(&key(k)).expect("get") {
            check(k, &item.value);
        }
    }
}

#[test]
fn compaction_under_concurrent_writers_never_shows_an_older_version_again() {
    // Four threads each write and read overlapping keys while compaction
    // runs in a loop (and in the background). Each thread remembers the
    // highest sequence number it has seen per key: a later read of that
    // key must never return a lower one (no stale-then-newer-then-stale).
    const THREADS: u32 = 4;
    const STRESS_KEYS: u32 = 64;
    const STRESS_OPS: u32 = 4_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Arc::new(
        Engine::open(
            dir.path(),
            Options {
                durability: Durability::None,
                max_file_size: 32 << 10,
                compaction_interval: std::time::Duration::from_millis(5),
                compaction_rate: 0,
                ..Options::default()
            },
        )
        .expect("open"),
    );
    for k in 0..STRESS_KEYS {
        e.put(&key(k), &value(k, 0, 0), Meta::default(), Condition::Always)
            .expect("seed");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let compactor = {
        let (e, stop) = (e.clone(), stop.clone());
        thread::spawn(move || {
            let mut files = 0;
            while !stop.load(Ordering::Relaxed) {
                files += e.compact().expect("compact").files_in;
            }
            files
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let e = e.clone();
            thread::spawn(move || {
                let mut seen = vec![0u64; STRESS_KEYS as usize];
                for n in 0..STRESS_OPS {
                    let k = (n * 13 + t * 5) % STRESS_KEYS;
                    if n % 3 == 0 {
                        let w = e
                            .put(&key(k), &value(k, t, n), Meta::default(), Condition::Always)
                            .expect("put");
                        if let engine::PutOutcome::Stored { seq } = w.result {
                            // Our own write is visible to us from now on.
                            seen[k as usize] = seen[k as usize].max(seq);
                        }
                    }
                    let r = (n * 7 + t) % STRESS_KEYS;
                    let item = e.get(&key(r)).expect("get").expect("never deleted");
                    check(r, &item.value);
                    assert!(
                        item.seq >= seen[r as usize],
                        "key {r}: seq {} after {}",
                        item.seq,
                        seen[r as usize]
                    );
                    seen[r as usize] = item.seq;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    stop.store(true, Ordering::Relaxed);
    compactor.join().expect("compactor");
    // Rounds by the loop above or by the background thread.
    assert!(e.stats().compactions > 0, "no compaction ran");
    let live: Vec<_> = (0..STRESS_KEYS)
        .map(|k| e.get(&key(k)).expect("get").map(|i| i.seq))
        .collect();
    drop(e);
    let e = Engine::open(dir.path(), Options::default()).expect("reopen");
    let after: Vec<_> = (0..STRESS_KEYS)
        .map(|k| e.get(&key(k)).expect("get").map(|i| i.seq))
        .collect();
    assert_eq!(live, after);
}
