//! A front-end's loop in the test process, driven by [`Script`], a tiny line
//! protocol standing in for the service, so that a test of the loop itself
//! (queueing, budgets, back-pressure, held replies, limits, timeouts,
//! shutdown, panics) controls exactly what a request does and when its sync
//! lands, without an engine. Any [`Frontend`] runs it: [`Loop::start`].
//!
//! The protocol, one request per line:
//!
//! | request  | reply                                                    |
//! |----------|----------------------------------------------------------|
//! | `ping`   | `PONG`                                                   |
//! | `big N`  | N bytes of `x`, then CRLF                                |
//! | `hold`   | `HELD`, released once a sync "lands" [`SYNC_DELAY`] later |
//! | `fail`   | `NEVER SENT`, held by a sync that fails                  |
//! | `quit`   | none; the connection closes after the replies before it  |
//! | `panic`  | the handler panics                                       |
//! | other    | `ERROR`                                                  |

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use service::frontend::{Config, DurableCallback, Frontend, Handler, Listener};
use service::{Output, Progress, Shutdown, Step};

/// How long after a `hold` or `fail` its sync lands.
pub const SYNC_DELAY: Duration = Duration::from_millis(50);

/// The scripted handler, with a count of everything the loop reported.
#[derive(Default)]
pub struct Script {
    /// Requests executed, to see how far a client that does not read got.
    pub executed: AtomicU64,
    /// Set just before a held reply is released.
    pub released: Arc<AtomicBool>,
    pub opened: AtomicU64,
    pub closed: AtomicU64,
    pub refused: AtomicU64,
    pub panics: AtomicU64,
    pub idle_kicks: AtomicU64,
    pub queued: AtomicU64,
    pub dequeued: AtomicU64,
    /// The longest a connection waited in the queue, in milliseconds.
    pub longest_wait_ms: AtomicU64,
}

impl Script {
    /// One counter's value now.
    pub fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// What a held reply waits for; a failing sync outranks a landing one, so
/// a connection holding both is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ticket {
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
        out: &mut Output,
        max_requests: usize,
    ) -> Progress<Ticket> {
        let mut consumed = 0;
        let mut hold = None;
        let mut step = Step::NeedInput;
        for _ in 0..max_requests {
            let rest = &input[consumed..];
            let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let line = String::from_utf8_lossy(&rest[..end]).into_owned();
            consumed += end + 2;
            self.executed.fetch_add(1, Ordering::SeqCst);
            match line.split_once(' ').unwrap_or((&line, "")) {
                ("ping", _) => out.extend_from_slice(b"PONG\r\n"),
                ("big", n) => {
                    let n: usize = n.parse().unwrap_or(0);
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
                    step = Step::Close;
                    break;
                }
                ("panic", _) => panic!("scripted panic"),
                _ => out.extend_from_slice(b"ERROR\r\n"),
            }
        }
        Progress {
            consumed,
            step,
            hold,
        }
    }

    fn wait_durable(&self, ticket: Ticket) -> bool {
        std::thread::sleep(SYNC_DELAY);
        land(ticket, &self.released)
    }

    fn on_durable(&self, ticket: Ticket, done: DurableCallback) {
        let released = Arc::clone(&self.released);
        std::thread::spawn(move || {
            std::thread::sleep(SYNC_DELAY);
            done(land(ticket, &released));
        });
    }

    fn connection_opened(&self) {
        self.opened.fetch_add(1, Ordering::SeqCst);
    }
    fn connection_closed(&self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
    fn connection_refused(&self, _reply_bytes: u64) {
        self.refused.fetch_add(1, Ordering::SeqCst);
    }
    fn connection_panicked(&self) {
        self.panics.fetch_add(1, Ordering::SeqCst);
    }
    fn idle_kick(&self) {
        self.idle_kicks.fetch_add(1, Ordering::SeqCst);
    }
    fn queued(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
    }
    fn dequeued(&self, wait: Duration) {
        self.dequeued.fetch_add(1, Ordering::SeqCst);
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.longest_wait_ms.fetch_max(ms, Ordering::SeqCst);
    }
}

/// A sync's outcome; a landing one marks the release first.
fn land(ticket: Ticket, released: &AtomicBool) -> bool {
    match ticket {
        Ticket::Lands => {
            released.store(true, Ordering::SeqCst);
            true
        }
        Ticket::Fails => false,
    }
}

/// A front-end's loop serving [`Script`] on a thread of the test process,
/// on a free loopback port; stopped (and joined) when dropped.
pub struct Loop<F: Frontend> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The handler, to read its counts.
    pub script: Arc<Script>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<Result<(), F::Error>>>,
}

impl<F> Loop<F>
where
    F: Frontend + Send + 'static,
    F::Listener: Send + 'static,
{
    /// Binds `127.0.0.1:0` as `frontend` does and runs its loop.
    pub fn start(frontend: F, config: Config) -> Self {
        let listener = frontend
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)), &config)
            .expect("bind");
        let addr = listener.local_addr().expect("bound address");
        let script = Arc::new(Script::default());
        let shutdown = Shutdown::new();
        let thread = {
            let script = Arc::clone(&script);
            let shutdown = shutdown.clone();
            std::thread::spawn(move || frontend.run(listener, script, &config, &shutdown))
        };
        Loop {
            addr,
            script,
            shutdown,
            thread: Some(thread),
        }
    }

    /// A new connection with a 10 s read timeout.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    /// Stops the loop; what it returned.
    pub fn stop(mut self) -> Result<(), F::Error> {
        self.shutdown.trigger();
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("the loop's thread")
    }
}

impl<F: Frontend> Drop for Loop<F> {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads exactly `n` bytes.
pub fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).expect("reply");
    buf
}

/// Reads until the peer closes (a reset counts as closed); what arrived.
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut all = Vec::new();
    match s.read_to_end(&mut all) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("read: {e}"),
    }
    all
}
