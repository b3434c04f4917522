//! What a front-end does besides its I/O loop, written once so that the two
//! servers differ in their loop and nowhere else: the contract a loop
//! implements ([`Frontend`], [`Handler`], [`Config`]), the startup around it
//! ([`main`], [`serve`]), the listening socket and its backlog, what an
//! accept error means, how a connection over the limit is refused, and the
//! panic policy.
//!
//! ```text
//!  server main.rs:  parse flags ──► frontend::main(name, ThreadPool | EventLoop { accept }, flags)
//!                                        │
//!  frontend::serve: signals ─► Config from the flags and the loop's Defaults ─► open-file limit
//!                   ─► Engine::open ─► Frontend::bind ─► "listening on ADDR, ..."
//!                   ─► Frontend::run(listener, Arc<Service>, &config, &shutdown)
//!                   ─► Engine::close (always, and only here)
//! ```
//!
//! # Who closes the engine
//!
//! Whoever opened it: [`serve`] opens the engine before the loop starts and
//! closes it after [`Frontend::run`] returns, whether the loop stopped
//! cleanly or failed. A loop never closes the engine; it only stops serving.
//!
//! # Panic policy
//!
//! A panic while serving one connection closes that connection and is
//! counted (`connection_panics` in `stats`); the server goes on. Both
//! front-ends do this: the engine's state is behind locks that a panicking
//! request does not leave half-written (writes are appended and published
//! whole), so stopping every other client for one bad request would trade a
//! bug's blast radius of one connection for all of them. The panic is
//! logged with its message, so it is not lost.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::{Output, Progress, Service, ServiceConfig, Shutdown, TOO_MANY_CONNECTIONS};

pub use crate::startup::{main, serve, ServeError};

/// A front-end: how it binds its listening sockets and its I/O loop. Each
/// server binary implements this for its loop and hands it to [`main`],
/// which does everything else the same way for both.
pub trait Frontend {
    /// Its bound listening socket(s).
    type Listener: Listener;
    /// Why its loop stopped abnormally.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The name `stats` reports as `frontend_model`.
    const MODEL: &'static str;

    /// Its choices where the shared flags leave them open.
    fn defaults(&self) -> Defaults;

    /// Binds `addr` for `config.threads` threads (the thread pool: one
    /// socket; the event loop: one per loop, or one for its acceptor).
    fn bind(&self, addr: SocketAddr, config: &Config) -> io::Result<Self::Listener>;

    /// Serves `listener` with `handler` until `shutdown` is triggered, then
    /// stops accepting, finishes the replies in hand (for at most
    /// `config.grace`) and returns. It does not close the engine: whoever
    /// opened it does (see the module docs).
    fn run<H: Handler>(
        &self,
        listener: Self::Listener,
        handler: Arc<H>,
        config: &Config,
        shutdown: &Shutdown,
    ) -> Result<(), Self::Error>;
}

/// Bound listening socket(s), as [`Frontend::bind`] returns them.
pub trait Listener {
    /// Where clients connect (the real port when bound to port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl Listener for TcpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

/// A front-end's defaults where the shared flags leave it free.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// Threads without `--threads`.
    pub threads: usize,
    /// Pinning without `--pin`.
    pub pin: bool,
    /// Idle timeout in seconds without `--idle-timeout` (0: never).
    pub idle_timeout_s: u64,
    /// File descriptors each thread holds besides its connections' own, for
    /// the open-file limit (a thread-pool worker keeps a duplicate of the
    /// socket it serves, so that shutdown can interrupt its read).
    pub fds_per_thread: u64,
    /// What the startup line calls its threads ("workers", "loops").
    pub thread_noun: &'static str,
}

/// What a front-end's loop is told, the same for both loops; [`serve`] makes
/// it from the flags and the loop's [`Defaults`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker threads (thread pool) or event loops.
    pub threads: usize,
    /// Pin thread `i` to core `i` (modulo the cores there are).
    pub pin: bool,
    /// Open (and, in the thread pool, queued) connections allowed; 0 means
    /// no limit. More are refused with [`refuse`].
    pub max_connections: usize,
    /// Close a connection silent for this long (None: never).
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose client took none of its pending replies for
    /// this long (None: never).
    pub write_timeout: Option<Duration>,
    /// Unsent reply bytes beyond which a connection's input is not read:
    /// the session's own limit ([`ServiceConfig::output_limit`]).
    pub output_limit: usize,
    /// The decoder's limits, which size a connection's input buffer.
    pub limits: protocol::Limits,
    /// How long shutdown waits for the replies in hand before it cuts the
    /// connections still owed some (a client that never reads).
    pub grace: Duration,
}

/// [`Config::grace`] of both front-ends.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Input a connection may buffer beyond what one request can need, so the
/// next request's first bytes fit too. Reaching [`Config::max_input`] means
/// a client broke the protocol, so the slack can be generous.
const INPUT_SLACK: usize = 64 * 1024;

