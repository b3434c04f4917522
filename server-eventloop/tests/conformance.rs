//! The shared memcached conformance suite and libmemcached's `memccapable -a`
//! against this front-end, in both accept modes. Durability `always` in
//! dispatch mode sends every write's reply through the sync completion path.

mod common;

use common::InProcess;
use engine::Durability;
use server_eventloop::AcceptMode;
use testkit::conformance::{run_with, RunOptions};

#[test]
fn conformance_suite_in_reuseport_mode() {
    let server = InProcess::start(
        AcceptMode::ReusePort,
        Durability::Interval(engine::DEFAULT_SYNC_INTERVAL),
    );
    let report = run_with(server.addr, &RunOptions::default()).expect("suite runs");
    assert!(report.ok(), "{report}");
    server.stop();
}

#[test]
fn conformance_suite_in_dispatch_mode_with_durability_always() {
    let server = InProcess::start(AcceptMode::Dispatch, Durability::Always);
    let report = run_with(server.addr, &RunOptions::default()).expect("suite runs");
    assert!(report.ok(), "{report}");
    server.stop();
}

#[test]
fn memccapable_ascii_passes_in_both_modes() {
    if testkit::memccapable::tool().is_none() {
        testkit::missing_tool("memccapable not installed (apt-get install libmemcached-tools)");
        return;
    }
    for (mode, durability) in [
        (AcceptMode::ReusePort, Durability::None),
        (AcceptMode::Dispatch, Durability::Always),
    ] {
        let server = InProcess::start(mode, durability);
        let report = testkit::memccapable::run(server.addr, 10)
            .expect("tool found above")
            .expect("run memccapable");
        assert!(report.ok(), "{mode}: {report}");
        server.stop();
    }
}
