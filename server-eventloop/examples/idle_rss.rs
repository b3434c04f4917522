//! Measures a server's resident memory per idle connection: reads VmRSS of
//! the server's PID, opens N connections and does one round trip on each
//! (so the server has really taken each one in), lets them sit idle, reads
//! VmRSS again and prints the difference per connection.
//!
//! `cargo run --release -p server-eventloop --example idle_rss -- \
//!     --addr 127.0.0.1:11211 --pid <server pid> --connections 10000`
//!
//! Works against any memcached-protocol server (memcached itself too).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    /// The server to connect to.
    #[arg(long)]
    addr: SocketAddr,
    /// The server's process id, whose /proc/<pid>/status is read.
    #[arg(long)]
    pid: u32,
    /// Idle connections to open.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// How long the connections sit idle before the second reading.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// A name for the server in the output line.
    #[arg(long, default_value = "server")]
    label: String,
}

fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}

fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct we pass.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_open_file_limit();
    let before = vm_rss_kib(args.pid)?;
    let mut conns = Vec::with_capacity(args.connections);
    let mut buf = [0u8; 256];
    for i in 0..args.connections {
        let mut s = TcpStream::connect(args.addr)
            .with_context(|| format!("connection {i} of {}", args.connections))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"version\r\n")?;
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n") {
            let n = s.read(&mut buf)?;
            if n == 0 {
                bail!(
                    "connection {i} closed by the server: {:?}",
                    String::from_utf8_lossy(&got)
                );
            }
            got.extend_from_slice(&buf[..n]);
        }
        if !got.starts_with(b"VERSION ") {
            bail!(
                "connection {i}: unexpected reply {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        conns.push(s);
    }
    std::thread::sleep(Duration::from_millis(args.settle_ms));
    let after = vm_rss_kib(args.pid)?;
    let per = (after.saturating_sub(before) * 1024) / u64::try_from(args.connections.max(1))?;
    println!(
        "{}: {} idle connections, VmRSS {} KiB -> {} KiB, {} bytes per connection",
        args.label, args.connections, before, after, per
    );
    drop(conns);
    Ok(())
}
