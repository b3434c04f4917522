//! The pool through the memcached service: queueing beyond the workers (and
//! its figures in `stats`), the connection limit, and the idle timeout.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{stat, Client, InProcess};

#[test]
fn third_client_is_served_when_a_worker_frees_up_and_its_wait_shows() {
    let server = InProcess::start(2, |_| {});
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    a.set("queue-a", "1");
    b.set("queue-b", "2");

    let mut c = Client::connect(server.addr);
    c.send(b"get queue-a\r\n");
    // Both workers are taken: the request waits with its connection.
    c.stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    assert!(c.stream().read(&mut byte).is_err(), "no reply while queued");
    let stats = b.stats();
    assert_eq!(stat(&stats, "frontend_model"), "threadpool");
    assert_eq!(stat(&stats, "threads"), "2");
    assert_eq!(stat(&stats, "queued_connections"), "1");
    assert_eq!(stat(&stats, "curr_connections"), "3");

    drop(a);
    c.stream()
        .set_read_timeout(Some(common::REPLY_TIMEOUT))
        .expect("timeout");
    assert_eq!(
        c.read_until(b"END\r\n"),
        b"VALUE queue-a 0 1\r\n1\r\nEND\r\n"
    );

    let stats = c.stats();
    assert_eq!(stat(&stats, "queued_connections"), "0");
    let waited: u64 = stat(&stats, "last_queue_wait_us").parse().expect("number");
    assert!(
        waited >= 300_000,
        "the third connection waited: {waited} us"
    );
    assert_eq!(stat(&stats, "total_queued"), "3");
    drop((b, c));
    server.stop();
}

#[test]
fn over_the_limit_gets_server_error_and_is_counted() {
    let server = InProcess::start(2, |config| config.max_connections = 2);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    a.set("limit", "x");
    let mut c = Client::connect(server.addr);
    let mut reply = String::new();
    c.stream()
        .read_to_string(&mut reply)
        .expect("closed after the line");
    assert_eq!(reply, "SERVER_ERROR too many open connections\r\n");
    let stats = b.stats();
    assert_eq!(stat(&stats, "rejected_connections"), "1");
    drop(a);
    // The slot a left is free again (its close is seen asynchronously).
    let mut reply = None;
    for _ in 0..50 {
        let mut d = Client::connect(server.addr);
        d.send(b"version\r\n");
        let got = d.read_some();
        if got.starts_with(b"VERSION ") {
            reply = Some(got);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(reply.is_some(), "a freed slot is reused");
    server.stop();
}

#[test]
fn idle_timeout_frees_the_worker() {
    let server = InProcess::start(1, |config| {
        config.idle_timeout = Some(Duration::from_secs(1))
    });
    let mut silent = Client::connect(server.addr);
    silent.set("idle", "y");
    // The only worker is held by `silent` until its idle timeout.
    let mut next = Client::connect(server.addr);
    assert_eq!(next.get("idle").as_deref(), Some("y"));
    let mut rest = Vec::new();
    assert_eq!(silent.stream().read_to_end(&mut rest).expect("closed"), 0);
    assert_eq!(stat(&next.stats(), "idle_kicks"), "1");
    server.stop();
}
