//! `loadgen`: a memcached load generator that a performance engineer can trust.
//!
//! * [`config`]: the flags of `loadgen run`, which are also the recorded configuration.
//! * [`rng`], [`workload`]: seeded keys, values (with checksums under `--verify`)
//!   and operations; [`ketama`]: key placement over several servers as
//!   twemproxy and libmemcached's ketama do it (`--distribution ketama`).
//! * [`driver`]: one mio event loop per client thread, many non-blocking
//!   connections each, closed or open loop, timeouts and reconnects, split
//!   into pacing, sockets, reply matching and the tally of what settled;
//!   requests and replies go through `protocol`'s client side, adapted in
//!   [`wire`].
//! * [`record`]: per-thread HdrHistograms (microseconds, 1 us .. 60 s, 3 digits)
//!   and counters.
//! * [`run`]: starts the threads, merges their per-second reports, prints the
//!   live line and writes the output directory.
//! * [`hgrm`], [`hlog`], [`summary`], [`output`]: the output formats; [`merge`]
//!   combines the interval logs of several runs.
//! * [`check`]: a short verified run in each protocol, which the tests run
//!   against both front-ends and memcached.
//!
//! The output files are described in `OUTPUT.md`.

pub mod check;
pub mod config;
pub mod driver;
pub mod hgrm;
pub mod hlog;
pub mod ketama;
pub mod merge;
pub mod output;
pub mod record;
pub mod rng;
pub mod run;
pub mod summary;
pub mod wire;
pub mod workload;

/// Everything that can end a run or a merge early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Flags that do not fit together.
    #[error("configuration: {0}")]
    Config(String),
    /// A server could not be reached before the run.
    #[error("could not connect to {addr}: {source}; is the server running?")]
    Connect {
        /// The server address as given.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Output could not be produced.
    #[error("output: {0}")]
    Output(String),
    /// An input file is not what it should be.
    #[error("input: {0}")]
    Input(String),
    /// A client thread failed (its event loop could not run).
    #[error("client thread: {0}")]
    Thread(String),
}
