//! Runs a matrix cell by cell.
//!
//! Each cell: a free port and a fresh data directory; the server started on
//! the server cores and waited for; a preload pass that sets every key of the
//! workload's key space; `stats` and the server's CPU time read; the measured
//! `loadgen` run (warm-up, then measurement) on the load-generator cores;
//! `stats`, CPU time and peak RSS read again; the server stopped by PID. A
//! cell that fails is recorded as failed and the run goes on. Open-loop cells
//! come last, since their rates are fractions of the closed-loop maxima.
//!
//! Progress (cell i of N, what runs, time left) goes to stderr; diagnostics
//! go through `tracing` (RUST_LOG).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::machine::{iso_utc, run_id, unix_now, CoreSplit, MachineInfo};
use crate::matrix::{Cell, Frontend, FrontendKind, Matrix, Workload, SERVER_MAX_CONNECTIONS};
use crate::model::{
    CellRecord, CellStatus, Commands, DiskBandwidth, FrontendStatus, LoadSummary, RunInfo,
    ServerUsage, CELL_SCHEMA, RUN_SCHEMA,
};
use crate::process::{
    fetch_stats, free_port, raise_nofile_limit, sample, shell_quote, spawn_pinned, usage_between,
    wait_ready, Managed,
};
use crate::{write_json, Error};

/// The event loop's accept-mode flag.
pub const ACCEPT_FLAG: &str = "--accept";

/// Connections of the preload pass (fewer when the cell has fewer).
pub(crate) const PRELOAD_CONNECTIONS: usize = 16;

/// How long a server may take to start listening.
pub(crate) const START_LIMIT: Duration = Duration::from_secs(20);

/// How long a server may take to exit after SIGTERM (it syncs and seals its files).
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(15);

/// Writes `bytes` sequentially into a file in `dir`, fdatasyncs it, and
/// times the whole; the file is removed after.
pub fn measure_disk(dir: &Path, bytes: u64) -> Result<DiskBandwidth, Error> {
    use std::io::Write as _;
    let path = dir.join("disk-probe");
    let chunk = vec![0x5au8; 4 << 20];
    let t0 = Instant::now();
    let result = (|| {
        let mut f = std::fs::File::create(&path)?;
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        f.sync_data()
    })();
    let seconds = t0.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| Error::io(&path, e))?;
    Ok(DiskBandwidth { bytes, seconds })
}

/// How a run is set up, beyond the matrix.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// What to run.
    pub matrix: Matrix,
    /// The results directory (`results`); the run goes into `<results>/<run-id>`.
    pub results: PathBuf,
    /// The run id (default: the UTC start time).
    pub run_id: Option<String>,
    /// Where `loadgen`, `server-threadpool` and `server-eventloop` are.
    pub bin_dir: PathBuf,
    /// Build the front-ends with cargo first (a front-end that does not build is missing).
    pub build: bool,
    /// The memcached binary (looked up in PATH unless it contains a '/').
    pub memcached: String,
    /// Cores to use (default: all this process may run on).
    pub cores: Option<Vec<usize>>,
    /// Remarks for the report (e.g. what was reduced from a preset).
    pub notes: Vec<String>,
    /// Bytes the disk-bandwidth probe writes (0: no probe).
    pub disk_probe_bytes: u64,
}

