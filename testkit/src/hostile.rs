//! The hostile-client suite: while a well-behaved client runs set/get
//! throughout, one attack at a time hits a fresh server:
//!
//! | attack | what it does |
//! |---|---|
//! | `garbage` | random bytes, newlines included, on 4 connections |
//! | `huge-lengths` | sets of 2^32, -1 and 10^20 bytes, 300-byte keys, absurd deltas and exptimes |
//! | `no-newline` | request lines that never end, on 8 connections |
//! | `unread-pipeline` | 20,000 pipelined gets of a 64 KiB value on each of 4 connections, never read |
//! | `slowloris` | 64 connections sending one byte every 100 ms |
//! | `flood` | connections past the server's limit, held open |
//! | `half-closed` | requests, then shutdown of the write side, replies never read |
//! | `amplification` | one 12 KB line naming a 1 MB value 3,000 times, never read |
//!
//! Pass: the well-behaved client sees no error and its p99 stays under
//! [`P99_BOUND`], the server's anonymous resident memory (`RssAnon`: heap
//! and stacks; the pages of the data files it maps are page cache, and grow
//! with what the well-behaved client writes) grows by at most [`RSS_BOUND`]
//! over what it used before the attack, and the server is up at the end. `make hostile` prints one line per attack and front-end
//! (memcached too, when installed); `cargo test -p testkit` runs a short
//! version against both front-ends.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{proc_status_kib, Client, Frontend, Server};

/// The well-behaved client's p99 must stay under this during an attack
/// (debug builds included; a healthy round trip on loopback is well under
/// a millisecond).
pub const P99_BOUND: Duration = Duration::from_millis(250);

/// The server's resident memory may grow at most this much during an attack.
pub const RSS_BOUND: u64 = 64 << 20;

/// Connections the servers allow in the suite, so that `flood` can pass it.
pub const MAX_CONNECTIONS: usize = 200;

/// Every attack, in the order they run.
pub const ATTACKS: [&str; 8] = [
    "garbage",
    "huge-lengths",
    "no-newline",
    "unread-pipeline",
    "slowloris",
    "flood",
    "half-closed",
    "amplification",
];

/// What one attack did to one server.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The attack.
    pub attack: &'static str,
    /// The server.
    pub frontend: Frontend,
    /// Requests the well-behaved client completed during the attack.
    pub client_ops: u64,
    /// Its errors: wrong values, error replies, lost connections.
    pub client_errors: u64,
    /// Its p99 latency.
    pub client_p99: Duration,
    /// Server anonymous RSS before the attack, bytes.
    pub rss_before: u64,
    /// Server anonymous RSS at its highest during the attack, bytes.
    pub rss_peak: u64,
    /// Whether the server was still up (and answering) at the end.
    pub alive: bool,
}

impl Outcome {
    /// RSS growth over the attack, bytes.
    pub fn growth(&self) -> u64 {
        self.rss_peak.saturating_sub(self.rss_before)
    }

    /// Whether it meets the suite's bounds.
    pub fn passed(&self) -> bool {
        self.client_errors == 0
            && self.client_ops > 0
            && self.client_p99 <= P99_BOUND
            && self.growth() <= RSS_BOUND
            && self.alive
    }

    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "{:<16} {:<20} client {:>7} ops {:>3} errors p99 {:>8.3} ms   anon rss {:>7.1} -> {:>7.1} MiB (+{:>6.1})   {}   {}",
            self.attack,
            self.frontend.name(),
            self.client_ops,
            self.client_errors,
            self.client_p99.as_secs_f64() * 1000.0,
            self.rss_before as f64 / 1048576.0,
            self.rss_peak as f64 / 1048576.0,
            self.growth() as f64 / 1048576.0,
            if self.alive { "up" } else { "DOWN" },
            if self.passed() { "pass" } else { "FAIL" }
        )
    }
}

