//! KingServer's model: a blocking thread-pool front-end for the store.
//!
//! ```text
//!                 +---------------+      crossbeam channel        +-----------+
//!  clients ---->  | accept thread | --> [conn][conn][conn]... --> | worker 0  | -- blocking read/write --> client
//!   (TCP)         |  limit check  |     (waiting for a worker)    | worker 1  |        |
//!                 |  TCP_NODELAY  |                               |   ...     |   Session::process
//!                 +---------------+                               | worker N-1|        |
//!                        |                                        +-----------+     service -> engine
//!               over the limit: "SERVER_ERROR too many open connections", close
//! ```
//!
//! One thread accepts; each accepted connection waits in a queue until one of
//! a fixed number of workers (default 150, KingServer's number) takes it. A
//! worker owns its connection until the client leaves, reading and writing
//! with blocking calls. Everything that is not I/O (parsing, executing
//! requests, encoding replies, stats) lives in `protocol` and `service`, so
//! this front-end and the event-loop one reply byte for byte the same.
//!
//! Shutdown (see [`Shutdown`]): the accept thread stops, queued connections
//! are closed unserved, live connections get their read side shut down so a
//! worker writes the replies to the requests it holds and then sees
//! end-of-input; the caller then closes the engine.

mod accept;
mod connection;
mod pool;

use std::io;
use std::net::TcpListener;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use service::{Flags, FrontendInfo, Service};

pub use accept::{bind, BACKLOG};
pub use pool::{Observer, Serve};
pub use service::Shutdown;
pub use service::FORCED_EXIT_CODE;

use accept::Acceptor;
use pool::{PoolConfig, Registry, WorkerShared};

/// The name this front-end reports as its model (stats, startup line).
pub const MODEL: &str = "threadpool";

/// KingServer's pool size, the default `--threads`.
pub const DEFAULT_WORKERS: usize = 150;

pub use service::TOO_MANY_CONNECTIONS;

/// How long shutdown waits for workers to finish the requests in hand before
/// it cuts their connections (a client that never reads its replies would
/// otherwise hold a worker in a blocking write forever).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the server could not run or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be set up for accepting.
    #[error("listening socket: {0}")]
    Listen(#[source] io::Error),
    /// Worker threads could not be started (thread or memory limits).
    #[error("starting worker threads: {0} (lower --threads?)")]
    Workers(#[source] io::Error),
    /// The engine did not close cleanly: the active file may lack its
    /// footer; the next start recovers it by scanning.
    #[error("closing the engine: {0}")]
    CloseEngine(#[source] engine::WriteError),
}

/// What this front-end needs beyond the service's own settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Worker threads: the most connections served at once.
    pub workers: usize,
    /// Pin workers to cores, round robin.
    pub pin: bool,
    /// See [`SHUTDOWN_GRACE`].
    pub grace: Duration,
}

impl Options {
    /// The front-end's options from the shared flags, with this front-end's
    /// defaults: 150 workers, not pinned.
    pub fn from_flags(flags: &Flags) -> Self {
        Options {
            workers: flags.threads_or(DEFAULT_WORKERS),
            pin: flags.pin_or(false),
            grace: SHUTDOWN_GRACE,
        }
    }

    /// How this front-end describes itself to the service (`stats`).
    pub fn frontend(&self) -> FrontendInfo {
        FrontendInfo {
            model: MODEL,
            threads: self.workers,
        }
    }
}

/// The thread pool's idle timeout when `--idle-timeout` is not given: a
/// silent client holds a worker, and 150 of them would hold the pool, so
/// unlike the event loop (and memcached) it does not wait forever.
pub const IDLE_TIMEOUT_DEFAULT_S: u64 = 300;

/// Serves memcached clients on `listener` until `shutdown` is triggered,
/// then stops gracefully: stops accepting, closes queued connections, lets
/// workers finish the requests in hand, and closes the engine (sealing the
/// active file). Connection limit and idle timeout come from the service's
/// settings.
pub fn run(
    listener: TcpListener,
    service: Arc<Service>,
    options: &Options,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    let config = service.config();
    let limits = config.limits();
    let serve = Arc::new(connection::Memcached {
        service: Arc::clone(&service),
        idle_timeout: config.idle_timeout,
        write_timeout: config.write_timeout,
        input_capacity: connection::input_capacity(limits.max_line_len, limits.chunk_threshold),
        max_input: limits.max_buffered(),
    });
    let settings = PoolSettings {
        workers: options.workers,
        pin: options.pin,
        max_connections: config.max_connections,
        grace: options.grace,
    };
    let observer = Arc::new(StatsObserver(Arc::clone(&service)));
    let served = serve_with(&listener, &settings, serve, observer, shutdown);
    // Close the engine even if accepting failed: the workers are stopped
    // either way, and a sealed file makes the next start fast.
    let closed = service.engine().close();
    match served {
        Err(PoolError::Listen(e)) => Err(Error::Listen(e)),
        Err(PoolError::Workers(e)) => Err(Error::Workers(e)),
        Ok(()) => closed.map_err(Error::CloseEngine),
    }
}

/// Reports the pool's events in the service's stats, where `stats` shows
/// them.
struct StatsObserver(Arc<Service>);

impl Observer for StatsObserver {
    fn queued(&self) {
        let stats = self.0.stats();
        stats.connection_opened();
        stats.queued();
    }
    fn dequeued(&self, wait: Duration) {
        self.0.stats().dequeued(wait);
    }
    fn rejected(&self, reply_bytes: u64) {
        self.0.stats().refused(reply_bytes);
    }
    fn closed(&self) {
        self.0.stats().connection_closed();
    }
    fn panicked(&self) {
        self.0.stats().connection_panicked();
    }
}

/// The pool's shape and limits, independent of what serves a connection.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Worker threads: the most connections served at once.
    pub workers: usize,
    /// Pin workers to cores, round robin.
    pub pin: bool,
    /// Live plus queued connections allowed; 0 means no limit.
    pub max_connections: usize,
    /// See [`SHUTDOWN_GRACE`].
    pub grace: Duration,
}

