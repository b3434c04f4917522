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
//! `loadgen`'s `summary.json` is read as loadgen's own [`LoadSummary`] type
//! (`loadgen::summary::Summary`), so a field that loadgen renames or drops
//! is an error when a report is rendered, never a silent zero.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::machine::{CoreSplit, MachineInfo};
use crate::matrix::{Cell, Frontend, Matrix};
use crate::Error;

pub use loadgen::summary::Summary as LoadSummary;

/// Schema of `run.json` (2: rounds, twins, the disk's bandwidth).
pub const RUN_SCHEMA: &str = "bench-run/2";
/// Schema of `cell.json` (2: what bounds a cell).
pub const CELL_SCHEMA: &str = "bench-cell/2";

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
    /// The sustained write bandwidth of the disk the data directories live
    /// on, measured at the start of the run.
    #[serde(default)]
    pub disk: Option<DiskBandwidth>,
}

/// A sequential write with fdatasync into the run directory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiskBandwidth {
    /// Bytes written.
    pub bytes: u64,
    /// Seconds from the first write to the end of the fdatasync.
    pub seconds: f64,
}

impl DiskBandwidth {
    /// Bytes per second.
    pub fn bytes_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / self.seconds
        } else {
            0.0
        }
    }
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
    /// Wall seconds between the two samples of the CPU time.
    #[serde(default)]
    pub wall_s: f64,
    /// Cores the server was confined to.
    #[serde(default)]
    pub cores: usize,
    /// Bytes the server caused to be written to storage over the span
    /// (`write_bytes` of `/proc/<pid>/io`; pages dirtied through a map count).
    #[serde(default)]
    pub disk_write_bytes: u64,
    /// The machine's steal time over the span, as a fraction of all CPU time
    /// (`/proc/stat`): a hypervisor taking cycles shows here.
    #[serde(default)]
    pub steal_fraction: f64,
}

impl ServerUsage {
    /// Server CPU seconds per million completed requests.
    pub fn cpu_s_per_million(&self) -> Option<f64> {
        (self.requests > 0)
            .then(|| (self.cpu_user_s + self.cpu_system_s) / self.requests as f64 * 1e6)
    }

    /// CPU seconds per wall second per server core: 1.0 is every core busy.
    pub fn utilisation(&self) -> Option<f64> {
        (self.wall_s > 0.0)
            .then(|| (self.cpu_user_s + self.cpu_system_s) / self.wall_s / self.cores.max(1) as f64)
    }

    /// Bytes written to storage per wall second.
    pub fn disk_bytes_per_s(&self) -> Option<f64> {
        (self.wall_s > 0.0).then(|| self.disk_write_bytes as f64 / self.wall_s)
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

/// The schema family of loadgen summaries this crate reads.
pub const SUMMARY_SCHEMA: &str = loadgen::summary::SCHEMA;

/// Reads a cell's `summary.json`, checking that it is a loadgen summary of
/// the schema this crate was built with.
pub fn read_summary(path: &Path) -> Result<LoadSummary, Error> {
    let s: LoadSummary = crate::read_json(path)?;
    if s.schema != SUMMARY_SCHEMA {
        return Err(Error::Input(format!(
            "{}: schema {:?}, this report reads {SUMMARY_SCHEMA:?} (re-run the cell with this \
             build of loadgen)",
            path.display(),
            s.schema
        )));
    }
    Ok(s)
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
    fn a_summary_missing_a_field_the_report_reads_is_an_error() {
        // loadgen's own summary, written and read back: the field names the
        // report reads are loadgen's, so renaming one breaks this build, and
        // a file without one fails to parse instead of reading as zero.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        let s = LoadSummary {
            schema: SUMMARY_SCHEMA.into(),
            throughput_ops_per_s: 5.0,
            ..Default::default()
        };
        crate::write_json(&p, &s).unwrap();
        assert_eq!(read_summary(&p).unwrap().throughput_ops_per_s, 5.0);
        let mut v: serde_json::Value = crate::read_json(&p).unwrap();
        v.as_object_mut().unwrap().remove("throughput_ops_per_s");
        crate::write_json(&p, &v).unwrap();
        assert!(read_summary(&p).is_err());
        v["throughput_ops_per_s"] = 1.0.into();
        v["schema"] = "loadgen-summary/1".into();
        crate::write_json(&p, &v).unwrap();
        let e = read_summary(&p).unwrap_err().to_string();
        assert!(e.contains("loadgen-summary/1"), "{e}");
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
