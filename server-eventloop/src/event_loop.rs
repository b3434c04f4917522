//! One event loop: a thread, a mio `Poll`, and a slab of connections.
//!
//! Each turn the loop polls, then serves every connection that became ready:
//! write what is pending, execute the complete requests in its input (a
//! bounded number per turn), read more only when the session needs it, until
//! the socket would block. Everything that could block happens elsewhere:
//! syncs for durability `always` run on the engine's sync thread and come
//! back through the loop's completion queue and its [`Waker`].
//!
//! ```text
//!        poll ──► LISTENER ──► accept until WouldBlock ──► slab.insert
//!          │
//!          ├────► WAKER ─────► sync completions: release held replies
//!          │                   handed-over connections (dispatch mode)
//!          │                   shutdown: stop accepting, drain
//!          │
//!          └────► Token(n) ──► serve(conn):  flush ─► process ─► read ─┐
//!                                  ▲                                  │
//!                                  └──────── until WouldBlock ────────┘
//! ```

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use slab::Slab;

use crate::connection::Connection;
use service::frontend::{AcceptError, BackoffLog, Config, Handler, ACCEPT_BACKOFF};
use service::{Shutdown, Step};

/// Wakes `waker`'s poll when the stop is asked for, so the loop (or the
/// acceptor) leaves `poll` at once instead of at its next timeout.
pub(crate) fn wake_on_shutdown(shutdown: &Shutdown, waker: Arc<Waker>) {
    // A loop that already exited has dropped its Poll; waking it fails
    // harmlessly.
    shutdown.on_trigger(move || {
        let _ = waker.wake();
    });
}

/// The loop's own listening socket (reuseport mode).
pub(crate) const LISTENER: Token = Token(usize::MAX - 1);
/// Wake-ups from other threads: completions, handed-over connections,
/// shutdown.
pub(crate) const WAKER: Token = Token(usize::MAX);

/// How many readiness events one `poll` returns at most.
const EVENTS: usize = 1024;

/// Requests executed per [`Handler::process`] call.
const REQUESTS_PER_CALL: usize = 32;
/// `process` calls per connection per wake-up: with [`REQUESTS_PER_CALL`]
/// this bounds how long one pipelining client holds its loop.
const CALLS_PER_WAKEUP: usize = 4;

/// The longest a loop sleeps in `poll` with nothing to do, so that timers
/// (idle sweep, paused accept, drain deadline) are looked at regularly.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// A sync that landed (or failed) for a connection waiting on it.
#[derive(Debug)]
struct Completion {
    token: usize,
    id: u64,
    ok: bool,
}

/// The part of a loop other threads talk to.
#[derive(Debug)]
pub(crate) struct LoopShared {
    pub(crate) waker: Arc<Waker>,
    completions: Mutex<Vec<Completion>>,
    incoming: Mutex<Vec<TcpStream>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Pushes and swaps of whole vectors cannot leave them half-updated.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LoopShared {
    pub(crate) fn new(waker: Arc<Waker>) -> Self {
        Self {
            waker,
            completions: Mutex::new(Vec::new()),
            incoming: Mutex::new(Vec::new()),
        }
    }

    /// Queues a sync result for the loop. Only the push that finds the queue
    /// empty wakes the loop: the loop takes the whole queue at once, so one
    /// group commit finishing many writes costs one wake-up.
    fn complete(&self, completion: Completion) {
        let mut queue = lock(&self.completions);
        let first = queue.is_empty();
        queue.push(completion);
        drop(queue);
        if first {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "cannot wake event loop for a sync completion");
            }
        }
    }

    /// Hands an accepted connection to this loop (dispatch mode).
    pub(crate) fn hand_over(&self, stream: TcpStream) {
        let mut queue = lock(&self.incoming);
        let first = queue.is_empty();
        queue.push(stream);
        drop(queue);
        if first {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "cannot wake event loop for a new connection");
            }
        }
    }
}

/// What to do with a connection after serving it.
enum Next {
    Keep,
    Close,
}

