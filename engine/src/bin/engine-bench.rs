//! `engine-bench`: KingDB's db_bench workloads against the engine.
//!
//! * fillseq: N puts in key order into a new store.
//! * fillrandom: N puts of uniformly random keys into a new store.
//! * overwrite: N random puts into the fillrandom store.
//! * readrandom: N random gets from the fillseq store (every key exists).
//! * fillrandom-interval / fillrandom-always: fillrandom from several
//!   threads with durability `interval` (50 ms) and `always` (each put waits
//!   for its group commit); `always` uses `--sync-num` records.
//!
//! Keys are 16 bytes (`%016d`), values `--value-size` bytes cut from a
//! random buffer, as in db_bench. MB/s counts key + value bytes in MiB, as
//! db_bench does. `index B/key` is the index's allocated RAM per live key.
//! `ops/CPU-s` divides by the time the benchmark thread actually ran on a
//! CPU (single-threaded rows): on a machine busy with other work, wall-clock
//! ops/s understates the engine and this column does not.
//! The durability-none runs map files with `Options::huge_pages` unless
//! `--huge-pages false`.
//!
//! Lifecycle workloads:
//!
//! * readseq: iterate a snapshot of the fillseq store (every record once).
//! * compact: on a store of `--compaction-file-size` files (16 MiB), after
//!   fillrandom + overwrite (background compaction off; that overwrite is
//!   timed too, as the baseline for overwrite-bg), one full compaction;
//!   MB/s counts record bytes read from the old files.
//!   The note gives the space amplification (disk bytes of the sealed
//!   files and the used part of the active file, over live bytes) before
//!   and after.
//! * overwrite-bg: the same store reopened with background compaction
//!   (default threshold and rate, checked every 100 ms), another overwrite
//!   pass: compare its ops/s and ops/CPU-s with the overwrite row above it
//!   to see what compaction costs the foreground; the note gives what
//!   compaction did meanwhile and the space amplification at the end, and
//!   a line after the table where it settles once compaction caught up.
//! * fillbig / readbig: fillrandom with 1 KB, 100 KB and 1 MB values,
//!   `--big-total` bytes each (default 256 MiB), then as many random gets
//!   (each touches its whole value). `--verify-checksums false` turns off
//!   the per-read CRC in every store, to measure what it costs.
//!
//! Background compaction is off in every other row, so they measure the
//! write and read paths alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine::{Condition, Durability, Engine, Meta, Options};

struct Args {
    num: u64,
    value_size: usize,
    threads: u64,
    sync_num: u64,
    dir: PathBuf,
    benchmarks: Vec<String>,
    max_file_size: u64,
    huge_pages: bool,
    big_total: u64,
    compaction_file_size: u64,
}

const ALL: &[&str] = &[
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "fillrandom-interval",
    "fillrandom-always",
    "readseq",
    "compact",
    "overwrite-bg",
    "fillbig",
    "rollover",
];

/// `rollover`: the servers' defaults (64 MiB files, fdatasync every 50 ms),
/// where a put that rolls the file over must not stall the writer.
const ROLLOVER_FILE_SIZE: u64 = 64 << 20;
/// Puts slower than this are counted by `rollover`.
const SLOW_PUT: Duration = Duration::from_millis(1);

fn usage() -> ! {
    eprintln!(
        "usage: engine-bench [--num N] [--value-size B] [--threads T] [--sync-num N] \
         [--max-file-size BYTES] [--huge-pages true|false] [--big-total BYTES] \
         [--compaction-file-size BYTES] [--verify-checksums true|false] [--dir PATH] \
         [--benchmarks {}]",
        ALL.join(",")
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        num: 1_000_000,
        value_size: 100,
        threads: 4,
        sync_num: 20_000,
        dir: std::env::temp_dir().join(format!("engine-bench-{}", std::process::id())),
        benchmarks: ALL.iter().map(|s| s.to_string()).collect(),
        max_file_size: 256 << 20,
        huge_pages: true,
        big_total: 256 << 20,
        compaction_file_size: 16 << 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            usage();
        }
        let Some(v) = it.next() else { usage() };
        let num = |v: &str| {
            v.replace('_', "")
                .parse::<u64>()
                .unwrap_or_else(|_| usage())
        };
        match flag.as_str() {
            "--num" => a.num = num(&v),
            "--value-size" => a.value_size = num(&v) as usize,
            "--threads" => a.threads = num(&v).max(1),
            "--sync-num" => a.sync_num = num(&v),
            "--max-file-size" => a.max_file_size = num(&v),
            "--big-total" => a.big_total = num(&v),
            "--compaction-file-size" => a.compaction_file_size = num(&v),
            "--dir" => a.dir = PathBuf::from(v),
            "--huge-pages" => a.huge_pages = v.parse().unwrap_or_else(|_| usage()),
            "--verify-checksums" => {
                VERIFY.store(v.parse().unwrap_or_else(|_| usage()), Ordering::Relaxed)
            }
            "--benchmarks" => a.benchmarks = v.split(',').map(str::to_string).collect(),
            _ => usage(),
        }
    }
    for b in &a.benchmarks {
        if !ALL.contains(&b.as_str()) {
            usage();
        }
    }
    a
}

