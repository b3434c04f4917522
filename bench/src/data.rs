//! A run directory, loaded, and what the report computes from it: the
//! cells of each matrix point and front-end over the rounds, their figures
//! as medians with ranges, paired comparisons with their verdicts, the noise
//! floor of the A/A twins, and what bounded each cell.
//!
//! Everything comes from the files of the run directory (see [`crate::model`]);
//! nothing is remembered from the run itself, so `bench report <dir>` renders
//! the same report later, elsewhere, or after a cell's files were edited.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::matrix::{Cell, Frontend, FrontendKind, Point, Workload};
use crate::model::{
    parse_hgrm, read_summary, CellRecord, CellStatus, HgrmRow, LoadSummary, RunInfo,
};
use crate::stats::{noise_floor, Comparison, Known, RoundRatio, Spread, ASSUMED_FLOOR};
use crate::{read_json, Error};

/// A run directory, loaded.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The directory.
    pub dir: PathBuf,
    /// `run.json`.
    pub info: RunInfo,
    /// Every planned cell, in run order.
    pub cells: Vec<CellData>,
}

/// One cell's files.
#[derive(Debug, Clone)]
pub struct CellData {
    /// The cell.
    pub cell: Cell,
    /// `cell.json`, if the cell ran.
    pub record: Option<CellRecord>,
    /// `summary.json`, if loadgen wrote one.
    pub summary: Option<LoadSummary>,
    /// The percentile distribution of the workload's dominant operation
    /// (every request, censored samples included).
    pub spectrum: Vec<HgrmRow>,
    /// The server's `stats` after the measured run, name -> value.
    pub stats_after: BTreeMap<String, String>,
}

impl CellData {
    /// The summary of a measured cell: one that ran and had replies.
    pub fn ok(&self) -> Option<&LoadSummary> {
        match &self.record {
            Some(r) if r.status == CellStatus::Ok => self
                .summary
                .as_ref()
                .filter(|s| s.total.counters.completed > 0),
            _ => None,
        }
    }

    /// What to show instead of numbers for a cell that has none.
    pub fn unmeasured(&self) -> &'static str {
        match &self.record {
            None => "not run",
            Some(r) if r.status == CellStatus::Skipped => "skipped",
            Some(r) if r.status == CellStatus::Ok => "**no request completed**",
            Some(_) => "**failed**",
        }
    }
}

/// A figure of a cell that the report compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Completed requests per second in the window.
    Throughput,
    /// Median latency of every request.
    P50,
    /// 99th percentile latency of every request.
    P99,
    /// 99.9th percentile latency of every request.
    P999,
    /// Largest latency.
    Max,
}

impl Figure {
    /// The value in a summary (latency in microseconds) and whether it is
    /// only a lower bound.
    pub fn of(self, s: &LoadSummary) -> (f64, bool) {
        let l = &s.total.latency_us;
        let (v, field) = match self {
            Figure::Throughput => return (s.throughput_ops_per_s, false),
            Figure::P50 => (l.p50, "p50"),
            Figure::P99 => (l.p99, "p99"),
            Figure::P999 => (l.p99_9, "p99_9"),
            Figure::Max => (l.max, "max"),
        };
        (v as f64, l.is_lower_bound(field))
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Throughput => "throughput",
            Figure::P50 => "p50",
            Figure::P99 => "p99",
            Figure::P999 => "p99.9",
            Figure::Max => "max latency",
        }
    }
}

/// A figure over rounds: its spread, and whether any round's value was a
/// lower bound (then the median is shown as "≥").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Median and range over the rounds.
    pub spread: Spread,
    /// Rounds whose value is a lower bound.
    pub lower_bounds: usize,
}

/// The noise floor used for a figure of a workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// As a fraction (0.05: 5 %).
    pub value: f64,
    /// A/A pairs it was measured from (0: [`ASSUMED_FLOOR`]).
    pub pairs: usize,
    /// Whether the pairs came from this workload (else from the whole run).
    pub own: bool,
}

