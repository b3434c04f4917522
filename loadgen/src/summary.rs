//! `summary.json`: the stable, documented result of a run or a merge (see
//! `OUTPUT.md` for the schema), and the human-readable table printed on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::config::OpKind;
use crate::record::{
    Counters, ErrorCounts, Histograms, Measure, OpCounters, OpHistograms, VerifyFailure,
    HIGHEST_US, LOWEST_US, SIGFIG,
};

/// Identifies the schema; bumped only when a field changes meaning or goes away.
pub const SCHEMA: &str = "loadgen-summary/2";

/// Latency statistics of one histogram, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Samples.
    pub count: u64,
    /// Smallest value.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// 99.99th percentile.
    pub p99_99: u64,
    /// Largest value.
    pub max: u64,
    /// Censored samples among `count`: requests that got no reply, counted
    /// at how long they had waited (their true latency is at least that).
    #[serde(default)]
    pub censored: u64,
    /// The figures of this object that are only lower bounds because
    /// censored samples reach them (`"p99"`, `"p99_9"`, ..., `"max"`,
    /// `"mean"`), in that order; empty when every figure is exact.
    #[serde(default)]
    pub lower_bounds: Vec<String>,
}

/// The quantiles `Stats` reports, with their field names.
const QUANTILES: [(&str, f64); 6] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99_9", 0.999),
    ("p99_99", 0.9999),
    ("max", 1.0),
];

/// Whether the value of `all` at quantile `q` is only a lower bound because
/// of the censored samples in it (`censored` holds them alone): the value is
/// exact when the exact samples at or below it already reach its rank, since
/// a censored sample's true value can only be higher than recorded.
pub fn is_lower_bound(all: &Histogram<u64>, censored: &Histogram<u64>, q: f64) -> bool {
    if censored.is_empty() || all.is_empty() {
        return false;
    }
    let v = all.value_at_quantile(q);
    let rank = ((q.min(1.0) * all.len() as f64).ceil() as u64).max(1);
    let exact = all
        .count_between(0, v)
        .saturating_sub(censored.count_between(0, v));
    exact < rank
}

/// The smallest quantile among `qs` (ascending) whose value is a lower
/// bound; every later one is reported as a lower bound too (a claim of ">="
/// is true of an exact value as well), so a reader sees one cut-off.
pub fn lower_bound_from(
    all: &Histogram<u64>,
    censored: &Histogram<u64>,
    qs: &[f64],
) -> Option<f64> {
    qs.iter()
        .copied()
        .find(|&q| is_lower_bound(all, censored, q))
}

impl Stats {
    /// Statistics of `all`, a histogram whose censored samples are those of
    /// `censored`: percentiles that censored samples reach are marked as
    /// lower bounds.
    pub fn of_censored(all: &Histogram<u64>, censored: &Histogram<u64>) -> Stats {
        let mut s = Stats::of(all);
        if all.is_empty() || censored.is_empty() {
            return s;
        }
        s.censored = censored.len();
        let qs: Vec<f64> = QUANTILES.iter().map(|(_, q)| *q).collect();
        if let Some(from) = lower_bound_from(all, censored, &qs) {
            s.lower_bounds = QUANTILES
                .iter()
                .filter(|(_, q)| *q >= from)
                .map(|(n, _)| n.to_string())
                .collect();
        }
        s.lower_bounds.push("mean".into());
        s
    }

    /// Whether the figure named `field` (`"p99"`, `"max"`, ...) is a lower bound.
    pub fn is_lower_bound(&self, field: &str) -> bool {
        self.lower_bounds.iter().any(|f| f == field)
    }