/// Everything a loop owns besides its connections (split so a connection can
/// be borrowed from the slab while the rest is used).
struct Context<H: Handler> {
    index: usize,
    handler: Arc<H>,
    config: Arc<Config>,
    /// [`Config::max_input`], worked out once.
    max_input: usize,
    shared: Arc<LoopShared>,
    shutdown: Shutdown,
    /// Live connections of the whole process, for the connection limit.
    open: Arc<AtomicUsize>,
    /// Lent to a connection while it reads; see `connection`.
    spare_in: Vec<u8>,
    /// Lent to a connection while it has replies pending.
    spare_out: Vec<u8>,
    /// Connections that used their budget with work left: served again next
    /// turn without waiting for an event (edge-triggered epoll will not
    /// report them again).
    again: Vec<usize>,
    next_id: u64,
    /// Set once shutdown started: no more reading, close when flushed.
    draining: bool,
}

/// One event loop, built on the thread that starts the server and moved to
/// its own thread by [`Loop::run`].
pub(crate) struct Loop<H: Handler> {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Connection<H::Session>>,
    ctx: Context<H>,
    accept_paused_until: Option<Instant>,
    accept_log: BackoffLog,
}

impl<H: Handler> Loop<H> {
    /// Creates the loop's `Poll` and `Waker` and registers its listener (if
    /// it accepts for itself).
    pub(crate) fn new(
        index: usize,
        handler: Arc<H>,
        config: Arc<Config>,
        listener: Option<std::net::TcpListener>,
        open: Arc<AtomicUsize>,
        shutdown: Shutdown,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let listener = match listener {
            Some(l) => {
                l.set_nonblocking(true)?;
                let mut l = TcpListener::from_std(l);
                poll.registry()
                    .register(&mut l, LISTENER, Interest::READABLE)?;
                Some(l)
            }
            None => None,
        };
        let shared = Arc::new(LoopShared::new(Arc::clone(&waker)));
        wake_on_shutdown(&shutdown, waker);
        Ok(Self {
            poll,
            listener,
            conns: Slab::new(),
            ctx: Context {
                index,
                handler,
                max_input: config.max_input(),
                config,
                shared,
                shutdown,
                open,
                spare_in: Vec::new(),
                spare_out: Vec::new(),
                again: Vec::new(),
                next_id: 0,
                draining: false,
            },
            accept_paused_until: None,
            accept_log: BackoffLog::default(),
        })
    }

    pub(crate) fn shared(&self) -> Arc<LoopShared> {
        Arc::clone(&self.ctx.shared)
    }