/// Runs the matrix, writes every cell and the report; returns the run directory.
pub fn run(opts: RunOptions) -> Result<PathBuf, Error> {
    opts.matrix.validate()?;
    let mut opts = opts;
    // Relative paths keep the recorded command lines free of this machine's layout.
    opts.bin_dir = relative(&opts.bin_dir);
    opts.results = relative(&opts.results);
    let started = unix_now();
    let id = opts.run_id.clone().unwrap_or_else(|| run_id(started));
    let dir = opts.results.join(&id);
    if dir.exists() {
        return Err(Error::Config(format!("{} already exists", dir.display())));
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let nofile = raise_nofile_limit();
    let max_conns = opts.matrix.connections.iter().copied().max().unwrap_or(0);
    if (nofile as usize) < max_conns + 256 {
        tracing::warn!(
            nofile,
            max_conns,
            "open-file limit is below the largest connection count"
        );
    }
    let cores = opts
        .cores
        .clone()
        .unwrap_or_else(crate::machine::allowed_cores);
    let split = CoreSplit::halves(&cores);
    let loadgen = opts.bin_dir.join("loadgen");
    if !loadgen.exists() {
        return Err(Error::Config(format!(
            "{} not found: build it first (cargo build --release -p loadgen)",
            loadgen.display()
        )));
    }

    eprintln!(
        "bench: run {id} ({} matrix) into {}",
        opts.matrix.name,
        dir.display()
    );
    eprintln!("bench: {}", split.describe());
    let mut frontends = Vec::new();
    let mut binaries: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in &opts.matrix.frontends {
        let (status, bin) = locate(f, &opts, &dir, split.server.len());
        match &bin {
            Some(b) => eprintln!("bench: front-end {f}: {}", b.display()),
            None => eprintln!(
                "bench: front-end {f}: missing ({})",
                status.missing_reason.as_deref().unwrap_or("?")
            ),
        }
        if let Some(b) = bin {
            binaries.insert(f.name.clone(), b);
        }
        frontends.push(status);
    }

    // Data directories live beside the results, on a real file system: a
    // tmpfs /tmp would make every fdatasync free and `always` meaningless.
    let scratch = dir.join(".data");
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    // A few hundred MB by default: a second or two on a typical SSD, enough
    // to get past the drive's write cache.
    let probe = opts.disk_probe_bytes;
    if probe > 0 {
        eprintln!(
            "bench: measuring the disk's write bandwidth ({} MiB with fdatasync)",
            probe >> 20
        );
    }
    let disk = match (probe > 0).then(|| measure_disk(&scratch, probe)) {
        None => None,
        Some(Ok(d)) => {
            eprintln!("bench: disk writes {:.0} MB/s", d.bytes_per_s() / 1e6);
            Some(d)
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "cannot measure the disk's bandwidth");
            None
        }
    };

    let cells = opts.matrix.cells();
    let mut info = RunInfo {
        schema: RUN_SCHEMA.into(),
        run_id: id.clone(),
        started_at: iso_utc(started),
        finished_at: None,
        machine: MachineInfo::current(),
        matrix: opts.matrix.clone(),
        cores: split.clone(),
        frontends,
        cells: cells.clone(),
        notes: opts.notes.clone(),
        load_average: vec![crate::machine::load_average()],
        disk,
    };
    write_json(&dir.join("run.json"), &info)?;

    let mut progress = Progress::new(&opts.matrix, &cells);
    let mut closed = ClosedLoopThroughput::default();
    for (i, cell) in cells.iter().enumerate() {
        progress.starting(i, cell);
        let t0 = Instant::now();
        let ctx = CellContext {
            matrix: &opts.matrix,
            split: &split,
            loadgen: &loadgen,
            binary: binaries.get(&cell.frontend),
            scratch: &scratch,
            run_dir: &dir,
        };
        let record = run_cell(&ctx, cell, &closed);
        let record = CellRecord {
            wall_s: (t0.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            ..record
        };
        let cell_dir = dir.join(&cell.id);
        std::fs::create_dir_all(&cell_dir).map_err(|e| Error::io(&cell_dir, e))?;
        write_json(&cell_dir.join("cell.json"), &record)?;
        let summary = crate::model::read_summary(&cell_dir.join("summary.json")).ok();
        if record.status == CellStatus::Ok && cell.load_pct.is_none() {
            if let Some(s) = &summary {
                closed.add(cell, s.throughput_ops_per_s);
            }
        }
        progress.finished(i, cell, &record, summary.as_ref(), t0.elapsed());
    }
    let _ = std::fs::remove_dir_all(&scratch);

    info.finished_at = Some(iso_utc(unix_now()));
    info.load_average.push(crate::machine::load_average());
    write_json(&dir.join("run.json"), &info)?;
    let report = crate::report::render(&dir)?;
    point_latest(&opts.results, &id);
    eprintln!(
        "bench: done in {}; report: {}",
        clock(progress.started.elapsed().as_secs_f64()),
        report.display()
    );
    Ok(dir)
}

/// `p` relative to the working directory when it lies below it.
fn relative(p: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|r| !r.as_os_str().is_empty())
        .unwrap_or_else(|| p.to_path_buf())
}