    /// Statistics of `h` (all zero when empty). Percentiles are HdrHistogram's
    /// `value_at_quantile`: the highest value equivalent to the sample at that rank.
    pub fn of(h: &Histogram<u64>) -> Stats {
        if h.is_empty() {
            return Stats::default();
        }
        Stats {
            count: h.len(),
            min: h.min(),
            mean: round3(h.mean()),
            stddev: round3(h.stdev()),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
            censored: 0,
            lower_bounds: Vec::new(),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One operation kind (or all of them, in `total`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    /// Counters (requests, completed, errors, timeouts, unfinished, hits, misses).
    #[serde(flatten)]
    pub counters: OpCounters,
    /// Completed requests per second of measured time.
    pub throughput_ops_per_s: f64,
    /// Corrected latency (from the intended send time) of every measured
    /// request, censored samples included, microseconds.
    pub latency_us: Stats,
    /// Corrected latency of the answered requests only, microseconds.
    #[serde(default)]
    pub latency_answered_us: Stats,
    /// Service time (from the actual send time), microseconds.
    pub service_time_us: Stats,
}

/// The histogram settings, so a reader knows the units and precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramInfo {
    /// Always "us".
    pub unit: String,
    /// Lowest discernible value.
    pub lowest: u64,
    /// Highest trackable value (larger values are recorded as this).
    pub highest: u64,
    /// Significant decimal digits.
    pub significant_digits: u8,
}

impl Default for HistogramInfo {
    fn default() -> Self {
        HistogramInfo {
            unit: "us".into(),
            lowest: LOWEST_US,
            highest: HIGHEST_US,
            significant_digits: SIGFIG,
        }
    }
}

/// The machine the numbers come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// Operating system and kernel release.
    pub os: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
}

impl Machine {
    /// Describes the current machine (fields stay empty where unknown).
    pub fn current() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let memory_bytes = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        Machine {
            hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
            os: format!(
                "{} {}",
                std::env::consts::OS,
                read("/proc/sys/kernel/osrelease").trim()
            ),
            cpu_model,
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_bytes,
        }
    }
}

/// The CPU time loadgen itself used over the load phase (warm-up, window
/// and drain), all threads: whether the load generator, rather than the
/// server, was the limit of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientCpu {
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub system_s: f64,
    /// Wall seconds of the span.
    pub wall_s: f64,
    /// Cores the client threads were pinned to (0: not pinned, any core).
    pub cores: usize,
}

impl ClientCpu {
    /// This process's CPU time so far (`getrusage(RUSAGE_SELF)`); zeros
    /// where it cannot be read.
    pub fn now() -> ClientCpu {
        // SAFETY: an all-zero rusage is a valid value of the plain C struct,
        // and getrusage only writes into the struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable rusage.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return ClientCpu::default();
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        ClientCpu {
            user_s: secs(ru.ru_utime),
            system_s: secs(ru.ru_stime),
            wall_s: 0.0,
            cores: 0,
        }
    }

    /// The CPU time used since `before`, over `wall` seconds.
    pub fn since(&self, before: &ClientCpu, wall: std::time::Duration) -> ClientCpu {
        ClientCpu {
            user_s: round3((self.user_s - before.user_s).max(0.0)),
            system_s: round3((self.system_s - before.system_s).max(0.0)),
            wall_s: round3(wall.as_secs_f64()),
            cores: 0,
        }
    }

    /// CPU seconds per wall second per core: 1.0 is every core it may use busy.
    pub fn utilisation(&self) -> Option<f64> {
        let cores = self.cores.max(1) as f64;
        (self.wall_s > 0.0).then(|| (self.user_s + self.system_s) / self.wall_s / cores)
    }
}

/// The preload phase, when `--preload` was given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreloadSummary {
    /// Keys set.
    pub keys: u64,
    /// Keys whose set failed (error reply, timeout or lost connection).
    pub failed: u64,
    /// Wall time of the preload.
    pub seconds: f64,
}

/// The measured requests one server was sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerRequests {
    /// The `--server` as given.
    pub server: String,
    /// Measured requests sent to it (a multi-get counts once).
    pub requests: u64,
}

