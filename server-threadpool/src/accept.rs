//! The listening socket and the one thread that accepts on it.
//!
//! The accept thread does as little as possible per connection: admit it
//! against the connection limit (or turn it away with a one-line error), set
//! TCP_NODELAY, and queue it for the workers. It blocks in `accept` with a
//! short receive timeout so that it notices a shutdown promptly without any
//! self-connection tricks.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use socket2::SockRef;

use crate::pool::{Admission, Queued};
use service::frontend::{self, AcceptError, BackoffLog, Handler, ACCEPT_BACKOFF};
use service::Shutdown;

/// How long `accept` blocks before the thread looks at the shutdown flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// What the accept loop needs besides the listener.
pub(crate) struct Acceptor<H> {
    pub queue: Sender<Queued>,
    pub handler: Arc<H>,
    /// Live plus queued connections, for the limit.
    pub open: Arc<AtomicUsize>,
    /// 0 means no limit.
    pub max_connections: usize,
    pub shutdown: Shutdown,
}

impl<H: Handler> Acceptor<H> {
    /// Accepts until shutdown is triggered. Returns an error only if the
    /// listener itself cannot be set up; per-connection failures are logged.
    pub(crate) fn run(&self, listener: &TcpListener) -> io::Result<()> {
        // The receive timeout bounds a blocking accept on Linux, which turns
        // the accept into a poll of the shutdown flag every ACCEPT_POLL.
        listener.set_nonblocking(false)?;
        SockRef::from(listener).set_read_timeout(Some(ACCEPT_POLL))?;
        let mut log = BackoffLog::default();
        while !self.shutdown.is_triggered() {
            match listener.accept() {
                Ok((stream, _peer)) => self.admit(stream),
                Err(e) => match AcceptError::of(&e) {
                    AcceptError::Empty | AcceptError::Retry => {}
                    AcceptError::Backoff => {
                        // The connection stays in the backlog: wait for
                        // resources to free up.
                        log.note(&e);
                        std::thread::sleep(ACCEPT_BACKOFF);
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
        self.handler.connection_opened();
        self.handler.queued();
        if let Err(failed) = self.queue.send(queued) {
            // Every worker is gone, which only happens during shutdown.
            self.handler.dequeued(failed.0.since.elapsed());
            self.handler.connection_closed();
            tracing::debug!("queue closed; connection dropped");
        }
    }

    /// Tells the client why and closes, as both front-ends do
    /// ([`service::frontend::refuse`]).
    fn reject(&self, stream: TcpStream) {
        frontend::refuse(&stream, |sent| self.handler.connection_refused(sent));
    }
}
