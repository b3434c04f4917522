//! The files of a run directory, as the runner writes them and the report
//! reads them back:
//!
//! ```text
//! results/<run-id>/
//!   run.json                  RunInfo: machine, matrix, core split, front-ends found
//!   REPORT.md, charts/*.svg   rendered from everything below
//!   <cell-id>/
//!     cell.json               CellRecord: status, server CPU and RSS, command lines
//!     commands.txt            the same command lines, shell-quoted
//!     summary.json            loadgen's summary (schema loadgen-summary/1)
//!     <op>.hgrm, <op>-service.hgrm, latency.hlog, loadgen.log
//!     stats-before.txt, stats-after.txt   the server's `stats` reply
//!     server.log              the server's stdout and stderr
//!     preload/                loadgen's outputs of the preload pass
//! ```
//!
//! `loadgen`'s `summary.json` is read through [`LoadSummary`], a lenient view
//! of the fields the report uses: unknown fields are ignored and missing
//! ones default, so summaries of other `loadgen` builds still render.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::machine::{CoreSplit, MachineInfo};
use crate::matrix::{Cell, Frontend, Matrix};
use crate::Error;

/// Schema of `run.json`.
pub const RUN_SCHEMA: &str = "bench-run/1";
/// Schema of `cell.json`.
pub const CELL_SCHEMA: &str = "bench-cell/1";

/// `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// [`RUN_SCHEMA`].
    pub schema: String,
    /// The directory name.
    pub run_id: String,
    /// UTC start time, ISO 8601.
    pub started_at: String,
    /// UTC end time, once the run is over.
    pub finished_at: Option<String>,
    /// The machine.
    pub machine: MachineInfo,
    /// What the run covers.
    pub matrix: Matrix,
    /// Which cores served and which generated load.
    pub cores: CoreSplit,
    /// Every front-end of the matrix, available or not.
    pub frontends: Vec<FrontendStatus>,
    /// Every cell, in run order.
    pub cells: Vec<Cell>,
    /// What was changed from the preset, or cut short, in words.
    pub notes: Vec<String>,
    /// /proc/loadavg (1, 5, 15 minutes) when the run started and ended: other
    /// work on the machine shows here.
    #[serde(default)]
    pub load_average: Vec<String>,
}

/// Whether a front-end could be run, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrontendStatus {
    /// The front-end.
    pub frontend: Frontend,
    /// Whether its binary was there.
    pub available: bool,
    /// Why not, when it was not.
    pub missing_reason: Option<String>,
    /// Its version line, when known.
    pub version: Option<String>,
    /// How many server threads it ran with, in words.
    pub threads: String,
}

/// The outcome of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellStatus {
    /// Measured.
    Ok,
    /// Started but did not produce a measurement (see `error`).
    Failed,
    /// Not run (the front-end is missing, or an open-loop cell had no maximum).
    Skipped,
}

/// What the server used, from `/proc/<pid>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerUsage {
    /// User CPU seconds during the measured `loadgen` run (warm-up included).
    pub cpu_user_s: f64,
    /// System CPU seconds during the same span.
    pub cpu_system_s: f64,
    /// Requests completed during that span (warm-up and measured).
    pub requests: u64,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss_bytes: u64,
    /// Threads at the end of the run.
    pub threads: u64,
}

impl ServerUsage {
    /// Server CPU seconds per million completed requests.
    pub fn cpu_s_per_million(&self) -> Option<f64> {
        (self.requests > 0)
            .then(|| (self.cpu_user_s + self.cpu_system_s) / self.requests as f64 * 1e6)
    }
}

/// The command lines of a cell, argv as run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commands {
    /// The server.
    pub server: Vec<String>,
    /// The preload pass.
    pub preload: Vec<String>,
    /// The measured run.
    pub loadgen: Vec<String>,
}

/// `cell.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellRecord {
    /// [`CELL_SCHEMA`].
    pub schema: String,
    /// The cell.
    pub cell: Cell,
    /// Outcome.
    pub status: CellStatus,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Open loop: the offered rate, requests per second.
    pub rate: Option<f64>,
    /// Server resource use (when the server ran).
    pub server: Option<ServerUsage>,
    /// How the server ended: "exited 0 after SIGTERM", "killed after ...".
    pub server_exit: Option<String>,
    /// Exact command lines.
    pub commands: Commands,
    /// Wall seconds of the whole cell.
    pub wall_s: f64,
    /// Why a first attempt was discarded and the cell run again, if it was.
    #[serde(default)]
    pub retried_after: Option<String>,
}