/// Points `<results>/latest` at the run (a relative symlink).
fn point_latest(results: &Path, id: &str) {
    let link = results.join("latest");
    if std::fs::symlink_metadata(&link).is_ok() {
        let _ = std::fs::remove_file(&link);
    }
    if let Err(e) = std::os::unix::fs::symlink(id, &link) {
        tracing::warn!(error = %e, "cannot point results/latest at the run");
    }
}

/// Finds (and, if asked, builds) a front-end's binary.
fn locate(
    f: &Frontend,
    opts: &RunOptions,
    run_dir: &Path,
    server_cores: usize,
) -> (FrontendStatus, Option<PathBuf>) {
    let threads = match f.kind {
        FrontendKind::Threadpool => format!(
            "{} blocking workers{}, all confined to the server cores",
            f.pool_workers().unwrap_or(0),
            if f.workers.is_none() {
                " (its default)"
            } else {
                ""
            }
        ),
        FrontendKind::Eventloop => format!(
            "{server_cores} event loop(s), one per server core{}",
            f.accept
                .map(|a| format!(", accept mode {}", a.name()))
                .unwrap_or_default()
        ),
        FrontendKind::Memcached => format!("-t {server_cores} (one worker thread per server core)"),
        FrontendKind::Cluster => crate::cluster::describe(f),
    };
    let mut status = FrontendStatus {
        frontend: f.clone(),
        available: false,
        missing_reason: None,
        version: None,
        threads,
    };
    let bin = match f.kind {
        FrontendKind::Memcached => find_in_path(&opts.memcached),
        kind => {
            let pkg = kind.package().unwrap_or_default();
            if opts.build {
                if let Err(why) = build(pkg, kind.binary(), run_dir) {
                    status.missing_reason = Some(why);
                    return (status, None);
                }
            }
            Some(opts.bin_dir.join(kind.binary())).filter(|p| p.exists())
        }
    };
    let Some(bin) = bin else {
        status.missing_reason = Some(match f.kind {
            FrontendKind::Memcached => format!("{} is not installed", opts.memcached),
            _ => format!(
                "{} not found in {}",
                f.kind.binary(),
                opts.bin_dir.display()
            ),
        });
        return (status, None);
    };
    let version_flag = if f.kind == FrontendKind::Memcached {
        "-V"
    } else {
        "--version"
    };
    status.version = Command::new(&bin)
        .arg(version_flag)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
    status.available = true;
    (status, Some(bin))
}

/// `cargo build --release -p <pkg> --bin <bin>`, its output into `build-<pkg>.log`.
fn build(pkg: &str, bin: &str, run_dir: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let log = run_dir.join(format!("build-{pkg}.log"));
    eprintln!("bench: building {pkg} (release)");
    let out = Command::new(&cargo)
        .args(["build", "--release", "-p", pkg, "--bin", bin])
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    let _ = std::fs::write(
        &log,
        [out.stdout.as_slice(), out.stderr.as_slice()].concat(),
    );
    if out.status.success() {
        let _ = std::fs::remove_file(&log);
        Ok(())
    } else {
        Err(format!(
            "{bin} does not build (cargo's output: build-{pkg}.log)"
        ))
    }
}

/// The full path of `name`, looked up in PATH unless it has a '/'.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.exists().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// What a cell needs from the run.
pub(crate) struct CellContext<'a> {
    pub(crate) matrix: &'a Matrix,
    pub(crate) split: &'a CoreSplit,
    pub(crate) loadgen: &'a Path,
    pub(crate) binary: Option<&'a PathBuf>,
    pub(crate) scratch: &'a Path,
    pub(crate) run_dir: &'a Path,
}

