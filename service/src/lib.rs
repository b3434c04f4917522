//! Executes parsed memcached requests against the storage engine, for both
//! front-ends, which differ only in their I/O:
//!
//! ```text
//!  front-end (threadpool | eventloop)
//!     │ bytes read                          ▲ reply bytes (after `hold` is durable)
//!     ▼                                     │
//!  Session::process ── protocol::Decoder ── frames ── execute ── engine
//!     (one per connection)                   (one per request)   (Arc, shared)
//! ```
//!
//! * [`Service`]: what every connection shares: the engine, [`ServerStats`],
//!   the settings and the front-end's description.
//! * [`Session`]: one per connection: the protocol decoder and a large value
//!   being received.
//! * [`Flags`]: the command-line flags both binaries flatten.
//! * [`Output`]: a connection's queue of replies, shared by both front-ends.
//! * [`frontend`]: the contract a front-end's loop implements and the one
//!   startup sequence both binaries run around it.
//!
//! The test tooling (the conformance suite, the memccapable runner, the
//! reference memcached, a harness that starts any front-end) lives in the
//! dev-only `testkit` crate, not here.

#![deny(unsafe_code)]

pub mod arith;
mod connection_limit;
mod execute;
mod flags;
pub mod frontend;
mod meta;
pub mod output;
mod session;
mod shutdown;
mod signals;
mod startup;
mod stats;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use engine::Engine;

pub use connection_limit::{
    prepare_open_file_limit, raise_open_file_limit, FileLimit, RESERVED_FDS, TOO_MANY_CONNECTIONS,
};
pub use flags::{
    engine_options, init_logging, parse_size, Compression, DurabilityFlag, FlagError, Flags,
    DEFAULT_SYNC_INTERVAL, MAX_ITEM_SIZE_LIMIT, MIN_ITEM_SIZE,
};
pub use output::Output;
pub use session::{Progress, Session, Step};
pub use shutdown::{PanicGuard, Shutdown};
pub use signals::{install_signal_handlers, FORCED_EXIT_CODE};
pub use stats::{Counters, FrontendInfo, ServerStats, Totals};

/// The version `version` and `stats` report: the memcached release whose
/// text protocol the servers speak. Clients read it to decide what the server
/// understands (libmemcached, for one, expects 1.6 behaviour only from a
/// server that says it is 1.6 or later), so it names the protocol level, not
/// this package; `stats` reports the package as `server_version`.
pub const VERSION: &str = "1.6.18";

/// This package's own version, reported by `stats` as `server_version`.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Settings the service needs from the flags.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Largest value accepted; larger sets are refused (and their data swallowed).
    pub max_item_size: usize,
    /// Reported by `stats settings`; the front-end enforces it.
    pub max_connections: usize,
    /// Reported by `stats settings` (`tcpport`, `inter`).
    pub listen: SocketAddr,
    /// Reported by `stats settings`; the front-end enforces it.
    pub idle_timeout: Option<Duration>,
    /// Reported by `stats settings`; the front-end enforces it.
    pub write_timeout: Option<Duration>,
    /// Reported by `stats settings`; the engine applies it.
    pub durability: DurabilityFlag,
    /// Reported by `stats settings`; recorded only until the engine compresses.
    pub compression: Compression,
    /// Bytes of replies a connection may have pending (referenced values
    /// included) before its session stops executing, in the middle of a
    /// multi-key request too, until the client reads (see [`Session::process`]).
    pub output_limit: usize,
}

/// [`ServiceConfig::output_limit`] of both front-ends.
pub const OUTPUT_LIMIT: usize = 256 * 1024;

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            max_item_size: 1 << 20,
            max_connections: 10240,
            listen: SocketAddr::from(([127, 0, 0, 1], 11211)),
            idle_timeout: None,
            write_timeout: None,
            durability: DurabilityFlag::Interval(DEFAULT_SYNC_INTERVAL),
            compression: Compression::None,
            output_limit: OUTPUT_LIMIT,
        }
    }
}

impl ServiceConfig {
    /// The service's settings from the shared flags; `idle_default_s` is
    /// the front-end's idle timeout when `--idle-timeout` is not given.
    pub fn from_flags(flags: &Flags, idle_default_s: u64) -> Self {
        ServiceConfig {
            max_item_size: flags.max_item_size(),
            max_connections: flags.max_connections,
            listen: flags.listen,
            idle_timeout: flags.idle_timeout_or(idle_default_s),
            write_timeout: flags.write_timeout(),
            durability: flags.durability,
            compression: flags.compression,
            output_limit: OUTPUT_LIMIT,
        }
    }

    /// The decoder limits these settings imply (key and line limits are
    /// memcached's; values over `max_item_size` are refused by the decoder,
    /// which swallows their data).
    pub fn limits(&self) -> protocol::Limits {
        protocol::Limits {
            max_item_size: self.max_item_size,
            ..protocol::Limits::default()
        }
    }
}

/// What every connection shares. `Send + Sync`; share it as `Arc<Service>`.
pub struct Service {
    engine: Arc<Engine>,
    stats: ServerStats,
    config: ServiceConfig,
    limits: protocol::Limits,
    frontend: FrontendInfo,
    /// `verbosity` is accepted and reported; logging follows `--log-level`.
    verbosity: AtomicU32,
    /// Unix time at which a delayed `flush_all` runs; 0 = none pending.
    flush_at: AtomicU64,
}

impl Service {
    pub fn new(engine: Arc<Engine>, config: ServiceConfig, frontend: FrontendInfo) -> Self {
        let limits = config.limits();
        Service {
            engine,
            stats: ServerStats::new(),
            config,
            limits,
            frontend,
            verbosity: AtomicU32::new(0),
            flush_at: AtomicU64::new(0),
        }
    }

    /// A session for a new connection.
    pub fn session(self: &Arc<Self>) -> Session {
        Session::new(Arc::clone(self))
    }

    /// Server-wide counters; front-ends report connections and queueing here.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The decoder limits sessions use: a front-end sizes its input buffer
    /// from `max_line_len` and `chunk_threshold`.
    pub fn limits(&self) -> protocol::Limits {
        self.limits
    }

    pub fn frontend(&self) -> FrontendInfo {
        self.frontend
    }

    /// Unix seconds: the engine's clock, which expiry times are compared with.
    fn now(&self) -> u32 {
        engine::unix_now()
    }

    /// The engine's expiry (absolute unix seconds, 0 = never) for a
    /// client's exptime, by memcached's rule (protocol's helper).
    fn expiry(&self, exptime: i64) -> u32 {
        let at = protocol::expiry_from_exptime(exptime, u64::from(self.now())).as_unix();
        u32::try_from(at).unwrap_or(u32::MAX)
    }
}
