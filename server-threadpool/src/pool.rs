//! The worker pool: a fixed set of threads that each take one queued
//! connection and own it until the client leaves.
//!
//! The pool does not know the protocol; it serves each connection with
//! [`crate::connection`] and a `service::frontend::Handler`, and owns
//! everything around that: queue accounting, pinning, panic containment,
//! and interrupting blocked reads at shutdown through the [`Registry`] of
//! live connections.

use std::io;
use std::net::{Shutdown as Direction, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use slab::Slab;

use service::frontend::{panic_message, Handler};
use service::Shutdown;

use crate::connection;

/// A connection that has been admitted (it counts against the connection
/// limit until dropped) and waits in the queue.
pub(crate) struct Queued {
    pub stream: TcpStream,
    pub since: Instant,
    pub _admission: Admission,
}

/// Counts an admitted connection, live or queued, for the connection limit.
/// Dropping it (whichever way the connection ends, panics included) gives the
/// slot back.
pub(crate) struct Admission {
    open: Arc<AtomicUsize>,
}

impl Admission {
    /// Takes a slot if fewer than `max` are taken (`max == 0`: no limit).
    pub(crate) fn try_admit(open: &Arc<AtomicUsize>, max: usize) -> Option<Admission> {
        let taken = open.fetch_add(1, Ordering::AcqRel) + 1;
        if max != 0 && taken > max {
            open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Admission {
            open: Arc::clone(open),
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connections workers are serving right now, so that shutdown can
/// interrupt their blocking reads. Holds a duplicate handle of each socket:
/// shutting a socket down through the duplicate affects the worker's handle
/// too, and an entry is removed before the worker closes its own handle.
#[derive(Default)]
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    /// Set once shutdown begins: later registrations are refused, so no
    /// connection can slip past the sweep.
    closing: bool,
    conns: Slab<TcpStream>,
}

/// Why a connection could not be registered.
pub(crate) enum NotRegistered {
    /// Shutdown has begun: the connection must not be served.
    Closing,
    /// The socket could not be duplicated (out of descriptors); it may be
    /// served, it just cannot be interrupted by shutdown.
    Dup(io::Error),
}

/// Removes its connection from the registry when dropped.
pub(crate) struct Registration<'a> {
    registry: &'a Registry,
    key: usize,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, RegistryInner> {
        // A panic never happens while the lock is held (slab operations and
        // socket shutdown do not panic), but stay usable regardless.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn register(&self, stream: &TcpStream) -> Result<Registration<'_>, NotRegistered> {
        let mut inner = self.lock();
        if inner.closing {
            return Err(NotRegistered::Closing);
        }
        let dup = stream.try_clone().map_err(NotRegistered::Dup)?;
        let key = inner.conns.insert(dup);
        Ok(Registration {
            registry: self,
            key,
        })
    }

    /// Refuses new registrations and shuts `direction` of every live
    /// connection: `Read` lets workers write the replies to the requests in
    /// hand and then see end-of-input; `Both` also breaks a write blocked on a
    /// client that stopped reading. Returns how many connections it touched.
    pub(crate) fn shutdown_all(&self, direction: Direction) -> usize {
        let mut inner = self.lock();
        inner.closing = true;
        for (_, stream) in inner.conns.iter() {
            // Fails only if the peer is already gone, which is what we want.
            let _ = stream.shutdown(direction);
        }
        inner.conns.len()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().conns.len()
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.lock().conns.remove(self.key);
    }
}

/// The worker threads, joined at shutdown.
pub(crate) type Workers = Vec<JoinHandle<()>>;

/// How the workers are set up.
#[derive(Clone, Debug)]
pub(crate) struct PoolConfig {
    pub workers: usize,
    /// Pin worker `i` to core `i mod cores`.
    pub pin: bool,
}

/// Everything a worker shares with the rest of the server.
pub(crate) struct WorkerShared<H> {
    pub handler: Arc<H>,
    pub connection: connection::Settings,
    pub registry: Arc<Registry>,
    pub shutdown: Shutdown,
}

/// Starts `config.workers` threads taking connections from `queue`. They exit
/// once the queue is closed (its sender dropped) and drained. On failure,
/// returns the threads already started with the error, so they can be
/// stopped.
pub(crate) fn spawn_workers<H: Handler>(
    config: &PoolConfig,
    queue: &Receiver<Queued>,
    shared: &Arc<WorkerShared<H>>,
) -> Result<Workers, (Workers, io::Error)> {
    let cores = if config.pin {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        if cores.is_empty() {
            tracing::warn!("--pin asked for, but the cores could not be listed; workers float");
        }
        cores
    } else {
        Vec::new()
    };
    let mut handles = Vec::with_capacity(config.workers);
    for id in 0..config.workers {
        let queue = queue.clone();
        let shared = Arc::clone(shared);
        let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                if let Some(core) = core {
                    if !core_affinity::set_for_current(core) {
                        tracing::warn!(worker = id, core = core.id, "could not pin worker");
                    }
                }
                worker_loop(id, &queue, &shared);
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => return Err((handles, e)),
        }
    }
    Ok(handles)
}

fn worker_loop<H: Handler>(id: usize, queue: &Receiver<Queued>, shared: &WorkerShared<H>) {
    while let Ok(queued) = queue.recv() {
        shared.handler.dequeued(queued.since.elapsed());
        if shared.shutdown.is_triggered() {
            // A connection still in the queue at shutdown has no request in
            // hand: closing it (by dropping it) is the graceful thing to do.
            shared.handler.connection_closed();
            continue;
        }
        serve_one(id, queued, shared);
    }
}

/// Serves one connection, containing a panic to that connection: the stream
/// is dropped (closed) whatever happens, and the worker goes on to the next
/// connection with none of the panicked connection's state, which lived
/// inside the unwound call. That is what replacing the worker would achieve;
/// keeping the thread also keeps its pinning and its place in the pool
/// without a respawn path that could itself fail.
fn serve_one<H: Handler>(id: usize, queued: Queued, shared: &WorkerShared<H>) {
    let Queued {
        stream,
        since: _,
        _admission,
    } = queued;
    let peer = stream.peer_addr().ok();
    let _registration = match shared.registry.register(&stream) {
        Ok(registration) => Some(registration),
        Err(NotRegistered::Closing) => {
            shared.handler.connection_closed();
            return;
        }
        Err(NotRegistered::Dup(e)) => {
            tracing::warn!(worker = id, error = %e, "connection cannot be interrupted at shutdown");
            None
        }
    };
    // The panic policy of both front-ends (see `service::frontend`).
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        connection::serve(&shared.handler, stream, &shared.connection)
    }));
    match outcome {
        Ok(()) => shared.handler.connection_closed(),
        Err(payload) => {
            shared.handler.connection_panicked();
            shared.handler.connection_closed();
            tracing::error!(
                worker = id,
                peer = ?peer,
                panic = panic_message(payload.as_ref()),
                "panic while serving a connection; connection closed, worker goes on"
            );
        }
    }
}

