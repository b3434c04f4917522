//! The shared memcached conformance suite against this front-end, started
//! in-process. The event-loop front-end runs the same suite: passing it is
//! what "the same replies, byte for byte" means. With durability `always`
//! every write's reply waits for its sync before it is sent.

mod common;

use common::InProcess;

#[test]
fn conformance_suite_passes() {
    let server = InProcess::start(4, |_| {});
    let report = testkit::conformance::run(server.addr).expect("suite ran");
    assert!(report.ok(), "{report}");
    server.stop();
}

#[test]
fn conformance_suite_passes_with_durability_always() {
    let server = InProcess::start_with(4, engine::Durability::Always, |_| {});
    let report = testkit::conformance::run(server.addr).expect("suite ran");
    assert!(report.ok(), "{report}");
    server.stop();
}
