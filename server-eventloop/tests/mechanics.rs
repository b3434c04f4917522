//! The loop's own behaviour (budgets, back-pressure, held replies, limits,
//! timeouts, shutdown, panics) driven by a tiny line protocol, so each case
//! controls exactly what the "service" does and when a sync lands.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use server_eventloop::{
    serve_with, AcceptMode, DurableCallback, Error, Handler, Listeners, Processed, Settings,
    Shutdown,
};

/// Line protocol: `ping` -> `PONG`, `big N` -> N bytes, `hold` -> `HELD`
/// once a sync "lands" 50 ms later, `fail` -> a sync that fails, `quit`,
/// `panic`.
#[derive(Default)]
struct Script {
    /// Requests executed, to see how far a non-reading client got.
    executed: AtomicU64,
    /// Set just before a held reply is released.
    released: Arc<AtomicBool>,
    rejected: AtomicU64,
    idle_kicks: AtomicU64,
    panics: AtomicU64,
}

enum Ticket {
    Lands,
    Fails,
}

impl Handler for Script {
    type Session = ();
    type Ticket = Ticket;

    fn session(self: &Arc<Self>) {}

    fn process(
        &self,
        _session: &mut (),
        input: &[u8],
        out: &mut service::Output,
        max_requests: usize,
    ) -> Processed<Ticket> {
        let mut consumed = 0;
        let mut hold = None;
        let mut close = false;
        for _ in 0..max_requests {
            let rest = &input[consumed..];
            let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let line = std::str::from_utf8(&rest[..end]).expect("ascii request");
            consumed += end + 2;
            self.executed.fetch_add(1, Ordering::SeqCst);
            match line.split_once(' ').map_or((line, ""), |(a, b)| (a, b)) {
                ("ping", _) => out.extend_from_slice(b"PONG\r\n"),
                ("big", n) => {
                    let n: usize = n.parse().expect("size");
                    out.extend_from_slice(&vec![b'x'; n]);
                    out.extend_from_slice(b"\r\n");
                }
                ("hold", _) => {
                    out.extend_from_slice(b"HELD\r\n");
                    hold = Some(Ticket::Lands);
                    break;
                }
                ("fail", _) => {
                    out.extend_from_slice(b"NEVER SENT\r\n");
                    hold = Some(Ticket::Fails);
                    break;
                }
                ("quit", _) => {
                    close = true;
                    break;
                }
                ("panic", _) => panic!("scripted panic"),
                _ => out.extend_from_slice(b"ERROR\r\n"),
            }
        }
        Processed {
            consumed,
            close,
            hold,
            output_full: false,
        }
    }

    fn on_durable(&self, ticket: Ticket, done: DurableCallback) {
        let released = Arc::clone(&self.released);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            match ticket {
                Ticket::Lands => {
                    released.store(true, Ordering::SeqCst);
                    done(true);
                }
                Ticket::Fails => done(false),
            }
        });
    }

    fn connection_rejected(&self, _reply_bytes: u64) {
        self.rejected.fetch_add(1, Ordering::SeqCst);
    }

    fn idle_kick(&self) {
        self.idle_kicks.fetch_add(1, Ordering::SeqCst);
    }

    fn connection_panicked(&self) {
        self.panics.fetch_add(1, Ordering::SeqCst);
    }
}

