//! Crash test: a writer process (`common/writer.rs`) writes with
//! durability `always` from four threads and prints each write once it is
//! acknowledged (durable); the parent kills it with SIGKILL at a random
//! moment, reopens the directory and checks that every acknowledged write
//! is there with its exact value. The same directory is reused across
//! iterations, so recoveries pile up.
//!
//! Each thread also overwrites a few hot keys, so the writer's background
//! compaction (run every millisecond) is busy when the kill lands: the
//! newest acknowledged value of each hot key (or a later one) must survive.
//!
//! A `harness = false` test: the binary re-executes itself as the writer.
//! `CRASH_ITERATIONS` sets the number of kills (default 20; `make
//! crash-loop` runs many more).

mod common;

use std::time::Duration;

use common::writer::{self, Acknowledged, Writer};
use engine::Engine;
use testkit::disk::Rng;

fn main() {
    if writer::run_if_writer() {
        return;
    }
    let iterations: u64 = std::env::var("CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = Rng::from_clock();
    let seed = rng.0;
    println!("crash test: {iterations} iterations, seed {seed}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked = Acknowledged::default();
    for it in 0..iterations {
        let delay = Duration::from_micros(rng.next_u64() % 150_000);
        let w = Writer::start(dir.path(), it * 100_000_000, None);
        assert!(
            w.wait_for_first(Duration::from_secs(20)),
            "iteration {it}: no acknowledgement"
        );
        std::thread::sleep(delay);
        let acks = w.finish();
        acked.add(&acks);

        let e = Engine::open(dir.path(), writer::check_options()).expect("reopen after kill");
        let found = acked.check(&e);
        assert!(
            found.lost.is_empty() && found.wrong.is_empty(),
            "iteration {it} (seed {seed}): {} acknowledged writes lost, {} wrong, e.g. {:?} {:?}",
            found.lost.len(),
            found.wrong.len(),
            &found.lost[..found.lost.len().min(5)],
            &found.wrong[..found.wrong.len().min(5)],
        );
        let stats = e.stats();
        assert_eq!(
            stats.bad_records, 0,
            "a kill -9 must not corrupt a record in the middle"
        );
        println!(
            "iteration {it}: killed after {delay:?}, {} acks this run, {} total verified, {} keys, {} files, {} live / {} dead bytes",
            acks.keys.len(),
            acked.count(),
            stats.keys,
            stats.files,
            stats.live_bytes,
            stats.dead_bytes
        );
        e.close().expect("close");
    }
    println!(
        "crash test passed: {} acknowledged writes survived {iterations} kills",
        acked.count()
    );
}