impl Config {
    /// The loop's settings for a service configured as `service`, with
    /// `threads` threads.
    pub fn new(service: &ServiceConfig, threads: usize, pin: bool) -> Config {
        Config {
            threads: threads.max(1),
            pin,
            max_connections: service.max_connections,
            idle_timeout: service.idle_timeout,
            write_timeout: service.write_timeout,
            output_limit: service.output_limit,
            limits: service.limits(),
            grace: SHUTDOWN_GRACE,
        }
    }

    /// Buffered input beyond which a connection is cut: what the decoder
    /// may need whole (the longest line with an unchunked value, or the
    /// longest multi-get line) plus slack. Both loops enforce it, so they
    /// accept the same requests.
    pub fn max_input(&self) -> usize {
        self.limits.max_buffered() + INPUT_SLACK
    }
}

impl Default for Config {
    /// The service's defaults, one thread, not pinned.
    fn default() -> Self {
        Config::new(&ServiceConfig::default(), 1, false)
    }
}

/// Called once when a held write is durable (`true`) or its sync failed.
pub type DurableCallback = Box<dyn FnOnce(bool) + Send>;

/// What a loop asks of the code that answers requests, and what it reports
/// about its connections. [`Service`] implements it in the servers; a loop's
/// own tests drive the loop with a small scripted handler, without an engine.
/// The loops only move bytes: parsing, executing, encoding, stats and
/// durability all sit behind this.
pub trait Handler: Send + Sync + 'static {
    /// Per-connection protocol state (a partial large value, for example).
    type Session: Send + 'static;
    /// Says when held replies may go out. Tickets of one connection grow
    /// with its writes: the greatest one held covers every earlier one.
    type Ticket: Ord + Send + 'static;

    /// A fresh session for a newly accepted connection.
    fn session(self: &Arc<Self>) -> Self::Session;

    /// Executes at most `max_requests` complete requests at the front of
    /// `input`, appending their replies to `out` (see `Session::process`).
    fn process(
        &self,
        session: &mut Self::Session,
        input: &[u8],
        out: &mut Output,
        max_requests: usize,
    ) -> Progress<Self::Ticket>;

    /// Blocks until `ticket` is durable; `false` if its sync failed (the
    /// connection is then closed without the replies it held). The blocking
    /// loop's way to wait.
    fn wait_durable(&self, ticket: Self::Ticket) -> bool;

    /// Arranges for `done` to run once `ticket` is durable, at once on this
    /// thread or later on another one; it must not block. The event loop's
    /// way to wait.
    fn on_durable(&self, ticket: Self::Ticket, done: DurableCallback);

    /// A connection was accepted (and, in the thread pool, queued).
    fn connection_opened(&self) {}
    /// A connection counted as opened was closed, for whatever reason.
    fn connection_closed(&self) {}
    /// A connection was refused at the connection limit, after
    /// `reply_bytes` of refusal were sent to it.
    fn connection_refused(&self, _reply_bytes: u64) {}
    /// Serving a connection panicked; it was closed.
    fn connection_panicked(&self) {}
    /// A connection is being closed for being idle too long.
    fn idle_kick(&self) {}
    /// A connection was put in the queue for a worker (thread pool).
    fn queued(&self) {}
    /// A worker took a connection that had waited `wait` in the queue.
    fn dequeued(&self, _wait: Duration) {}
}

impl Handler for Service {
    type Session = crate::Session;
    type Ticket = engine::SyncTicket;

    fn session(self: &Arc<Self>) -> crate::Session {
        Service::session(self)
    }

    fn process(
        &self,
        session: &mut crate::Session,
        input: &[u8],
        out: &mut Output,
        max_requests: usize,
    ) -> Progress {
        session.process(input, out, max_requests)
    }

    fn wait_durable(&self, ticket: engine::SyncTicket) -> bool {
        match self.engine().wait_durable(ticket) {
            Ok(()) => true,
            Err(e) => {
                not_durable(&e);
                false
            }
        }
    }

    fn on_durable(&self, ticket: engine::SyncTicket, done: DurableCallback) {
        self.engine().on_durable(
            ticket,
            Box::new(move |result| {
                if let Err(e) = &result {
                    not_durable(e);
                }
                done(result.is_ok());
            }),
        );
    }

    fn connection_opened(&self) {
        self.stats().connection_opened();
    }
    fn connection_closed(&self) {
        self.stats().connection_closed();
    }
    fn connection_refused(&self, reply_bytes: u64) {
        self.stats().refused(reply_bytes);
    }
    fn connection_panicked(&self) {
        self.stats().connection_panicked();
    }
    fn idle_kick(&self) {
        self.stats().idle_kick();
    }
    fn queued(&self) {
        self.stats().queued();
    }
    fn dequeued(&self, wait: Duration) {
        self.stats().dequeued(wait);
    }
}

