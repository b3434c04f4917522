//! `loadgen` command line: `loadgen run ...` and `loadgen merge ...`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loadgen::config::RunConfig;
use loadgen::summary::table;

/// A memcached load generator: closed or open loop (coordinated omission
/// corrected), HdrHistogram output (.hgrm, .hlog, summary.json), value
/// verification. Logging: RUST_LOG (e.g. RUST_LOG=loadgen=debug).
///
/// Exit status: 0 done; 1 could not run (bad flags, could not connect, I/O);
/// 3 errors above --max-errors, or a wrong value under --verify.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive servers for --duration and record latency.
    Run(Box<RunConfig>),
    /// Combine .hlog files of runs made at the same time into one summary and .hgrm files.
    Merge {
        /// Output directory for summary.json and *.hgrm.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Interval logs (latency.hlog of each run).
        #[arg(required = true, value_name = "HLOG")]
        inputs: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run(cfg) => match loadgen::run::run(*cfg) {
            Ok(outcome) => {
                print!("{}", table(&outcome.summary));
                for f in &outcome.summary.verify_failures {
                    eprintln!("wrong value: key {} ({}): {}", f.key, f.op, f.detail);
                }
                match outcome.failure {
                    Some(why) => {
                        eprintln!("loadgen: run failed: {why}");
                        ExitCode::from(3)
                    }
                    None => ExitCode::SUCCESS,
                }
            }
            Err(e) => {
                eprintln!("loadgen: {e}");
                ExitCode::from(1)
            }
        },
        Command::Merge { out, inputs } => match loadgen::merge::merge(&out, &inputs) {
            Ok(summary) => {
                print!("{}", table(&summary));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen: {e}");
                ExitCode::from(1)
            }
        },
    }
}
