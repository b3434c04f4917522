//! The writer process of the crash and power-loss tests, and the checks of
//! what it acknowledged. The test binary re-executes itself as the writer
//! (selected by [`CHILD_DIR`]): threads write with durability `always`
//! (unique keys; hot keys overwritten, one of them by streaming a value
//! into a file of its own; roll-overs every 256 KiB; compaction every
//! millisecond) and print each write once it is acknowledged. The parent
//! ends it at a random moment and checks every acknowledged write: a
//! unique key with its exact value, a hot key with its acknowledged value
//! or a later one that was in flight.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use engine::{Condition, Durability, Engine, Meta, Options, WriteError};

/// Set in the writer: its data directory.
pub const CHILD_DIR: &str = "ENGINE_TEST_WRITER_DIR";
/// Set in the writer: the first unique key number.
const CHILD_START: &str = "ENGINE_TEST_WRITER_START";
/// Set in a close run: the writer closes the store this many microseconds
/// after it starts, while its threads still write, under durability `none`.
const CHILD_CLOSE: &str = "ENGINE_TEST_WRITER_CLOSE_US";
const THREADS: u64 = 4;
const HOT: u64 = 10;
/// Hot key 0 of each thread is written by streaming this many bytes.
const STREAMED_LEN: usize = 100_000;
const FLAGS: u32 = 7;

fn key(i: u64) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(v.len() + (i * 7 % 300) as usize, b'a' + (i % 26) as u8);
    v
}

fn hot_key(t: u64, h: u64) -> Vec<u8> {
    format!("hot-{t}-{h}").into_bytes()
}

fn hot_value(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("{i} ").into_bytes();
    v.resize(len, b'h');
    v
}

/// The store's options, in the writer and when the parent reopens it.
pub fn options() -> Options {
    Options {
        durability: Durability::Always,
        max_file_size: 256 << 10,
        compaction_interval: Duration::from_millis(1),
        compaction_threshold: 0.05,
        stream_buffer_limit: 32 << 10,
        ..Options::default()
    }
}

/// The options to reopen with for a check (no background compaction).
pub fn check_options() -> Options {
    Options {
        background_compaction: false,
        ..options()
    }
}

/// The writer's main, if this process is the writer: writes until it is
/// killed, or until it closes the store (a close run). Returns whether it
/// was the writer.
pub fn run_if_writer() -> bool {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return false;
    };
    let start = std::env::var(CHILD_START)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let close = std::env::var(CHILD_CLOSE)
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_micros);
    write(&PathBuf::from(dir), start, close);
    true
}

fn write(dir: &Path, start: u64, close: Option<Duration>) {
    let opts = match close {
        Some(_) => Options {
            durability: Durability::None,
            ..options()
        },
        None => options(),
    };
    let e = Arc::new(Engine::open(dir, opts).expect("writer open"));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let ack = move |line: std::fmt::Arguments<'_>| {
        let mut o = out.lock().expect("stdout");
        writeln!(o, "{line}").expect("print");
        o.flush().expect("flush");
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let e = e.clone();
            let ack = ack.clone();
            std::thread::spawn(move || {
                // Every write is acknowledged once it is durable; a write
                // refused because the store is closing ends the thread.
                let run = || -> Result<(), WriteError> {
                    for j in 0.. {
                        let i = start + t + THREADS * j;
                        let meta = Meta {
                            flags: FLAGS,
                            expiry: 0,
                        };
                        let w = e.put(&key(i), &value(i), meta, Condition::Always)?;
                        e.wait_durable(w.ticket)?;
                        ack(format_args!("ack {i}"));
                        let h = j % HOT;
                        let w = if h == 0 {
                            // A streamed value in a file of its own, so the
                            // end also lands in the middle of streams.
                            let v = hot_value(i, STREAMED_LEN);
                            let mut s = e.put_stream(&hot_key(t, h), v.len(), Meta::default())?;
                            for c in v.chunks(16 << 10) {
                                s.write(c)?;
                            }
                            s.commit(Condition::Always)?
                        } else {
                            let v = hot_value(i, 200);
                            e.put(&hot_key(t, h), &v, Meta::default(), Condition::Always)?
                        };
                        e.wait_durable(w.ticket)?;
                        ack(format_args!("hot {t} {h} {i}"));
                    }
                    Ok(())
                };
                let result = run();
                if close.is_none() {
                    result.expect("write");
                }
            })
        })
        .collect();
    if let Some(after) = close {
        std::thread::sleep(after);
        e.close().expect("close");
        // Every write acknowledged so far must now be on the device.
        ack(format_args!("closed"));
    }
    for t in threads {
        let _ = t.join();
    }
}

