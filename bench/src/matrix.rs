//! The matrix: which front-ends, workloads and connection counts a run
//! covers, the two presets (`default` for `make bench`, `full` for
//! `make bench-full`), and the list of cells a run executes.
//!
//! A front-end is named on the command line as `threadpool`, `threadpool-<N>`
//! (N workers), `eventloop`, `eventloop-reuseport`, `eventloop-dispatch` or
//! `memcached`; the name says everything that differs between them, so a cell
//! id (`read-heavy_threadpool-16_c1024_r2`) is enough to reproduce it. Any of
//! them with `-twin` appended (`eventloop-twin`) is the same server run once
//! more in every cell: the A/A pair whose spread is the run's noise floor.
//! `cluster-direct-<N>` and `cluster-proxy-<N>` are N event-loop servers on
//! their own loopback addresses, driven directly with ketama placement or
//! through nutcracker ([`crate::cluster`]).
//!
//! # Rounds
//!
//! A matrix runs in `rounds` rounds. A round runs every cell once, and
//! within a cell the front-ends back to back, each on a fresh server, in
//! matrix order in odd rounds and in reverse order in even ones (A B C,
//! C B A, ...), so that the machine's drift over minutes hits every
//! front-end alike and ratios can be taken per round (paired).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Workers of the thread pool when `--threads` is not given (KingServer's).
pub const THREADPOOL_DEFAULT_WORKERS: usize = 150;

/// `--max-connections` (memcached: `-c`) given to every server: above the
/// largest connection count of the full matrix plus the probe and stats
/// connections, so the limit never decides a result.
pub const SERVER_MAX_CONNECTIONS: usize = 12_000;

/// The I/O model behind a front-end name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrontendKind {
    /// `server-threadpool`: accept thread and blocking workers.
    Threadpool,
    /// `server-eventloop`: mio event loops.
    Eventloop,
    /// memcached, the reference.
    Memcached,
    /// Several `server-eventloop`s, directly or behind nutcracker.
    Cluster,
}

impl FrontendKind {
    /// The binary that serves this kind.
    pub fn binary(self) -> &'static str {
        match self {
            FrontendKind::Threadpool => "server-threadpool",
            FrontendKind::Eventloop | FrontendKind::Cluster => "server-eventloop",
            FrontendKind::Memcached => "memcached",
        }
    }

    /// The cargo package that builds it (none for memcached).
    pub fn package(self) -> Option<&'static str> {
        match self {
            FrontendKind::Threadpool => Some("server-threadpool"),
            FrontendKind::Eventloop | FrontendKind::Cluster => Some("server-eventloop"),
            FrontendKind::Memcached => None,
        }
    }
}

/// How the event loop accepts connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptMode {
    /// One listening socket per loop, SO_REUSEPORT (nginx).
    Reuseport,
    /// One acceptor handing connections to the loops (memcached).
    Dispatch,
}

impl AcceptMode {
    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            AcceptMode::Reuseport => "reuseport",
            AcceptMode::Dispatch => "dispatch",
        }
    }
}

/// One front-end configuration of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontend {
    /// The name as given on the command line and used in cell ids.
    pub name: String,
    /// The I/O model.
    pub kind: FrontendKind,
    /// Thread pool: workers given with `--threads` (None: the default, 150).
    pub workers: Option<usize>,
    /// Event loop: accept mode given with the accept-mode flag (None: its default).
    pub accept: Option<AcceptMode>,
    /// An A/A twin: the same server as the named front-end, run again in
    /// every cell to measure the noise floor.
    #[serde(default)]
    pub twin_of: Option<String>,
    /// A cluster: how many backends, and whether nutcracker fronts them.
    #[serde(default)]
    pub cluster: Option<ClusterShape>,
}

/// The shape of a cluster front-end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterShape {
    /// Backends, each a `server-eventloop` with one event loop.
    pub backends: usize,
    /// Through nutcracker (ketama), else loadgen with `--distribution ketama`.
    pub proxy: bool,
}