/// What limited a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bound {
    /// The disk: writes at or near its measured bandwidth.
    Disk,
    /// The server's cores were busy.
    ServerCpu,
    /// The load generator's cores were busy: the cell compares nothing.
    ClientCpu,
    /// Neither: round trips and waiting (or queueing) set the pace.
    Latency,
}

impl Bound {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Bound::Disk => "disk",
            Bound::ServerCpu => "server CPU",
            Bound::ClientCpu => "client CPU",
            Bound::Latency => "latency",
        }
    }
}

/// CPU utilisation from which cores count as the limit.
pub const CPU_BOUND: f64 = 0.85;
/// Share of the disk's measured bandwidth from which the disk is the limit.
pub const DISK_BOUND: f64 = 0.8;

/// What a cell's figures say bounded it: the disk when the server wrote at
/// [`DISK_BOUND`] of the measured bandwidth or more; else the busier of the
/// server's and the load generator's cores when at [`CPU_BOUND`] or more;
/// else latency.
pub fn bound_of(record: &CellRecord, s: &LoadSummary, disk_bytes_per_s: Option<f64>) -> Bound {
    let server = record.server.as_ref();
    let disk = server.and_then(|u| u.disk_bytes_per_s()).unwrap_or(0.0);
    if let Some(bw) = disk_bytes_per_s.filter(|b| *b > 0.0) {
        if disk >= DISK_BOUND * bw {
            return Bound::Disk;
        }
    }
    let srv = server.and_then(|u| u.utilisation()).unwrap_or(0.0);
    let cli = s
        .client_cpu
        .as_ref()
        .and_then(|c| c.utilisation())
        .unwrap_or(0.0);
    if srv.max(cli) < CPU_BOUND {
        Bound::Latency
    } else if cli > srv {
        Bound::ClientCpu
    } else {
        Bound::ServerCpu
    }
}

impl RunData {
    /// Reads `run.json` and every cell directory it lists.
    pub fn load(dir: &Path) -> Result<RunData, Error> {
        let info: RunInfo = read_json(&dir.join("run.json"))?;
        let mut cells = Vec::new();
        for cell in &info.cells {
            let cdir = dir.join(&cell.id);
            let record: Option<CellRecord> = if cdir.join("cell.json").exists() {
                Some(read_json(&cdir.join("cell.json"))?)
            } else {
                None
            };
            let summary = if cdir.join("summary.json").exists() {
                // A summary of another schema is an error, not a silent gap.
                Some(read_summary(&cdir.join("summary.json"))?)
            } else {
                None
            };
            let op = info
                .matrix
                .workloads
                .iter()
                .find(|w| w.name == cell.workload)
                .map_or_else(|| "get".to_string(), Workload::dominant_op);
            let spectrum = std::fs::read_to_string(cdir.join(format!("{op}.hgrm")))
                .map(|t| parse_hgrm(&t))
                .unwrap_or_default();
            let stats_after = std::fs::read_to_string(cdir.join("stats-after.txt"))
                .map(|t| parse_stats(&t))
                .unwrap_or_default();
            cells.push(CellData {
                cell: cell.clone(),
                record,
                summary,
                spectrum,
                stats_after,
            });
        }
        Ok(RunData {
            dir: dir.to_path_buf(),
            info,
            cells,
        })
    }

