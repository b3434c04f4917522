//! A short verified run against a live server, in each protocol: what the
//! tests of both front-ends, and the test against memcached itself, run to
//! show that the generator and a server understand each other. Every value
//! read is checked against what was written (`--verify`), every reply must
//! fit its request, and every kind of operation must have been answered.

use crate::config::{OpKind, Protocol, RunConfig};
use crate::run::run;
use crate::summary::Summary;

/// The flags of each run, after `--server ADDR --protocol P`: a mix of every
/// operation over a small key space, preloaded, with values of several sizes
/// and a few requests in flight per connection.
pub const CHECK_ARGS: &[&str] = &[
    "--threads",
    "2",
    "--connections",
    "8",
    "--pipeline",
    "4",
    "--duration",
    "1s",
    "--warmup",
    "200ms",
    "--keys",
    "2000",
    "--key-size",
    "12",
    "--value-size",
    "16-300",
    "--mix",
    "get=60,set=20,mget=10,delete=10",
    "--mget-keys",
    "4",
    "--preload",
    "--verify",
    "--timeout",
    "5s",
    "--quiet",
];

/// Runs [`CHECK_ARGS`] against `server` (host:port) once per protocol and
/// returns the summaries, or what went wrong: an error, a failed run, any
/// error count above zero, or an operation that was never answered.
pub fn check_server(server: &str) -> Result<Vec<(Protocol, Summary)>, String> {
    let mut done = Vec::new();
    for protocol in [Protocol::Classic, Protocol::Meta] {
        let name = protocol.to_string();
        let mut args = vec!["--server", server, "--protocol", &name];
        args.extend_from_slice(CHECK_ARGS);
        let cfg = RunConfig::from_args(&args).map_err(|e| e.to_string())?;
        let outcome = run(cfg).map_err(|e| format!("{protocol}: {e}"))?;
        let s = outcome.summary;
        if let Some(why) = outcome.failure {
            return Err(format!("{protocol}: run failed: {why}"));
        }
        if s.errors_total > 0 || !s.verify_failures.is_empty() {
            return Err(format!(
                "{protocol}: errors {:?}, wrong values {:?}",
                s.errors, s.verify_failures
            ));
        }
        if s.preload.as_ref().is_none_or(|p| p.failed > 0) {
            return Err(format!("{protocol}: preload {:?}", s.preload));
        }
        for kind in OpKind::ALL {
            let c = &s.operations[kind.name()].counters;
            if c.completed == 0 || c.timeouts > 0 || c.errors > 0 {
                return Err(format!("{protocol} {kind}: {c:?}"));
            }
        }
        // Preloaded keys are found: reads hit (deletes make some miss).
        for kind in [OpKind::Get, OpKind::Mget] {
            let c = &s.operations[kind.name()].counters;
            if c.hits == 0 {
                return Err(format!("{protocol} {kind}: no hits in {c:?}"));
            }
        }
        done.push((protocol, s));
    }
    Ok(done)
}