/// What a front-end name ends with to make it an A/A twin.
pub const TWIN_SUFFIX: &str = "-twin";

impl Frontend {
    /// Worker threads of a thread pool (None for the other kinds).
    pub fn pool_workers(&self) -> Option<usize> {
        (self.kind == FrontendKind::Threadpool)
            .then(|| self.workers.unwrap_or(THREADPOOL_DEFAULT_WORKERS))
    }
}

impl FromStr for Frontend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Frontend, Error> {
        let s = s.trim();
        if let Some(base) = s.strip_suffix(TWIN_SUFFIX) {
            let b: Frontend = base.parse()?;
            if b.twin_of.is_some() {
                return Err(Error::Config(format!("{s:?}: a twin of a twin")));
            }
            return Ok(Frontend {
                name: s.to_string(),
                twin_of: Some(b.name.clone()),
                ..b
            });
        }
        let f = |kind, workers, accept| Frontend {
            name: s.to_string(),
            kind,
            workers,
            accept,
            twin_of: None,
            cluster: None,
        };
        match s {
            "threadpool" => return Ok(f(FrontendKind::Threadpool, None, None)),
            "eventloop" => return Ok(f(FrontendKind::Eventloop, None, None)),
            "eventloop-reuseport" => {
                return Ok(f(
                    FrontendKind::Eventloop,
                    None,
                    Some(AcceptMode::Reuseport),
                ))
            }
            "eventloop-dispatch" => {
                return Ok(f(FrontendKind::Eventloop, None, Some(AcceptMode::Dispatch)))
            }
            "memcached" => return Ok(f(FrontendKind::Memcached, None, None)),
            _ => {}
        }
        for (prefix, proxy) in [("cluster-direct-", false), ("cluster-proxy-", true)] {
            if let Some(n) = s.strip_prefix(prefix) {
                let backends = n.parse().ok().filter(|&n| (1..=200).contains(&n));
                let backends =
                    backends.ok_or_else(|| Error::Config(format!("bad backend count in {s:?}")))?;
                return Ok(Frontend {
                    cluster: Some(ClusterShape { backends, proxy }),
                    ..f(FrontendKind::Cluster, None, None)
                });
            }
        }
        if let Some(n) = s.strip_prefix("threadpool-") {
            let n: usize = n
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| Error::Config(format!("bad worker count in front-end {s:?}")))?;
            return Ok(f(FrontendKind::Threadpool, Some(n), None));
        }
        Err(Error::Config(format!(
            "unknown front-end {s:?}: threadpool, threadpool-<N>, eventloop, \
             eventloop-reuseport, eventloop-dispatch, memcached, cluster-direct-<N> or \
             cluster-proxy-<N>, each optionally with \
             {TWIN_SUFFIX} (an A/A twin)"
        )))
    }
}

impl fmt::Display for Frontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A workload: what the load generator asks for and how durable the server is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Name used on the command line and in cell ids.
    pub name: String,
    /// One line for the report.
    pub description: String,
    /// `loadgen --mix`.
    pub mix: String,
    /// `loadgen --value-size`, bytes.
    pub value_size: usize,
    /// `loadgen --key-dist`.
    pub key_dist: String,
    /// `loadgen --keys`: the key space, all of it preloaded.
    pub keys: u64,
    /// The servers' `--durability` (memcached has none).
    pub durability: String,
}

impl Workload {
    /// The workloads this crate knows, by name.
    pub fn named(name: &str) -> Result<Workload, Error> {
        let w = |name: &str, description: &str, mix: &str, value_size, keys, durability: &str| {
            Workload {
                name: name.into(),
                description: description.into(),
                mix: mix.into(),
                value_size,
                key_dist: "zipf:0.99".into(),
                keys,
                durability: durability.into(),
            }
        };
        Ok(match name.trim() {
            "read-heavy" => w(
                "read-heavy",
                "90% get / 10% set, 32-byte values, zipf keys, durability interval",
                "get=90,set=10",
                32,
                100_000,
                "interval",
            ),
            "write-heavy" => w(
                "write-heavy",
                "10% get / 90% set, 32-byte values, zipf keys, durability interval",
                "get=10,set=90",
                32,
                100_000,
                "interval",
            ),
            "large" => w(
                "large",
                "50% get / 50% set, 64 KiB values, zipf keys, durability interval",
                "get=50,set=50",
                64 * 1024,
                1_000,
                "interval",
            ),
            "write-always" => w(
                "write-always",
                "10% get / 90% set, 32-byte values, zipf keys, durability always \
                 (a reply only after an fdatasync covering the write)",
                "get=10,set=90",
                32,
                100_000,
                "always",
            ),
            other => {
                return Err(Error::Config(format!(
                    "unknown workload {other:?}: read-heavy, write-heavy, large or write-always"
                )))
            }
        })
    }

