//! A client that never reads its replies, or never speaks, must not hold a
//! thread-pool worker forever: the write and idle timeouts free it, they
//! have defaults, and `stats settings` shows them. Every front-end closes a
//! silent connection after `--idle-timeout` and counts it.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use testkit::{Frontend, Server};

/// How long a second client waits for the one worker of `server`.
fn wait_for_worker(server: &Server, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut c = server.client();
    c.stream()
        .set_read_timeout(Some(limit))
        .expect("read timeout");
    c.send(b"version\r\n").ok()?;
    c.read_until(b"\r\n").ok()?;
    Some(t.elapsed())
}

#[test]
fn a_client_that_never_reads_frees_its_worker_after_the_write_timeout() {
    let server = Server::start(
        Frontend::Threadpool,
        &["--threads", "1", "--write-timeout", "1"],
    )
    .expect("starts");
    let mut setup = server.client();
    assert_eq!(
        setup.set("mid", &vec![b'm'; 64 * 1024]).expect("set"),
        "STORED\r\n"
    );
    drop(setup);
    // Gigabytes of replies asked for, none read: the worker blocks in write.
    let mut hog = std::net::TcpStream::connect(server.addr).expect("connect");
    hog.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let _ = hog.write_all(&b"get mid\r\n".repeat(20_000));
    let waited = wait_for_worker(&server, Duration::from_secs(8))
        .expect("the worker is freed and serves the next client");
    assert!(
        waited >= Duration::from_millis(500),
        "served at once? {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn a_silent_client_frees_its_worker_after_the_idle_timeout() {
    let server = Server::start(
        Frontend::Threadpool,
        &["--threads", "1", "--idle-timeout", "1"],
    )
    .expect("starts");
    let _silent = std::net::TcpStream::connect(server.addr).expect("connect");
    std::thread::sleep(Duration::from_millis(100));
    let waited = wait_for_worker(&server, Duration::from_secs(8)).expect("freed");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[test]
fn both_front_ends_bound_writes_by_default_and_say_so() {
    for (f, idle) in [
        (Frontend::Threadpool, "300"),
        (Frontend::EventloopReuseport, "0"),
    ] {
        let server = Server::start(f, &[]).expect("starts");
        let mut c = server.client();
        assert_eq!(c.setting("write_timeout"), "10", "{f:?}");
        assert_eq!(c.setting("idle_timeout"), idle, "{f:?}");
    }
}

#[test]
fn the_event_loop_closes_a_connection_that_never_reads() {
    let server =
        Server::start(Frontend::EventloopReuseport, &["--write-timeout", "1"]).expect("starts");
    let mut setup = server.client();
    assert_eq!(
        setup.set("mid", &vec![b'm'; 64 * 1024]).expect("set"),
        "STORED\r\n"
    );
    let before: u64 = setup.stat("curr_connections").parse().expect("number");
    let mut hog = std::net::TcpStream::connect(server.addr).expect("connect");
    hog.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let _ = hog.write_all(&b"get mid\r\n".repeat(20_000));
    let counted = testkit::wait_for(Duration::from_secs(2), || {
        setup.stat("curr_connections").parse::<u64>().ok() == Some(before + 1)
    });
    assert!(counted, "the reader that never reads was never served");
    let closed = testkit::wait_for(Duration::from_secs(6), || {
        setup.stat("curr_connections").parse::<u64>().ok() == Some(before)
    });
    assert!(closed, "the reader that never reads is still connected");
}

#[test]
fn every_front_end_closes_a_silent_connection_after_the_idle_timeout() {
    // Cells wait on the clock, so they run side by side.
    let cells: Vec<_> = testkit::matrix()
        .map(|(f, d)| {
            std::thread::spawn(move || {
                let cell = format!("{} / {d}", f.name());
                let server =
                    Server::start(f, &["--idle-timeout", "1", "--durability", d]).expect("starts");
                let mut silent = server.client();
                assert_eq!(silent.line("version"), "VERSION 1.6.18\r\n", "{cell}");
                let t = Instant::now();
                let mut rest = Vec::new();
                let n = silent.stream().read_to_end(&mut rest).expect("closed");
                assert_eq!(n, 0, "{cell}");
                assert!(
                    t.elapsed() >= Duration::from_millis(500),
                    "{cell}: closed at once"
                );
                assert_eq!(server.client().stat("idle_kicks"), "1", "{cell}");
            })
        })
        .collect();
    for cell in cells {
        cell.join().expect("cell");
    }
}