    /// Closed-loop cells of a workload, every round.
    pub fn closed(&self, workload: &str) -> impl Iterator<Item = &CellData> + '_ {
        let workload = workload.to_string();
        self.cells
            .iter()
            .filter(move |c| c.cell.workload == workload && c.cell.load_pct.is_none())
    }

    /// Open-loop cells of a workload, every round.
    pub fn open(&self, workload: &str) -> impl Iterator<Item = &CellData> + '_ {
        let workload = workload.to_string();
        self.cells
            .iter()
            .filter(move |c| c.cell.workload == workload && c.cell.load_pct.is_some())
    }

    /// The points of a workload, closed or open loop, by connections and load.
    pub fn points(&self, workload: &str, open: bool) -> Vec<Point> {
        let mut v: Vec<Point> = self
            .cells
            .iter()
            .filter(|c| c.cell.workload == workload && c.cell.load_pct.is_some() == open)
            .map(|c| c.cell.point())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The cells of a front-end at a point, one per round, in round order.
    pub fn rounds_of(&self, p: &Point, frontend: &str) -> Vec<&CellData> {
        let mut v: Vec<&CellData> = self
            .cells
            .iter()
            .filter(|c| c.cell.frontend == frontend && &c.cell.point() == p)
            .collect();
        v.sort_by_key(|c| c.cell.round);
        v
    }

    /// The measured summaries of a front-end at a point, by round.
    pub fn measured_rounds(&self, p: &Point, frontend: &str) -> BTreeMap<usize, &LoadSummary> {
        self.rounds_of(p, frontend)
            .into_iter()
            .filter_map(|c| Some((c.cell.round, c.ok()?)))
            .collect()
    }

    /// A figure of a front-end at a point over its measured rounds.
    pub fn figure(&self, p: &Point, frontend: &str, fig: Figure) -> Option<Measured> {
        let rounds = self.measured_rounds(p, frontend);
        let values: Vec<(f64, bool)> = rounds.values().map(|s| fig.of(s)).collect();
        let spread = Spread::of(&values.iter().map(|v| v.0).collect::<Vec<_>>())?;
        Some(Measured {
            spread,
            lower_bounds: values.iter().filter(|v| v.1).count(),
        })
    }

    /// The per-round ratios a/b of a figure at a point, over the rounds in
    /// which both were measured.
    pub fn round_ratios(&self, p: &Point, a: &str, b: &str, fig: Figure) -> Vec<RoundRatio> {
        let (ra, rb) = (self.measured_rounds(p, a), self.measured_rounds(p, b));
        ra.iter()
            .filter_map(|(round, sa)| {
                let sb = rb.get(round)?;
                let ((va, la), (vb, lb)) = (fig.of(sa), fig.of(sb));
                (vb > 0.0).then(|| RoundRatio {
                    value: va / vb,
                    known: Known::of(la, lb),
                })
            })
            .collect()
    }

    /// a compared with b at a point, paired by round, against the noise
    /// floor of the workload's A/A twins.
    pub fn compare(&self, p: &Point, a: &str, b: &str, fig: Figure) -> Option<Comparison> {
        let floor = self.floor(&p.workload, fig).value;
        Comparison::of(self.round_ratios(p, a, b, fig), floor)
    }

    /// The A/A ratios (twin / original) of a figure, of one workload or of
    /// every workload.
    fn aa_ratios(&self, workload: Option<&str>, fig: Figure) -> Vec<f64> {
        let mut out = Vec::new();
        for f in &self.info.matrix.frontends {
            let Some(base) = &f.twin_of else { continue };
            for w in &self.info.matrix.workloads {
                if workload.is_some_and(|x| x != w.name) {
                    continue;
                }
                for p in self.points(&w.name, false) {
                    out.extend(
                        self.round_ratios(&p, &f.name, base, fig)
                            .iter()
                            .filter(|r| r.known == Known::Exact)
                            .map(|r| r.value),
                    );
                }
            }
        }
        out
    }

    /// The noise floor of a figure in a workload: the largest A/A deviation
    /// measured in it, else in the whole run, else [`ASSUMED_FLOOR`].
    pub fn floor(&self, workload: &str, fig: Figure) -> Floor {
        let own = self.aa_ratios(Some(workload), fig);
        if let Some(v) = noise_floor(&own) {
            return Floor {
                value: v,
                pairs: own.len(),
                own: true,
            };
        }
        let all = self.aa_ratios(None, fig);
        match noise_floor(&all) {
            Some(v) => Floor {
                value: v,
                pairs: all.len(),
                own: false,
            },
            None => Floor {
                value: ASSUMED_FLOOR,
                pairs: 0,
                own: false,
            },
        }
    }

    /// The disk's measured bandwidth, bytes per second.
    pub fn disk_bytes_per_s(&self) -> Option<f64> {
        self.info.disk.map(|d| d.bytes_per_s())
    }

    /// What bounded a front-end at a point: the most frequent bound over
    /// its measured rounds, with how many rounds had it and of how many.
    pub fn bound(&self, p: &Point, frontend: &str) -> Option<(Bound, usize, usize)> {
        let bw = self.disk_bytes_per_s();
        let bounds: Vec<Bound> = self
            .rounds_of(p, frontend)
            .into_iter()
            .filter_map(|c| Some(bound_of(c.record.as_ref()?, c.ok()?, bw)))
            .collect();
        let mut counts: BTreeMap<Bound, usize> = BTreeMap::new();
        for b in &bounds {
            *counts.entry(*b).or_default() += 1;
        }
        let (b, n) = counts
            .into_iter()
            .max_by_key(|(b, n)| (*n, std::cmp::Reverse(*b)))?;
        Some((b, n, bounds.len()))
    }

    /// The front-end of a name.
    pub fn frontend(&self, name: &str) -> Option<&Frontend> {
        self.info.matrix.frontends.iter().find(|f| f.name == name)
    }

    /// A thread pool's workers when `conns` exceeds them: then only that
    /// many connections are served at a time and the rest wait unanswered
    /// in its accept queue.
    pub fn starved(&self, frontend: &str, conns: usize) -> Option<usize> {
        self.frontend(frontend)
            .and_then(Frontend::pool_workers)
            .filter(|&w| conns > w)
    }

    /// `name` in backticks, marked with a dagger when it starves connections at `conns`.
    pub fn mark(&self, frontend: &str, conns: usize) -> String {
        match self.starved(frontend, conns) {
            Some(_) => format!("`{frontend}`\u{2020}"),
            None => format!("`{frontend}`"),
        }
    }

    /// Front-end names in matrix order.
    pub fn frontend_names(&self) -> Vec<String> {
        self.info
            .matrix
            .frontends
            .iter()
            .map(|f| f.name.clone())
            .collect()
    }

    /// Front-ends in matrix order without the A/A twins: the ones compared.
    pub fn compared(&self) -> Vec<&Frontend> {
        self.info
            .matrix
            .frontends
            .iter()
            .filter(|f| f.twin_of.is_none())
            .collect()
    }

    /// The first front-end of a kind (not a twin), preferring a thread pool
    /// of its default size.
    pub fn primary(&self, kind: FrontendKind) -> Option<&Frontend> {
        let of_kind: Vec<&Frontend> = self
            .compared()
            .into_iter()
            .filter(|f| f.kind == kind)
            .collect();
        of_kind
            .iter()
            .find(|f| f.workers.is_none())
            .or(of_kind.first())
            .copied()
    }

    /// The connection count the spectrum charts use: the configured one if it
    /// was measured, else the largest measured count below it, else the smallest.
    pub fn spectrum_connections(&self, workload: &str) -> usize {
        let want = self.info.matrix.spectrum_connections;
        let mut conns = self.info.matrix.connections_of(workload).to_vec();
        conns.sort_unstable();
        if conns.contains(&want) {
            return want;
        }
        conns
            .iter()
            .rev()
            .find(|&&c| c <= want)
            .or(conns.first())
            .copied()
            .unwrap_or(want)
    }

    /// The round whose figure is the median one (the lower middle for an
    /// even count), for drawing one representative spectrum.
    pub fn median_round(&self, p: &Point, frontend: &str, fig: Figure) -> Option<&CellData> {
        let mut v: Vec<(&CellData, f64)> = self
            .rounds_of(p, frontend)
            .into_iter()
            .filter_map(|c| Some((c, fig.of(c.ok()?).0)))
            .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        let n = v.len();
        (n > 0).then(|| v[(n - 1) / 2].0)
    }
}

/// A memcached `stats` reply as name -> value.
pub fn parse_stats(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim_end().splitn(3, ' ');
            (f.next()? == "STAT").then_some(())?;
            Some((f.next()?.to_string(), f.next().unwrap_or("").to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_reply() {
        let s = parse_stats(
            "STAT pid 1\r\nSTAT version 1.6.18\r\nSTAT max_queue_wait_us 42\r\nEND\r\n",
        );
        assert_eq!(s["version"], "1.6.18");
        assert_eq!(s["max_queue_wait_us"], "42");
        assert_eq!(s.len(), 3);
    }
}
