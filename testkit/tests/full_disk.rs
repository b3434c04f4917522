//! A full disk under each front-end: the store on a size-limited tmpfs,
//! written over the wire by several clients until the file system is full.
//! Every client then gets a clear `SERVER_ERROR` naming the full disk,
//! reads go on, the server shuts down cleanly, starts again on a disk with
//! no room left for a new data file and serves reads, and writing resumes
//! once space is freed, without a restart, with every acknowledged write
//! intact.
//!
//! Mounting needs root: without it the test says it is skipped, and fails
//! under `CI=true`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use testkit::disk::Tmpfs;
use testkit::{Frontend, Server};

const CLIENTS: u32 = 4;
const FLAGS: &[&str] = &["--durability", "always", "--hstable-size", "256k"];

fn key(t: u32, i: u32) -> String {
    format!("key-{t}-{i:06}")
}

fn value(t: u32, i: u32) -> Vec<u8> {
    let mut v = format!("{t}:{i}:").into_bytes();
    v.resize(2000, b'a' + (i % 26) as u8);
    v
}

/// Whether `reply` is the server's answer to a write on a full disk.
fn is_disk_full(reply: &str) -> bool {
    reply.starts_with("SERVER_ERROR") && reply.contains("No space left on device")
}

/// Every acknowledged write is served with its value.
fn check(server: &Server, acked: &[(u32, u32)]) {
    let mut c = server.client();
    for &(t, i) in acked {
        let got = c.get(&key(t, i)).expect("get");
        assert_eq!(
            got.as_deref(),
            Some(&value(t, i)[..]),
            "{}: acknowledged {} lost or wrong",
            server.frontend.name(),
            key(t, i)
        );
    }
}

fn full_disk(frontend: Frontend) {
    let Some(disk) = Tmpfs::or_skip("4m") else {
        return;
    };
    let dir = disk.path.join("store");
    // Someone else's 1 MiB, deleted at the end to give space back.
    let ballast = disk.path.join("ballast");
    std::fs::write(&ballast, vec![0x55u8; 1 << 20]).expect("ballast");

    let mut server = Server::start_in(frontend, &dir, FLAGS);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (addr, acked) = (server.addr, acked.clone());
            std::thread::spawn(move || {
                let mut c = testkit::Client::connect(addr);
                for i in 0..10_000 {
                    let reply = c.set(&key(t, i), &value(t, i)).expect("set");
                    if reply == "STORED\r\n" {
                        acked.lock().expect("acked").push((t, i));
                    } else {
                        return reply;
                    }
                }
                panic!("4 MiB never filled up")
            })
        })
        .collect();
    for c in clients {
        let reply = c.join().expect("client");
        assert!(is_disk_full(&reply), "not a disk-full error: {reply:?}");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("acked"));
    assert!(acked.len() > 100, "only {} writes fit", acked.len());
    check(&server, &acked);
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("shuts down on a full disk");
    assert!(status.success(), "exit on a full disk: {status}");

    // No room left for a new data file: it must start and serve reads.
    let filler = disk.fill("filler");
    let server = Server::start_in(frontend, &dir, FLAGS);
    check(&server, &acked);
    let mut c = server.client();
    let reply = c.set("after", b"full").expect("set");
    assert!(is_disk_full(&reply), "not a disk-full error: {reply:?}");

    // Space comes back: writing resumes without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    std::fs::remove_file(&ballast).expect("remove ballast");
    assert_eq!(c.set("after", b"room").expect("set"), "STORED\r\n");
    assert_eq!(c.get("after").expect("get").as_deref(), Some(&b"room"[..]));
    check(&server, &acked);
    drop(server);

    // And after a kill, everything is still there.
    let server = Server::start_in(frontend, &dir, FLAGS);
    check(&server, &acked);
    assert_eq!(
        server.client().get("after").expect("get").as_deref(),
        Some(&b"room"[..])
    );
    println!(
        "{}: {} writes acknowledged before the disk was full, all served after each restart",
        frontend.name(),
        acked.len()
    );
}

#[test]
fn threadpool_serves_reads_on_a_full_disk_and_resumes_writing() {
    full_disk(Frontend::Threadpool);
}

#[test]
fn eventloop_serves_reads_on_a_full_disk_and_resumes_writing() {
    full_disk(Frontend::EventloopReuseport);
}
