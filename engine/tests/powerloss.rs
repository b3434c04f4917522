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
//! The file system is mounted with `commit=600`: with the writer frozen, no
//! periodic journal commit runs while the copy is taken, so the copy is
//! one state of the device (syncs still commit at once).
//!
//! Needs root, loop devices and mkfs.ext4. Without them it prints
//! "skipped: needs root and a loop device" and passes, except under
//! `CI=true`, where a missing capability is a failure. `POWERLOSS_CYCLES`
//! sets the number of power cuts (default 3; `make powerloss` runs more).
//! Every mount and loop device it makes is unmounted and detached on the
//! way out, also on failure.
//!
//! A `harness = false` test: the binary re-executes itself as the writer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use engine::{Condition, Durability, Engine, Meta, Options};

const CHILD_DIR: &str = "ENGINE_POWERLOSS_CHILD_DIR";
const CHILD_START: &str = "ENGINE_POWERLOSS_CHILD_START";
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
                        .put(&key(i), &value(i), Meta::default(), Condition::Always)
                        .expect("put");
                    e.wait_durable(w.ticket).expect("durable");
                    {
                        let mut o = out.lock().expect("stdout");
                        writeln!(o, "ack {i}").expect("print");
                        o.flush().expect("flush");
                    }
                    let h = j % HOT;
                    let w = if h == 0 {
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

/// xorshift64*: only a few random delays are needed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Runs a command; its stdout, or why it failed.
fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A backing file attached to a loop device and mounted; unmounted and
/// detached on drop, also when the test fails.
struct LoopMount {
    image: PathBuf,
    device: String,
    mount: PathBuf,
    mounted: bool,
}

impl LoopMount {
    fn new(image: &Path, mount: &Path) -> Result<LoopMount, String> {
        let image_s = image.to_str().ok_or("image path is not UTF-8")?;
        let device = run("losetup", &["-f", "--show", image_s])?;
        let mut lm = LoopMount {
            image: image.to_path_buf(),
            device,
            mount: mount.to_path_buf(),
            mounted: false,
        };
        std::fs::create_dir_all(mount).map_err(|e| format!("mkdir {}: {e}", mount.display()))?;
        let mount_s = mount.to_str().ok_or("mount path is not UTF-8")?;
        run(
            "mount",
            &["-t", "ext4", "-o", "commit=600", &lm.device, mount_s],
        )?;
        lm.mounted = true;
        Ok(lm)
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        if self.mounted {
            let m = self.mount.to_string_lossy().into_owned();
            if run("umount", &[&m]).is_err() {
                let _ = run("umount", &["-l", &m]);
            }
        }
        let _ = run("losetup", &["-d", &self.device]);
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

fn signal(child: &Child, sig: &str) {
    run("kill", &[sig, &child.id().to_string()]).expect("signal the writer");
}

/// Acknowledged writes: unique keys, and (thread, hot key, value) triples.
#[derive(Default)]
struct Acks {
    keys: Vec<u64>,
    hot: Vec<(u64, u64, u64)>,
}

/// Starts a writer on `dir`, lets it run `delay` after its first
/// acknowledgement, freezes it, copies `image` to `copy`, kills it; returns
/// every acknowledgement it printed.
fn write_and_cut(
    exe: &Path,
    dir: &Path,
    start: u64,
    delay: Duration,
    image: &Path,
    copy: &Path,
) -> Acks {
    let mut writer = Writer(
        Command::new(exe)
            .env(CHILD_DIR, dir)
            .env(CHILD_START, start.to_string())
            .stdout(Stdio::piped())
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
                }
            }
        })
    };
    let started = Instant::now();
    while acks.lock().expect("acks").keys.is_empty() && started.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(delay);
    // The power cut: freeze the writer, take what reached the device.
    signal(&writer.0, "-STOP");
    std::fs::copy(image, copy).expect("copy the device");
    drop(writer);
    reader.join().expect("reader");
    // Every line printed before the freeze was for a write synced before it.
    let taken = std::mem::take(&mut *acks.lock().expect("acks"));
    taken
}

/// Mounts a fresh ext4 image; `Err` says which capability is missing.
fn first_mount(work: &Path) -> Result<LoopMount, String> {
    let image = work.join("image-0");
    let f = std::fs::File::create(&image).map_err(|e| format!("create image: {e}"))?;
    f.set_len(IMAGE_BYTES)
        .map_err(|e| format!("size image: {e}"))?;
    drop(f);
    let image_s = image.to_str().ok_or("image path is not UTF-8")?;
    run("mkfs.ext4", &["-q", "-F", image_s])?;
    LoopMount::new(&image, &work.join("mnt-0"))
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
    let cycles: u64 = std::env::var("POWERLOSS_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let work = tempfile::tempdir().expect("tempdir");
    let mut current = match first_mount(work.path()) {
        Ok(m) => m,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and the power-loss test cannot run: {why}");
            }
            println!("power-loss test skipped: needs root and a loop device ({why})");
            return;
        }
    };
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    println!("power-loss test: {cycles} cycles, seed {seed}");
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().expect("current exe");
    let mut acked: Vec<u64> = Vec::new();
    let mut hot_acked: HashMap<(u64, u64), u64> = HashMap::new();
    let (mut lost, mut wrong) = (0u64, 0u64);
    for cycle in 1..=cycles {
        let delay = Duration::from_micros(rng.next() % 300_000);
        let copy = work.path().join(format!("image-{cycle}"));
        let acks = write_and_cut(
            &exe,
            &current.mount.join("store"),
            cycle * 100_000_000,
            delay,
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
        let old_image = current.image.clone();
        drop(current);
        let _ = std::fs::remove_file(&old_image);
        current = LoopMount::new(&copy, &work.path().join(format!("mnt-{cycle}")))
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
            "cycle {cycle}: cut after {delay:?}, {} acks this cycle, {} acknowledged in all, {cycle_lost} lost, {cycle_wrong} wrong; {} keys, {} files, {} bytes cut as torn tails",
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