/// The whole `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SCHEMA`].
    pub schema: String,
    /// "run" or "merge".
    pub kind: String,
    /// loadgen's version.
    pub loadgen_version: String,
    /// Every flag of the run (null for a merge).
    pub config: Option<serde_json::Value>,
    /// "closed" or "open" loop ("merged" for a merge).
    pub mode: String,
    /// The machine.
    pub machine: Machine,
    /// Units and precision of every latency figure.
    pub histogram: HistogramInfo,
    /// Start of measurement, Unix seconds.
    pub started_at_unix_s: f64,
    /// Measured time in seconds (after warm-up).
    pub duration_s: f64,
    /// Completed requests per second over all operations.
    pub throughput_ops_per_s: f64,
    /// All operations together.
    pub total: OpSummary,
    /// Per operation kind: always the four keys get, set, delete, mget.
    pub operations: BTreeMap<String, OpSummary>,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// The sum that `--max-errors` is compared with.
    pub errors_total: u64,
    /// Open loop: requests due before the end that never found a free slot.
    pub unsent: u64,
    /// Connections that were sent requests and never received a single reply
    /// during the load phase (e.g. left waiting in a server's accept queue).
    #[serde(default)]
    pub connections_never_answered: u64,
    /// The first wrong values, with their keys (the count is in `errors.verify_failures`).
    pub verify_failures: Vec<VerifyFailure>,
    /// Completed requests recorded during the warm-up (not in any histogram).
    pub warmup_completed: u64,
    /// The preload phase, if any.
    pub preload: Option<PreloadSummary>,
    /// loadgen's own CPU time over the load phase (a run; null for a merge).
    #[serde(default)]
    pub client_cpu: Option<ClientCpu>,
    /// Per `--server`, in their order: the measured requests it was sent
    /// (a run; empty for a merge).
    #[serde(default)]
    pub servers: Vec<ServerRequests>,
    /// For a merge: the input logs.
    pub inputs: Vec<String>,
    /// Files written next to this one: `.hgrm` per operation and measure, and the `.hlog`.
    pub files: Vec<String>,
}

/// What a run and a merge measured, the part of [`Summary`] they build
/// alike.
pub struct Measured<'a> {
    /// "run" or "merge".
    pub kind: &'static str,
    /// "closed", "open" or "merged".
    pub mode: &'static str,
    pub started_at_unix_s: f64,
    pub duration_s: f64,
    pub hists: &'a Histograms,
    pub counters: &'a Counters,
    pub verify_failures: Vec<VerifyFailure>,
    pub warmup_completed: u64,
}