struct Server {
    addr: SocketAddr,
    handler: Arc<Script>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl Server {
    fn start(mode: AcceptMode, settings: Settings) -> Self {
        let listeners = Listeners::bind("127.0.0.1:0".parse().expect("addr"), mode, settings.loops)
            .expect("bind");
        let addr = listeners.local_addr();
        let handler = Arc::new(Script::default());
        let shutdown = Shutdown::new();
        let thread = {
            let handler = Arc::clone(&handler);
            let shutdown = shutdown.clone();
            std::thread::spawn(move || serve_with(handler, &settings, listeners, &shutdown))
        };
        Server {
            addr,
            handler,
            shutdown,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    fn stop(mut self) -> Result<(), Error> {
        self.shutdown.trigger();
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("server thread")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn settings(loops: usize) -> Settings {
    Settings {
        loops,
        ..Settings::default()
    }
}

fn read_exact_bytes(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).expect("reply");
    buf
}

/// Reads until the peer closes; what arrived before.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    match s.read_to_end(&mut all) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("read: {e}"),
    }
    all
}

#[test]
fn pipelined_requests_in_both_modes() {
    for mode in [AcceptMode::ReusePort, AcceptMode::Dispatch] {
        let server = Server::start(mode, settings(2));
        let mut clients: Vec<TcpStream> = (0..8).map(|_| server.connect()).collect();
        for c in &mut clients {
            c.write_all(&b"ping\r\n".repeat(1000)).expect("send");
        }
        for c in &mut clients {
            assert_eq!(read_exact_bytes(c, 6000), b"PONG\r\n".repeat(1000));
        }
        server.stop().expect("clean stop");
    }
}

#[test]
fn a_deep_pipeline_is_served_in_turns_and_completely() {
    // One loop, budget of 4 x 32 requests per turn: 20,000 requests need
    // many turns, with another client served in between.
    let server = Server::start(AcceptMode::ReusePort, settings(1));
    let mut deep = server.connect();
    let mut other = server.connect();
    let pipeline = b"ping\r\n".repeat(20_000);
    let writer = {
        let mut deep = deep.try_clone().expect("clone");
        std::thread::spawn(move || deep.write_all(&pipeline).expect("send"))
    };
    other.write_all(b"ping\r\n").expect("send");
    assert_eq!(read_exact_bytes(&mut other, 6), b"PONG\r\n");
    assert_eq!(
        read_exact_bytes(&mut deep, 6 * 20_000),
        b"PONG\r\n".repeat(20_000)
    );
    writer.join().expect("writer");
}

#[test]
fn held_replies_wait_for_the_sync_and_keep_their_order() {
    let server = Server::start(AcceptMode::ReusePort, settings(1));
    let mut c = server.connect();
    c.write_all(b"ping\r\nhold\r\nping\r\n").expect("send");
    assert_eq!(read_exact_bytes(&mut c, 6), b"PONG\r\n");
    assert_eq!(read_exact_bytes(&mut c, 6), b"HELD\r\n");
    assert!(
        server.handler.released.load(Ordering::SeqCst),
        "a held reply went out before its sync landed"
    );
    assert_eq!(read_exact_bytes(&mut c, 6), b"PONG\r\n");
}

#[test]
fn a_failed_sync_closes_without_acknowledging() {
    let server = Server::start(AcceptMode::ReusePort, settings(1));
    let mut c = server.connect();
    c.write_all(b"ping\r\nfail\r\nping\r\n").expect("send");
    let got = read_to_close(&mut c);
    assert!(
        !String::from_utf8_lossy(&got).contains("NEVER SENT"),
        "reply of an unsynced write was sent: {got:?}"
    );
}

#[test]
fn quit_flushes_then_closes() {
    let server = Server::start(AcceptMode::Dispatch, settings(1));
    let mut c = server.connect();
    c.write_all(b"ping\r\nquit\r\nping\r\n").expect("send");
    assert_eq!(read_to_close(&mut c), b"PONG\r\n");
}

#[test]
fn a_client_that_never_reads_is_bounded_and_others_are_served() {
    let server = Server::start(AcceptMode::ReusePort, settings(1));
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
    let executed = server.handler.executed.load(Ordering::SeqCst);
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
    assert_eq!(read_exact_bytes(&mut other, 6), b"PONG\r\n");
    drop(hog);
    drop(hog_w);
    server.stop().expect("clean stop");
}

#[test]
fn a_slow_client_does_not_delay_others() {
    // One loop serves both. The slow client types its requests a byte at a
    // time and stops in the middle of one; the fast client must be served
    // completely while that request is still unfinished.
    let server = Server::start(AcceptMode::ReusePort, settings(1));
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
        read_exact_bytes(&mut slow, 18)
    });
    paused_rx.recv().expect("slow client paused mid-request");
    let mut fast = server.connect();
    for _ in 0..100 {
        fast.write_all(b"ping\r\n").expect("send");
        assert_eq!(read_exact_bytes(&mut fast, 6), b"PONG\r\n");
    }
    resume_tx.send(()).expect("resume slow client");
    assert_eq!(slow_thread.join().expect("slow"), b"PONG\r\n".repeat(3));
}

