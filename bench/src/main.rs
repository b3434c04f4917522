//! `bench run`: run the benchmark matrix into `results/<run-id>/`;
//! `bench report <run-dir>`: render its `REPORT.md` and charts again;
//! `bench compare <run-a> <run-b>`: compare two runs point by point.
//! Logging: RUST_LOG (e.g. RUST_LOG=bench=debug); progress goes to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bench::matrix::{parse_list, Frontend, Matrix, OpenLoop, Workload};
use bench::runner::RunOptions;
use clap::{Parser, Subcommand, ValueEnum};

/// Benchmark matrix (front-end x connections x workload) and its report.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Preset {
    /// threadpool, eventloop (and its A/A twin), memcached; read-heavy at
    /// 16 and 512 connections, large and write-always at 16; 3 rounds of
    /// 3 s per cell (about 4 minutes).
    Default,
    /// Pool sizes 150/1000, both accept modes (and an A/A twin), memcached x
    /// 16, 1024, 10,000 connections x read-heavy, large, write-always, plus
    /// open-loop runs at 50 and 90% of each front-end's maximum; 5 rounds.
    Full,
    /// 1, 2 and 3 event-loop backends, directly with ketama and through
    /// nutcracker (and an A/A twin); read-heavy at 16 connections, 3 rounds.
    Cluster,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a matrix and write its report.
    Run(Box<RunArgs>),
    /// Render REPORT.md and charts/ of a run directory from its raw outputs.
    Report {
        /// The run directory, e.g. results/latest.
        run: PathBuf,
    },
    /// Compare run B with run A point by point (faster, slower, or no clear
    /// difference, by the report's rule) and write the comparison.
    Compare {
        /// The run to compare against (before a change).
        a: PathBuf,
        /// The run compared (after the change).
        b: PathBuf,
        /// Where to write it (default: compare_<a>_vs_<b>.md beside B).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `bench run` flags; each matrix setting can also come from a BENCH_* variable.
#[derive(clap::Args)]
struct RunArgs {
    /// The matrix to start from.
    #[arg(long, value_enum, default_value = "default", env = "BENCH_PRESET")]
    preset: Preset,
    /// Front-ends, comma-separated: threadpool, threadpool-<N>, eventloop,
    /// eventloop-reuseport, eventloop-dispatch, memcached, cluster-direct-<N>,
    /// cluster-proxy-<N>.
    #[arg(long, env = "BENCH_FRONTENDS")]
    frontends: Option<String>,
    /// Connection counts, comma-separated.
    #[arg(long, env = "BENCH_CONNECTIONS")]
    connections: Option<String>,
    /// Workloads, comma-separated: read-heavy, write-heavy, large, write-always.
    #[arg(long, env = "BENCH_WORKLOADS")]
    workloads: Option<String>,
    /// Measured seconds per cell (e.g. 4 or 4s).
    #[arg(long, env = "BENCH_DURATION")]
    duration: Option<String>,
    /// Warm-up seconds per cell.
    #[arg(long, env = "BENCH_WARMUP")]
    warmup: Option<String>,
    /// Rounds: every cell runs this many times, front-end order alternating.
    #[arg(long, env = "BENCH_ROUNDS")]
    rounds: Option<usize>,
    /// Key space of every workload (default: each workload's own), all of it
    /// preloaded.
    #[arg(long, env = "BENCH_KEYS")]
    keys: Option<u64>,
    /// Open-loop loads in percent of each front-end's maximum, comma-separated
    /// ("none" for no open-loop cells).
    #[arg(long, env = "BENCH_LOADS")]
    loads: Option<String>,
    /// Results directory.
    #[arg(long, default_value = "results", env = "BENCH_RESULTS")]
    results: PathBuf,
    /// Run id (directory name); default: the UTC start time.
    #[arg(long)]
    run_id: Option<String>,
    /// Directory of the loadgen and server binaries; default: this binary's.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Do not build the servers with cargo first (use the binaries as they are).
    #[arg(long)]
    no_build: bool,
    /// memcached binary.
    #[arg(long, default_value = "memcached")]
    memcached: String,
    /// Cores to use, comma-separated; default: all this process may use.
    #[arg(long)]
    cores: Option<String>,
    /// A remark for the report (repeatable).
    #[arg(long)]
    note: Vec<String>,
    /// MiB the disk-bandwidth probe writes at the start (0: no probe, and
    /// no cell is called disk-bound).
    #[arg(long, default_value_t = 256)]
    disk_probe_mib: u64,
}

fn seconds(s: &str) -> anyhow::Result<f64> {
    let t = s.trim();
    let v: f64 = t
        .strip_suffix('s')
        .unwrap_or(t)
        .parse()
        .with_context(|| format!("bad seconds {s:?}: use e.g. 4 or 4s"))?;
    Ok(v)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match real_main(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Report { run } => {
            let path = bench::report::render(&run)
                .with_context(|| format!("rendering the report of {}", run.display()))?;
            eprintln!("bench: wrote {}", path.display());
            Ok(())
        }
        Cmd::Compare { a, b, out } => {
            let path = bench::compare::write(&a, &b, out)
                .with_context(|| format!("comparing {} with {}", b.display(), a.display()))?;
            print!("{}", std::fs::read_to_string(&path).unwrap_or_default());
            eprintln!("bench: wrote {}", path.display());
            Ok(())
        }
        Cmd::Run(args) => {
            let RunArgs {
                preset,
                frontends,
                connections,
                workloads,
                duration,
                warmup,
                rounds,
                keys,
                loads,
                results,
                run_id,
                bin_dir,
                no_build,
                memcached,
                cores,
                note,
                disk_probe_mib,
            } = *args;
            let mut m = match preset {
                Preset::Default => Matrix::default_matrix(),
                Preset::Full => Matrix::full_matrix(),
                Preset::Cluster => Matrix::cluster_matrix(),
            };
            let mut notes = note;
            let mut changed = Vec::new();
            if let Some(f) = frontends.filter(|s| !s.trim().is_empty()) {
                m.frontends = parse_list::<Frontend>(&f)?;
                changed.push(format!("front-ends {f}"));
            }
            if let Some(c) = connections.filter(|s| !s.trim().is_empty()) {
                m.connections = parse_list::<usize>(&c)?;
                // The connections given apply to every workload.
                m.workload_connections.clear();
                changed.push(format!("connections {c}"));
            }
            if let Some(r) = rounds {
                m.rounds = r;
                changed.push(format!("rounds {r}"));
            }
            if let Some(k) = keys {
                for w in &mut m.workloads {
                    w.keys = k;
                }
                changed.push(format!("key space {k}"));
            }
            if let Some(w) = workloads.filter(|s| !s.trim().is_empty()) {
                m.workloads = w
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(Workload::named)
                    .collect::<Result<_, _>>()?;
                changed.push(format!("workloads {w}"));
            }
            if let Some(d) = duration.filter(|s| !s.trim().is_empty()) {
                m.duration_s = seconds(&d)?;
                changed.push(format!("duration {} s", m.duration_s));
            }
            if let Some(d) = warmup.filter(|s| !s.trim().is_empty()) {
                m.warmup_s = seconds(&d)?;
                changed.push(format!("warm-up {} s", m.warmup_s));
            }
            if let Some(l) = loads.filter(|s| !s.trim().is_empty()) {
                if l.trim() == "none" {
                    m.open_loop = None;
                } else {
                    let pct = parse_list::<u32>(&l)?;
                    let open = m.open_loop.get_or_insert_with(|| OpenLoop {
                        loads_pct: Vec::new(),
                        connections: 16,
                        pipeline: 8,
                        workloads: vec!["read-heavy".into()],
                    });
                    open.loads_pct = pct;
                }
                changed.push(format!("open-loop loads {l}"));
            }
            if !changed.is_empty() {
                notes.push(format!(
                    "changed from the `{}` preset: {}.",
                    m.name,
                    changed.join("; ")
                ));
                m.name = format!("{} (changed)", m.name);
            }
            let bin_dir = match bin_dir {
                Some(d) => d,
                None => std::env::current_exe()
                    .context("locating this binary")?
                    .parent()
                    .map(PathBuf::from)
                    .context("this binary has no directory")?,
            };
            let cores = cores.map(|c| parse_list::<usize>(&c)).transpose()?;
            let dir = bench::runner::run(RunOptions {
                matrix: m,
                results,
                run_id,
                bin_dir,
                build: !no_build,
                memcached,
                cores,
                notes,
                disk_probe_bytes: disk_probe_mib << 20,
            })?;
            println!("{}", dir.join("REPORT.md").display());
            Ok(())
        }
    }
}