impl Summary {
    /// The summary of `m` on this machine; `config`, `preload`, `inputs`
    /// and `files` are left for the caller.
    pub fn measured(m: Measured<'_>) -> Summary {
        let (total, operations) = operations(m.hists, &m.counters.ops, m.duration_s);
        Summary {
            schema: SCHEMA.into(),
            kind: m.kind.into(),
            loadgen_version: env!("CARGO_PKG_VERSION").into(),
            config: None,
            mode: m.mode.into(),
            machine: Machine::current(),
            histogram: HistogramInfo::default(),
            started_at_unix_s: m.started_at_unix_s,
            duration_s: m.duration_s,
            throughput_ops_per_s: total.throughput_ops_per_s,
            total,
            operations,
            errors: m.counters.errors,
            errors_total: m.counters.errors.total(),
            unsent: m.counters.unsent,
            connections_never_answered: m.counters.connections_never_answered,
            verify_failures: m.verify_failures,
            warmup_completed: m.warmup_completed,
            preload: None,
            client_cpu: None,
            servers: Vec::new(),
            inputs: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// Builds the per-operation and total sections from histograms and counters.
pub fn operations(
    hists: &Histograms,
    counters: &[OpCounters; 4],
    duration_s: f64,
) -> (OpSummary, BTreeMap<String, OpSummary>) {
    let rate = |n: u64| {
        if duration_s > 0.0 {
            (n as f64 / duration_s * 10.0).round() / 10.0
        } else {
            0.0
        }
    };
    // Replies that arrived after the window closed are measured requests
    // (their latency counts) but not throughput within the window.
    let in_window = |h: &OpHistograms, c: &OpCounters| h.answered.len().saturating_sub(c.drained);
    let op_summary = |h: &OpHistograms, c: OpCounters| OpSummary {
        counters: c,
        throughput_ops_per_s: rate(in_window(h, &c)),
        latency_us: Stats::of_censored(&h.latency, &h.censored),
        latency_answered_us: Stats::of(&h.answered),
        service_time_us: Stats::of(&h.service),
    };
    let mut all = OpHistograms::new();
    let mut total_counters = OpCounters::default();
    let mut ops = BTreeMap::new();
    for kind in OpKind::ALL {
        let h = &hists.ops[kind as usize];
        let c = counters[kind as usize];
        for m in Measure::ALL {
            // Equal bounds: addition cannot fail.
            let _ = all.get_mut(m).add(h.get(m));
        }
        total_counters.add(&c);
        ops.insert(kind.name().to_string(), op_summary(h, c));
    }
    (op_summary(&all, total_counters), ops)
}

/// A table for people: one row per operation with traffic, plus the total.
pub fn table(s: &Summary) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<8} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}   (latency us; service-time p99)",
        "op", "completed", "ops/s", "p50", "p90", "p99", "p99.9", "max", "svc p99"
    );
    let rows = s
        .operations
        .iter()
        .filter(|(_, o)| o.counters.requests > 0 || o.latency_us.count > 0)
        .map(|(n, o)| (n.as_str(), o))
        .chain(std::iter::once(("total", &s.total)));
    for (name, o) in rows {
        let l = &o.latency_us;
        // ">=": a lower bound, reached by requests that got no reply.
        let v = |field: &str, x: u64| {
            if l.is_lower_bound(field) {
                format!(">={x}")
            } else {
                x.to_string()
            }
        };
        let _ = writeln!(
            t,
            "{:<8} {:>12} {:>12.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name,
            l.count,
            o.throughput_ops_per_s,
            v("p50", l.p50),
            v("p90", l.p90),
            v("p99", l.p99),
            v("p99_9", l.p99_9),
            v("max", l.max),
            o.service_time_us.p99
        );
    }
    if s.total.latency_us.censored > 0 {
        let _ = writeln!(
            t,
            "censored: {} of {} measured requests got no reply (timed out, lost with their connection, or unanswered at the end); they count at how long they waited, so figures marked >= are lower bounds",
            s.total.latency_us.censored, s.total.latency_us.count
        );
    }
    let e = &s.errors;
    // A closed loop always ends with requests in flight; only say so when
    // some of them point at connections or a warm-up that got no answers.
    if s.connections_never_answered > 0 || s.total.counters.warmup_lost > 0 {
        let _ = writeln!(
            t,
            "unanswered: {} connections never answered; {} requests without a reply at the end (warm-up ones included), {} warm-up requests lost",
            s.connections_never_answered,
            s.total.counters.unanswered_at_end,
            s.total.counters.warmup_lost
        );
    }
    let _ = writeln!(
        t,
        "throughput: {:.0} ops/s over {:.2} s; errors: {} (timeouts {}, server {}, client {}, error {}, bad replies {}, closed {}, connect failed {}, wrong values {}), reconnects {}",
        s.throughput_ops_per_s,
        s.duration_s,
        s.errors_total,
        e.timeouts,
        e.server_error,
        e.client_error,
        e.error,
        e.bad_reply,
        e.connection_closed,
        e.connect_failed,
        e.verify_failures,
        e.reconnects
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::new_histogram;
    use std::time::Duration;

    #[test]
    fn stats_of_known_samples() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let s = Stats::of(&h);
        assert_eq!(s.count, 1000);
        assert_eq!(s.min, 1);
        assert_eq!(s.p50, 500);
        assert_eq!(s.p90, 900);
        assert_eq!(s.p99, 990);
        assert_eq!(s.max, 1000);
        assert_eq!(Stats::of(&new_histogram()), Stats::default());
    }

    #[test]
    fn operations_always_has_the_four_kinds() {
        let mut h = Histograms::default();
        h.record(
            OpKind::Get,
            Duration::from_micros(10),
            Duration::from_micros(10),
        );
        let mut c = [OpCounters::default(); 4];
        c[0].requests = 1;
        c[0].completed = 1;
        let (total, ops) = operations(&h, &c, 2.0);
        assert_eq!(ops.len(), 4);
        assert_eq!(ops["get"].throughput_ops_per_s, 0.5);
        assert_eq!(total.latency_us.count, 1);
        let json = serde_json::to_value(&ops["get"]).unwrap();
        for f in [
            "requests",
            "completed",
            "latency_us",
            "service_time_us",
            "hits",
        ] {
            assert!(json.get(f).is_some(), "{f} missing in {json}");
        }
    }
}