/// What one writer acknowledged.
#[derive(Default, Clone)]
pub struct Acks {
    /// Unique keys.
    pub keys: Vec<u64>,
    /// (thread, hot key, write) triples.
    pub hot: Vec<(u64, u64, u64)>,
    /// The writer closed the store (a close run).
    pub closed: bool,
}

/// A running writer; killed and reaped on drop, also when the test fails.
pub struct Writer {
    child: Child,
    reader: Option<JoinHandle<()>>,
    acks: Arc<Mutex<Acks>>,
}

impl Writer {
    /// Starts this binary as the writer on `dir`, its unique keys from
    /// `start`; with `close`, it closes the store that long after it starts.
    pub fn start(dir: &Path, start: u64, close: Option<Duration>) -> Writer {
        let exe = std::env::current_exe().expect("current exe");
        let mut cmd = Command::new(exe);
        cmd.env(CHILD_DIR, dir).env(CHILD_START, start.to_string());
        if let Some(after) = close {
            cmd.env(CHILD_CLOSE, after.as_micros().to_string());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the writer");
        let stdout = child.stdout.take().expect("writer stdout");
        let acks = Arc::new(Mutex::new(Acks::default()));
        let reader = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let mut a = acks.lock().expect("acks");
                    if let Some(n) = line.strip_prefix("ack ").and_then(|n| n.parse().ok()) {
                        a.keys.push(n);
                    } else if let Some(rest) = line.strip_prefix("hot ") {
                        let v: Vec<u64> = rest.split(' ').filter_map(|x| x.parse().ok()).collect();
                        if let [t, h, i] = v[..] {
                            a.hot.push((t, h, i));
                        }
                    } else if line == "closed" {
                        a.closed = true;
                    }
                }
            })
        };
        Writer {
            child,
            reader: Some(reader),
            acks,
        }
    }

    /// Waits up to `limit` for the first acknowledgement.
    pub fn wait_for_first(&self, limit: Duration) -> bool {
        let started = std::time::Instant::now();
        while self.acks.lock().expect("acks").keys.is_empty() {
            if started.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a close run's writer to exit by itself.
    pub fn wait_exit(&mut self) {
        let status = self.child.wait().expect("wait for the writer");
        assert!(status.success(), "the writer failed: {status}");
    }

    /// Kills it (if still running) and returns every acknowledgement it
    /// printed.
    pub fn finish(mut self) -> Acks {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            r.join().expect("reader");
        }
        let acks = self.acks.lock().expect("acks").clone();
        acks
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything acknowledged over the runs so far.
#[derive(Default)]
pub struct Acknowledged {
    keys: Vec<u64>,
    hot: HashMap<(u64, u64), u64>,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Found {
    pub lost: Vec<String>,
    pub wrong: Vec<String>,
}

impl Acknowledged {
    pub fn add(&mut self, a: &Acks) {
        self.keys.extend(&a.keys);
        for &(t, h, i) in &a.hot {
            let v = self.hot.entry((t, h)).or_insert(0);
            *v = (*v).max(i);
        }
    }

    /// Acknowledged writes to check: unique keys and hot keys.
    pub fn count(&self) -> usize {
        self.keys.len() + self.hot.len()
    }

    pub fn unique(&self) -> usize {
        self.keys.len()
    }

    pub fn hot_keys(&self) -> usize {
        self.hot.len()
    }

    /// Checks every acknowledged write in `e`.
    pub fn check(&self, e: &Engine) -> Found {
        let mut found = Found::default();
        for &i in &self.keys {
            match e.get(&key(i)).expect("get") {
                Some(item) if item.value[..] == value(i)[..] && item.flags == FLAGS => {}
                Some(_) => found.wrong.push(format!("key {i}")),
                None => found.lost.push(format!("key {i}")),
            }
        }
        for (&(t, h), &i) in &self.hot {
            let Some(item) = e.get(&hot_key(t, h)).expect("get") else {
                found.lost.push(format!("hot key {t}/{h}"));
                continue;
            };
            let got: Option<u64> = std::str::from_utf8(&item.value[..item.value.len().min(24)])
                .ok()
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok());
            let len = if h == 0 { STREAMED_LEN } else { 200 };
            match got {
                Some(g) if g >= i && item.value[..] == hot_value(g, len)[..] => {}
                _ => found
                    .wrong
                    .push(format!("hot key {t}/{h}: acknowledged {i}, found {got:?}")),
            }
        }
        found
    }
}
