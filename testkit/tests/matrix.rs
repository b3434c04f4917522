//! One test matrix over every front-end configuration and durability: the
//! conformance table and libmemcached's `memccapable -a` against
//! {threadpool, eventloop-reuseport, eventloop-dispatch} x {none, always},
//! each a separate server process started with the same flags.

use testkit::conformance::{run_with, RunOptions};
use testkit::{Frontend, Server};

const DURABILITIES: [&str; 2] = ["none", "always"];

#[test]
fn conformance_table_on_every_front_end_and_durability() {
    // The clock-bound cases (expiry, delayed flush) run in the front-ends'
    // own conformance tests; here every configuration gets the rest.
    let options = RunOptions {
        include_slow: false,
        ..RunOptions::default()
    };
    let mut failed = Vec::new();
    for f in Frontend::OURS {
        for d in DURABILITIES {
            let server = Server::start(f, &["--durability", d]).expect("starts");
            let report = run_with(server.addr, &options).expect("suite runs");
            if !report.ok() {
                failed.push(format!("{} / {d}: {report}", f.name()));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn memccapable_on_every_front_end_and_durability() {
    if testkit::memccapable::tool().is_none() {
        testkit::missing_tool("memccapable not installed (apt-get install libmemcached-tools)");
        return;
    }
    let mut failed = Vec::new();
    for f in Frontend::OURS {
        for d in DURABILITIES {
            let server = Server::start(f, &["--durability", d]).expect("starts");
            let report = testkit::memccapable::run(server.addr, 10)
                .expect("tool found above")
                .expect("memccapable runs");
            if !report.ok() {
                failed.push(format!("{} / {d}: {report}", f.name()));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