/// xorshift64*, seeded: the same keys every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `%016d` without allocating.
fn format_key(i: u64, out: &mut [u8; 16]) {
    let mut n = i;
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// db_bench's value source: a large random buffer values are cut from.
struct Values {
    data: Vec<u8>,
    pos: usize,
    size: usize,
}
impl Values {
    fn new(size: usize, seed: u64) -> Values {
        let mut rng = Rng(seed | 1);
        let data = (0..(1 << 20) + size)
            .map(|_| (rng.next() >> 56) as u8)
            .collect();
        Values { data, pos: 0, size }
    }
    fn next(&mut self) -> &[u8] {
        if self.pos + self.size > self.data.len() {
            self.pos = 0;
        }
        let v = &self.data[self.pos..self.pos + self.size];
        self.pos += self.size;
        v
    }
}

/// Nanoseconds this thread has run on a CPU (Linux schedstat), so a
/// single-threaded run can be judged on a machine busy with other work.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `f` and returns its result with the CPU time this thread spent.
fn on_cpu<T>(f: impl FnOnce() -> T) -> (T, Option<Duration>) {
    let before = thread_cpu_ns();
    let out = f();
    let cpu = match (before, thread_cpu_ns()) {
        (Some(b), Some(a)) if a > b => Some(Duration::from_nanos(a - b)),
        _ => None,
    };
    (out, cpu)
}

struct Row {
    name: &'static str,
    /// On-CPU time of the single benchmark thread (None for multi-threaded rows).
    cpu: Option<Duration>,
    durability: String,
    threads: u64,
    ops: u64,
    elapsed: Duration,
    index_per_key: f64,
    note: String,
    /// Bytes per op for the MB/s column (key + value), if not the default.
    bytes_per_op: Option<f64>,
}

impl Row {
    /// A row of one thread writing or reading with durability none, the
    /// shape of most db_bench workloads.
    fn one_thread(
        name: &'static str,
        cpu: Option<Duration>,
        ops: u64,
        elapsed: Duration,
        e: &Engine,
        note: String,
    ) -> Row {
        Row {
            name,
            cpu,
            durability: "none".to_string(),
            threads: 1,
            ops,
            elapsed,
            index_per_key: index_per_key(e),
            note,
            bytes_per_op: None,
        }
    }
}

/// `--verify-checksums`: `Options::verify_checksums` of every store.
static VERIFY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

fn open(dir: &Path, durability: Durability, max_file_size: u64, huge_pages: bool) -> Engine {
    Engine::open(
        dir,
        Options {
            durability,
            max_file_size,
            huge_pages,
            background_compaction: false,
            verify_checksums: VERIFY.load(Ordering::Relaxed),
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| {
        eprintln!("cannot open {}: {e}", dir.display());
        std::process::exit(1)
    })
}

fn index_per_key(e: &Engine) -> f64 {
    let s = e.stats();
    if s.keys == 0 {
        0.0
    } else {
        s.index_bytes as f64 / s.keys as f64
    }
}

fn fill(e: &Engine, num: u64, value_size: usize, random: bool, seed: u64) -> Duration {
    let mut rng = Rng(seed | 1);
    let mut values = Values::new(value_size, seed ^ 0x5eed);
    let mut key = [0u8; 16];
    let start = Instant::now();
    for i in 0..num {
        let k = if random { rng.next() % num } else { i };
        format_key(k, &mut key);
        if let Err(err) = e.put(&key, values.next(), Meta::default(), Condition::Always) {
            eprintln!("put failed: {err}");
            std::process::exit(1);
        }
    }
    start.elapsed()
}

/// One thread putting `num` random keys, timing every put: the elapsed
/// time, the slowest put and the number slower than [`SLOW_PUT`].
fn fill_timed(e: &Engine, num: u64, value_size: usize) -> (Duration, Duration, u64) {
    let mut rng = Rng(5);
    let mut values = Values::new(value_size, 11);
    let mut key = [0u8; 16];
    let (mut slowest, mut slow) = (Duration::ZERO, 0u64);
    let start = Instant::now();
    for _ in 0..num {
        format_key(rng.next() % num, &mut key);
        let t = Instant::now();
        if let Err(err) = e.put(&key, values.next(), Meta::default(), Condition::Always) {
            eprintln!("put failed: {err}");
            std::process::exit(1);
        }
        let took = t.elapsed();
        slowest = slowest.max(took);
        slow += u64::from(took > SLOW_PUT);
    }
    (start.elapsed(), slowest, slow)
}

fn fill_threads(e: &Engine, num: u64, threads: u64, value_size: usize, wait: bool) -> Duration {
    let start = Instant::now();
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let next = &next;
            s.spawn(move || {
                let mut rng = Rng((t + 1) * 0x9e37_79b9_7f4a_7c15);
                let mut values = Values::new(value_size, t + 7);
                let mut key = [0u8; 16];
                while next.fetch_add(1, Ordering::Relaxed) < num {
                    format_key(rng.next() % num, &mut key);
                    let w = e
                        .put(&key, values.next(), Meta::default(), Condition::Always)
                        .unwrap_or_else(|err| {
                            eprintln!("put failed: {err}");
                            std::process::exit(1)
                        });
                    if wait {
                        if let Err(err) = e.wait_durable(w.ticket) {
                            eprintln!("sync failed: {err}");
                            std::process::exit(1);
                        }
                    }
                }
            });
        }
    });
    start.elapsed()
}