#[test]
fn connections_over_the_limit_are_told_and_closed() {
    for mode in [AcceptMode::ReusePort, AcceptMode::Dispatch] {
        let server = Server::start(
            mode,
            Settings {
                max_connections: 2,
                ..settings(2)
            },
        );
        let mut a = server.connect();
        let mut b = server.connect();
        for c in [&mut a, &mut b] {
            c.write_all(b"ping\r\n").expect("send");
            assert_eq!(read_exact_bytes(c, 6), b"PONG\r\n");
        }
        let mut over = server.connect();
        assert_eq!(
            read_to_close(&mut over),
            b"SERVER_ERROR too many open connections\r\n"
        );
        assert_eq!(server.handler.rejected.load(Ordering::SeqCst), 1);
        // A slot freed is a slot reusable.
        drop(a);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut c = server.connect();
            c.write_all(b"ping\r\n").expect("send");
            let mut buf = [0u8; 6];
            match c.read_exact(&mut buf) {
                Ok(()) if &buf == b"PONG\r\n" => break,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                other => panic!("freed slot never reused: {other:?} {buf:?}"),
            }
        }
    }
}

#[test]
fn idle_connections_are_closed() {
    let server = Server::start(
        AcceptMode::ReusePort,
        Settings {
            idle_timeout: Some(Duration::from_millis(200)),
            ..settings(1)
        },
    );
    let mut idle = server.connect();
    idle.write_all(b"ping\r\n").expect("send");
    assert_eq!(read_exact_bytes(&mut idle, 6), b"PONG\r\n");
    assert_eq!(read_to_close(&mut idle), b"");
    assert!(server.handler.idle_kicks.load(Ordering::SeqCst) >= 1);
}

#[test]
fn shutdown_delivers_held_replies_then_closes() {
    let server = Server::start(AcceptMode::Dispatch, settings(2));
    let mut c = server.connect();
    c.write_all(b"hold\r\n").expect("send");
    // Make sure the request is in before stopping.
    while server.handler.executed.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let addr = server.addr;
    server.stop().expect("clean stop");
    assert_eq!(read_to_close(&mut c), b"HELD\r\n");
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn a_panic_closes_its_connection_only() {
    // The panic policy of both front-ends: the panicking connection is
    // closed and counted, every other one goes on being served.
    let server = Server::start(AcceptMode::ReusePort, settings(2));
    let mut other = server.connect();
    other.write_all(b"ping\r\n").expect("send");
    assert_eq!(read_exact_bytes(&mut other, 6), b"PONG\r\n");
    let mut c = server.connect();
    c.write_all(b"panic\r\n").expect("send");
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mut buf).expect("closed, not reset"), 0, "closed");
    assert_eq!(server.handler.panics.load(Ordering::SeqCst), 1);
    other.write_all(b"ping\r\n").expect("send");
    assert_eq!(read_exact_bytes(&mut other, 6), b"PONG\r\n");
    let mut fresh = server.connect();
    fresh.write_all(b"ping\r\n").expect("send");
    assert_eq!(read_exact_bytes(&mut fresh, 6), b"PONG\r\n");
    server.stop().expect("a clean stop after the panic");
}
