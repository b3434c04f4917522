//! One test matrix over every front-end configuration and durability: the
//! conformance table and libmemcached's `memccapable -a` against
//! {threadpool, eventloop-reuseport, eventloop-dispatch} x {none, always},
//! each a separate server process started with the same flags. The sibling
//! files run the rest of the matrix: restarts, signals, memory bounds, many
//! connections, the load generator's verified run.

use testkit::conformance::{run_with, RunOptions};
use testkit::{Frontend, Server};

#[test]
fn conformance_table_on_every_front_end_and_durability() {
    // The clock-bound cases (expiry, delayed flush) run once per front-end
    // below; here every configuration gets the rest.
    let options = RunOptions {
        include_slow: false,
        ..RunOptions::default()
    };
    let mut failed = Vec::new();
    for (f, d) in testkit::matrix() {
        let server = Server::start(f, &["--durability", d]).expect("starts");
        let report = run_with(server.addr, &options).expect("suite runs");
        if !report.ok() {
            failed.push(format!("{} / {d}: {report}", f.name()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn clock_bound_conformance_cases_on_every_front_end() {
    // They wait on the clock, not on the server: the front-ends run side by
    // side, with the default durability (expiry does not depend on it).
    let options = RunOptions::default();
    let runs: Vec<_> = Frontend::OURS
        .into_iter()
        .map(|f| {
            let options = options.clone();
            std::thread::spawn(move || {
                let server = Server::start(f, &[]).expect("starts");
                let report = run_with(server.addr, &options).expect("suite runs");
                (f, report.ok(), report.to_string())
            })
        })
        .collect();
    let failed: Vec<String> = runs
        .into_iter()
        .map(|t| t.join().expect("run"))
        .filter(|(_, ok, _)| !ok)
        .map(|(f, _, report)| format!("{}: {report}", f.name()))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn memccapable_on_every_front_end_and_durability() {
    if testkit::memccapable::tool().is_none() {
        testkit::missing_tool("memccapable not installed (apt-get install libmemcached-tools)");
        return;
    }
    let mut failed = Vec::new();
    for (f, d) in testkit::matrix() {
        let server = Server::start(f, &["--durability", d]).expect("starts");
        let report = testkit::memccapable::run(server.addr, 10)
            .expect("tool found above")
            .expect("memccapable runs");
        if !report.ok() {
            failed.push(format!("{} / {d}: {report}", f.name()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
