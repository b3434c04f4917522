//! Power-loss test: what a power cut leaves, not what a killed process
//! leaves. The store lives on ext4 on a loop device. A child process writes
//! with durability `always` (unique keys, hot keys overwritten, streamed
//! large values in files of their own, roll-overs every 256 KiB,
//! compaction every millisecond) and prints each write once it is
//! acknowledged. At a random moment the parent freezes it (SIGSTOP) and
//! copies the loop device's backing file: that is what reached the device,
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

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::{Condition, Durability, Engine, Meta, Options};
use testkit::disk::{fresh_or_skip, Rng};

const CHILD_DIR: &str = "ENGINE_POWERLOSS_CHILD_DIR";
const CHILD_START: &str = "ENGINE_POWERLOSS_CHILD_START";
/// Set in a close cycle: the child closes the store this many microseconds
/// after its first acknowledgement, while its threads still write.
const CHILD_CLOSE: &str = "ENGINE_POWERLOSS_CHILD_CLOSE_US";
const THREADS: u64 = 3;
const HOT: u64 = 10;
/// Hot key 0 of each thread is written by streaming this many bytes.
const STREAMED_LEN: usize = 100_000;
const IMAGE_BYTES: u64 = 96 << 20;

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

/// What the writer does: writes until frozen (`close: None`) or until it
/// closes the store that long after its first acknowledgement.
fn child(dir: &Path, start: u64, close: Option<Duration>) {
    let opts = match close {
        Some(_) => Options {
            durability: Durability::None,
            ..options()
        },
        None => options(),
    };
    let e = Arc::new(Engine::open(dir, opts).expect("child open"));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let ack = {
        let out = out.clone();
        move |line: std::fmt::Arguments<'_>| {
            let mut o = out.lock().expect("stdout");
            writeln!(o, "{line}").expect("print");
            o.flush().expect("flush");
        }
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let e = e.clone();
            let ack = ack.clone();
            std::thread::spawn(move || {
                // Every write is acknowledged once it is durable; a write
                // refused because the store is closing ends the thread.
                let run = || -> Result<(), engine::WriteError> {
                    for j in 0.. {
                        let i = start + t + THREADS * j;
                        let w = e.put(&key(i), &value(i), Meta::default(), Condition::Always)?;
                        e.wait_durable(w.ticket)?;
                        ack(format_args!("ack {i}"));
                        let h = j % HOT;
                        let w = if h == 0 {
                            let v = hot_value(i, STREAMED_LEN);
                            let mut s = e.put_stream(&hot_key(t, h), v.len(), Meta::default())?;
                            for c in v.chunks(16 << 10) {
                                s.write(c)?;
                            }
                            s.commit(Condition::Always)?
                        } else {
                            e.put(
                                &hot_key(t, h),
                                &hot_value(i, 200),
                                Meta::default(),
                                Condition::Always,
                            )?
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
        // Only now: every write acknowledged so far must be on the device.
        ack(format_args!("closed"));
    }
    for t in threads {
        let _ = t.join();
    }
}

/// The writer; killed on drop, also when the test fails.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Acknowledged writes: unique keys, and (thread, hot key, value) triples.
#[derive(Default)]
struct Acks {
    keys: Vec<u64>,
    hot: Vec<(u64, u64, u64)>,
    /// The writer closed the store (a close cycle).
    closed: bool,
}

/// Starts a writer on `dir` and lets it run `delay` after its first
/// acknowledgement. Then the power cut: it freezes the writer and copies
/// `image` to `copy`; in a close cycle (`close`) the writer closes the
/// store instead, and the copy is taken once it has exited. Returns every
/// acknowledgement the writer printed.
fn write_and_cut(
    exe: &Path,
    dir: &Path,
    start: u64,
    delay: Duration,
    close: bool,
    image: &Path,
    copy: &Path,
) -> Acks {
    let mut cmd = Command::new(exe);
    cmd.env(CHILD_DIR, dir).env(CHILD_START, start.to_string());
    if close {
        cmd.env(CHILD_CLOSE, delay.as_micros().to_string());
    }
    let mut writer = Writer(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn writer"),
    );
    let stdout = writer.0.stdout.take().expect("writer stdout");
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
    if close {
        let status = writer.0.wait().expect("wait for the writer");
        assert!(status.success(), "the writer failed: {status}");
    } else {
        let started = Instant::now();
        while acks.lock().expect("acks").keys.is_empty()
            && started.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(delay);
        // The power cut: freeze the writer, take what reached the device.
        testkit::freeze(writer.0.id());
    }
    std::fs::copy(image, copy).expect("copy the device");
    drop(writer);
    reader.join().expect("reader");
    // Every line printed before the freeze was for a write synced before
    // it; in a close cycle, every line was for a write close let through.
    let taken = std::mem::take(&mut *acks.lock().expect("acks"));
    assert!(!close || taken.closed, "the writer did not close the store");
    taken
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let start = std::env::var(CHILD_START)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let close = std::env::var(CHILD_CLOSE)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_micros);
        child(&PathBuf::from(dir), start, close);
        return;
    }
    let cycles: u64 = std::env::var("POWERLOSS_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let work = tempfile::tempdir().expect("tempdir");
    let Some(mut current) = fresh_or_skip(work.path(), IMAGE_BYTES) else {
        return;
    };
    let mut rng = Rng::from_clock();
    let seed = rng.0;
    println!("power-loss test: {cycles} cycles, seed {seed}");
    let exe = std::env::current_exe().expect("current exe");
    let mut acked: Vec<u64> = Vec::new();
    let mut hot_acked: HashMap<(u64, u64), u64> = HashMap::new();
    let (mut lost, mut wrong) = (0u64, 0u64);
    for cycle in 1..=cycles {
        let delay = Duration::from_micros(rng.next_u64() % 300_000);
        let close = cycle % 3 == 0;
        let copy = work.path().join(format!("image-{cycle}"));
        let acks = write_and_cut(
            &exe,
            &current.mount.join("store"),
            cycle * 100_000_000,
            delay,
            close,
            &current.image,
            &copy,
        );
        assert!(
            !acks.keys.is_empty(),
            "cycle {cycle}: the writer acknowledged nothing"
        );
        acked.extend(&acks.keys);
        for (t, h, i) in acks.hot {
            let v = hot_acked.entry((t, h)).or_insert(0);
            *v = (*v).max(i);
        }
        // The old device goes; the copy is the disk after the power cut.
        current = current
            .replace_with(&copy, &work.path().join(format!("mnt-{cycle}")))
            .expect("mount the copy");

        let e = Engine::open(
            current.mount.join("store"),
            Options {
                background_compaction: false,
                ..options()
            },
        )
        .unwrap_or_else(|err| panic!("cycle {cycle} (seed {seed}): open after a power cut: {err}"));
        let (mut cycle_lost, mut cycle_wrong) = (0u64, 0u64);
        for &i in &acked {
            match e.get(&key(i)).expect("get") {
                Some(item) if item.value[..] == value(i)[..] => {}
                Some(_) => cycle_wrong += 1,
                None => cycle_lost += 1,
            }
        }
        for (&(t, h), &i) in &hot_acked {
            let Some(item) = e.get(&hot_key(t, h)).expect("get") else {
                cycle_lost += 1;
                continue;
            };
            let got: Option<u64> = std::str::from_utf8(&item.value[..item.value.len().min(24)])
                .ok()
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok());
            let len = if h == 0 { STREAMED_LEN } else { 200 };
            match got {
                Some(g) if g >= i && item.value[..] == hot_value(g, len)[..] => {}
                _ => cycle_wrong += 1,
            }
        }
        let stats = e.stats();
        println!(
            "cycle {cycle}: {} after {delay:?}, {} acks this cycle, {} acknowledged in all, {cycle_lost} lost, {cycle_wrong} wrong; {} keys, {} files, {} bytes cut as torn tails",
            if close { "closed" } else { "cut" },
            acks.keys.len(),
            acked.len() + hot_acked.len(),
            stats.keys,
            stats.files,
            stats.truncated_bytes
        );
        lost += cycle_lost;
        wrong += cycle_wrong;
        e.close().expect("close");
    }
    println!(
        "power-loss test: {cycles} cycles, {} acknowledged writes checked ({} unique keys, {} hot keys), {lost} lost, {wrong} wrong (seed {seed})",
        acked.len() + hot_acked.len(),
        acked.len(),
        hot_acked.len()
    );
    assert!(
        lost == 0 && wrong == 0,
        "acknowledged writes lost or wrong after power cuts"
    );
}
