//! `make hostile`: every attack of the hostile-client suite against both
//! front-ends (and memcached, when installed), one line each; exits 1 if
//! one of ours fails. `HOSTILE_SECONDS` sets each attack's length (default 5).

use std::process::ExitCode;

use testkit::hostile::{self, ATTACKS, P99_BOUND, RSS_BOUND};
use testkit::Frontend;

fn main() -> ExitCode {
    let seconds: f64 = std::env::var("HOSTILE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    println!(
        "hostile clients, {seconds} s each; pass: the well-behaved client sees no error and a p99 under {} ms, anonymous RSS grows at most {} MiB, the server is up at the end",
        P99_BOUND.as_millis(),
        RSS_BOUND >> 20
    );
    let mut failed = 0;
    for attack in ATTACKS {
        for f in [
            Frontend::Threadpool,
            Frontend::EventloopReuseport,
            Frontend::Memcached,
        ] {
            match hostile::run(f, attack, seconds) {
                Some(o) => {
                    println!("{}", o.line());
                    if f != Frontend::Memcached && !o.passed() {
                        failed += 1;
                    }
                }
                None => println!(
                    "{attack:<16} {:<20} skipped: memcached is not installed",
                    f.name()
                ),
            }
        }
    }
    if failed > 0 {
        eprintln!("hostile: {failed} attack(s) failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