    /// Runs until shutdown has been asked for and every connection is
    /// drained (or the grace period is over).
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS);
        let mut drain_deadline: Option<Instant> = None;
        let mut next_sweep = sweep(&self.ctx.config).map(|t| Instant::now() + t);
        loop {
            let timeout = self.timeout(next_sweep, drain_deadline);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut woken = false;
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => woken = true,
                    Token(key) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            if let Some(conn) = self.conns.get_mut(key) {
                                conn.drained = false;
                            }
                        }
                        self.serve(key);
                    }
                }
            }
            if woken {
                self.take_completions();
                self.take_incoming();
            }
            self.serve_again();

            if self
                .accept_paused_until
                .is_some_and(|t| Instant::now() >= t)
            {
                self.accept_paused_until = None;
                self.accept_all();
            }
            if let Some(at) = next_sweep {
                if Instant::now() >= at {
                    self.close_idle();
                    next_sweep = sweep(&self.ctx.config).map(|t| Instant::now() + t);
                }
            }
            if self.ctx.shutdown.is_triggered() {
                if !self.ctx.draining {
                    drain_deadline = Some(Instant::now() + self.ctx.config.grace);
                    self.begin_drain();
                }
                if self.conns.is_empty() {
                    break;
                }
                if drain_deadline.is_some_and(|d| Instant::now() >= d) {
                    tracing::warn!(
                        event_loop = self.ctx.index,
                        connections = self.conns.len(),
                        "shutdown grace period over; closing connections with replies still pending"
                    );
                    let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                    for key in keys {
                        self.close(key);
                    }
                    break;
                }
            }
        }
        Ok(())
    }

    fn timeout(&self, next_sweep: Option<Instant>, drain_deadline: Option<Instant>) -> Duration {
        if !self.ctx.again.is_empty() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        [next_sweep, self.accept_paused_until, drain_deadline]
            .into_iter()
            .flatten()
            .map(|t| t.saturating_duration_since(now))
            .fold(MAX_SLEEP, Duration::min)
    }

    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some() || self.ctx.draining {
            return;
        }
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, _peer)) => self.admit(stream),
                Err(e) => match AcceptError::of(&e) {
                    AcceptError::Empty => return,
                    AcceptError::Retry => {}
                    AcceptError::Backoff => {
                        // The connection stays in the backlog. Edge-triggered
                        // epoll will not report it again: retry on a timer.
                        self.accept_log.note(&e);
                        self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                        return;
                    }
                },
            }
        }
    }

    fn take_incoming(&mut self) {
        let streams = std::mem::take(&mut *lock(&self.ctx.shared.incoming));
        for stream in streams {
            if self.ctx.draining {
                // Accepted just before shutdown: closing it unserved is what
                // a stopped listener would have done.
                drop(stream);
            } else {
                self.admit(stream);
            }
        }
    }

    /// Takes a new connection into the slab, or turns it away over the limit.
    fn admit(&mut self, mut stream: TcpStream) {
        let ctx = &mut self.ctx;
        let open = ctx.open.fetch_add(1, Ordering::SeqCst);
        let max = ctx.config.max_connections;
        if max > 0 && open >= max {
            ctx.open.fetch_sub(1, Ordering::SeqCst);
            // As the thread pool refuses (one line, FIN, input dropped).
            service::frontend::refuse(&stream, |sent| ctx.handler.connection_refused(sent));
            return;
        }
        // Replies are complete messages; Nagle would only add latency.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY failed");
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)
        {
            tracing::warn!(error = %e, "cannot register a new connection; closing it");
            ctx.open.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        ctx.next_id += 1;
        entry.insert(Connection::new(stream, ctx.handler.session(), ctx.next_id));
        ctx.handler.connection_opened();
        // Registering reports data that is already there, so no read here.
    }

    fn serve(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match self.ctx.serve(key, conn) {
            Next::Keep => {
                conn.release_buffers(&mut self.ctx.spare_in, &mut self.ctx.spare_out);
                let want_writable = conn.output.has_writable();
                if want_writable != conn.writable {
                    let interest = if want_writable {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    if let Err(e) =
                        self.poll
                            .registry()
                            .reregister(&mut conn.stream, Token(key), interest)
                    {
                        tracing::debug!(error = %e, "reregister failed; closing connection");
                        self.close(key);
                        return;
                    }
                    conn.writable = want_writable;
                }
            }
            Next::Close => self.close(key),
        }
    }

    fn serve_again(&mut self) {
        if self.ctx.again.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut self.ctx.again);
        for &key in &keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.queued = false;
                self.serve(key);
            }
        }
        // Keep the allocation for the next turn.
        let mut keys = keys;
        keys.clear();
        if self.ctx.again.is_empty() {
            self.ctx.again = keys;
        }
    }

    fn take_completions(&mut self) {
        let completions = std::mem::take(&mut *lock(&self.ctx.shared.completions));
        for c in completions {
            let Some(conn) = self.conns.get_mut(c.token) else {
                continue;
            };
            if conn.id != c.id {
                continue;
            }
            if c.ok {
                conn.output.release_hold();
                self.serve(c.token);
            } else {
                // Never acknowledge a write that may not be on disk: the
                // client sees the connection drop instead of STORED.
                tracing::warn!(
                    "sync failed; closing the connection without acknowledging its writes"
                );
                self.close(c.token);
            }
        }
    }

    /// Closes connections silent for the idle timeout, and those whose
    /// client took none of its pending replies for the write timeout.
    fn close_idle(&mut self) {
        let (idle, write) = (self.ctx.config.idle_timeout, self.ctx.config.write_timeout);
        let now = Instant::now();
        let mut idle_kicks = 0;
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                let quiet = now.duration_since(c.last_active);
                if c.output.is_held() {
                    // Waiting for a sync, not for the client.
                    return false;
                }
                if c.output.has_writable() {
                    write.is_some_and(|w| quiet >= w)
                } else {
                    let kick = idle.is_some_and(|i| quiet >= i);
                    idle_kicks += usize::from(kick);
                    kick
                }
            })
            .map(|(k, _)| k)
            .collect();
        for _ in 0..idle_kicks {
            self.ctx.handler.idle_kick();
        }
        for key in expired {
            self.close(key);
        }
    }

    fn begin_drain(&mut self) {
        self.ctx.draining = true;
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.take_incoming();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.serve(key);
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            deregister(self.poll.registry(), &mut conn.stream);
            self.ctx.open.fetch_sub(1, Ordering::SeqCst);
            self.ctx.handler.connection_closed();
        }
    }
}

