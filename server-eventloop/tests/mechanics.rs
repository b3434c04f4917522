//! The event loop's own behaviour, which the thread pool does not share:
//! one loop serves many connections in turns (a deep pipeline does not
//! starve the others, a slow client does not delay them) and a client that
//! never reads is bounded by back-pressure. Driven by testkit's scripted
//! handler, so each case controls exactly what a request does. What both
//! loops do alike (held replies, limits, timeouts, shutdown, panics) is
//! tested over both in testkit.

use std::io::{ErrorKind, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use server_eventloop::{AcceptMode, EventLoop};
use service::frontend::Config;
use testkit::script::{read_exact, Loop};

fn one_loop() -> Loop<EventLoop> {
    Loop::start(
        EventLoop {
            accept: AcceptMode::ReusePort,
        },
        Config::default(),
    )
}

#[test]
fn a_deep_pipeline_is_served_in_turns_and_completely() {
    // One loop, budget of 4 x 32 requests per turn: 20,000 requests need
    // many turns, with another client served in between.
    let server = one_loop();
    let mut deep = server.connect();
    let mut other = server.connect();
    let pipeline = b"ping\r\n".repeat(20_000);
    let writer = {
        let mut deep = deep.try_clone().expect("clone");
        std::thread::spawn(move || deep.write_all(&pipeline).expect("send"))
    };
    other.write_all(b"ping\r\n").expect("send");
    assert_eq!(read_exact(&mut other, 6), b"PONG\r\n");
    assert_eq!(
        read_exact(&mut deep, 6 * 20_000),
        b"PONG\r\n".repeat(20_000)
    );
    writer.join().expect("writer");
}

#[test]
fn a_client_that_never_reads_is_bounded_and_others_are_served() {
    let server = one_loop();
    let hog = server.connect();
    hog.set_write_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    // Each request asks for a 64 KiB reply; the hog writes requests until
    // the server stops reading them (its send blocks), never reading.
    let request = b"big 65536\r\n".repeat(100);
    let mut sent_requests = 0u64;
    let mut hog_w = hog.try_clone().expect("clone");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match hog_w.write_all(&request) {
            Ok(()) => sent_requests += 100,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("hog write: {e}"),
        }
    }
    // Let the server take in whatever it will.
    std::thread::sleep(Duration::from_millis(200));
    let executed = server.script.executed.load(Ordering::SeqCst);
    // What the server produced is bounded by the output limit plus one
    // turn's worth, plus what the kernel's socket buffers hold (a few MiB):
    // far below what was asked for.
    let produced = executed * 65_538;
    eprintln!("hog sent {sent_requests} requests; the server executed {executed}");
    assert!(
        produced < 64 << 20,
        "server produced {produced} bytes for a client that reads nothing"
    );
    assert!(
        sent_requests > executed,
        "the hog's requests should back up: sent {sent_requests}, executed {executed}"
    );
    let mut other = server.connect();
    other.write_all(b"ping\r\n").expect("send");
    assert_eq!(read_exact(&mut other, 6), b"PONG\r\n");
    drop(hog);
    drop(hog_w);
    server.stop().expect("clean stop");
}

#[test]
fn a_slow_client_does_not_delay_others() {
    // One loop serves both. The slow client types its requests a byte at a
    // time and stops in the middle of one; the fast client must be served
    // completely while that request is still unfinished.
    let server = one_loop();
    let mut slow = server.connect();
    let (paused_tx, paused_rx) = std::sync::mpsc::channel();
    let (resume_tx, resume_rx) = std::sync::mpsc::channel::<()>();
    let slow_thread = std::thread::spawn(move || {
        let typed = b"ping\r\nping\r\nping\r\n";
        let (first, rest) = typed.split_at(9);
        for &b in first {
            slow.write_all(&[b]).expect("send one byte");
            std::thread::sleep(Duration::from_millis(10));
        }
        paused_tx.send(()).expect("signal pause");
        resume_rx.recv().expect("resume");
        for &b in rest {
            slow.write_all(&[b]).expect("send one byte");
            std::thread::sleep(Duration::from_millis(10));
        }
        read_exact(&mut slow, 18)
    });
    paused_rx.recv().expect("slow client paused mid-request");
    let mut fast = server.connect();
    for _ in 0..100 {
        fast.write_all(b"ping\r\n").expect("send");
        assert_eq!(read_exact(&mut fast, 6), b"PONG\r\n");
    }
    resume_tx.send(()).expect("resume slow client");
    assert_eq!(slow_thread.join().expect("slow"), b"PONG\r\n".repeat(3));
}
