//! The shared memcached conformance suite against this front-end, started
//! in-process. The event-loop front-end runs the same suite: passing it is
//! what "the same replies, byte for byte" means.

mod common;

use common::InProcess;

#[test]
fn conformance_suite_passes() {
    let server = InProcess::start(4, |_| {});
    let report = service::conformance::run(server.addr).expect("suite ran");
    assert!(report.ok(), "{report}");
    server.stop();
}
