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
//! [`ThreadPool`] is this front-end's side of the contract in
//! `service::frontend`: the binary hands it to the shared startup, tests
//! drive the same loop with a scripted handler instead of the service.
//!
//! Shutdown (see [`Shutdown`]): the accept thread stops, queued connections
//! are closed unserved, live connections get their read side shut down so a
//! worker writes the replies to the requests it holds and then sees
//! end-of-input; the one who opened the engine then closes it.

mod accept;
mod connection;
mod pool;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use service::frontend::{self, Config, Defaults, Frontend, Handler};

pub use service::Shutdown;

use accept::Acceptor;
use pool::{PoolConfig, Registry, WorkerShared};

/// KingServer's pool size, the default `--threads`.
pub const DEFAULT_WORKERS: usize = 150;

/// The thread pool's idle timeout when `--idle-timeout` is not given: a
/// silent client holds a worker, and 150 of them would hold the pool, so
/// unlike the event loop (and memcached) it does not wait forever.
pub const IDLE_TIMEOUT_DEFAULT_S: u64 = 300;

/// Why the pool could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be set up for accepting.
    #[error("listening socket: {0}")]
    Listen(#[source] io::Error),
    /// Worker threads could not be started (thread or memory limits).
    #[error("starting worker threads: {0} (lower --threads?)")]
    Workers(#[source] io::Error),
}

/// The blocking thread-pool front-end.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadPool;

impl Frontend for ThreadPool {
    type Listener = TcpListener;
    type Error = Error;

    const MODEL: &'static str = "threadpool";

    /// 150 workers, unpinned, idle connections closed after 300 s; each
    /// worker holds a duplicate of the socket it serves.
    fn defaults(&self) -> Defaults {
        Defaults {
            threads: DEFAULT_WORKERS,
            pin: false,
            idle_timeout_s: IDLE_TIMEOUT_DEFAULT_S,
            fds_per_thread: 1,
            thread_noun: "workers",
        }
    }

    fn bind(&self, addr: SocketAddr, _config: &Config) -> io::Result<TcpListener> {
        Ok(frontend::listen_socket(addr, false)?.into())
    }

    /// Runs the accept thread (on the calling thread) and `config.threads`
    /// workers handing each connection to `handler`, until `shutdown` is
    /// triggered; then stops accepting, closes queued connections, lets
    /// workers finish the requests in hand (for at most `config.grace`) and
    /// returns.
    fn run<H: Handler>(
        &self,
        listener: TcpListener,
        handler: Arc<H>,
        config: &Config,
        shutdown: &Shutdown,
    ) -> Result<(), Error> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let registry = Arc::new(Registry::default());
        let shared = Arc::new(WorkerShared {
            handler: Arc::clone(&handler),
            connection: connection::Settings::new(config),
            registry: Arc::clone(&registry),
            shutdown: shutdown.clone(),
        });
        let pool = PoolConfig {
            workers: config.threads.max(1),
            pin: config.pin,
        };
        let handles = match pool::spawn_workers(&pool, &rx, &shared) {
            Ok(handles) => handles,
            Err((started, e)) => {
                // The workers that did start leave once the queue closes.
                drop((tx, rx));
                pool::join_workers(started, &registry, config.grace);
                return Err(Error::Workers(e));
            }
        };
        drop(rx);

        let acceptor = Acceptor {
            queue: tx,
            handler,
            open: Arc::new(AtomicUsize::new(0)),
            max_connections: config.max_connections,
            shutdown: shutdown.clone(),
        };
        let accepted = acceptor.run(&listener);
        // A failed listener must still stop the workers it started.
        shutdown.trigger();
        // Closing the queue lets idle workers leave once it is drained.
        drop(acceptor);
        let interrupted = registry.shutdown_all(std::net::Shutdown::Read);
        tracing::info!(
            connections = interrupted,
            "stopped accepting; finishing requests in hand"
        );
        pool::join_workers(handles, &registry, config.grace);
        accepted.map_err(Error::Listen)
    }
}