    /// The operation with the largest weight in the mix (get on a tie): the
    /// one whose latency spectrum the report draws.
    pub fn dominant_op(&self) -> String {
        let mut best: Option<(u32, String)> = None;
        for part in self.mix.split(',') {
            if let Some((op, w)) = part.split_once('=') {
                let w: u32 = w.trim().parse().unwrap_or(0);
                let better = match &best {
                    None => true,
                    Some((bw, bop)) => w > *bw || (w == *bw && op == "get" && bop != "get"),
                };
                if better {
                    best = Some((w, op.trim().to_string()));
                }
            }
        }
        best.map_or_else(|| "get".into(), |(_, op)| op)
    }

    /// Whether memcached can run this workload as specified (it has no
    /// durability: a workload that is about `always` says nothing about it).
    pub fn fits_memcached(&self) -> bool {
        self.durability != "always"
    }
}

/// Open-loop runs: fixed request rates, as fractions of each front-end's
/// measured closed-loop maximum for the same workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenLoop {
    /// Offered load in percent of the measured maximum.
    pub loads_pct: Vec<u32>,
    /// Connections the rate is spread over.
    pub connections: usize,
    /// Requests in flight per connection at most, so that the load
    /// generator, not a slot shortage, decides when requests are sent.
    pub pipeline: usize,
    /// Workloads that get open-loop runs.
    pub workloads: Vec<String>,
}

/// Everything a run covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    /// "default", "full", or either with changes ("custom").
    pub name: String,
    /// Front-ends, in report order.
    pub frontends: Vec<Frontend>,
    /// Closed-loop connection counts.
    pub connections: Vec<usize>,
    /// Workloads measured at other connection counts than `connections`
    /// (a preset keeps the costly ones to a few cells).
    #[serde(default)]
    pub workload_connections: BTreeMap<String, Vec<usize>>,
    /// Rounds: every cell runs this many times, front-end order alternating.
    #[serde(default = "one")]
    pub rounds: usize,
    /// Workloads.
    pub workloads: Vec<Workload>,
    /// Measured seconds per cell.
    pub duration_s: f64,
    /// Warm-up seconds per cell before measuring.
    pub warmup_s: f64,
    /// `loadgen --timeout`, seconds.
    pub timeout_s: f64,
    /// Requests in flight per connection (closed loop).
    pub pipeline: usize,
    /// Open-loop runs, if any.
    pub open_loop: Option<OpenLoop>,
    /// The connection count whose latency spectrum the report draws.
    pub spectrum_connections: usize,
}

fn one() -> usize {
    1
}

/// Parses a comma-separated list.
pub fn parse_list<T: FromStr>(s: &str) -> Result<Vec<T>, Error>
where
    T::Err: fmt::Display,
{
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<T>()
                .map_err(|e| Error::Config(format!("{p:?}: {e}")))
        })
        .collect()
}

