//! The acceptor of dispatch mode (memcached's model): one thread accepts on
//! the single listening socket and deals connections to the loops round
//! robin, each through the loop's queue and [`mio::Waker`].
//!
//! The connection limit is checked by the loop that receives the connection,
//! the same code path as in reuseport mode, so both modes refuse alike.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::event_loop::LoopShared;
use service::frontend::{AcceptError, BackoffLog, ACCEPT_BACKOFF};
use service::Shutdown;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// The acceptor, built before the threads start so that setup errors reach
/// the caller of `Frontend::run`.
pub(crate) struct Acceptor {
    poll: Poll,
    listener: TcpListener,
    loops: Vec<Arc<LoopShared>>,
    shutdown: Shutdown,
}

impl Acceptor {
    pub(crate) fn new(
        listener: std::net::TcpListener,
        loops: Vec<Arc<LoopShared>>,
        shutdown: Shutdown,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        crate::event_loop::wake_on_shutdown(&shutdown, waker);
        Ok(Self {
            poll,
            listener,
            loops,
            shutdown,
        })
    }

    /// Accepts until shutdown; the listening socket closes on return.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(16);
        let mut next = 0usize;
        let mut paused_until: Option<Instant> = None;
        let mut log = BackoffLog::default();
        while !self.shutdown.is_triggered() {
            let timeout = paused_until.map(|t| t.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if self.shutdown.is_triggered() {
                break;
            }
            if paused_until.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            paused_until = None;
            loop {
                match self.listener.accept() {
                    Ok((stream, _peer)) => {
                        self.loops[next % self.loops.len()].hand_over(stream);
                        next = next.wrapping_add(1);
                    }
                    Err(e) => match AcceptError::of(&e) {
                        AcceptError::Empty => break,
                        AcceptError::Retry => {}
                        AcceptError::Backoff => {
                            log.note(&e);
                            paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                            break;
                        }
                    },
                }
            }
        }
        Ok(())
    }
}
