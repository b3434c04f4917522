//! Keeps the conformance table honest: runs the whole suite against the real
//! memcached (1.6.18 is the reference) when its binary is installed. Every
//! case must pass there before it may be used to judge our front-ends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MEMCACHED: &str = "/usr/bin/memcached";

/// Kills the memcached we started (by its PID) even when the test panics.
struct Memcached {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_memcached() -> Option<&'static str> {
    if std::path::Path::new(MEMCACHED).exists() {
        Some(MEMCACHED)
    } else {
        None
    }
}

fn start(binary: &str) -> Memcached {
    // Ask the kernel for a free port, then hand it to memcached.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut command = Command::new(binary);
    command.args([
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-m",
        "64",
        "-t",
        "2",
    ]);
    // memcached refuses to run as root unless told which user to be.
    if is_root() {
        command.args(["-u", "root"]);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn memcached");
    let server = Memcached {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let start = Instant::now();
    while TcpStream::connect(server.addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "memcached did not start listening on {}",
            server.addr
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// Whether this process runs with effective uid 0 (read from /proc, no unsafe).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn every_case_passes_against_memcached() {
    let Some(binary) = find_memcached() else {
        println!(
            "note: {MEMCACHED} not found; the conformance table was not checked against memcached"
        );
        return;
    };
    let server = start(binary);
    let report = service::conformance::run(server.addr).expect("suite runs");
    println!("{report}");
    assert!(
        report.ok(),
        "memcached disagrees with the conformance table:\n{report}"
    );
    assert!(
        report.passed.len() > 50,
        "suspiciously few cases ran: {}",
        report.passed.len()
    );
    // Runs a second time against the same server: the key prefix keeps runs apart.
    let again = service::conformance::run(server.addr).expect("suite runs");
    assert!(again.ok(), "second run against memcached failed:\n{again}");
}