fn read_random(e: &Engine, num: u64, seed: u64) -> (Duration, u64) {
    let mut rng = Rng(seed | 1);
    let mut key = [0u8; 16];
    let mut found = 0u64;
    let mut bytes = 0u64;
    let start = Instant::now();
    for _ in 0..num {
        format_key(rng.next() % num, &mut key);
        match e.get(&key) {
            Ok(Some(item)) => {
                found += 1;
                // Touch every page of the value, as sending it would.
                bytes += item
                    .value
                    .iter()
                    .step_by(4096)
                    .map(|&b| u64::from(b))
                    .sum::<u64>();
            }
            Ok(None) => {}
            Err(err) => {
                eprintln!("get failed: {err}");
                std::process::exit(1);
            }
        }
    }
    let elapsed = start.elapsed();
    std::hint::black_box(bytes);
    (elapsed, found)
}

/// Iterates a snapshot of the whole store; returns the time and the count.
fn read_seq(e: &Engine) -> (Duration, u64) {
    let start = Instant::now();
    let snap = e.snapshot();
    let mut n = 0u64;
    let mut bytes = 0u64;
    for entry in snap.iter() {
        match entry {
            Ok(x) => {
                n += 1;
                bytes += (x.key.len() + x.item.value.len()) as u64;
            }
            Err(err) => {
                eprintln!("iteration failed: {err}");
                std::process::exit(1);
            }
        }
    }
    std::hint::black_box(bytes);
    (start.elapsed(), n)
}