/// Why [`serve_with`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    #[error("listening socket: {0}")]
    Listen(#[source] io::Error),
    #[error("starting worker threads: {0}")]
    Workers(#[source] io::Error),
}

/// Runs the accept thread (on the calling thread) and a pool of workers
/// handing each connection to `serve`, until `shutdown` is triggered; then
/// stops them gracefully and returns. [`run`] is this with the memcached
/// service; tests drive the pool with simpler services.
pub fn serve_with<S: Serve, O: Observer>(
    listener: &TcpListener,
    settings: &PoolSettings,
    serve: Arc<S>,
    observer: Arc<O>,
    shutdown: &Shutdown,
) -> Result<(), PoolError> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let registry = Arc::new(Registry::default());
    let shared = Arc::new(WorkerShared {
        serve,
        observer: Arc::clone(&observer),
        registry: Arc::clone(&registry),
        shutdown: shutdown.clone(),
    });
    let config = PoolConfig {
        workers: settings.workers.max(1),
        pin: settings.pin,
    };
    let handles = match pool::spawn_workers(&config, &rx, &shared) {
        Ok(handles) => handles,
        Err((started, e)) => {
            // The workers that did start leave once the queue closes.
            drop((tx, rx));
            pool::join_workers(started, &registry, settings.grace);
            return Err(PoolError::Workers(e));
        }
    };
    drop(rx);

    let acceptor = Acceptor {
        queue: tx,
        observer,
        open: Arc::new(AtomicUsize::new(0)),
        max_connections: settings.max_connections,
        shutdown: shutdown.clone(),
    };
    let accepted = acceptor.run(listener);
    // A failed listener must still stop the workers it started.
    shutdown.trigger();
    // Closing the queue lets idle workers leave once it is drained.
    drop(acceptor);
    let interrupted = registry.shutdown_all(std::net::Shutdown::Read);
    tracing::info!(
        connections = interrupted,
        "stopped accepting; finishing requests in hand"
    );
    pool::join_workers(handles, &registry, settings.grace);
    accepted.map_err(PoolError::Listen)
}

#[cfg(test)]
mod tests {
    //! The pool's own behaviour, with a trivial echo service standing in for
    //! the memcached one: queueing, the limit, panics, shutdown.

    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread::JoinHandle;

    /// Echoes each line back; the line `panic` panics.
    struct Echo;