impl Matrix {
    /// `make bench`: about four minutes on a 2-core machine (six with the
    /// release build of a fresh clone). Few cells, each repeated, so that
    /// every verdict rests on rounds: the thread pool against the event loop
    /// and memcached at a connection count it serves (16) and one it cannot
    /// (512, above its 150 workers), with 64 KiB values, and with durability
    /// `always`; an A/A twin of the event loop gives the noise floor.
    pub fn default_matrix() -> Matrix {
        Matrix {
            name: "default".into(),
            frontends: known(&["threadpool", "eventloop", "eventloop-twin", "memcached"]),
            connections: vec![16, 512],
            workload_connections: [
                ("large".to_string(), vec![16]),
                ("write-always".to_string(), vec![16]),
            ]
            .into_iter()
            .collect(),
            rounds: 3,
            workloads: workloads(&["read-heavy", "large", "write-always"]),
            duration_s: 3.0,
            warmup_s: 1.0,
            timeout_s: 1.0,
            pipeline: 1,
            open_loop: None,
            spectrum_connections: 16,
        }
    }

    /// `make bench-full`: up to 10,000 connections, two pool sizes, both
    /// accept modes, durability `always`, latency vs offered load, five
    /// rounds (about 40 minutes on a 2-core machine).
    pub fn full_matrix() -> Matrix {
        Matrix {
            name: "full".into(),
            frontends: known(&[
                "threadpool-150",
                "threadpool-1000",
                "eventloop-reuseport",
                "eventloop-dispatch",
                "eventloop-reuseport-twin",
                "memcached",
            ]),
            connections: vec![16, 1024, 10_000],
            workload_connections: BTreeMap::new(),
            rounds: 5,
            workloads: workloads(&["read-heavy", "large", "write-always"]),
            duration_s: 3.0,
            warmup_s: 1.0,
            timeout_s: 1.0,
            pipeline: 1,
            open_loop: Some(OpenLoop {
                loads_pct: vec![50, 90],
                // No more connections than the smallest pool has workers, so
                // the curve shows service under load, not the accept queue
                // (the closed-loop cells show that).
                connections: 16,
                pipeline: 8,
                workloads: vec!["read-heavy".into()],
            }),
            spectrum_connections: 1024,
        }
    }

    /// The closed-loop connection counts of a workload.
    pub fn connections_of(&self, workload: &str) -> &[usize] {
        self.workload_connections
            .get(workload)
            .map_or(&self.connections, Vec::as_slice)
    }

    /// The front-ends that run workload `w` (memcached has no durability),
    /// in the order of round `round`: matrix order in the first, third, ...
    /// round, reversed in the second, fourth, ...
    pub fn frontends_in_round(&self, w: &Workload, round: usize) -> Vec<&Frontend> {
        let mut fs: Vec<&Frontend> = self
            .frontends
            .iter()
            .filter(|f| f.kind != FrontendKind::Memcached || w.fits_memcached())
            .collect();
        if round % 2 == 1 {
            fs.reverse();
        }
        fs
    }

    /// `make bench-cluster`: 1, 2 and 3 event-loop backends, each driven
    /// directly (loadgen with ketama) and through nutcracker, and an A/A
    /// twin of the direct 3; read-heavy at 16 connections, 3 rounds of 3 s.
    pub fn cluster_matrix() -> Matrix {
        Matrix {
            name: "cluster".into(),
            frontends: known(&[
                "cluster-direct-1",
                "cluster-proxy-1",
                "cluster-direct-2",
                "cluster-proxy-2",
                "cluster-direct-3",
                "cluster-proxy-3",
                "cluster-direct-3-twin",
            ]),
            connections: vec![16],
            workload_connections: BTreeMap::new(),
            rounds: 3,
            workloads: workloads(&["read-heavy"]),
            duration_s: 3.0,
            warmup_s: 1.0,
            timeout_s: 1.0,
            pipeline: 1,
            open_loop: None,
            spectrum_connections: 16,
        }
    }

