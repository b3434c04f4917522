//! What a front-end does besides its I/O loop, written once so that the two
//! servers differ in their loop and nowhere else: the listening socket and
//! its backlog, what an accept error means, how a connection over the limit
//! is refused, and the panic policy.
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
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::TOO_MANY_CONNECTIONS;

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
    fn one_backlog_for_every_listener() {
        let s = listen_socket("127.0.0.1:0".parse().unwrap(), false).unwrap();
        assert!(s.local_addr().unwrap().as_socket().unwrap().port() > 0);
        assert_eq!(BACKLOG, 4096);
    }
}
