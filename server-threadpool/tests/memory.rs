//! A worker's memory stays bounded whatever the client sends: an oversized
//! value is swallowed as it streams in, and a long pipeline of large replies
//! goes out in bounded pieces. Measured as the growth of the server
//! process's peak resident set (VmHWM).

mod common;

use std::io::{Read, Write};

use common::{Client, ServerProcess};

const MIB: usize = 1 << 20;
/// Allowed growth of the peak RSS while 64 MiB stream in or 32 MiB stream
/// out; buffering either whole would exceed it several times over.
const BOUND: u64 = 16 * MIB as u64;

/// Peak resident set of `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

#[test]
fn oversized_value_is_swallowed_without_buffering_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(dir.path(), &["--threads", "2", "--durability", "none"]);
    let mut client = Client::connect(server.addr);
    client.set("before", "ok");
    let before = peak_rss(server.pid());

    let len = 64 * MIB;
    client.send(format!("set huge 0 0 {len}\r\n").as_bytes());
    let chunk = vec![b'x'; 256 * 1024];
    for _ in 0..len / chunk.len() {
        client.send(&chunk);
    }
    client.send(b"\r\n");
    let reply = client.read_until(b"\r\n");
    assert_eq!(reply, b"SERVER_ERROR object too large for cache\r\n");
    // The connection is still in step: the next request gets its reply.
    assert_eq!(client.get("before").as_deref(), Some("ok"));
    assert_eq!(client.get("huge"), None);

    let grown = peak_rss(server.pid()).saturating_sub(before);
    assert!(grown < BOUND, "peak RSS grew by {grown} bytes");
    server.kill();
}

#[test]
fn pipelined_large_replies_go_out_in_bounded_pieces() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(dir.path(), &["--threads", "2", "--durability", "none"]);
    let mut client = Client::connect(server.addr);
    let value = "v".repeat(512 * 1024);
    client.set("large", &value);
    let before = peak_rss(server.pid());

    let gets = 64;
    client
        .stream()
        .write_all("get large\r\n".repeat(gets).as_bytes())
        .expect("send");
    let one = format!("VALUE large 0 {}\r\n{value}\r\nEND\r\n", value.len());
    let mut got = vec![0u8; one.len() * gets];
    client.stream().read_exact(&mut got).expect("all replies");
    assert!(got.chunks(one.len()).all(|reply| reply == one.as_bytes()));

    let grown = peak_rss(server.pid()).saturating_sub(before);
    assert!(grown < BOUND, "peak RSS grew by {grown} bytes");
    server.kill();
}
