//! Runs the memcached conformance suite against a running server:
//! `conformance 127.0.0.1:11211`. Exits non-zero when a case fails.
//! `--no-flush` leaves out the cases that empty the server (`flush_all`),
//! `--fast` the ones that wait on the clock, `--only <text>` runs the cases
//! whose name contains it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use testkit::conformance::{run_with, RunOptions};

fn main() -> ExitCode {
    let mut options = RunOptions::default();
    let mut addr: Option<SocketAddr> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-flush" => options.include_flush = false,
            "--fast" => options.include_slow = false,
            "--only" => options.filter = args.next(),
            "-h" | "--help" => {
                println!("usage: conformance [--no-flush] [--fast] [--only <text>] <host:port>");
                return ExitCode::SUCCESS;
            }
            other => match other.to_socket_addrs().ok().and_then(|mut a| a.next()) {
                Some(a) => addr = Some(a),
                None => {
                    eprintln!("conformance: not an address: {other}");
                    return ExitCode::from(2);
                }
            },
        }
    }
    let addr = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 11211)));
    match run_with(addr, &options) {
        Ok(report) => {
            println!("{report}");
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::from(2)
        }
    }
}