/// The server's command line.
pub fn server_argv(
    f: &Frontend,
    bin: &Path,
    port: u16,
    data_dir: &Path,
    w: &Workload,
    server_cores: usize,
) -> Vec<String> {
    let mut a: Vec<String> = vec![bin.display().to_string()];
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    let conns = SERVER_MAX_CONNECTIONS.to_string();
    match f.kind {
        FrontendKind::Memcached => {
            let port = port.to_string();
            let threads = server_cores.to_string();
            // -m: enough memory that no preloaded item is evicted; -U 0: no UDP.
            push(&["-l", "127.0.0.1", "-p", &port, "-U", "0", "-t", &threads]);
            push(&["-c", &conns, "-m", "4096"]);
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                // memcached refuses to run as root unless told which user to be.
                push(&["-u", "root"]);
            }
        }
        kind => {
            let listen = format!("127.0.0.1:{port}");
            let dir = data_dir.display().to_string();
            push(&["--listen", &listen, "--data-dir", &dir]);
            push(&["--durability", &w.durability, "--max-connections", &conns]);
            push(&["--log-level", "warn"]);
            match kind {
                FrontendKind::Threadpool => {
                    if let Some(n) = f.workers {
                        push(&["--threads", &n.to_string()]);
                    }
                }
                _ => {
                    push(&["--threads", &server_cores.to_string()]);
                    if let Some(mode) = f.accept {
                        push(&[ACCEPT_FLAG, mode.name()]);
                    }
                }
            }
        }
    }
    a
}

