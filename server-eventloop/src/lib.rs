//! nginx's model: one non-blocking event loop per core, each a thread pinned
//! to its core with its own mio `Poll`, each multiplexing thousands of
//! connections.
//!
//! ```text
//!   reuseport (default)                      dispatch
//!   ───────────────────                      ────────
//!   kernel (SO_REUSEPORT hash)               acceptor thread
//!     │         │         │                    │ round robin: queue + Waker
//!     ▼         ▼         ▼                    ▼         ▼         ▼
//!  ┌───────┐ ┌───────┐ ┌───────┐            ┌───────┐ ┌───────┐ ┌───────┐
//!  │loop 0 │ │loop 1 │ │loop N │            │loop 0 │ │loop 1 │ │loop N │
//!  │core 0 │ │core 1 │ │core N │            │core 0 │ │core 1 │ │core N │
//!  │ Poll  │ │ Poll  │ │ Poll  │            │ Poll  │ │ Poll  │ │ Poll  │
//!  │ slab  │ │ slab  │ │ slab  │            │ slab  │ │ slab  │ │ slab  │
//!  └───┬───┘ └───┬───┘ └───┬───┘            └───┬───┘ └───┬───┘ └───┬───┘
//!      └─────────┴────┬────┴────────────────────┴─────────┴─────────┘
//!                     ▼
//!          Session::process (service) ──► engine
//!                     │ durability `always`: the reply waits for the sync;
//!                     └─ the engine's sync thread wakes the loop (Waker)
//! ```
//!
//! The loops only move bytes; requests are parsed, executed and answered by
//! `service` (behind `service::frontend::Handler`), which the thread-pool
//! front-end shares, so the two reply byte for byte the same. [`EventLoop`]
//! is this front-end's side of the contract in `service::frontend`. See [`event_loop`] for one loop's
//! turn, [`connection`] for buffers and the idle footprint, [`listen`] for the
//! accept modes and the open-file limit, [`Shutdown`] (shared with the thread
//! pool, from `service`) for signals and panics.
//!
//! The loop never blocks, with one documented exception: a read of cold data
//! is a page fault on the engine's memory map.

pub mod connection;
pub mod event_loop;
pub mod listen;

mod dispatch;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;

use service::frontend::{Config, Defaults, Frontend, Handler};

pub use listen::{AcceptMode, Listeners};
pub use service::Shutdown;

use dispatch::Acceptor;
use event_loop::Loop;

/// One loop per core, as nginx's `worker_processes auto`.
pub fn default_loops() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Why the server stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `Poll`, `Waker`, listener registration or thread could not be
    /// created (usually out of file descriptors or memory).
    #[error("cannot start the event loops: {0}")]
    Setup(#[source] io::Error),
    /// A loop's `poll` failed; the server stopped.
    #[error("event loop {index} failed: {source}")]
    Loop {
        index: usize,
        #[source]
        source: io::Error,
    },
    /// A loop or the acceptor panicked; the server stopped.
    #[error("{0}")]
    Panicked(String),
}

/// The event-loop front-end, in one of its accept modes.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventLoop {
    /// How connections reach the loops (`--accept`).
    pub accept: AcceptMode,
}

impl Frontend for EventLoop {
    type Listener = Listeners;
    type Error = Error;

    const MODEL: &'static str = "eventloop";

    /// One pinned loop per core; idle connections cost a few bytes each,
    /// so, like memcached, it never closes them unless told to.
    fn defaults(&self) -> Defaults {
        Defaults {
            threads: default_loops(),
            pin: true,
            idle_timeout_s: 0,
            fds_per_thread: 0,
            thread_noun: "loops",
        }
    }

    fn bind(&self, addr: SocketAddr, config: &Config) -> io::Result<Listeners> {
        Listeners::bind(addr, self.accept, config.threads)
    }