fn not_durable(e: &engine::WriteError) {
    tracing::warn!(error = %e, "write not durable; its connection is closed without replies");
}

/// Pending-connection backlog of every listening socket (the kernel caps it
/// at `net.core.somaxconn`). One value for both front-ends: at thousands of
/// connections the backlog alone decides who waits and who is refused.
pub const BACKLOG: i32 = 4096;

/// How long accepting pauses after running out of resources (file
/// descriptors, memory): retrying at once would spin.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// A listening TCP socket on `addr`: SO_REUSEADDR (a restarted server can
/// rebind while old connections linger in TIME_WAIT), SO_REUSEPORT when
/// `reuse_port` (one socket per event loop), [`BACKLOG`].
pub fn listen_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}

/// What an `accept` error means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// Nothing more to accept now (non-blocking), or a timed-out blocking
    /// accept: go back to waiting.
    Empty,
    /// This one connection failed (the client gave up, a signal): try the next.
    Retry,
    /// Out of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM): the connection stays
    /// in the backlog; pause accepting for [`ACCEPT_BACKOFF`].
    Backoff,
}

impl AcceptError {
    /// Classifies an error of `accept`.
    pub fn of(e: &io::Error) -> AcceptError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => AcceptError::Empty,
            io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset => AcceptError::Retry,
            _ => AcceptError::Backoff,
        }
    }
}

/// Says "accept failed" at most once a second, however often it fails.
#[derive(Debug, Default)]
pub struct BackoffLog {
    last: Option<Instant>,
}

impl BackoffLog {
    /// Logs `e` unless it was logged within the last second.
    pub fn note(&mut self, e: &io::Error) {
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(error = %e, "accept failed; pausing accepts briefly");
            self.last = Some(Instant::now());
        }
    }
}

/// Refuses a connection over the limit: sends [`TOO_MANY_CONNECTIONS`], then
/// a FIN, and drops what the client already sent, so the line is not
/// overtaken by the reset a close with unread input would cause. Never
/// blocks (the socket is put in non-blocking mode). `count` gets the bytes
/// sent, to count the refusal (`ServerStats::refused`), before the client
/// can see the connection end.
pub fn refuse<S: AsFd>(stream: &S, count: impl FnOnce(u64)) {
    let sock = SockRef::from(stream);
    let _ = sock.set_nonblocking(true);
    let sent = match (&*sock).write(TOO_MANY_CONNECTIONS) {
        Ok(n) => n as u64,
        Err(e) => {
            tracing::debug!(error = %e, "could not send the too-many-connections reply");
            0
        }
    };
    count(sent);
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 1024];
    while matches!((&*sock).read(&mut sink), Ok(n) if n > 0) {}
    tracing::debug!("connection refused: too many open connections");
}

/// Installs the SIGINT/SIGTERM handlers and returns the [`Shutdown`] they
/// trigger. Both front-ends call this first, before the engine opens: a
/// SIGTERM while the engine recovers must still mean a clean stop, not the
/// default abrupt exit.
pub fn shutdown_on_signals() -> io::Result<crate::Shutdown> {
    let shutdown = crate::Shutdown::new();
    let stop = shutdown.clone();
    crate::install_signal_handlers(move || {
        stop.trigger();
    })?;
    Ok(shutdown)
}

/// The message of a caught panic, for the log.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors() {
        let e = |k| io::Error::from(k);
        assert_eq!(
            AcceptError::of(&e(io::ErrorKind::WouldBlock)),
            AcceptError::Empty
        );
        assert_eq!(
            AcceptError::of(&e(io::ErrorKind::ConnectionAborted)),
            AcceptError::Retry
        );
        assert_eq!(
            AcceptError::of(&io::Error::from_raw_os_error(libc::EMFILE)),
            AcceptError::Backoff
        );
    }

    #[test]
    fn a_loop_is_told_the_service_settings() {
        let service = ServiceConfig {
            max_connections: 7,
            idle_timeout: Some(Duration::from_secs(3)),
            write_timeout: None,
            max_item_size: 2 << 20,
            ..ServiceConfig::default()
        };
        let config = Config::new(&service, 0, true);
        assert_eq!(config.threads, 1, "at least one thread");
        assert!(config.pin);
        assert_eq!(config.max_connections, 7);
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(3)));
        assert_eq!(config.write_timeout, None);
        assert_eq!(config.output_limit, service.output_limit);
        assert_eq!(config.limits.max_item_size, 2 << 20);
        assert_eq!(config.grace, SHUTDOWN_GRACE);
        // A value below the streaming threshold and the longest line fit.
        assert!(config.max_input() > config.limits.max_buffered());
    }

    #[test]
    fn one_backlog_for_every_listener() {
        let s = listen_socket("127.0.0.1:0".parse().unwrap(), false).unwrap();
        assert!(s.local_addr().unwrap().as_socket().unwrap().port() > 0);
        assert_eq!(BACKLOG, 4096);
    }
}
