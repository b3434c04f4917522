//! The pool's own behaviour, which the event loop does not share: a
//! connection waits in the queue for a free worker (and the wait shows in
//! `stats`), a panic leaves the only worker serving, shutdown closes the
//! connections still queued. What both front-ends do alike is tested over
//! both in testkit.

use std::io::{self, Read, Write};
use std::time::Duration;

use server_threadpool::ThreadPool;
use service::frontend::Config;
use testkit::script::{read_exact, read_to_close, Loop, Script};
use testkit::{Frontend, Server};

fn pool(workers: usize) -> Loop<ThreadPool> {
    Loop::start(
        ThreadPool,
        Config {
            threads: workers,
            grace: Duration::from_secs(2),
            ..Config::default()
        },
    )
}

fn ping(s: &mut std::net::TcpStream) {
    s.write_all(b"ping\r\n").expect("send");
    assert_eq!(read_exact(s, 6), b"PONG\r\n");
}

#[test]
fn third_client_waits_for_a_free_worker() {
    let server = pool(2);
    let mut a = server.connect();
    let mut b = server.connect();
    ping(&mut a);
    ping(&mut b);
    let mut c = server.connect();
    c.write_all(b"ping\r\n").expect("send");
    // Its wait is timed from when the acceptor queued it: from there on it
    // waits at least the 200 ms below, however late the acceptor ran.
    assert!(
        testkit::wait_for(Duration::from_secs(5), || Script::count(
            &server.script.queued
        ) == 3),
        "the third connection was never queued"
    );
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let err = c.read(&mut [0u8; 8]).expect_err("no worker free yet");
    assert!(matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ));
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(
        read_exact(&mut c, 6),
        b"PONG\r\n",
        "served once a worker is free"
    );
    drop((b, c));
    let script = std::sync::Arc::clone(&server.script);
    server.stop().expect("clean stop");
    assert_eq!(Script::count(&script.queued), 3);
    assert_eq!(Script::count(&script.dequeued), 3);
    assert!(Script::count(&script.longest_wait_ms) >= 200);
}

#[test]
fn a_panic_leaves_the_only_worker_serving() {
    let server = pool(1);
    let mut a = server.connect();
    a.write_all(b"panic\r\n").expect("send");
    assert_eq!(read_to_close(&mut a), b"", "closed after the panic");
    let mut b = server.connect();
    ping(&mut b);
    drop(b);
    let script = std::sync::Arc::clone(&server.script);
    server.stop().expect("clean stop");
    assert_eq!(Script::count(&script.panics), 1);
}

#[test]
fn shutdown_ends_served_connections_and_closes_queued_ones() {
    let server = pool(1);
    let mut served = server.connect();
    ping(&mut served);
    let mut queued = server.connect();
    queued.write_all(b"ping\r\n").expect("send");
    assert!(
        testkit::wait_for(Duration::from_secs(5), || Script::count(
            &server.script.queued
        ) == 2),
        "the second connection was never queued"
    );
    let script = std::sync::Arc::clone(&server.script);
    server.stop().expect("clean stop");
    assert_eq!(read_to_close(&mut served), b"");
    // Closed without a reply; a reset is as good as an orderly close here.
    let mut rest = Vec::new();
    if let Ok(n) = queued.read_to_end(&mut rest) {
        assert_eq!(n, 0, "{rest:?}");
    }
    assert_eq!(Script::count(&script.queued), 2);
    assert_eq!(Script::count(&script.closed), 2);
}

#[test]
fn the_queue_shows_in_stats() {
    let server = Server::start(Frontend::Threadpool, &["--threads", "2"]).expect("starts");
    let mut a = server.client();
    let mut b = server.client();
    assert_eq!(a.set("queue-a", b"1").expect("set"), "STORED\r\n");
    assert_eq!(b.set("queue-b", b"2").expect("set"), "STORED\r\n");

    let mut c = server.client();
    c.send(b"get queue-a\r\n").expect("send");
    // Both workers are taken: the request waits with its connection.
    c.stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert!(
        c.stream().read(&mut [0u8; 1]).is_err(),
        "no reply while queued"
    );
    assert_eq!(b.stat("frontend_model"), "threadpool");
    assert_eq!(b.stat("threads"), "2");
    assert_eq!(b.stat("queued_connections"), "1");
    assert_eq!(b.stat("curr_connections"), "3");

    drop(a);
    c.stream()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(
        c.read_until(b"END\r\n").expect("reply"),
        b"VALUE queue-a 0 1\r\n1\r\nEND\r\n"
    );
    assert_eq!(c.stat("queued_connections"), "0");
    let waited: u64 = c.stat("last_queue_wait_us").parse().expect("number");
    assert!(
        waited >= 300_000,
        "the third connection waited: {waited} us"
    );
    assert_eq!(c.stat("total_queued"), "3");
}