/// Latency statistics, microseconds (loadgen's `Stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencyView {
    /// Samples.
    pub count: u64,
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
    /// Mean.
    pub mean: f64,
}

/// One operation of loadgen's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpView {
    /// Requests sent.
    pub requests: u64,
    /// Requests answered.
    pub completed: u64,
    /// Error replies.
    pub errors: u64,
    /// Requests without a reply in time.
    pub timeouts: u64,
    /// Completed per second.
    pub throughput_ops_per_s: f64,
    /// Corrected latency.
    pub latency_us: LatencyView,
    /// Service time.
    pub service_time_us: LatencyView,
}

/// loadgen's error counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorView {
    /// Requests without a reply within the timeout.
    pub timeouts: u64,
    /// Connections the server closed.
    pub connection_closed: u64,
    /// Connection attempts that failed.
    pub connect_failed: u64,
    /// SERVER_ERROR replies.
    pub server_error: u64,
}

/// The fields of loadgen's `summary.json` that the report uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadSummary {
    /// "loadgen-summary/1".
    pub schema: String,
    /// "closed" or "open".
    pub mode: String,
    /// Measured seconds.
    pub duration_s: f64,
    /// Completed requests per second.
    pub throughput_ops_per_s: f64,
    /// All operations.
    pub total: OpView,
    /// Per operation.
    pub operations: BTreeMap<String, OpView>,
    /// Errors by kind.
    pub errors: ErrorView,
    /// Every failed request or connection.
    pub errors_total: u64,
    /// Open loop: requests that were due but never sent.
    pub unsent: u64,
    /// Completed during the warm-up.
    pub warmup_completed: u64,
}

impl LoadSummary {
    /// Reads `summary.json`, checking its schema family.
    pub fn read(path: &Path) -> Result<LoadSummary, Error> {
        let s: LoadSummary = crate::read_json(path)?;
        if !s.schema.starts_with("loadgen-summary/") {
            return Err(Error::Input(format!(
                "{}: schema {:?} is not a loadgen summary",
                path.display(),
                s.schema
            )));
        }
        Ok(s)
    }
}

/// One row of an `.hgrm` percentile distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HgrmRow {
    /// Latency in milliseconds (the file's unit).
    pub value_ms: f64,
    /// Percentile as a fraction.
    pub percentile: f64,
    /// Samples at or below the value.
    pub total_count: u64,
}

/// Parses an HdrHistogram percentile distribution (`.hgrm`): the rows, without
/// header and footer.
pub fn parse_hgrm(text: &str) -> Vec<HgrmRow> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let value_ms = f.next()?.parse().ok()?;
            let percentile = f.next()?.parse().ok()?;
            let total_count = f.next()?.parse().ok()?;
            Some(HgrmRow {
                value_ms,
                percentile,
                total_count,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_rows() {
        let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                    \x20      0.010 0.000000000000          1           1.00\n\
                    \x20      0.500 0.500000000000         50           2.00\n\
                    \x20      1.000 1.000000000000        100\n\
                    #[Mean    =        0.505, StdDeviation   =        0.289]\n";
        let rows = parse_hgrm(text);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].value_ms, 0.5);
        assert_eq!(rows[1].percentile, 0.5);
        assert_eq!(rows[2].total_count, 100);
    }

    #[test]
    fn lenient_summary() {
        let s: LoadSummary = serde_json::from_str(
            r#"{"schema":"loadgen-summary/1","total":{"completed":5,"latency_us":{"p99":7}},"new":1}"#,
        )
        .unwrap();
        assert_eq!(s.total.completed, 5);
        assert_eq!(s.total.latency_us.p99, 7);
    }

    #[test]
    fn cpu_per_million() {
        let u = ServerUsage {
            cpu_user_s: 1.5,
            cpu_system_s: 0.5,
            requests: 4_000_000,
            ..Default::default()
        };
        assert_eq!(u.cpu_s_per_million(), Some(0.5));
        assert_eq!(ServerUsage::default().cpu_s_per_million(), None);
    }
}
