//! Power loss under load, through the front-ends: what a power cut leaves a
//! server, not what a killed process leaves. The store lives on ext4 on a
//! loop device (`testkit::disk`). A front-end serves it with durability
//! `always`, 256 KiB data files (so they roll over and are compacted all
//! the time) and 2 MiB items. Clients write over the wire: unique keys, a
//! fifth of them deleted again, and hot keys overwritten, now and then with
//! a value larger than the engine's stream buffer (streamed into a file of
//! its own). Each reply a client reads is an acknowledgement. At a random
//! moment the server is frozen until all its threads have stopped (a
//! thread inside `fdatasync` finishes it first), and the loop device's
//! backing file is copied: what reached the device, without the page cache
//! of the file system on it. The copy is mounted (the journal replays) and
//! the next front-end, in the order threadpool, eventloop-reuseport,
//! eventloop-dispatch, starts on it by itself and must serve every
//! acknowledged write: a stored key with its exact value, a deleted key not
//! at all, a hot key with its acknowledged value or a later one that was in
//! flight. The same server then takes the next cycle's load, so recoveries
//! pile up.
//!
//! `POWERLOSS_CYCLES` sets the number of power cuts (default 3: one per
//! front-end; `make powerloss` runs more). Needs root and loop devices; it
//! says it skipped without them, and fails under `CI=true`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::disk::PowerLoss;
use testkit::{wait_for, Client, Frontend, Server};

const IMAGE_BYTES: u64 = 160 << 20;
const CLIENTS: u64 = 6;
const HOT: u64 = 8;
/// Hot writes after each unique key.
const HOT_PER_KEY: u64 = 3;
/// Past the engine's 1 MiB stream buffer: written into a file of its own.
const LARGE: usize = 1_200_000;
const FLAGS: &[&str] = &[
    "--durability",
    "always",
    "--hstable-size",
    "256k",
    "--max-item-size",
    "2m",
];

fn key(i: u64) -> String {
    format!("key-{i}")
}

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(v.len() + (i * 7 % 300) as usize, b'a' + (i % 26) as u8);
    v
}

/// A fifth of the unique keys are deleted once stored.
fn deleted_later(i: u64) -> bool {
    i.is_multiple_of(5)
}

fn hot_key(t: u64, h: u64) -> String {
    format!("hot-{t}-{h}")
}

/// Hot write `i`'s value: its number, then filler; now and then large.
fn hot_value(i: u64) -> Vec<u8> {
    let len = if (i / CLIENTS).is_multiple_of(40) {
        LARGE
    } else {
        300
    };
    let mut v = format!("{i} ").into_bytes();
    v.resize(len, b'h');
    v
}

/// What the clients were told.
#[derive(Default)]
struct Acks {
    /// Unique keys stored.
    stored: Vec<u64>,
    /// Unique keys deleted after that.
    deleted: Vec<u64>,
    /// (client, hot key, write) stored.
    hot: Vec<(u64, u64, u64)>,
}

/// One client's load until `stop` or until the server stops answering;
/// each reply is recorded as soon as it is read.
fn load(addr: SocketAddr, t: u64, start: u64, stop: &AtomicBool, acks: &Mutex<Acks>) {
    let mut c = Client::connect(addr);
    for j in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let i = start + t + CLIENTS * j;
        if !matches!(c.set(&key(i), &value(i)).as_deref(), Ok("STORED\r\n")) {
            return;
        }
        acks.lock().expect("acks").stored.push(i);
        if deleted_later(i) {
            let reply = c
                .send(format!("delete {}\r\n", key(i)).as_bytes())
                .and_then(|()| c.read_until(b"\r\n"));
            if !matches!(reply.as_deref(), Ok(b"DELETED\r\n")) {
                return;
            }
            acks.lock().expect("acks").deleted.push(i);
        }
        // Mostly overwrites, so that files fill with dead records and
        // compaction runs throughout.
        for k in 0..HOT_PER_KEY {
            let h = (j * HOT_PER_KEY + k) % HOT;
            let n = i * HOT_PER_KEY + k;
            let reply = c.set(&hot_key(t, h), &hot_value(n));
            if !matches!(reply.as_deref(), Ok("STORED\r\n")) {
                return;
            }
            acks.lock().expect("acks").hot.push((t, h, n));
        }
    }
}

/// Everything acknowledged so far, over all cycles.
#[derive(Default)]
struct Acknowledged {
    stored: Vec<u64>,
    deleted: HashSet<u64>,
    hot: HashMap<(u64, u64), u64>,
}

impl Acknowledged {
    fn add(&mut self, a: Acks) {
        self.stored.extend(a.stored);
        self.deleted.extend(a.deleted);
        for (t, h, i) in a.hot {
            let v = self.hot.entry((t, h)).or_insert(0);
            *v = (*v).max(i);
        }
    }

