//! `REPORT.md` of a run directory: the machine and matrix, one table per
//! workload, findings computed from the numbers, and links to the charts.
//!
//! Everything comes from the files of the run directory (see [`crate::model`]);
//! nothing is remembered from the run itself, so `bench report <dir>` renders
//! the same report later, elsewhere, or after a cell's files were edited.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::matrix::{Cell, FrontendKind, Workload};
use crate::model::{parse_hgrm, CellRecord, CellStatus, HgrmRow, LoadSummary, RunInfo};
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
    /// The percentile distribution of the workload's dominant operation.
    pub spectrum: Vec<HgrmRow>,
    /// The server's `stats` after the measured run, name -> value.
    pub stats_after: BTreeMap<String, String>,
}

impl CellData {
    /// The summary of a measured cell: one that ran and had replies.
    pub fn ok(&self) -> Option<&LoadSummary> {
        match &self.record {
            Some(r) if r.status == CellStatus::Ok => {
                self.summary.as_ref().filter(|s| s.total.completed > 0)
            }
            _ => None,
        }
    }

    /// What to show instead of numbers for a cell that has none.
    fn unmeasured(&self) -> &'static str {
        match &self.record {
            None => "not run",
            Some(r) if r.status == CellStatus::Skipped => "skipped",
            Some(r) if r.status == CellStatus::Ok => "**no request completed**",
            Some(_) => "**failed**",
        }
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
                match LoadSummary::read(&cdir.join("summary.json")) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(cell = %cell.id, error = %e, "summary.json unreadable");
                        None
                    }
                }
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

    /// Closed-loop cells of a workload.
    pub fn closed(&self, workload: &str) -> impl Iterator<Item = &CellData> + '_ {
        let workload = workload.to_string();
        self.cells
            .iter()
            .filter(move |c| c.cell.workload == workload && c.cell.load_pct.is_none())
    }

    /// Open-loop cells of a workload.
    pub fn open(&self, workload: &str) -> impl Iterator<Item = &CellData> + '_ {
        let workload = workload.to_string();
        self.cells
            .iter()
            .filter(move |c| c.cell.workload == workload && c.cell.load_pct.is_some())
    }

    /// The measured closed-loop cell of a front-end, workload and connection count.
    pub fn measured(&self, workload: &str, frontend: &str, conns: usize) -> Option<&LoadSummary> {
        self.closed(workload)
            .find(|c| c.cell.frontend == frontend && c.cell.connections == conns)
            .and_then(CellData::ok)
    }

    /// A thread pool's workers when `conns` exceeds them: then only that
    /// many connections are served at a time and the rest wait unanswered
    /// in its accept queue, so its figures describe the served ones only.
    pub fn starved(&self, frontend: &str, conns: usize) -> Option<usize> {
        self.info
            .matrix
            .frontends
            .iter()
            .find(|f| f.name == frontend)
            .and_then(|f| f.pool_workers())
            .filter(|&w| conns > w)
    }

    /// `name` marked with a dagger when it starves connections at `conns`.
    fn mark(&self, frontend: &str, conns: usize) -> String {
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

    /// The connection count the spectrum charts use: the configured one if it
    /// was measured, else the largest measured count below it, else the smallest.
    pub fn spectrum_connections(&self) -> usize {
        let want = self.info.matrix.spectrum_connections;
        let mut conns = self.info.matrix.connections.clone();
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

/// Renders `REPORT.md` and `charts/*.svg` into `dir`; returns the report's path.
pub fn render(dir: &Path) -> Result<PathBuf, Error> {
    let data = RunData::load(dir)?;
    let charts = crate::charts::draw_all(&data)?;
    let text = markdown(&data, &charts);
    let path = dir.join("REPORT.md");
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Latency in microseconds as milliseconds, with as many decimals as are useful.
pub fn ms(us: u64) -> String {
    let v = us as f64 / 1000.0;
    if v < 10.0 {
        format!("{v:.3}")
    } else if v < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// Thousands separators: 1234567 -> "1,234,567".
pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "n/a".into()
    }
}

/// The whole report as Markdown. `charts` lists the SVG files (relative paths).
pub fn markdown(d: &RunData, charts: &[PathBuf]) -> String {
    let info = &d.info;
    let mut o = String::new();
    let _ = writeln!(o, "# Benchmark report: {}\n", info.run_id);
    let _ = writeln!(
        o,
        "Generated by `bench report` from the raw outputs in this directory; \
         re-render with `make report RUN=results/{}`. Do not edit by hand.\n",
        info.run_id
    );
    machine_section(&mut o, d);
    matrix_section(&mut o, d);

    let _ = writeln!(o, "## Findings\n");
    let _ = writeln!(
        o,
        "Computed from the tables below. Latency is measured by the load generator \
         from each request's intended send time, over all operations.\n"
    );
    for w in &info.matrix.workloads {
        let _ = writeln!(o, "### {}\n", w.name);
        for line in findings(d, w) {
            let _ = writeln!(o, "* {line}");
        }
        o.push('\n');
    }

    for w in &info.matrix.workloads {
        workload_section(&mut o, d, w, charts);
    }
    open_loop_section(&mut o, d, charts);
    failures_section(&mut o, d);
    files_section(&mut o);
    o
}

fn machine_section(o: &mut String, d: &RunData) {
    let m = &d.info.machine;
    let _ = writeln!(o, "## Machine\n");
    let _ = writeln!(o, "| | |\n|---|---|");
    let rows = [
        ("CPU", m.cpu_model.clone()),
        ("Cores", format!("{} logical", m.cpus)),
        (
            "Memory",
            format!("{:.1} GiB", m.memory_bytes as f64 / (1u64 << 30) as f64),
        ),
        ("Kernel", m.kernel.clone()),
        ("rustc", m.rustc.clone()),
        (
            "Git commit",
            format!(
                "{}{}",
                m.git_commit,
                if m.git_dirty {
                    " (with uncommitted changes)"
                } else {
                    ""
                }
            ),
        ),
        (
            "memcached",
            m.memcached
                .clone()
                .unwrap_or_else(|| "not installed".into()),
        ),
        (
            "Run",
            format!(
                "{} to {}",
                d.info.started_at,
                d.info.finished_at.as_deref().unwrap_or("(did not finish)")
            ),
        ),
        (
            "Load average (1, 5, 15 min)",
            match d.info.load_average.as_slice() {
                [] => String::new(),
                [start] => format!("{start} at the start"),
                [start, end, ..] => format!("{start} at the start, {end} at the end"),
            },
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(
            o,
            "| {k} | {} |",
            if v.is_empty() { "unknown".into() } else { v }
        );
    }
    o.push('\n');
}

fn matrix_section(o: &mut String, d: &RunData) {
    let info = &d.info;
    let m = &info.matrix;
    let _ = writeln!(o, "## Matrix\n");
    let _ = writeln!(o, "* Preset: `{}`.", m.name);
    let _ = writeln!(o, "* Cores: {}.", info.cores.describe());
    let _ = writeln!(o, "* Front-ends:");
    for f in &info.frontends {
        if f.available {
            let _ = writeln!(
                o,
                "  * `{}`: {}{}.",
                f.frontend.name,
                f.threads,
                f.version
                    .as_ref()
                    .map(|v| format!(" ({v})"))
                    .unwrap_or_default()
            );
        } else {
            let _ = writeln!(
                o,
                "  * `{}`: **missing**: {}; its cells were not run.",
                f.frontend.name,
                f.missing_reason.as_deref().unwrap_or("unknown")
            );
        }
    }
    if !m
        .frontends
        .iter()
        .any(|f| f.kind == FrontendKind::Memcached)
    {
        let _ = writeln!(o, "  * memcached was not part of this matrix.");
    }
    let conns: Vec<String> = m.connections.iter().map(ToString::to_string).collect();
    let _ = writeln!(o, "* Connections (closed loop): {}.", conns.join(", "));
    let _ = writeln!(o, "* Workloads:");
    for w in &m.workloads {
        let _ = writeln!(
            o,
            "  * `{}`: {}; key space {} keys (`--mix {} --value-size {} --key-dist {}`).",
            w.name,
            w.description,
            thousands(w.keys as f64),
            w.mix,
            w.value_size,
            w.key_dist
        );
    }
    if m.workloads.iter().any(|w| !w.fits_memcached())
        && m.frontends
            .iter()
            .any(|f| f.kind == FrontendKind::Memcached)
    {
        let _ = writeln!(
            o,
            "  * memcached has no durability setting, so it does not run the `always` workloads."
        );
    }
    let _ = writeln!(
        o,
        "* Each cell: a fresh data directory (under the run directory, removed after the \
         cell) and a free port; every key of the key space \
         set once (preload); {} s warm-up (plus 1 s per 2,500 connections, to open them), \
         then {} s measured; closed loop with {} request(s) in flight per connection; a \
         request without a reply after {} s (or 1 s per 1,000 connections, if longer) counts \
         as a timeout.",
        m.warmup_s, m.duration_s, m.pipeline, m.timeout_s
    );
    if let Some(open) = &m.open_loop {
        let pct: Vec<String> = open.loads_pct.iter().map(|p| format!("{p}%")).collect();
        let _ = writeln!(
            o,
            "* Open loop ({}): fixed rates of {} of each front-end's best closed-loop throughput \
             for the workload, over {} connections with up to {} requests in flight each; \
             latency from the intended send time (coordinated omission corrected).",
            open.workloads.join(", "),
            pct.join(", "),
            open.connections,
            open.pipeline
        );
    }
    let _ = writeln!(
        o,
        "* Server CPU is user + system time of the server process (all threads) from \
         `/proc/<pid>/stat` over the measured `loadgen` run including its warm-up, divided by \
         the requests completed in that span; peak RSS is `VmHWM` at the end of the run."
    );
    for n in &info.notes {
        let _ = writeln!(o, "* Note: {n}");
    }
    o.push('\n');
}

/// Findings of one workload, each a Markdown line.
pub fn findings(d: &RunData, w: &Workload) -> Vec<String> {
    let mut out = Vec::new();
    let names = d.frontend_names();
    let mut conns = d.info.matrix.connections.clone();
    conns.sort_unstable();

    // Who leads at each connection count, and by how much.
    for &c in &conns {
        let mut measured: Vec<(&str, &LoadSummary)> = names
            .iter()
            .filter_map(|f| d.measured(&w.name, f, c).map(|s| (f.as_str(), s)))
            .collect();
        if measured.is_empty() {
            continue;
        }
        measured.sort_by(|a, b| {
            b.1.throughput_ops_per_s
                .total_cmp(&a.1.throughput_ops_per_s)
        });
        let (lead, ls) = measured[0];
        let mut line = format!(
            "**{c} connection{}**: {} leads with {} ops/s (p99 {} ms)",
            if c == 1 { "" } else { "s" },
            d.mark(lead, c),
            thousands(ls.throughput_ops_per_s),
            ms(ls.total.latency_us.p99)
        );
        if let Some(w) = d.starved(lead, c) {
            let _ = write!(
                line,
                " while serving only {w} of the {c} connections at a time"
            );
        }
        if measured.len() == 1 {
            line.push_str(", the only front-end measured");
        } else {
            let others: Vec<String> = measured[1..]
                .iter()
                .map(|(f, s)| {
                    format!(
                        "{} {} ({} ops/s, p99 {} ms)",
                        ratio(ls.throughput_ops_per_s, s.throughput_ops_per_s),
                        d.mark(f, c),
                        thousands(s.throughput_ops_per_s),
                        ms(s.total.latency_us.p99)
                    )
                })
                .collect();
            let _ = write!(line, ": {}", others.join(", "));
        }
        line.push('.');
        out.push(line);
    }

    // Where the thread pool's queueing starts: connections above its workers.
    for f in &d.info.matrix.frontends {
        let Some(workers) = f.pool_workers() else {
            continue;
        };
        let below = conns
            .iter()
            .rev()
            .find(|&&c| c <= workers && d.measured(&w.name, &f.name, c).is_some());
        let above = conns
            .iter()
            .find(|&&c| c > workers && d.measured(&w.name, &f.name, c).is_some());
        match (below, above) {
            (Some(&b), Some(&a)) => {
                let (sb, sa) = (
                    d.measured(&w.name, &f.name, b)
                        .unwrap_or_else(|| unreachable!()),
                    d.measured(&w.name, &f.name, a)
                        .unwrap_or_else(|| unreachable!()),
                );
                out.push(format!(
                    "`{}` queueing: {workers} workers, so from {a} connections on {} wait in the \
                     accept queue, unanswered, while the workers serve the others; its figures \
                     there describe the served connections only (marked \u{2020}). From {b} to \
                     {a} connections throughput goes {} -> {} ops/s ({}), p99 {} -> {} ms ({}), \
                     p99.9 {} -> {} ms, timeouts {} -> {}.",
                    f.name,
                    a - workers,
                    thousands(sb.throughput_ops_per_s),
                    thousands(sa.throughput_ops_per_s),
                    ratio(sa.throughput_ops_per_s, sb.throughput_ops_per_s),
                    ms(sb.total.latency_us.p99),
                    ms(sa.total.latency_us.p99),
                    ratio(
                        sa.total.latency_us.p99 as f64,
                        sb.total.latency_us.p99 as f64
                    ),
                    ms(sb.total.latency_us.p99_9),
                    ms(sa.total.latency_us.p99_9),
                    sb.errors.timeouts,
                    sa.errors.timeouts
                ));
                let waited = d
                    .closed(&w.name)
                    .find(|c| c.cell.frontend == f.name && c.cell.connections == a)
                    .and_then(|c| c.stats_after.get("max_queue_wait_us"))
                    .and_then(|v| v.parse::<u64>().ok());
                if let Some(us) = waited {
                    if let Some(line) = out.last_mut() {
                        let _ = write!(
                            line,
                            " The longest wait of a connection in its accept queue at {a} \
                             connections was {} ms (server `stats`: `max_queue_wait_us`).",
                            ms(us)
                        );
                    }
                }
            }
            (_, None) => out.push(format!(
                "`{}` queueing: no connection count above its {workers} workers was measured, \
                 so the queue never formed.",
                f.name
            )),
            (None, Some(&a)) => out.push(format!(
                "`{}` queueing: every measured connection count exceeds its {workers} workers \
                 (queueing from the first, {a}).",
                f.name
            )),
        }
    }

    // Pool sizes against each other, when the matrix has several.
    let pools: Vec<&crate::matrix::Frontend> = d
        .info
        .matrix
        .frontends
        .iter()
        .filter(|f| f.kind == FrontendKind::Threadpool)
        .collect();
    if pools.len() > 1 {
        let parts: Vec<String> = conns
            .iter()
            .filter_map(|&c| {
                let best = pools
                    .iter()
                    .filter_map(|f| Some((f, d.measured(&w.name, &f.name, c)?)))
                    .max_by(|a, b| {
                        a.1.throughput_ops_per_s
                            .total_cmp(&b.1.throughput_ops_per_s)
                    })?;
                Some(format!(
                    "{c}: {} ({} ops/s)",
                    d.mark(&best.0.name, c),
                    thousands(best.1.throughput_ops_per_s)
                ))
            })
            .collect();
        if !parts.is_empty() {
            out.push(format!(
                "Best thread-pool size by connections: {}.",
                parts.join(", ")
            ));
        }
    }

    // The event loop's accept modes against each other.
    let modes: Vec<&crate::matrix::Frontend> = d
        .info
        .matrix
        .frontends
        .iter()
        .filter(|f| f.kind == FrontendKind::Eventloop && f.accept.is_some())
        .collect();
    if let [a, b] = modes.as_slice() {
        let parts: Vec<String> = conns
            .iter()
            .filter_map(|&c| {
                let (sa, sb) = (
                    d.measured(&w.name, &a.name, c)?,
                    d.measured(&w.name, &b.name, c)?,
                );
                Some(format!(
                    "{c}: {}",
                    ratio(sa.throughput_ops_per_s, sb.throughput_ops_per_s)
                ))
            })
            .collect();
        if !parts.is_empty() {
            out.push(format!(
                "Accept modes: `{}` throughput relative to `{}` by connections: {}.",
                a.name,
                b.name,
                parts.join(", ")
            ));
        }
    }

    // Each front-end against memcached.
    let mc = d
        .info
        .frontends
        .iter()
        .find(|f| f.frontend.kind == FrontendKind::Memcached);
    match mc {
        None => out.push("memcached was not part of this matrix: no comparison.".into()),
        Some(m) if !m.available => out.push(format!(
            "memcached was not available ({}): no comparison.",
            m.missing_reason.as_deref().unwrap_or("not installed")
        )),
        Some(_) if !w.fits_memcached() => {
            out.push("memcached has no durability setting and did not run this workload.".into())
        }
        Some(m) => {
            let mname = &m.frontend.name;
            for f in names.iter().filter(|f| *f != mname) {
                let mut tput = Vec::new();
                let mut p99 = Vec::new();
                let mut meets = 0;
                let mut both = 0;
                let mut any = 0;
                let mut skipped = 0;
                for &c in &conns {
                    if let (Some(s), Some(r)) =
                        (d.measured(&w.name, f, c), d.measured(&w.name, mname, c))
                    {
                        let starved = d.starved(f, c).is_some();
                        let label = if starved {
                            format!("{c}\u{2020}")
                        } else {
                            c.to_string()
                        };
                        tput.push(format!(
                            "{label}: {}",
                            ratio(s.throughput_ops_per_s, r.throughput_ops_per_s)
                        ));
                        p99.push(format!(
                            "{label}: {}",
                            ratio(s.total.latency_us.p99 as f64, r.total.latency_us.p99 as f64)
                        ));
                        any += 1;
                        if starved {
                            skipped += 1;
                            continue;
                        }
                        both += 1;
                        if s.throughput_ops_per_s >= r.throughput_ops_per_s
                            && s.total.latency_us.p99 <= r.total.latency_us.p99
                        {
                            meets += 1;
                        }
                    }
                }
                if any == 0 {
                    continue;
                }
                let scope = if skipped > 0 {
                    format!(
                        "{both} connection counts at which it serves every connection \
                         (\u{2020}: {skipped} at which it does not)"
                    )
                } else {
                    format!("{both} connection counts")
                };
                out.push(format!(
                    "`{f}` vs memcached, by connections: throughput {}; p99 {} (below 1 is \
                     lower latency); at least equal throughput with no worse p99 at {meets} \
                     of {scope}.",
                    tput.join(", "),
                    p99.join(", ")
                ));
            }
        }
    }

    // Open loop: how latency grows with offered load.
    for f in &names {
        let mut points: Vec<(u32, f64, u64)> = d
            .open(&w.name)
            .filter(|c| &c.cell.frontend == f)
            .filter_map(|c| {
                let s = c.ok()?;
                Some((
                    c.cell.load_pct?,
                    c.record.as_ref()?.rate?,
                    s.total.latency_us.p99,
                ))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        points.sort_by_key(|p| p.0);
        let parts: Vec<String> = points
            .iter()
            .map(|(p, r, l)| format!("{p}% ({} ops/s): {} ms", thousands(*r), ms(*l)))
            .collect();
        out.push(format!("`{f}` p99 vs offered load: {}.", parts.join(", ")));
    }

    let failed = d
        .closed(&w.name)
        .chain(d.open(&w.name))
        .filter(|c| matches!(&c.record, Some(r) if r.status == CellStatus::Failed))
        .count();
    if failed > 0 {
        out.push(format!(
            "{failed} cell(s) of this workload failed; see Failed, skipped and retried cells below."
        ));
    }
    if out.is_empty() {
        out.push("No cell of this workload was measured.".into());
    }
    out
}

fn chart_link(o: &mut String, charts: &[PathBuf], name: &str, alt: &str) {
    if let Some(p) = charts.iter().find(|p| p.ends_with(name)) {
        let _ = writeln!(o, "![{alt}]({})\n", p.display());
    }
}

fn workload_section(o: &mut String, d: &RunData, w: &Workload, charts: &[PathBuf]) {
    let _ = writeln!(o, "## Workload `{}`\n", w.name);
    let _ = writeln!(o, "{}.\n", w.description);
    let _ = writeln!(
        o,
        "| front-end | conns | ops/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | timeouts \
         | server CPU s / M req | peak RSS MiB |"
    );
    let _ = writeln!(o, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for f in d.frontend_names() {
        let mut cells: Vec<&CellData> =
            d.closed(&w.name).filter(|c| c.cell.frontend == f).collect();
        cells.sort_by_key(|c| c.cell.connections);
        for c in cells {
            let _ = writeln!(o, "{}", table_row(d, c));
        }
    }
    if d.closed(&w.name)
        .any(|c| d.starved(&c.cell.frontend, c.cell.connections).is_some())
    {
        let _ = writeln!(
            o,
            "\n\u{2020} More connections than the thread pool has workers: only as many \
             connections as workers are served at a time and the others wait in its accept \
             queue without a reply, so ops/s and latency describe the served connections; \
             the waiting ones show only as timeouts, when their wait outlasts the timeout \
             within the run."
        );
    }
    o.push('\n');
    chart_link(
        o,
        charts,
        &format!("throughput-{}.svg", w.name),
        &format!("{}: throughput vs connections", w.name),
    );
    chart_link(
        o,
        charts,
        &format!("spectrum-{}.svg", w.name),
        &format!("{}: latency percentile spectrum", w.name),
    );
}

fn table_row(d: &RunData, c: &CellData) -> String {
    let head = format!(
        "| `{}` | {}{} ",
        c.cell.frontend,
        c.cell.connections,
        if d.starved(&c.cell.frontend, c.cell.connections).is_some() {
            "\u{2020}"
        } else {
            ""
        }
    );
    match (&c.record, c.ok()) {
        (Some(r), Some(s)) => {
            let l = &s.total.latency_us;
            let usage = r.server.as_ref();
            format!(
                "{head}| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                thousands(s.throughput_ops_per_s),
                ms(l.p50),
                ms(l.p99),
                ms(l.p99_9),
                ms(l.max),
                s.errors_total,
                s.errors.timeouts,
                usage
                    .and_then(|u| u.cpu_s_per_million())
                    .map_or("-".into(), |v| format!("{v:.2}")),
                usage.map_or("-".into(), |u| format!(
                    "{:.1}",
                    u.peak_rss_bytes as f64 / (1u64 << 20) as f64
                )),
            )
        }
        _ => format!("{head}| {} | | | | | | | | |", c.unmeasured()),
    }
}

fn open_loop_section(o: &mut String, d: &RunData, charts: &[PathBuf]) {
    let workloads: Vec<&Workload> = d
        .info
        .matrix
        .workloads
        .iter()
        .filter(|w| d.open(&w.name).next().is_some())
        .collect();
    if workloads.is_empty() {
        return;
    }
    let _ = writeln!(o, "## Latency vs offered load\n");
    for w in workloads {
        let _ = writeln!(o, "### Workload `{}`\n", w.name);
        let _ = writeln!(
            o,
            "| front-end | load | offered ops/s | achieved ops/s | p50 ms | p99 ms | p99.9 ms \
             | max ms | unsent | errors |"
        );
        let _ = writeln!(o, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for f in d.frontend_names() {
            let mut cells: Vec<&CellData> =
                d.open(&w.name).filter(|c| c.cell.frontend == f).collect();
            cells.sort_by_key(|c| c.cell.load_pct);
            for c in cells {
                let pct = c.cell.load_pct.unwrap_or(0);
                let rate = c.record.as_ref().and_then(|r| r.rate);
                let head = format!("| `{f}` | {pct}% | {} ", rate.map_or("-".into(), thousands));
                let row = match c.ok() {
                    Some(s) => {
                        let l = &s.total.latency_us;
                        format!(
                            "{head}| {} | {} | {} | {} | {} | {} | {} |",
                            thousands(s.throughput_ops_per_s),
                            ms(l.p50),
                            ms(l.p99),
                            ms(l.p99_9),
                            ms(l.max),
                            s.unsent,
                            s.errors_total
                        )
                    }
                    None => format!("{head}| {} | | | | | | |", c.unmeasured()),
                };
                let _ = writeln!(o, "{row}");
            }
        }
        o.push('\n');
        chart_link(
            o,
            charts,
            &format!("load-{}.svg", w.name),
            &format!("{}: latency vs offered load", w.name),
        );
    }
}

fn failures_section(o: &mut String, d: &RunData) {
    let bad: Vec<(&CellData, &CellRecord)> = d
        .cells
        .iter()
        .filter_map(|c| c.record.as_ref().map(|r| (c, r)))
        .filter(|(_, r)| r.status != CellStatus::Ok)
        .collect();
    let not_run = d.cells.iter().filter(|c| c.record.is_none()).count();
    let retried: Vec<(&CellData, &str)> = d
        .cells
        .iter()
        .filter_map(|c| Some((c, c.record.as_ref()?.retried_after.as_deref()?)))
        .collect();
    if bad.is_empty() && not_run == 0 && retried.is_empty() {
        return;
    }
    let _ = writeln!(o, "## Failed, skipped and retried cells\n");
    let mut by_reason: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (c, r) in &bad {
        if r.status == CellStatus::Skipped {
            by_reason
                .entry(format!(
                    "skipped: {}",
                    r.error.as_deref().unwrap_or("unknown")
                ))
                .or_default()
                .push(&c.cell.id);
        } else {
            let _ = writeln!(
                o,
                "* `{}`: failed: {} (files in `{}/`).",
                c.cell.id,
                r.error.as_deref().unwrap_or("unknown"),
                c.cell.id
            );
        }
    }
    for (reason, ids) in by_reason {
        let _ = writeln!(o, "* {} cell(s) {reason}.", ids.len());
    }
    if not_run > 0 {
        let _ = writeln!(
            o,
            "* {not_run} cell(s) were planned but not run (the run was stopped)."
        );
    }
    for (c, why) in retried {
        let _ = writeln!(
            o,
            "* `{}`: run twice; the first attempt was discarded because {why}.",
            c.cell.id
        );
    }
    o.push('\n');
}

fn files_section(o: &mut String) {
    let _ = writeln!(o, "## Raw outputs\n");
    let _ = writeln!(
        o,
        "Each cell has a directory named `<workload>_<front-end>_c<connections>` \
         (`_load<percent>` for open-loop cells) holding: `summary.json`, `<op>.hgrm`, \
         `<op>-service.hgrm` and `latency.hlog` from `loadgen`; `stats-before.txt` and \
         `stats-after.txt` (the server's `stats` reply); `cell.json` (status, server CPU \
         seconds, peak RSS, command lines); `commands.txt` (the exact command lines); \
         `server.log`, `loadgen.log`, `preload.log` and `preload/`. `run.json` describes \
         the machine and the matrix."
    );
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

    #[test]
    fn number_formats() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(ms(41), "0.041");
        assert_eq!(ms(12_345), "12.35");
        assert_eq!(ms(1_234_567), "1234.6");
        assert_eq!(ratio(3.0, 2.0), "1.50x");
        assert_eq!(ratio(1.0, 0.0), "n/a");
    }
}