/// Runs `attack` against a fresh `frontend` for `seconds`; `None` when the
/// front-end is memcached and it is not installed.
pub fn run(frontend: Frontend, attack: &'static str, seconds: f64) -> Option<Outcome> {
    let max = MAX_CONNECTIONS.to_string();
    let mut server = Server::start(frontend, &["--max-connections", &max])?;
    let addr = server.addr;
    let pid = server.pid();
    let span = Duration::from_secs_f64(seconds);

    // The values the attacks read.
    let mut setup = server.client();
    let big = vec![b'b'; 1_000_000];
    let mid = vec![b'm'; 64 * 1024];
    assert_eq!(setup.set("big", &big).expect("set big"), "STORED\r\n");
    assert_eq!(setup.set("mid", &mid).expect("set mid"), "STORED\r\n");

    // The well-behaved client, connected before the attack starts.
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut good = server.client();
    for i in 0..200 {
        let _ = good.set(&format!("good{i}"), format!("value{i}").as_bytes());
    }
    let rss_before = proc_status_kib(pid, "RssAnon:") * 1024;
    let client = {
        let (stop, errors) = (Arc::clone(&stop), Arc::clone(&errors));
        std::thread::spawn(move || {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("good{}", i % 200);
                let value = format!("value{}-{i}", i % 200);
                let t = Instant::now();
                let ok = good.set(&key, value.as_bytes()).ok().as_deref() == Some("STORED\r\n")
                    && good.get(&key).ok().flatten().as_deref() == Some(value.as_bytes());
                lat.push(t.elapsed());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                    // Reconnect: the next round trip must work again.
                    match TcpStream::connect(addr) {
                        Ok(_) => good = Client::connect(addr),
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                i += 1;
            }
            lat
        })
    };
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(proc_status_kib(pid, "RssAnon:") * 1024, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let held = attack_with(attack, addr, span);
    std::thread::sleep(span.saturating_sub(Duration::from_millis(10)));
    peak.fetch_max(proc_status_kib(pid, "RssAnon:") * 1024, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut lat = client.join().expect("client thread");
    let _ = sampler.join();
    drop(held);
    lat.sort_unstable();
    let p99 = lat
        .get((lat.len() * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or_default();
    let answering = server.alive() && {
        let mut c = Client::connect(addr);
        c.send(b"version\r\n").is_ok() && c.read_until(b"\r\n").is_ok()
    };
    Some(Outcome {
        attack,
        frontend,
        client_ops: lat.len() as u64,
        client_errors: errors.load(Ordering::Relaxed),
        client_p99: p99,
        rss_before,
        rss_peak: peak.load(Ordering::Relaxed),
        alive: answering,
    })
}

/// Starts an attack; what it returns holds its connections open until
/// dropped (after the measured span).
fn attack_with(attack: &str, addr: std::net::SocketAddr, span: Duration) -> Vec<TcpStream> {
    let connect = || -> Option<TcpStream> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_write_timeout(Some(Duration::from_millis(500))).ok()?;
        s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
        Some(s)
    };
    let mut held = Vec::new();
    match attack {
        "garbage" => {
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..4 {
                let Some(mut s) = connect() else { continue };
                let mut bytes = vec![0u8; 1 << 20];
                for b in bytes.iter_mut() {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    *b = match seed % 16 {
                        0 => b'\n',
                        1 => b'\r',
                        _ => (seed >> 8) as u8,
                    };
                }
                let _ = s.write_all(&bytes);
                held.push(s);
            }
        }
        "huge-lengths" => {
            let long_key = "k".repeat(300);
            let lines = [
                "set k 0 0 4294967296\r\n".to_string(),
                "set k 0 0 -1\r\n".to_string(),
                "set k 0 0 99999999999999999999\r\n".to_string(),
                "append k 0 0 2147483647\r\n".to_string(),
                format!("get {long_key}\r\n"),
                "incr k 999999999999999999999999\r\n".to_string(),
                "gat -99999999999999999999 k\r\n".to_string(),
                "touch k 99999999999999999999999\r\n".to_string(),
                "mg k v N99999999999999999999\r\n".to_string(),
                "ms k 99999999999999999999\r\n".to_string(),
            ];
            for _ in 0..4 {
                let Some(mut s) = connect() else { continue };
                for _ in 0..50 {
                    for l in &lines {
                        let _ = s.write_all(l.as_bytes());
                    }
                }
                held.push(s);
            }
        }
        "no-newline" => {
            for _ in 0..8 {
                let Some(mut s) = connect() else { continue };
                let _ = s.write_all(&vec![b'a'; 256 * 1024]);
                held.push(s);
            }
        }
        "unread-pipeline" => {
            let req = b"get mid\r\n".repeat(20_000);
            for _ in 0..4 {
                let Some(mut s) = connect() else { continue };
                let _ = s.write_all(&req);
                held.push(s);
            }
        }
        "slowloris" => {
            let mut socks: Vec<TcpStream> = (0..64).filter_map(|_| connect()).collect();
            let line = b"get slowloris-key-that-never-ends";
            let start = Instant::now();
            let mut i = 0;
            while start.elapsed() < span.mul_f64(0.9) {
                for s in &mut socks {
                    let _ = s.write_all(&line[i % line.len()..i % line.len() + 1]);
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            held.extend(socks);
        }
        "flood" => {
            for _ in 0..(MAX_CONNECTIONS + 100) {
                if let Some(s) = connect() {
                    held.push(s);
                }
            }
            // The refused ones get a line and are closed; read what came.
            for s in &mut held {
                let _ = s.set_read_timeout(Some(Duration::from_millis(1)));
                let mut b = [0u8; 128];
                let _ = s.read(&mut b);
            }
        }
        "half-closed" => {
            let req = b"get mid\r\nget big\r\n".repeat(50);
            for _ in 0..32 {
                let Some(mut s) = connect() else { continue };
                let _ = s.write_all(&req);
                let _ = s.shutdown(Shutdown::Write);
                held.push(s);
            }
        }
        "amplification" => {
            if let Some(mut s) = connect() {
                let mut line = b"get".to_vec();
                for _ in 0..3000 {
                    line.extend_from_slice(b" big");
                }
                line.extend_from_slice(b"\r\n");
                let _ = s.write_all(&line);
                held.push(s);
            }
        }
        other => panic!("unknown attack {other:?}"),
    }
    held
}
