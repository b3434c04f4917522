//! Many concurrent connections to one server process, each doing a set and
//! a get: all served, no errors. 1,000 by default (`make test`);
//! `EVENTLOOP_LOAD_CONNECTIONS=10000` for `make load-10k`.
//!
//! The server runs as its own process so that the test's client sockets
//! and the server's connections each count against their own process's
//! open-file limit.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{raise_open_file_limit, read_until, stat, ServerProcess};

const DEFAULT_CONNECTIONS: usize = 1000;
/// Client threads; each drives its share of the connections.
const CLIENT_THREADS: usize = 4;

fn connections() -> usize {
    std::env::var("EVENTLOOP_LOAD_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CONNECTIONS)
}

#[test]
fn many_concurrent_connections_each_set_and_get() {
    let wanted = connections();
    let limit = raise_open_file_limit();
    // Room for the connections plus the test harness's own files.
    let usable = usize::try_from(limit.saturating_sub(64)).unwrap_or(usize::MAX);
    assert!(
        wanted <= usable,
        "the open-file hard limit ({limit}) is too low for {wanted} client connections"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let max = (wanted + 16).to_string();
    let server = ServerProcess::start(dir.path(), &["--max-connections", &max]);
    let addr = server.addr;

    // Phase 1: open every connection and keep it open.
    let per_thread = wanted.div_ceil(CLIENT_THREADS);
    let mut groups: Vec<Vec<(usize, TcpStream)>> = (0..CLIENT_THREADS)
        .map(|t| {
            (t * per_thread..((t + 1) * per_thread).min(wanted))
                .map(|i| (i, common::connect(addr)))
                .collect()
        })
        .collect();
    // A connect returns once the kernel has queued the connection; the
    // server takes it in a moment later.
    let everyone = u64::try_from(wanted).expect("count") + 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut open_now = stat(addr, "curr_connections");
    while open_now < everyone && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        open_now = stat(addr, "curr_connections");
    }
    // (An earlier stats connection may not have been closed yet: >=.)
    assert!(
        open_now >= everyone,
        "all {wanted} connections should be open at once (plus the stats one): server counts {open_now}"
    );

    // Phase 2: every connection sends its set and get; then all replies are read.
    let threads: Vec<_> = groups
        .drain(..)
        .map(|mut group| {
            std::thread::spawn(move || {
                for (i, s) in &mut group {
                    let request = format!("set load:{i} 0 0 8\r\nv{i:07}\r\nget load:{i}\r\n");
                    s.write_all(request.as_bytes()).expect("send");
                }
                let mut served = 0usize;
                for (i, s) in &mut group {
                    let got = read_until(s, b"END\r\n");
                    let expected = format!("STORED\r\nVALUE load:{i} 0 8\r\nv{i:07}\r\nEND\r\n");
                    assert_eq!(String::from_utf8_lossy(&got), expected, "connection {i}");
                    served += 1;
                }
                served
            })
        })
        .collect();
    let served: usize = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .sum();
    assert_eq!(served, wanted);
    assert_eq!(stat(addr, "rejected_connections"), 0);
    eprintln!("{served} concurrent connections served");
}
