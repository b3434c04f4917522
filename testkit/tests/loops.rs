//! What both front-ends' loops do alike, each loop in the test process
//! driven by the scripted handler (`testkit::script`): the thread pool and
//! the event loop in both accept modes, given the same [`Config`], must
//! answer pipelines in order, hold replies until their sync lands (and drop
//! them when it fails), flush before closing, refuse over the limit and
//! reuse a freed slot, close idle connections, deliver held replies at
//! shutdown, and survive a panic with only its connection closed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use server_eventloop::{AcceptMode, EventLoop};
use server_threadpool::ThreadPool;
use service::frontend::Config;
use testkit::script::{read_exact, read_to_close, Loop, Script};

/// Runs `$body` with `$server` bound to each loop in turn, started with
/// `$config`; `$name` names the loop for messages.
macro_rules! on_every_loop {
    ($config:expr, |$server:ident, $name:ident| $body:block) => {{
        {
            let $name = "threadpool";
            let $server = Loop::start(ThreadPool, $config);
            $body
        }
        for (accept, $name) in [
            (AcceptMode::ReusePort, "eventloop-reuseport"),
            (AcceptMode::Dispatch, "eventloop-dispatch"),
        ] {
            let $server = Loop::start(EventLoop { accept }, $config);
            $body
        }
    }};
}

fn threads(n: usize) -> Config {
    Config {
        threads: n,
        grace: Duration::from_secs(2),
        ..Config::default()
    }
}

fn ping(s: &mut TcpStream, name: &str) {
    s.write_all(b"ping\r\n").expect("send");
    assert_eq!(read_exact(s, 6), b"PONG\r\n", "{name}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    on_every_loop!(threads(8), |server, name| {
        let mut clients: Vec<TcpStream> = (0..8).map(|_| server.connect()).collect();
        for c in &mut clients {
            c.write_all(&b"ping\r\n".repeat(1000)).expect("send");
        }
        for c in &mut clients {
            assert_eq!(read_exact(c, 6000), b"PONG\r\n".repeat(1000), "{name}");
        }
        server.stop().expect("clean stop");
    });
}

#[test]
fn held_replies_wait_for_the_sync_and_keep_their_order() {
    on_every_loop!(threads(1), |server, name| {
        let mut c = server.connect();
        c.write_all(b"ping\r\nhold\r\nping\r\n").expect("send");
        assert_eq!(read_exact(&mut c, 6), b"PONG\r\n", "{name}");
        assert_eq!(read_exact(&mut c, 6), b"HELD\r\n", "{name}");
        assert!(
            server.script.released.load(Ordering::SeqCst),
            "{name}: a held reply went out before its sync landed"
        );
        assert_eq!(read_exact(&mut c, 6), b"PONG\r\n", "{name}");
    });
}

#[test]
fn a_failed_sync_closes_without_acknowledging() {
    on_every_loop!(threads(1), |server, name| {
        let mut c = server.connect();
        // The failed sync comes first: a later write that does land must
        // not release the reply of the one that did not.
        c.write_all(b"ping\r\nfail\r\nhold\r\nping\r\n")
            .expect("send");
        let got = String::from_utf8_lossy(&read_to_close(&mut c)).into_owned();
        assert!(
            !got.contains("NEVER SENT") && !got.contains("HELD"),
            "{name}: a reply held by an unsynced write was sent: {got:?}"
        );
    });
}

#[test]
fn quit_flushes_then_closes() {
    on_every_loop!(threads(1), |server, name| {
        let mut c = server.connect();
        c.write_all(b"ping\r\nquit\r\nping\r\n").expect("send");
        assert_eq!(read_to_close(&mut c), b"PONG\r\n", "{name}");
    });
}

#[test]
fn connections_over_the_limit_are_told_and_closed_and_a_freed_slot_is_reused() {
    let config = Config {
        max_connections: 2,
        ..threads(2)
    };
    on_every_loop!(config.clone(), |server, name| {
        let mut a = server.connect();
        let mut b = server.connect();
        ping(&mut a, name);
        ping(&mut b, name);
        let mut over = server.connect();
        assert_eq!(
            read_to_close(&mut over),
            service::TOO_MANY_CONNECTIONS,
            "{name}"
        );
        assert_eq!(Script::count(&server.script.refused), 1, "{name}");
        drop(a);
        // The slot is given back once the loop has seen the close.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut c = server.connect();
            c.write_all(b"ping\r\n").expect("send");
            let mut buf = [0u8; 6];
            match c.read_exact(&mut buf) {
                Ok(()) if &buf == b"PONG\r\n" => break,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                other => panic!("{name}: freed slot never reused: {other:?} {buf:?}"),
            }
        }
        drop(b);
    });
}

#[test]
fn idle_connections_are_closed_and_counted() {
    let config = Config {
        idle_timeout: Some(Duration::from_millis(200)),
        ..threads(1)
    };
    on_every_loop!(config.clone(), |server, name| {
        let mut idle = server.connect();
        ping(&mut idle, name);
        let t = Instant::now();
        assert_eq!(read_to_close(&mut idle), b"", "{name}");
        assert!(
            t.elapsed() >= Duration::from_millis(100),
            "{name}: closed at once"
        );
        assert!(Script::count(&server.script.idle_kicks) >= 1, "{name}");
    });
}

#[test]
fn shutdown_delivers_held_replies_then_stops_accepting() {
    on_every_loop!(threads(2), |server, name| {
        let mut c = server.connect();
        c.write_all(b"hold\r\n").expect("send");
        // The request must be in before stopping.
        while Script::count(&server.script.executed) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let addr = server.addr;
        server.stop().expect("clean stop");
        assert_eq!(read_to_close(&mut c), b"HELD\r\n", "{name}");
        assert!(
            TcpStream::connect(addr).is_err(),
            "{name}: still accepting after shutdown"
        );
    });
}

#[test]
fn a_panic_closes_its_connection_only() {
    // The panic policy of both front-ends (`service::frontend`): the
    // panicking connection is closed and counted, every other one goes on.
    on_every_loop!(threads(2), |server, name| {
        let mut other = server.connect();
        ping(&mut other, name);
        let mut c = server.connect();
        c.write_all(b"panic\r\n").expect("send");
        let mut buf = [0u8; 16];
        assert_eq!(c.read(&mut buf).expect("closed, not reset"), 0, "{name}");
        assert_eq!(Script::count(&server.script.panics), 1, "{name}");
        ping(&mut other, name);
        drop(c);
        let mut fresh = server.connect();
        ping(&mut fresh, name);
        drop((other, fresh));
        server.stop().expect("a clean stop after the panic");
    });
}