    impl Serve for Echo {
        fn serve(&self, stream: TcpStream) {
            let mut writer = stream.try_clone().expect("clone");
            let reader = BufReader::new(stream);
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if line == "panic" {
                    panic!("asked to panic");
                }
                if writer.write_all(format!("{line}\r\n").as_bytes()).is_err() {
                    return;
                }
            }
        }
    }

    #[derive(Default)]
    struct Counts {
        queued: AtomicU64,
        dequeued: AtomicU64,
        longest_wait_ms: AtomicU64,
        rejected: AtomicU64,
        closed: AtomicU64,
        panicked: AtomicU64,
    }

    impl Observer for Counts {
        fn queued(&self) {
            self.queued.fetch_add(1, Ordering::SeqCst);
        }
        fn dequeued(&self, wait: Duration) {
            self.dequeued.fetch_add(1, Ordering::SeqCst);
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            self.longest_wait_ms.fetch_max(ms, Ordering::SeqCst);
        }
        fn rejected(&self, _reply_bytes: u64) {
            self.rejected.fetch_add(1, Ordering::SeqCst);
        }
        fn closed(&self) {
            self.closed.fetch_add(1, Ordering::SeqCst);
        }
        fn panicked(&self) {
            self.panicked.fetch_add(1, Ordering::SeqCst);
        }
    }

    struct Running {
        addr: SocketAddr,
        counts: Arc<Counts>,
        shutdown: Shutdown,
        thread: JoinHandle<Result<(), PoolError>>,
    }

    fn start(workers: usize, max_connections: usize) -> Running {
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let counts = Arc::new(Counts::default());
        let shutdown = Shutdown::new();
        let settings = PoolSettings {
            workers,
            pin: false,
            max_connections,
            grace: Duration::from_secs(2),
        };
        let thread = {
            let counts = Arc::clone(&counts);
            let shutdown = shutdown.clone();
            std::thread::spawn(move || {
                serve_with(&listener, &settings, Arc::new(Echo), counts, &shutdown)
            })
        };
        Running {
            addr,
            counts,
            shutdown,
            thread,
        }
    }

    impl Running {
        fn stop(self) -> Arc<Counts> {
            self.shutdown.trigger();
            self.thread.join().expect("server thread").expect("server");
            self.counts
        }
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    }

    fn round_trip(s: &mut TcpStream, line: &str) -> String {
        s.write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n") {
            match s.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => got.push(byte[0]),
                Err(e) => panic!("read: {e}"),
            }
        }
        String::from_utf8(got).expect("utf8")
    }

    #[test]
    fn third_client_waits_for_a_free_worker() {
        let server = start(2, 0);
        let mut a = connect(server.addr);
        let mut b = connect(server.addr);
        assert_eq!(round_trip(&mut a, "a"), "a\r\n");
        assert_eq!(round_trip(&mut b, "b"), "b\r\n");
        let mut c = connect(server.addr);
        c.write_all(b"c\r\n").expect("write");
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut buf = [0u8; 8];
        let err = c.read(&mut buf).expect_err("no worker free yet");
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        drop(a);
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut got = [0u8; 3];
        c.read_exact(&mut got)
            .expect("served once a worker is free");
        assert_eq!(&got, b"c\r\n");
        drop((b, c));
        let counts = server.stop();
        assert_eq!(counts.queued.load(Ordering::SeqCst), 3);
        assert_eq!(counts.dequeued.load(Ordering::SeqCst), 3);
        assert!(counts.longest_wait_ms.load(Ordering::SeqCst) >= 200);
    }

    #[test]
    fn connections_over_the_limit_are_told_and_closed() {
        let server = start(1, 2);
        let mut a = connect(server.addr);
        assert_eq!(round_trip(&mut a, "a"), "a\r\n");
        // Queued, not served: still counts against the limit.
        let _b = connect(server.addr);
        let mut c = connect(server.addr);
        let mut reply = String::new();
        c.read_to_string(&mut reply).expect("read until close");
        assert_eq!(reply, "SERVER_ERROR too many open connections\r\n");
        drop(a);
        let counts = server.stop();
        assert_eq!(counts.rejected.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panic_closes_only_its_connection() {
        let server = start(1, 0);
        let mut a = connect(server.addr);
        a.write_all(b"panic\r\n").expect("write");
        let mut rest = Vec::new();
        let n = a.read_to_end(&mut rest).expect("closed after the panic");
        assert_eq!(n, 0);
        // The only worker is still there to serve the next connection.
        let mut b = connect(server.addr);
        assert_eq!(round_trip(&mut b, "still here"), "still here\r\n");
        drop(b);
        let counts = server.stop();
        assert_eq!(counts.panicked.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn shutdown_ends_idle_connections_and_closes_queued_ones() {
        let server = start(1, 0);
        let mut served = connect(server.addr);
        assert_eq!(round_trip(&mut served, "x"), "x\r\n");
        let mut queued = connect(server.addr);
        queued.write_all(b"never served\r\n").expect("write");
        std::thread::sleep(Duration::from_millis(50));
        let counts = server.stop();
        let mut rest = Vec::new();
        assert_eq!(served.read_to_end(&mut rest).expect("eof"), 0);
        // The queued connection is closed without a reply; a reset is as
        // good as an orderly close here.
        let mut rest = Vec::new();
        if let Ok(n) = queued.read_to_end(&mut rest) {
            assert_eq!(n, 0);
        }
        assert_eq!(counts.queued.load(Ordering::SeqCst), 2);
        assert_eq!(counts.closed.load(Ordering::SeqCst), 2);
    }
}