fn deregister(registry: &Registry, stream: &mut TcpStream) {
    // Closing the socket removes it from epoll anyway; deregistering first
    // keeps mio's bookkeeping honest. Failure changes nothing.
    let _ = registry.deregister(stream);
}

/// Checking deadlines a few times per timeout keeps an idle connection's
/// actual lifetime within a quarter of the setting, at negligible cost.
fn sweep_interval(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(10), MAX_SLEEP)
}

/// How often to look for connections past a timeout (None: no timeout set).
fn sweep(config: &Config) -> Option<Duration> {
    [config.idle_timeout, config.write_timeout]
        .into_iter()
        .flatten()
        .min()
        .map(sweep_interval)
}

impl<H: Handler> Context<H> {
    /// Serves one connection until its socket would block, its budget is
    /// spent, it waits for a sync, or it must close.
    fn serve(&mut self, key: usize, conn: &mut Connection<H::Session>) -> Next {
        let config = &*self.config;
        let mut calls = 0;
        loop {
            if conn.output.has_writable() {
                if let Err(e) = conn.flush() {
                    tracing::debug!(error = %e, "write failed; closing connection");
                    return Next::Close;
                }
            }
            if conn.output.is_held() {
                // Resumed by the sync completion.
                return Next::Keep;
            }
            let pending = conn.output.pending();
            if pending > 0 && (conn.closing || pending >= config.output_limit) {
                // Back-pressure: nothing more is read or executed until the
                // client takes its replies; WRITABLE brings us back.
                return Next::Keep;
            }
            if conn.closing {
                return Next::Close;
            }

            if !conn.input.is_empty() && !conn.starved {
                if calls == CALLS_PER_WAKEUP {
                    if !conn.queued {
                        conn.queued = true;
                        self.again.push(key);
                    }
                    return Next::Keep;
                }
                calls += 1;
                conn.output.adopt(&mut self.spare_out);
                let before = conn.output.mark();
                // The panic policy of both front-ends (see
                // `service::frontend`): a panic closes this connection only.
                let handler = &self.handler;
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    handler.process(
                        &mut conn.session,
                        conn.input.pending(),
                        &mut conn.output,
                        REQUESTS_PER_CALL,
                    )
                }));
                let done = match served {
                    Ok(done) => done,
                    Err(payload) => {
                        tracing::error!(
                            panic = service::frontend::panic_message(&*payload),
                            "serving a connection panicked; closing it"
                        );
                        self.handler.connection_panicked();
                        return Next::Close;
                    }
                };
                conn.input.consume(done.consumed);
                if done.consumed == 0 && done.step != Step::OutputFull {
                    conn.starved = true;
                }
                if done.step == Step::Close {
                    conn.closing = true;
                }
                if let Some(ticket) = done.hold {
                    conn.output.hold_from(before);
                    let shared = Arc::clone(&self.shared);
                    let (token, id) = (key, conn.id);
                    self.handler.on_durable(
                        ticket,
                        Box::new(move |ok| shared.complete(Completion { token, id, ok })),
                    );
                }
                continue;
            }

            if self.draining {
                // Requests already read are done; nothing new is read.
                conn.closing = true;
                continue;
            }
            if conn.input.len() >= self.max_input {
                // The protocol bounds what one request needs buffered; a
                // session that still wants more is being fed garbage.
                tracing::debug!(
                    bytes = conn.input.len(),
                    "input limit reached; closing connection"
                );
                return Next::Close;
            }
            if conn.drained {
                // Nothing more was there at the last read; the next arrival
                // brings a READABLE event.
                return Next::Keep;
            }
            match conn.read(&mut self.spare_in) {
                Ok(0) => {
                    // End of input: finish the replies, then close. An
                    // incomplete request left in the buffer is dropped, as
                    // memcached does.
                    conn.closing = true;
                }
                Ok(_) => conn.starved = false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(error = %e, "read failed; closing connection");
                    return Next::Close;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shutdown_wakes_a_registered_poll() {
        let mut poll = Poll::new().expect("poll");
        let waker = Arc::new(Waker::new(poll.registry(), Token(7)).expect("waker"));
        let shutdown = Shutdown::new();
        wake_on_shutdown(&shutdown, waker);
        let remote = shutdown.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            remote.trigger();
        });
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .expect("poll");
        assert!(events.iter().any(|e| e.token() == Token(7)));
        t.join().expect("trigger thread");
    }
}
