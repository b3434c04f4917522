//! The listening socket and the one thread that accepts on it.
//!
//! The accept thread does as little as possible per connection: admit it
//! against the connection limit (or turn it away with a one-line error), set
//! TCP_NODELAY, and queue it for the workers. It blocks in `accept` with a
//! short receive timeout so that it notices a shutdown promptly without any
//! self-connection tricks.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::pool::{Admission, Observer, Queued};
use service::Shutdown;

/// Pending-connection backlog for the listening socket; the kernel caps it at
/// `net.core.somaxconn`.
pub const BACKLOG: i32 = 1024;

/// How long `accept` blocks before the thread looks at the shutdown flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// How long to back off when `accept` fails for lack of resources (out of
/// file descriptors): retrying at once would spin.
const RESOURCE_BACKOFF: Duration = Duration::from_millis(20);

/// Binds a listening TCP socket with SO_REUSEADDR (a restarted server can
/// rebind while old connections linger in TIME_WAIT) and [`BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// What the accept loop needs besides the listener.
pub(crate) struct Acceptor<O> {
    pub queue: Sender<Queued>,
    pub observer: Arc<O>,
    /// Live plus queued connections, for the limit.
    pub open: Arc<AtomicUsize>,
    /// 0 means no limit.
    pub max_connections: usize,
    /// Sent to a connection turned away by the limit before it is closed.
    pub reject_reply: &'static [u8],
    pub shutdown: Shutdown,
}

impl<O: Observer> Acceptor<O> {
    /// Accepts until shutdown is triggered. Returns an error only if the
    /// listener itself cannot be set up; per-connection failures are logged.
    pub(crate) fn run(&self, listener: &TcpListener) -> io::Result<()> {
        // The receive timeout bounds a blocking accept on Linux, which turns
        // the accept into a poll of the shutdown flag every ACCEPT_POLL.
        listener.set_nonblocking(false)?;
        SockRef::from(listener).set_read_timeout(Some(ACCEPT_POLL))?;
        let mut last_resource_warning: Option<Instant> = None;
        while !self.shutdown.is_triggered() {
            match listener.accept() {
                Ok((stream, _peer)) => self.admit(stream),
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset => {}
                    _ => {
                        // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays
                        // in the backlog; wait for resources to free up and say
                        // so at most once a second.
                        if last_resource_warning
                            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                        {
                            tracing::warn!(error = %e, "accept failed; backing off");
                            last_resource_warning = Some(Instant::now());
                        }
                        std::thread::sleep(RESOURCE_BACKOFF);
                    }
                },
            }
        }
        Ok(())
    }

    fn admit(&self, stream: TcpStream) {
        let Some(admission) = Admission::try_admit(&self.open, self.max_connections) else {
            self.reject(stream);
            return;
        };
        // Replies are written in one write per batch of requests; Nagle would
        // only delay them.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let queued = Queued {
            stream,
            since: Instant::now(),
            _admission: admission,
        };
        self.observer.queued();
        if let Err(failed) = self.queue.send(queued) {
            // Every worker is gone, which only happens during shutdown.
            self.observer.dequeued(failed.0.since.elapsed());
            self.observer.closed();
            tracing::debug!("queue closed; connection dropped");
        }
    }

    /// Tells the client why and closes. The socket is fresh, so its send
    /// buffer has room for the line; non-blocking mode makes sure a
    /// misbehaving peer cannot stall the accept thread anyway.
    fn reject(&self, mut stream: TcpStream) {
        self.observer.rejected();
        let _ = stream.set_nonblocking(true);
        if let Err(e) = stream.write_all(self.reject_reply) {
            tracing::debug!(error = %e, "could not send the too-many-connections reply");
        }
        // Closing a socket with unread input makes the kernel send a reset,
        // which can overtake the line just written: send FIN after the line
        // and discard whatever the client has sent so far.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        tracing::debug!(
            max = self.max_connections,
            "connection refused: too many open connections"
        );
    }
}