    /// Every cell in run order: the closed-loop rounds, then the open-loop
    /// rounds (their rates are fractions of the closed-loop maxima).
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for round in 0..self.rounds.max(1) {
            for w in &self.workloads {
                for &c in self.connections_of(&w.name) {
                    for f in self.frontends_in_round(w, round) {
                        cells.push(Cell::new(w, f, c, None, round));
                    }
                }
            }
        }
        if let Some(open) = &self.open_loop {
            for round in 0..self.rounds.max(1) {
                for w in self
                    .workloads
                    .iter()
                    .filter(|w| open.workloads.contains(&w.name))
                {
                    for &pct in &open.loads_pct {
                        for f in self.frontends_in_round(w, round) {
                            cells.push(Cell::new(w, f, open.connections, Some(pct), round));
                        }
                    }
                }
            }
        }
        cells
    }

    /// Rough seconds a cell takes, for the time-left estimate before any
    /// cell has finished: warm-up, measurement, and start, preload and stop.
    pub fn planned_seconds(&self, cell: &Cell) -> f64 {
        let overhead = 2.5 + cell.connections as f64 / 2000.0;
        self.warmup_for(cell.connections) + self.duration_s + overhead
    }

    /// `loadgen --timeout` for a cell: the matrix's timeout, or one second per
    /// thousand connections when that is longer. In a closed loop a reply
    /// waits behind up to one request per connection, so at 10,000
    /// connections a one-second timeout would count mere queueing as loss.
    pub fn timeout_for(&self, connections: usize) -> f64 {
        self.timeout_s.max(connections as f64 / 1000.0)
    }

    /// Warm-up of a cell: the matrix's warm-up plus time for thousands of
    /// connections to be opened and served once before measuring.
    pub fn warmup_for(&self, connections: usize) -> f64 {
        self.warmup_s + (connections as f64 / 2500.0).floor()
    }

    /// Checks the matrix can run.
    pub fn validate(&self) -> Result<(), Error> {
        if self.frontends.is_empty() || self.workloads.is_empty() || self.connections.is_empty() {
            return Err(Error::Config(
                "the matrix needs at least one front-end, workload and connection count".into(),
            ));
        }
        if self.connections.contains(&0)
            || self.workload_connections.values().any(|v| v.contains(&0))
        {
            return Err(Error::Config("connection counts must be at least 1".into()));
        }
        if self.rounds == 0 {
            return Err(Error::Config("rounds must be at least 1".into()));
        }
        for f in &self.frontends {
            if let Some(base) = &f.twin_of {
                if !self.frontends.iter().any(|b| &b.name == base) {
                    return Err(Error::Config(format!(
                        "{} is the A/A twin of {base}, which is not in the matrix",
                        f.name
                    )));
                }
            }
        }
        let ok = self.duration_s.is_finite()
            && self.duration_s > 0.0
            && self.warmup_s.is_finite()
            && self.warmup_s >= 0.0;
        if !ok {
            return Err(Error::Config(
                "duration must be above 0 and warm-up not negative".into(),
            ));
        }
        Ok(())
    }
}

/// One run of one front-end under one workload and connection count, in
/// one round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Directory name under the run:
    /// `<workload>_<front-end>_c<connections>[_load<pct>]_r<round>`.
    pub id: String,
    /// Workload name.
    pub workload: String,
    /// Front-end name.
    pub frontend: String,
    /// Connections.
    pub connections: usize,
    /// Open loop: offered load in percent of the front-end's measured maximum.
    pub load_pct: Option<u32>,
    /// The round, from 0.
    #[serde(default)]
    pub round: usize,
}

impl Cell {
    fn new(
        w: &Workload,
        f: &Frontend,
        connections: usize,
        load_pct: Option<u32>,
        round: usize,
    ) -> Cell {
        let mut id = format!("{}_{}_c{}", w.name, f.name, connections);
        if let Some(p) = load_pct {
            id.push_str(&format!("_load{p}"));
        }
        id.push_str(&format!("_r{}", round + 1));
        Cell {
            id,
            workload: w.name.clone(),
            frontend: f.name.clone(),
            connections,
            load_pct,
            round,
        }
    }

    /// The point of the matrix this cell measures, whatever the round.
    pub fn point(&self) -> Point {
        Point {
            workload: self.workload.clone(),
            connections: self.connections,
            load_pct: self.load_pct,
        }
    }
}

/// A point of the matrix: a workload at a connection count (and, in the
/// open loop, an offered load), at which the front-ends are compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Point {
    /// Workload name.
    pub workload: String,
    /// Connections.
    pub connections: usize,
    /// Open loop: offered load in percent.
    pub load_pct: Option<u32>,
}

