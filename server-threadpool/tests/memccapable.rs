//! libmemcached's `memccapable -a` (its 27 ASCII protocol tests) against a
//! fresh server. Skipped, with a note, where the tool is not installed.

mod common;

use common::ServerProcess;

#[test]
fn memccapable_ascii_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(dir.path(), &["--threads", "4"]);
    let Some(report) = testkit::memccapable::run(server.addr, 5) else {
        testkit::missing_tool("memccapable not installed (apt-get install libmemcached-tools)");
        return;
    };
    let report = report.expect("run memccapable");
    assert!(report.ok(), "{report}");
    server.kill();
}