/// Disk bytes (sealed files, and the used part of the preallocated active
/// file) over live bytes.
fn space_amp(dir: &Path, e: &Engine) -> f64 {
    let s = e.stats();
    let active = format!("{:08}.hst", s.active_file_id);
    let mut disk = s.active_file_bytes;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for f in rd.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".hst") && name != active {
                disk += f.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    disk as f64 / s.live_bytes.max(1) as f64
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn main() {
    let a = parse_args();
    let want = |b: &str| a.benchmarks.iter().any(|x| x == b);
    if let Err(e) = std::fs::create_dir_all(&a.dir) {
        eprintln!("cannot create {}: {e}", a.dir.display());
        std::process::exit(1);
    }
    println!(
        "engine-bench: {} records, 16-byte keys, {}-byte values, dir {}; huge pages {} for the \
         durability-none runs (never for interval/always: each sync would write back 2 MiB folios)",
        a.num,
        a.value_size,
        a.dir.display(),
        if a.huge_pages { "on" } else { "off" }
    );
    let mut rows = Vec::new();
    let mut settled_amp: Option<f64> = None;

    if want("fillseq") || want("readrandom") || want("readseq") {
        let dir = fresh(&a.dir, "seq");
        let e = open(&dir, Durability::None, a.max_file_size, a.huge_pages);
        let (t, cpu) = on_cpu(|| fill(&e, a.num, a.value_size, false, 1));
        if want("fillseq") {
            rows.push(Row::one_thread("fillseq", cpu, a.num, t, &e, String::new()));
        }
        if want("readrandom") {
            let ((t, found), cpu) = on_cpu(|| read_random(&e, a.num, 3));
            rows.push(Row::one_thread(
                "readrandom",
                cpu,
                a.num,
                t,
                &e,
                format!("{found} of {} found", a.num),
            ));
        }
        if want("readseq") {
            let ((t, n), cpu) = on_cpu(|| read_seq(&e));
            rows.push(Row::one_thread(
                "readseq",
                cpu,
                n,
                t,
                &e,
                "snapshot iterator".into(),
            ));
        }
        drop(e);
        let _ = std::fs::remove_dir_all(&dir);
    }
    if want("fillrandom") || want("overwrite") {
        let dir = fresh(&a.dir, "random");
        let e = open(&dir, Durability::None, a.max_file_size, a.huge_pages);
        let (t, cpu) = on_cpu(|| fill(&e, a.num, a.value_size, true, 2));
        if want("fillrandom") {
            rows.push(Row::one_thread(
                "fillrandom",
                cpu,
                a.num,
                t,
                &e,
                format!("{} distinct keys", e.stats().keys),
            ));
        }
        if want("overwrite") {
            let (t, cpu) = on_cpu(|| fill(&e, a.num, a.value_size, true, 4));
            rows.push(Row::one_thread(
                "overwrite",
                cpu,
                a.num,
                t,
                &e,
                String::new(),
            ));
        }
        drop(e);
        let _ = std::fs::remove_dir_all(&dir);
    }
    if want("compact") || want("overwrite-bg") {
        // Own store with smaller files, so compaction has sealed files to
        // work on while the overwrite runs.
        let dir = fresh(&a.dir, "lifecycle");
        let fs = a.compaction_file_size;
        let e = open(&dir, Durability::None, fs, a.huge_pages);
        fill(&e, a.num, a.value_size, true, 2);
        let (t, cpu) = on_cpu(|| fill(&e, a.num, a.value_size, true, 4));
        rows.push(Row::one_thread(
            "overwrite",
            cpu,
            a.num,
            t,
            &e,
            format!("{} MiB files, no compaction", fs >> 20),
        ));
        if want("compact") {
            let before = space_amp(&dir, &e);
            let start = Instant::now();
            let r = e.compact().unwrap_or_else(|err| {
                eprintln!("compaction failed: {err}");
                std::process::exit(1)
            });
            let t = start.elapsed();
            let records = r.records_moved + r.records_dropped;
            let note = format!(
                "{} MB in, amp {before:.2}->{:.2}",
                r.bytes_in >> 20,
                space_amp(&dir, &e)
            );
            rows.push(Row {
                bytes_per_op: Some(r.bytes_in as f64 / records.max(1) as f64),
                ..Row::one_thread("compact", None, records, t, &e, note)
            });
        }
        drop(e);
        if want("overwrite-bg") {
            // Reopen with the background compaction thread, default policy.
            let e = Engine::open(
                &dir,
                Options {
                    durability: Durability::None,
                    max_file_size: fs,
                    huge_pages: a.huge_pages,
                    compaction_interval: Duration::from_millis(100),
                    ..Options::default()
                },
            )
            .unwrap_or_else(|err| {
                eprintln!("cannot open {}: {err}", dir.display());
                std::process::exit(1)
            });
            let before = e.stats();
            let (t, cpu) = on_cpu(|| fill(&e, a.num, a.value_size, true, 5));
            let s = e.stats();
            let note = format!(
                "{} rounds, {} MB rewritten, amp {:.2}",
                s.compactions - before.compactions,
                (s.compacted_bytes - before.compacted_bytes) >> 20,
                space_amp(&dir, &e)
            );
            rows.push(Row::one_thread("overwrite-bg", cpu, a.num, t, &e, note));
            // Let compaction catch up, then report where space settles.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut amp = space_amp(&dir, &e);
            while amp > 1.5 && Instant::now() < deadline {
                e.request_compaction();
                std::thread::sleep(Duration::from_millis(200));
                amp = space_amp(&dir, &e);
            }
            settled_amp = Some(amp);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    if want("fillbig") {
        for size in [1usize << 10, 100 << 10, 1 << 20] {
            let num = (a.big_total / size as u64).max(1);
            let dir = fresh(&a.dir, "big");
            let e = open(&dir, Durability::None, a.max_file_size, a.huge_pages);
            let (t, cpu) = on_cpu(|| fill(&e, num, size, true, 6));
            let note = format!("{} KB values", size >> 10);
            rows.push(Row {
                bytes_per_op: Some((16 + size) as f64),
                ..Row::one_thread("fillbig", cpu, num, t, &e, note)
            });
            let ((t, found), cpu) = on_cpu(|| read_random(&e, num, 7));
            let checksums = if VERIFY.load(Ordering::Relaxed) {
                "on"
            } else {
                "off"
            };
            let note = format!(
                "{} KB values, {found} found, checksums {checksums}",
                size >> 10
            );
            rows.push(Row {
                bytes_per_op: Some((16 + size) as f64),
                ..Row::one_thread("readbig", cpu, num, t, &e, note)
            });
            drop(e);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    for (bench, durability, num, wait) in [
        (
            "fillrandom-interval",
            Durability::Interval(engine::DEFAULT_SYNC_INTERVAL),
            a.num,
            false,
        ),
        ("fillrandom-always", Durability::Always, a.sync_num, true),
    ] {
        if !want(bench) {
            continue;
        }
        let dir = fresh(&a.dir, bench);
        let e = open(&dir, durability, a.max_file_size, false);
        let t = fill_threads(&e, num, a.threads, a.value_size, wait);
        let s = e.stats();
        rows.push(Row {
            name: "fillrandom",
            cpu: None,
            durability: durability.to_string(),
            threads: a.threads,
            ops: num,
            elapsed: t,
            index_per_key: index_per_key(&e),
            note: format!("{} syncs", s.syncs),
            bytes_per_op: None,
        });
        drop(e);
        let _ = std::fs::remove_dir_all(&dir);
    }
    if want("rollover") {
        let dir = fresh(&a.dir, "rollover");
        let durability = Durability::Interval(Duration::from_millis(50));
        let e = open(&dir, durability, ROLLOVER_FILE_SIZE, false);
        // Enough puts to fill several files.
        let num = a.num * 2;
        let (t, slowest, slow) = fill_timed(&e, num, a.value_size);
        rows.push(Row {
            name: "rollover",
            cpu: None,
            durability: durability.to_string(),
            threads: 1,
            ops: num,
            elapsed: t,
            index_per_key: index_per_key(&e),
            note: format!(
                "{} files; slowest put {:.2} ms, {slow} over {} ms",
                e.stats().files,
                slowest.as_secs_f64() * 1e3,
                SLOW_PUT.as_millis()
            ),
            bytes_per_op: None,
        });
        drop(e);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir(&a.dir);

    println!();
    println!(
        "| {:<11} | {:<11} | {:>7} | {:>9} | {:>12} | {:>8} | {:>11} | {:>14} | {:<24} |",
        "benchmark",
        "durability",
        "threads",
        "ops",
        "ops/s",
        "MB/s",
        "index B/key",
        "ops/CPU-s",
        "note"
    );
    println!(
        "|{:-<13}|{:-<13}|{:->9}|{:->11}|{:->14}|{:->10}|{:->13}|{:->16}|{:-<26}|",
        "", "", "", "", "", "", "", "", ""
    );
    for r in rows {
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        let ops = r.ops as f64 / secs;
        let per_op = r.bytes_per_op.unwrap_or((16 + a.value_size) as f64);
        let mb = r.ops as f64 * per_op / secs / 1_048_576.0;
        let per_cpu = r.cpu.map_or_else(
            || "-".to_string(),
            |c| format!("{:.0}", r.ops as f64 / c.as_secs_f64().max(1e-9)),
        );
        println!(
            "| {:<11} | {:<11} | {:>7} | {:>9} | {:>12.0} | {:>8.1} | {:>11.1} | {:>14} | {:<24} |",
            r.name, r.durability, r.threads, r.ops, ops, mb, r.index_per_key, per_cpu, r.note
        );
    }
    if let Some(amp) = settled_amp {
        println!();
        println!(
            "space amplification once background compaction caught up after overwrite-bg: {amp:.2}"
        );
    }
}