fn known(names: &[&str]) -> Vec<Frontend> {
    names
        .iter()
        .map(|s| s.parse().unwrap_or_else(|_| unreachable!("known name")))
        .collect()
}

fn workloads(names: &[&str]) -> Vec<Workload> {
    names
        .iter()
        .map(|s| Workload::named(s).unwrap_or_else(|_| unreachable!("known name")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_names() {
        let f: Frontend = "threadpool-16".parse().unwrap();
        assert_eq!(f.kind, FrontendKind::Threadpool);
        assert_eq!(f.pool_workers(), Some(16));
        let f: Frontend = "threadpool".parse().unwrap();
        assert_eq!(f.pool_workers(), Some(THREADPOOL_DEFAULT_WORKERS));
        let f: Frontend = "eventloop-dispatch".parse().unwrap();
        assert_eq!(f.accept, Some(AcceptMode::Dispatch));
        assert_eq!(f.pool_workers(), None);
        assert!("threadpool-0".parse::<Frontend>().is_err());
        assert!("nginx".parse::<Frontend>().is_err());
    }

    #[test]
    fn twins_parse() {
        let f: Frontend = "eventloop-dispatch-twin".parse().unwrap();
        assert_eq!(f.twin_of.as_deref(), Some("eventloop-dispatch"));
        assert_eq!(f.accept, Some(AcceptMode::Dispatch));
        assert!("eventloop-twin-twin".parse::<Frontend>().is_err());
        let mut m = Matrix::default_matrix();
        m.frontends.retain(|f| f.name != "eventloop");
        assert!(m.validate().is_err(), "a twin needs its original");
    }

    #[test]
    fn default_matrix_runs_rounds_in_alternating_order() {
        let m = Matrix::default_matrix();
        m.validate().unwrap();
        let cells = m.cells();
        // Per round: read-heavy at 16 and 512 with 4 front-ends, large at 16
        // with 4, write-always at 16 without memcached.
        assert_eq!(cells.len(), 3 * (4 + 4 + 4 + 3));
        assert_eq!(cells[0].id, "read-heavy_threadpool_c16_r1");
        let ids: std::collections::BTreeSet<_> = cells.iter().map(|c| &c.id).collect();
        assert_eq!(ids.len(), cells.len(), "cell ids are unique");
        let order = |round: usize| -> Vec<&str> {
            cells
                .iter()
                .filter(|c| c.round == round && c.connections == 16 && c.workload == "read-heavy")
                .map(|c| c.frontend.as_str())
                .collect()
        };
        assert_eq!(
            order(0),
            ["threadpool", "eventloop", "eventloop-twin", "memcached"]
        );
        assert_eq!(
            order(1),
            ["memcached", "eventloop-twin", "eventloop", "threadpool"]
        );
        assert_eq!(order(2), order(0));
        // The front-ends of one cell run back to back.
        let first: Vec<&Cell> = cells.iter().take(4).collect();
        assert!(first.iter().all(|c| c.point() == first[0].point()));
    }

    #[test]
    fn full_matrix_skips_memcached_for_always_and_runs_open_loop_last() {
        let m = Matrix::full_matrix();
        m.validate().unwrap();
        let cells = m.cells();
        assert!(!cells
            .iter()
            .any(|c| c.workload == "write-always" && c.frontend == "memcached"));
        let first_open = cells.iter().position(|c| c.load_pct.is_some()).unwrap();
        assert!(cells[first_open..].iter().all(|c| c.load_pct.is_some()));
        assert_eq!(cells.len() - first_open, 5 * 2 * 6);
    }

    #[test]
    fn dominant_operation() {
        assert_eq!(Workload::named("read-heavy").unwrap().dominant_op(), "get");
        assert_eq!(Workload::named("write-heavy").unwrap().dominant_op(), "set");
        assert_eq!(Workload::named("large").unwrap().dominant_op(), "get");
        assert!(Workload::named("bogus").is_err());
    }
}
