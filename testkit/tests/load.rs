//! Many concurrent connections over the test matrix: all of them open at
//! once, each doing a set and a get, all served, none refused. 1,000 by
//! default (`make test`); `LOAD_CONNECTIONS=10000` for `make load-10k`.
//!
//! The servers run as processes of their own, so the test's client sockets
//! and the server's connections each count against their own process's
//! open-file limit. The thread pool serves as many connections at a time
//! as it has workers and queues the rest, so each client closes its
//! connection once answered, as a real one would, and the queue moves.

use std::io::Write;
use std::time::{Duration, Instant};

use testkit::{Client, Server};

const DEFAULT_CONNECTIONS: usize = 1000;
/// Client threads; each drives its share of the connections.
const CLIENT_THREADS: usize = 4;

fn connections() -> usize {
    std::env::var("LOAD_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CONNECTIONS)
}

fn count(client: &mut Client, stat: &str) -> u64 {
    client.stat(stat).parse().expect("a number")
}

#[test]
fn many_concurrent_connections_each_set_and_get() {
    let wanted = connections();
    let needed = u64::try_from(wanted).expect("count") + service::RESERVED_FDS;
    let limit = service::raise_open_file_limit(needed).expect("open-file limit");
    assert!(
        limit.is_enough(),
        "the open-file limit ({limit:?}) is too low for {wanted} client connections"
    );
    for (f, d) in testkit::matrix() {
        let cell = format!("{} / {d}", f.name());
        let max = (wanted + 16).to_string();
        let server =
            Server::start(f, &["--max-connections", &max, "--durability", d]).expect("starts");
        // Opened first, so that it holds a thread-pool worker of its own.
        let mut stats = server.client();
        assert_eq!(stats.line("version"), "VERSION 1.6.18\r\n", "{cell}");

        // Phase 1: open every connection and keep it open.
        let per_thread = wanted.div_ceil(CLIENT_THREADS);
        let groups: Vec<Vec<(usize, Client)>> = (0..CLIENT_THREADS)
            .map(|t| {
                (t * per_thread..((t + 1) * per_thread).min(wanted))
                    .map(|i| (i, server.client()))
                    .collect()
            })
            .collect();
        // A connect returns once the kernel has queued the connection; the
        // server takes it in a moment later.
        let everyone = u64::try_from(wanted).expect("count") + 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut open_now = count(&mut stats, "curr_connections");
        while open_now < everyone && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            open_now = count(&mut stats, "curr_connections");
        }
        assert_eq!(
            open_now, everyone,
            "{cell}: all {wanted} connections open at once (plus the stats one)"
        );

        // Phase 2: every connection sends its set and get; then each reply
        // is read and its connection closed.
        let threads: Vec<_> = groups
            .into_iter()
            .map(|mut group| {
                let cell = cell.clone();
                std::thread::spawn(move || {
                    for (i, c) in &mut group {
                        let request = format!("set load:{i} 0 0 8\r\nv{i:07}\r\nget load:{i}\r\n");
                        c.stream().write_all(request.as_bytes()).expect("send");
                    }
                    let mut served = 0usize;
                    for (i, mut c) in group {
                        let got = c.read_until(b"END\r\n").expect("replies");
                        let expected =
                            format!("STORED\r\nVALUE load:{i} 0 8\r\nv{i:07}\r\nEND\r\n");
                        assert_eq!(
                            String::from_utf8_lossy(&got),
                            expected,
                            "{cell}: connection {i}"
                        );
                        served += 1;
                        // Dropped here: its connection closes.
                    }
                    served
                })
            })
            .collect();
        let served: usize = threads
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .sum();
        assert_eq!(served, wanted, "{cell}");
        assert_eq!(count(&mut stats, "rejected_connections"), 0, "{cell}");
        eprintln!("{cell}: {served} concurrent connections served");
    }
}
