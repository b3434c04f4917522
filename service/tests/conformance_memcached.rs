//! Keeps the conformance table honest: runs the whole suite against the real
//! memcached (1.6.18 is the reference) when its binary is installed. Every
//! case must pass there before it may be used to judge our front-ends.

use testkit::reference::{self, Memcached, MEMCACHED};

#[test]
fn every_case_passes_against_memcached() {
    let Some(binary) = reference::find() else {
        testkit::missing_tool(&format!(
            "{MEMCACHED} not found; the conformance table was not checked against memcached"
        ));
        return;
    };
    let server = Memcached::start(binary, 2).expect("start memcached");
    let report = testkit::conformance::run(server.addr).expect("suite runs");
    println!("{report}");
    assert!(
        report.ok(),
        "memcached disagrees with the conformance table:\n{report}"
    );
    assert!(
        report.passed.len() > 50,
        "suspiciously few cases ran: {}",
        report.passed.len()
    );
    // Runs a second time against the same server: the key prefix keeps runs apart.
    let again = testkit::conformance::run(server.addr).expect("suite runs");
    assert!(again.ok(), "second run against memcached failed:\n{again}");
}