    fn count(&self) -> usize {
        self.stored.len() + self.deleted.len() + self.hot.len()
    }

    /// Checks every acknowledged write against `server`: (lost, wrong).
    fn check(&self, server: &Server) -> (u64, u64) {
        let mut c = server.client();
        let (mut lost, mut wrong) = (0, 0);
        for &i in &self.stored {
            let got = c.get(&key(i)).expect("get");
            match got {
                // An acknowledged delete must stay deleted.
                Some(_) if self.deleted.contains(&i) => wrong += 1,
                Some(v) if v != value(i) => wrong += 1,
                Some(_) => {}
                // Deleted, or its delete was in flight at the cut.
                None if self.deleted.contains(&i) || deleted_later(i) => {}
                None => lost += 1,
            }
        }
        for (&(t, h), &i) in &self.hot {
            let Some(v) = c.get(&hot_key(t, h)).expect("get") else {
                lost += 1;
                continue;
            };
            let n: Option<u64> = std::str::from_utf8(&v[..v.len().min(24)])
                .ok()
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok());
            match n {
                Some(n) if n >= i && v == hot_value(n) => {}
                _ => wrong += 1,
            }
        }
        (lost, wrong)
    }
}

/// Runs the clients against `server` for `delay` after the first
/// acknowledgement, then cuts the power: freezes the server, copies
/// the device (`cut`), kills the server. Returns what the clients were told
/// and the compactions the server had run.
fn load_and_cut(
    mut server: Server,
    start: u64,
    delay: Duration,
    cut: impl FnOnce(),
) -> (Acks, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Acks::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (stop, acks, addr) = (stop.clone(), acks.clone(), server.addr);
            std::thread::spawn(move || load(addr, t, start, &stop, &acks))
        })
        .collect();
    let first = wait_for(Duration::from_secs(30), || {
        !acks.lock().expect("acks").stored.is_empty()
    });
    assert!(
        first,
        "{}: no write acknowledged in 30 s",
        server.frontend.name()
    );
    std::thread::sleep(delay);
    let compactions = server
        .client()
        .stat("engine_compactions")
        .parse()
        .unwrap_or(0);
    server.freeze();
    cut();
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    // Every reply was sent before the freeze, so for a write already synced.
    let acks = std::mem::take(&mut *acks.lock().expect("acks"));
    (acks, compactions)
}

#[test]
fn every_acknowledged_write_survives_power_cuts_under_both_front_ends() {
    let Some(mut pl) = PowerLoss::setup("power-loss test through the front-ends", IMAGE_BYTES)
    else {
        return;
    };
    let order = Frontend::OURS;
    let mut server = Server::start_in(order[0], &pl.store(), FLAGS);
    let mut acked = Acknowledged::default();
    let (mut lost, mut wrong, mut compactions) = (0, 0, 0u64);
    let started = Instant::now();
    for cycle in 1..=pl.cycles {
        let loaded = server.frontend;
        let delay = Duration::from_micros(200_000 + pl.rng.next_u64() % 1_300_000);
        let (acks, compacted) =
            load_and_cut(server, cycle * 100_000_000, delay, || pl.copy_device(cycle));
        let this_cycle = acks.stored.len() + acks.deleted.len() + acks.hot.len();
        assert!(this_cycle > 0, "cycle {cycle}: nothing acknowledged");
        acked.add(acks);
        compactions += compacted;
        pl.mount_copy(cycle);

        // The next front-end comes up on the disk the cut left, by itself.
        let next = order[cycle as usize % order.len()];
        server = Server::start_in(next, &pl.store(), FLAGS);
        let (cycle_lost, cycle_wrong) = acked.check(&server);
        let mut c = server.client();
        println!(
            "cycle {cycle}: {} cut after {delay:?} ({compacted} compactions), {} restarted: {this_cycle} acknowledgements this cycle, {} writes to check in all, {cycle_lost} lost, {cycle_wrong} wrong; {} items, {} files",
            loaded.name(),
            next.name(),
            acked.count(),
            c.stat("curr_items"),
            c.stat("engine_files"),
        );
        lost += cycle_lost;
        wrong += cycle_wrong;
    }
    println!(
        "power-loss test through the front-ends: {} cycles in {:.1?}, {} acknowledged writes checked ({} stored, {} deleted, {} hot keys), {compactions} compactions, {lost} lost, {wrong} wrong (seed {})",
        pl.cycles,
        started.elapsed(),
        acked.count(),
        acked.stored.len(),
        acked.deleted.len(),
        acked.hot.len(),
        pl.seed,
    );
    drop(server);
    assert!(
        lost == 0 && wrong == 0,
        "acknowledged writes lost or wrong after power cuts (seed {})",
        pl.seed
    );
}