/// The arguments `loadgen run` gets for a workload (key space and values).
pub(crate) fn workload_args(w: &Workload) -> Vec<String> {
    [
        "--keys",
        &w.keys.to_string(),
        "--key-dist",
        &w.key_dist,
        "--value-size",
        &w.value_size.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The flags of a cell's measured run after its servers: workload, threads
/// and cores of loadgen, connections, `pipeline`, mix, duration, warm-up,
/// timeout and output directory. One list for a single server's cell and a
/// cluster's, so the two measure alike.
pub(crate) fn measured_run_args(
    ctx: &CellContext<'_>,
    cell: &Cell,
    w: &Workload,
    pipeline: usize,
    out: &Path,
) -> Vec<String> {
    let m = ctx.matrix;
    let threads = ctx.split.loadgen.len().min(cell.connections).max(1);
    let mut args = workload_args(w);
    args.extend([
        "--threads".to_string(),
        threads.to_string(),
        "--pin".into(),
        cores_arg(&ctx.split.loadgen),
        "--connections".into(),
        cell.connections.to_string(),
        "--pipeline".into(),
        pipeline.to_string(),
        "--mix".into(),
        w.mix.clone(),
        "--duration".into(),
        format!("{}s", m.duration_s),
        "--warmup".into(),
        format!("{}s", m.warmup_for(cell.connections)),
        "--timeout".into(),
        format!("{}s", m.timeout_for(cell.connections)),
        "--out".into(),
        out.display().to_string(),
    ]);
    args
}

pub(crate) fn cores_arg(cores: &[usize]) -> String {
    cores
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The closed-loop throughput of every round so far, by workload,
/// front-end and connections: the open-loop rates are fractions of it.
#[derive(Debug, Default)]
struct ClosedLoopThroughput(BTreeMap<(String, String, usize), Vec<f64>>);

impl ClosedLoopThroughput {
    fn add(&mut self, cell: &Cell, ops_per_s: f64) {
        self.0
            .entry((
                cell.workload.clone(),
                cell.frontend.clone(),
                cell.connections,
            ))
            .or_default()
            .push(ops_per_s);
    }

    /// A front-end's maximum for a workload: the best connection count by
    /// its median over rounds (a median, so one lucky round does not set
    /// the rates).
    fn maximum(&self, workload: &str, frontend: &str) -> Option<f64> {
        self.0
            .iter()
            .filter(|((w, f, _), _)| w == workload && f == frontend)
            .filter_map(|(_, v)| crate::stats::Spread::of(v).map(|s| s.median))
            .max_by(f64::total_cmp)
    }
}

/// Runs one cell; never returns early without stopping the server.
fn run_cell(ctx: &CellContext<'_>, cell: &Cell, closed: &ClosedLoopThroughput) -> CellRecord {
    let mut record = CellRecord {
        schema: CELL_SCHEMA.into(),
        cell: cell.clone(),
        status: CellStatus::Skipped,
        error: None,
        rate: None,
        server: None,
        server_exit: None,
        commands: Commands::default(),
        wall_s: 0.0,
        retried_after: None,
    };
    let Some(bin) = ctx.binary else {
        record.error = Some("front-end missing".into());
        return record;
    };
    if let Some(pct) = cell.load_pct {
        match closed.maximum(&cell.workload, &cell.frontend) {
            Some(max) if max > 0.0 => record.rate = Some((max * f64::from(pct) / 100.0).round()),
            _ => {
                record.error = Some("no closed-loop maximum measured for this front-end".into());
                return record;
            }
        }
    }
    let mut result = measure(ctx, cell, bin, &mut record);
    if let Err(Error::Stalled(why)) = &result {
        // A run in which not one request completed says nothing about the
        // server (it happens when the machine stalls the load generator);
        // one more attempt, on a fresh server, and the report says so.
        eprintln!("        no request completed ({why}); retrying the cell once");
        record.retried_after = Some(why.clone());
        result = measure(ctx, cell, bin, &mut record);
    }
    match result {
        Ok(()) => record.status = CellStatus::Ok,
        Err(e) => {
            tracing::warn!(cell = %cell.id, error = %e, "cell failed");
            record.status = CellStatus::Failed;
            record.error = Some(e.to_string());
        }
    }
    record
}

fn measure(
    ctx: &CellContext<'_>,
    cell: &Cell,
    bin: &Path,
    record: &mut CellRecord,
) -> Result<(), Error> {
    let m = ctx.matrix;
    let (Some(f), Some(w)) = (
        m.frontends.iter().find(|f| f.name == cell.frontend),
        m.workloads.iter().find(|w| w.name == cell.workload),
    ) else {
        return Err(Error::Config(format!(
            "cell {} is not in the matrix",
            cell.id
        )));
    };
    let out = ctx.run_dir.join(&cell.id);
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let data_dir = ctx.scratch.join(&cell.id);
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(&data_dir, e))?;
    let result = measure_in(ctx, cell, f, w, bin, &out, &data_dir, record);
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut text = String::new();
    for (name, argv) in [
        ("server", &record.commands.server),
        ("preload", &record.commands.preload),
        ("loadgen", &record.commands.loadgen),
    ] {
        if !argv.is_empty() {
            text.push_str(&format!("# {name}\n{}\n", shell_quote(argv)));
        }
    }
    std::fs::write(out.join("commands.txt"), text).map_err(|e| Error::io(&out, e))?;
    result
}

#[allow(clippy::too_many_arguments)]
fn measure_in(
    ctx: &CellContext<'_>,
    cell: &Cell,
    f: &Frontend,
    w: &Workload,
    bin: &Path,
    out: &Path,
    data_dir: &Path,
    record: &mut CellRecord,
) -> Result<(), Error> {
    if f.kind == FrontendKind::Cluster {
        return crate::cluster::measure_in(ctx, cell, f, w, bin, out, data_dir, record);
    }
    let m = ctx.matrix;
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let argv = server_argv(f, bin, port, data_dir, w, ctx.split.server.len());
    record.commands.server = argv.clone();
    let child = spawn_pinned(&argv, &ctx.split.server, &out.join("server.log"))?;
    let mut server = Managed::new(child, cell.frontend.clone());
    let pid = server
        .pid()
        .ok_or_else(|| Error::Process("server has no pid".into()))?;
    let outcome = (|| {
        wait_ready(addr, &mut server, START_LIMIT)?;

        // Preload: every key once, on the load-generator cores.
        preload(
            ctx,
            cell,
            w,
            &["--server".to_string(), addr.to_string()],
            out,
            record,
        )?;
        let loadgen = ctx.loadgen.display().to_string();

        let stats = fetch_stats(addr).unwrap_or_else(|e| format!("# {e}\n"));
        write(out, "stats-before.txt", &stats)?;
        let before = sample(pid)?;

        // The measured run.
        let pipeline = match (&m.open_loop, cell.load_pct) {
            (Some(open), Some(_)) => open.pipeline,
            _ => m.pipeline,
        };
        let warmup = m.warmup_for(cell.connections);
        let mut run = vec![loadgen, "run".into(), "--server".into(), addr.to_string()];
        run.extend(measured_run_args(ctx, cell, w, pipeline, out));
        if let Some(rate) = record.rate {
            run.push("--rate".into());
            run.push(format!("{rate}"));
        }
        record.commands.loadgen = run.clone();
        let limit =
            Duration::from_secs_f64(warmup + m.duration_s + 60.0 + cell.connections as f64 / 100.0);
        let lg = run_loadgen(&run, ctx, &out.join("loadgen.log"), limit);

        if let Some(s) = server.try_wait() {
            return Err(Error::Process(format!("server ended during the run ({s})")));
        }
        let after = sample(pid)?;
        let stats = fetch_stats(addr).unwrap_or_else(|e| format!("# {e}\n"));
        write(out, "stats-after.txt", &stats)?;
        let summary = crate::model::read_summary(&out.join("summary.json"));
        record.server = Some(ServerUsage {
            requests: summary
                .as_ref()
                .map_or(0, |s| s.total.counters.completed + s.warmup_completed),
            ..usage_between(&before, &after, ctx.split.server.len())
        });
        lg?;
        match summary {
            Ok(s) if s.total.counters.completed == 0 => Err(Error::Stalled(format!(
                "no request completed in the measured span ({} requests sent, {} unsent)",
                s.total.counters.requests, s.unsent
            ))),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    })();
    record.server_exit = Some(server.stop(STOP_GRACE));
    outcome
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> Result<(), Error> {
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
}

/// The preload pass of a cell: every key of the workload set once through
/// `servers` (loadgen's `--server ...` arguments), on the load-generator
/// cores, its outputs in `out/preload/`.
pub(crate) fn preload(
    ctx: &CellContext<'_>,
    cell: &Cell,
    w: &Workload,
    servers: &[String],
    out: &Path,
    record: &mut CellRecord,
) -> Result<(), Error> {
    let pin = cores_arg(&ctx.split.loadgen);
    let mut pre = vec![ctx.loadgen.display().to_string(), "run".into()];
    pre.extend(servers.iter().cloned());
    pre.extend(workload_args(w));
    let pre_conns = PRELOAD_CONNECTIONS.min(cell.connections.max(1)).to_string();
    pre.extend(
        [
            "--threads",
            "1",
            "--pin",
            &pin,
            "--connections",
            &pre_conns,
            "--mix",
            "get=1",
            "--preload",
            "--duration",
            "0.2s",
            "--timeout",
            "5s",
            "--quiet",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    pre.push(out.join("preload").display().to_string());
    record.commands.preload = pre.clone();
    run_loadgen(
        &pre,
        ctx,
        &out.join("preload.log"),
        Duration::from_secs(300),
    )
}

/// Runs `loadgen` on the load-generator cores; stdout and stderr into `log`.
pub(crate) fn run_loadgen(
    argv: &[String],
    ctx: &CellContext<'_>,
    log: &Path,
    limit: Duration,
) -> Result<(), Error> {
    let child = spawn_pinned(argv, &ctx.split.loadgen, log)?;
    let mut lg = Managed::new(child, "loadgen");
    match lg.wait_for(limit) {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(Error::Process(format!(
            "loadgen {s}: {}",
            last_line(log).unwrap_or_default()
        ))),
        None => {
            let how = lg.stop(Duration::from_secs(5));
            Err(Error::Process(format!(
                "loadgen did not finish within {} s; {how}",
                limit.as_secs()
            )))
        }
    }
}

/// The last non-empty line of a log, for an error message.
fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().chars().take(300).collect())
}

/// The overall progress display on stderr.
struct Progress {
    started: Instant,
    planned: Vec<f64>,
    done_planned: f64,
    total: usize,
}

impl Progress {
    fn new(m: &Matrix, cells: &[Cell]) -> Progress {
        Progress {
            started: Instant::now(),
            planned: cells.iter().map(|c| m.planned_seconds(c)).collect(),
            done_planned: 0.0,
            total: cells.len(),
        }
    }

    fn left(&self, from: usize) -> f64 {
        let remaining: f64 = self.planned[from..].iter().sum();
        let elapsed = self.started.elapsed().as_secs_f64();
        // Scale the plan by how long the finished cells really took.
        let factor = if self.done_planned > 0.0 {
            elapsed / self.done_planned
        } else {
            1.0
        };
        remaining * factor
    }

    fn starting(&self, i: usize, cell: &Cell) {
        let what = match cell.load_pct {
            Some(p) => format!("open loop at {p}% of max"),
            None => "closed loop".into(),
        };
        eprintln!(
            "[{:>w$}/{}] round {} {:<12} {:<24} {:>6} conns  {:<24} elapsed {}, ~{} left",
            i + 1,
            self.total,
            cell.round + 1,
            cell.workload,
            cell.frontend,
            cell.connections,
            what,
            clock(self.started.elapsed().as_secs_f64()),
            clock(self.left(i)),
            w = self.total.to_string().len()
        );
    }

    fn finished(
        &mut self,
        i: usize,
        _cell: &Cell,
        r: &CellRecord,
        s: Option<&LoadSummary>,
        took: Duration,
    ) {
        self.done_planned += self.planned[i];
        let line = match (r.status, s) {
            (CellStatus::Ok, Some(s)) => format!(
                "{:>12.0} ops/s  p50 {:.3} ms  p99 {:.3} ms  errors {}  timeouts {}",
                s.throughput_ops_per_s,
                s.total.latency_us.p50 as f64 / 1000.0,
                s.total.latency_us.p99 as f64 / 1000.0,
                s.errors_total,
                s.errors.timeouts
            ),
            (CellStatus::Ok, None) => "measured, but summary.json is unreadable".into(),
            (CellStatus::Failed, _) => {
                format!("FAILED: {}", r.error.as_deref().unwrap_or("unknown"))
            }
            (CellStatus::Skipped, _) => {
                format!("skipped: {}", r.error.as_deref().unwrap_or("unknown"))
            }
        };
        eprintln!("        {line}  ({:.1} s)", took.as_secs_f64());
    }
}

/// `m:ss`.
fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_command_lines() {
        let w = Workload::named("write-heavy").unwrap();
        let f: Frontend = "threadpool-16".parse().unwrap();
        let a = server_argv(
            &f,
            Path::new("/b/server-threadpool"),
            4000,
            Path::new("/d"),
            &w,
            1,
        );
        let s = a.join(" ");
        assert!(s.starts_with("/b/server-threadpool --listen 127.0.0.1:4000 --data-dir /d"));
        assert!(s.contains("--durability interval"));
        assert!(s.ends_with("--threads 16"));
        let f: Frontend = "eventloop-dispatch".parse().unwrap();
        let s = server_argv(&f, Path::new("el"), 1, Path::new("/d"), &w, 2).join(" ");
        assert!(
            s.ends_with(&format!("--threads 2 {ACCEPT_FLAG} dispatch")),
            "{s}"
        );
        let f: Frontend = "memcached".parse().unwrap();
        let s = server_argv(&f, Path::new("memcached"), 5, Path::new("/d"), &w, 1).join(" ");
        assert!(s.contains("-p 5 -U 0 -t 1"), "{s}");
        assert!(!s.contains("--durability"));
    }

    #[test]
    fn clocks() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(61.4), "1:01");
        assert_eq!(clock(3600.0), "60:00");
    }
}