/// Waits for every worker to finish, first for up to `grace` after their
/// reads were shut down, then, for those still blocked (a client that does not
/// read its replies), after shutting their sockets down entirely.
pub(crate) fn join_workers(handles: Workers, registry: &Registry, grace: Duration) {
    let deadline = Instant::now() + grace;
    while handles.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stuck = handles.iter().filter(|h| !h.is_finished()).count();
    if stuck > 0 {
        let cut = registry.shutdown_all(Direction::Both);
        tracing::warn!(
            workers = stuck,
            connections = cut,
            "workers still busy after the grace period; cutting their connections"
        );
    }
    for handle in handles {
        // serve_one contains panics, so a worker thread itself cannot panic;
        // if it somehow did, there is nothing left to clean up for it.
        let _ = handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    #[test]
    fn admission_respects_limit_and_returns_slots() {
        let open = Arc::new(AtomicUsize::new(0));
        let a = Admission::try_admit(&open, 2).expect("first");
        let b = Admission::try_admit(&open, 2).expect("second");
        assert!(Admission::try_admit(&open, 2).is_none());
        assert_eq!(open.load(Ordering::SeqCst), 2);
        drop(a);
        let c = Admission::try_admit(&open, 2).expect("slot given back");
        drop((b, c));
        assert_eq!(open.load(Ordering::SeqCst), 0);
        let unlimited: Vec<_> = (0..10)
            .map(|_| Admission::try_admit(&open, 0).expect("no limit"))
            .collect();
        assert_eq!(open.load(Ordering::SeqCst), 10);
        drop(unlimited);
    }

    #[test]
    fn registry_shutdown_read_ends_blocked_read_and_refuses_new() {
        use std::io::Read;
        let registry = Arc::new(Registry::default());
        let (_client, server) = pair();
        let reg = registry.register(&server).ok().expect("registered");
        assert_eq!(registry.len(), 1);
        let reader = std::thread::spawn(move || {
            let mut server = server;
            let mut buf = [0u8; 16];
            server.read(&mut buf)
        });
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(registry.shutdown_all(Direction::Read), 1);
        let n = reader.join().expect("reader").expect("read");
        assert_eq!(n, 0, "a shut-down read side reads as end-of-input");
        drop(reg);
        assert_eq!(registry.len(), 0);
        let (_c2, s2) = pair();
        assert!(matches!(
            registry.register(&s2),
            Err(NotRegistered::Closing)
        ));
    }
}
