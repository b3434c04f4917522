//! `summary.json`: the stable, documented result of a run or a merge (see
//! `OUTPUT.md` for the schema), and the human-readable table printed on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::config::OpKind;
use crate::record::{
    new_histogram, Counters, ErrorCounts, Histograms, OpCounters, VerifyFailure, HIGHEST_US,
    LOWEST_US, SIGFIG,
};

/// Identifies the schema; bumped only when a field changes meaning or goes away.
pub const SCHEMA: &str = "loadgen-summary/1";

/// Latency statistics of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
}

impl Stats {
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
    /// Corrected latency (from the intended send time), microseconds.
    pub latency_us: Stats,
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
    let mut all_lat = new_histogram();
    let mut all_svc = new_histogram();
    let mut total_counters = OpCounters::default();
    let mut ops = BTreeMap::new();
    for kind in OpKind::ALL {
        let h = &hists.ops[kind as usize];
        let c = counters[kind as usize];
        // Equal bounds: addition cannot fail.
        let _ = all_lat.add(&h.latency);
        let _ = all_svc.add(&h.service);
        total_counters.add(&c);
        ops.insert(
            kind.name().to_string(),
            OpSummary {
                counters: c,
                throughput_ops_per_s: rate(h.latency.len()),
                latency_us: Stats::of(&h.latency),
                service_time_us: Stats::of(&h.service),
            },
        );
    }
    let total = OpSummary {
        counters: total_counters,
        throughput_ops_per_s: rate(all_lat.len()),
        latency_us: Stats::of(&all_lat),
        service_time_us: Stats::of(&all_svc),
    };
    (total, ops)
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
        let _ = writeln!(
            t,
            "{:<8} {:>12} {:>12.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name,
            l.count,
            o.throughput_ops_per_s,
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.max,
            o.service_time_us.p99
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
