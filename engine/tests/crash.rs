//! Crash test: a child process writes with durability `always` from four
//! threads and prints each write once it is acknowledged (durable); the
//! parent kills it with SIGKILL at a random moment, reopens the directory
//! and checks that every acknowledged write is there with its exact value.
//! The same directory is reused across iterations, so recoveries pile up.
//!
//! Each thread also overwrites a few hot keys, so the child's background
//! compaction (run every millisecond) is busy when the kill lands: the
//! newest acknowledged value of each hot key (or a later one) must survive.
//!
//! A `harness = false` test: the binary re-executes itself as the child
//! (selected by an environment variable). `CRASH_ITERATIONS` sets the number
//! of kills (default 20; `make crash-loop` runs many more).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use engine::{Condition, Durability, Engine, Meta, Options};

const CHILD_DIR: &str = "ENGINE_CRASH_CHILD_DIR";
const CHILD_START: &str = "ENGINE_CRASH_CHILD_START";
const THREADS: u64 = 4;

fn key(i: u64) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    let fill = b'a' + (i % 26) as u8;
    v.resize(v.len() + (i * 7 % 300) as usize, fill);
    v
}

fn options() -> Options {
    Options {
        durability: Durability::Always,
        max_file_size: 256 << 10,
        compaction_interval: Duration::from_millis(1),
        compaction_threshold: 0.05,
        stream_buffer_limit: 32 << 10,
        ..Options::default()
    }
}

const HOT: u64 = 20;
/// Hot key 0 of each thread is written by streaming this many bytes.
const STREAMED_LEN: usize = 100_000;

fn hot_value(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("{i} ").into_bytes();
    v.resize(len, b'h');
    v
}

fn hot_key(t: u64, h: u64) -> Vec<u8> {
    format!("hot-{t}-{h}").into_bytes()
}

fn child(dir: &Path, start: u64) {
    let e = Arc::new(Engine::open(dir, options()).expect("child open"));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let e = e.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                for j in 0.. {
                    let i = start + t + THREADS * j;
                    let w = e
                        .put(
                            &key(i),
                            &value(i),
                            Meta {
                                flags: 7,
                                expiry: 0,
                            },
                            Condition::Always,
                        )
                        .expect("put");
                    e.wait_durable(w.ticket).expect("durable");
                    {
                        let mut o = out.lock().expect("stdout");
                        writeln!(o, "ack {i}").expect("print");
                        o.flush().expect("flush");
                    }
                    let h = j % HOT;
                    let w = if h == 0 {
                        // A streamed value in a file of its own, so kills
                        // also land in the middle of streaming writes.
                        let v = hot_value(i, STREAMED_LEN);
                        let mut s = e
                            .put_stream(&hot_key(t, h), v.len(), Meta::default())
                            .expect("begin stream");
                        for c in v.chunks(16 << 10) {
                            s.write(c).expect("stream chunk");
                        }
                        s.commit(Condition::Always).expect("commit stream")
                    } else {
                        e.put(
                            &hot_key(t, h),
                            &hot_value(i, 200),
                            Meta::default(),
                            Condition::Always,
                        )
                        .expect("put hot")
                    };
                    e.wait_durable(w.ticket).expect("durable");
                    let mut o = out.lock().expect("stdout");
                    writeln!(o, "hot {t} {h} {i}").expect("print");
                    o.flush().expect("flush");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// xorshift64*: the test needs only a few random delays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Acknowledged writes: unique keys, and (thread, hot key, value) triples.
type Acks = (Vec<u64>, Vec<(u64, u64, u64)>);

fn run_child_and_kill(exe: &Path, dir: &Path, start: u64, delay: Duration) -> Acks {
    let mut child = Command::new(exe)
        .env(CHILD_DIR, dir)
        .env(CHILD_START, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let acks = Arc::new(Mutex::new(Vec::new()));
    let hot = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let acks = acks.clone();
        let hot = hot.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line
                    .strip_prefix("ack ")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    acks.lock().expect("acks").push(n);
                } else if let Some(rest) = line.strip_prefix("hot ") {
                    let v: Vec<u64> = rest.split(' ').filter_map(|x| x.parse().ok()).collect();
                    if let [t, h, i] = v[..] {
                        hot.lock().expect("hot").push((t, h, i));
                    }
                }
            }
        })
    };
    // Let it get going, then kill it at a random moment.
    let started = Instant::now();
    while acks.lock().expect("acks").is_empty() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL child");
    child.wait().expect("reap child");
    reader.join().expect("reader");
    let acks = acks.lock().expect("acks").clone();
    let hot = hot.lock().expect("hot").clone();
    (acks, hot)
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let start = std::env::var(CHILD_START)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        child(&PathBuf::from(dir), start);
        return;
    }
    let iterations: u64 = std::env::var("CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    println!("crash test: {iterations} iterations, seed {seed}");
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().expect("current exe");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: Vec<u64> = Vec::new();
    let mut hot_acked: std::collections::HashMap<(u64, u64), u64> = Default::default();
    for it in 0..iterations {
        let delay = Duration::from_micros(rng.next() % 150_000);
        let start = it * 100_000_000;
        let (acks, hot) = run_child_and_kill(&exe, dir.path(), start, delay);
        for (t, h, i) in hot {
            let v = hot_acked.entry((t, h)).or_insert(0);
            *v = (*v).max(i);
        }
        assert!(
            !acks.is_empty(),
            "iteration {it}: the child acknowledged nothing"
        );
        acked.extend(&acks);

        let e = Engine::open(
            dir.path(),
            Options {
                background_compaction: false,
                ..options()
            },
        )
        .expect("reopen after kill");
        let mut missing = Vec::new();
        for &i in &acked {
            match e.get(&key(i)).expect("get") {
                Some(item) => {
                    assert_eq!(
                        &*item.value,
                        &value(i)[..],
                        "iteration {it}: key {i} has a wrong value"
                    );
                    assert_eq!(item.flags, 7);
                }
                None => missing.push(i),
            }
        }
        assert!(
            missing.is_empty(),
            "iteration {it} (seed {seed}): {} acknowledged writes lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        for (&(t, h), &i) in &hot_acked {
            let item = e
                .get(&hot_key(t, h))
                .expect("get")
                .unwrap_or_else(|| panic!("iteration {it}: hot key {t}/{h} lost"));
            let got: u64 = std::str::from_utf8(&item.value)
                .ok()
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok())
                .expect("a hot value");
            let len = if h == 0 { STREAMED_LEN } else { 200 };
            assert_eq!(&*item.value, &hot_value(got, len)[..], "hot key {t}/{h}");
            assert!(
                got >= i,
                "iteration {it} (seed {seed}): hot key {t}/{h} went back from {i} to {got}"
            );
        }
        let stats = e.stats();
        assert_eq!(
            stats.bad_records, 0,
            "a kill -9 must not corrupt a record in the middle"
        );
        println!(
            "iteration {it}: killed after {:?}, {} acks this run, {} total verified, {} keys, {} files, {} live / {} dead bytes",
            delay,
            acks.len(),
            acked.len(),
            stats.keys,
            stats.files,
            stats.live_bytes,
            stats.dead_bytes
        );
        e.close().expect("close");
    }
    println!(
        "crash test passed: {} acknowledged writes survived {iterations} kills",
        acked.len()
    );
}