    /// Runs one loop per listening socket (reuseport) or `config.threads`
    /// loops and an acceptor (dispatch; the listeners decide the mode),
    /// until `shutdown` is triggered; then stops accepting, finishes the
    /// replies and syncs in flight (for at most `config.grace`) and returns.
    fn run<H: Handler>(
        &self,
        listeners: Listeners,
        handler: Arc<H>,
        config: &Config,
        shutdown: &Shutdown,
    ) -> Result<(), Error> {
        let config = Arc::new(config.clone());
        let open = Arc::new(AtomicUsize::new(0));
        let mode = listeners.mode;
        let mut sockets = listeners.sockets.into_iter();

        let count = match mode {
            AcceptMode::ReusePort => sockets.len(),
            AcceptMode::Dispatch => config.threads.max(1),
        };
        let mut loops = Vec::with_capacity(count);
        for index in 0..count {
            let own = match mode {
                AcceptMode::ReusePort => sockets.next(),
                AcceptMode::Dispatch => None,
            };
            loops.push(
                Loop::new(
                    index,
                    Arc::clone(&handler),
                    Arc::clone(&config),
                    own,
                    Arc::clone(&open),
                    shutdown.clone(),
                )
                .map_err(Error::Setup)?,
            );
        }
        let acceptor = match mode {
            AcceptMode::Dispatch => {
                let listener = sockets
                    .next()
                    .ok_or_else(|| Error::Setup(io::Error::other("no listening socket")))?;
                let shared = loops.iter().map(Loop::shared).collect();
                Some(Acceptor::new(listener, shared, shutdown.clone()).map_err(Error::Setup)?)
            }
            AcceptMode::ReusePort => None,
        };
        start_and_join(loops, acceptor, config.pin, shutdown)
    }
}

/// Starts the loops (and the acceptor) on threads of their own, waits for
/// all of them, and reports the first failure.
fn start_and_join<H: Handler>(
    loops: Vec<Loop<H>>,
    acceptor: Option<Acceptor>,
    pin: bool,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    let cores = if pin {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        if cores.is_empty() {
            tracing::warn!("cannot list the cores; event loops are not pinned");
        }
        cores
    } else {
        Vec::new()
    };

    let mut threads: Vec<(String, JoinHandle<io::Result<()>>)> = Vec::new();
    let mut spawn_error = None;
    for (index, event_loop) in loops.into_iter().enumerate() {
        let name = format!("event loop {index}");
        let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
        let guard_shutdown = shutdown.clone();
        let thread_name = name.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("eventloop-{index}"))
            .spawn(move || {
                let guard = service::PanicGuard {
                    shutdown: guard_shutdown,
                    thread: thread_name,
                };
                if let Some(core) = core {
                    if !core_affinity::set_for_current(core) {
                        tracing::warn!(event_loop = index, core = core.id, "cannot pin event loop");
                    }
                }
                let result = event_loop.run();
                if let Err(e) = &result {
                    // One dead loop must not leave the others serving.
                    guard.shutdown.fail(format!("{} failed: {e}", guard.thread));
                }
                result
            });
        match spawned {
            Ok(handle) => threads.push((name, handle)),
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }
    if spawn_error.is_none() {
        if let Some(acceptor) = acceptor {
            let guard_shutdown = shutdown.clone();
            let spawned = std::thread::Builder::new()
                .name("acceptor".into())
                .spawn(move || {
                    let guard = service::PanicGuard {
                        shutdown: guard_shutdown,
                        thread: "the acceptor".into(),
                    };
                    let result = acceptor.run();
                    if let Err(e) = &result {
                        guard.shutdown.fail(format!("the acceptor failed: {e}"));
                    }
                    result
                });
            match spawned {
                Ok(handle) => threads.push(("the acceptor".into(), handle)),
                Err(e) => spawn_error = Some(e),
            }
        }
    }
    if spawn_error.is_some() {
        shutdown.trigger();
    }

    let mut first_error = spawn_error.map(Error::Setup);
    for (index, (name, handle)) in threads.into_iter().enumerate() {
        let outcome = handle.join();
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(source)) => {
                tracing::error!(thread = %name, error = %source, "stopped on an error");
                Some(Error::Loop { index, source })
            }
            Err(_) => {
                Some(Error::Panicked(shutdown.failure().unwrap_or_else(|| {
                    format!("{name} panicked; the server stopped")
                })))
            }
        };
        if first_error.is_none() {
            first_error = error;
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => match shutdown.failure() {
            Some(message) => Err(Error::Panicked(message)),
            None => Ok(()),
        },
    }
}
