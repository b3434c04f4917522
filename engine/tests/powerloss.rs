//! Power-loss test: what a power cut leaves, not what a killed process
//! leaves. The store lives on ext4 on a loop device. The crash test's
//! writer process (`common/writer.rs`) writes with durability `always`
//! (unique keys, hot keys overwritten, streamed large values in files of
//! their own, roll-overs every 256 KiB, compaction every millisecond) and
//! prints each write once it is acknowledged. At a random moment the
//! parent freezes it until all its threads have stopped and copies the
//! loop device's backing file: that is what reached the device,
//! without the page cache of the file system mounted on it, as a power cut
//! would leave it. The copy is then mounted through a second loop device
//! (the ext4 journal replays), the store is reopened on it, and every
//! acknowledged write must be there with its exact value (for a hot key,
//! its acknowledged value or a later one that was in flight). The next
//! cycle writes on the copy, so recoveries pile up.
//!
//! Every third cycle instead ends with a clean close under durability
//! `none` while the threads are still writing: close must make every write
//! it let through durable (a write that slips past the gate during close
//! and rolls a file must not escape the final sync). The device is copied
//! once close has returned.
//!
//! Needs root, loop devices and mkfs.ext4 (`testkit::disk`). Without
//! them it says it skipped and passes, except under `CI=true`, where a
//! missing capability is a failure. `POWERLOSS_CYCLES` sets the number of
//! power cuts (default 3; `make powerloss` runs more).
//!
//! A `harness = false` test: the binary re-executes itself as the writer.

mod common;

use std::time::Duration;

use common::writer::{self, Acknowledged, Writer};
use engine::Engine;
use testkit::disk::PowerLoss;

const IMAGE_BYTES: u64 = 96 << 20;

fn main() {
    if writer::run_if_writer() {
        return;
    }
    let Some(mut pl) = PowerLoss::setup("power-loss test", IMAGE_BYTES) else {
        return;
    };
    let mut acked = Acknowledged::default();
    let (mut lost, mut wrong) = (0, 0);
    for cycle in 1..=pl.cycles {
        let delay = Duration::from_micros(pl.rng.next_u64() % 300_000);
        let close = cycle % 3 == 0;
        let store = pl.store();
        let mut w = Writer::start(&store, cycle * 100_000_000, close.then_some(delay));
        if close {
            // A clean close while the threads still write: every write it
            // let through must be on the device once it has returned.
            w.wait_exit();
        } else {
            assert!(
                w.wait_for_first(Duration::from_secs(30)),
                "cycle {cycle}: no acknowledgement"
            );
            std::thread::sleep(delay);
            // The power cut: freeze the writer, take what reached the device.
            testkit::freeze(w.pid());
        }
        pl.copy_device(cycle);
        // Every line printed before the freeze was for a write synced
        // before it; in a close cycle, for a write close let through.
        let acks = w.finish();
        assert!(
            !close || acks.closed,
            "cycle {cycle}: the writer did not close the store"
        );
        assert!(
            !acks.keys.is_empty(),
            "cycle {cycle}: the writer acknowledged nothing"
        );
        acked.add(&acks);
        // The old device goes; the copy is the disk after the power cut.
        pl.mount_copy(cycle);

        let e = Engine::open(pl.store(), writer::check_options()).unwrap_or_else(|err| {
            panic!(
                "cycle {cycle} (seed {}): open after a power cut: {err}",
                pl.seed
            )
        });
        let found = acked.check(&e);
        let stats = e.stats();
        println!(
            "cycle {cycle}: {} after {delay:?}, {} acks this cycle, {} acknowledged in all, {} lost, {} wrong; {} keys, {} files, {} bytes cut as torn tails",
            if close { "closed" } else { "cut" },
            acks.keys.len() + acks.hot.len(),
            acked.count(),
            found.lost.len(),
            found.wrong.len(),
            stats.keys,
            stats.files,
            stats.truncated_bytes
        );
        if !found.lost.is_empty() || !found.wrong.is_empty() {
            println!(
                "  lost e.g. {:?}, wrong e.g. {:?}",
                &found.lost[..found.lost.len().min(5)],
                &found.wrong[..found.wrong.len().min(5)]
            );
        }
        lost += found.lost.len();
        wrong += found.wrong.len();
        e.close().expect("close");
    }
    println!(
        "power-loss test: {} cycles, {} acknowledged writes checked ({} unique keys, {} hot keys), {lost} lost, {wrong} wrong (seed {})",
        pl.cycles,
        acked.count(),
        acked.unique(),
        acked.hot_keys(),
        pl.seed
    );
    assert!(
        lost == 0 && wrong == 0,
        "acknowledged writes lost or wrong after power cuts"
    );
}
