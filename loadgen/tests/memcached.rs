//! The generator against memcached itself (when installed; CI installs it):
//! a verified run in each protocol, where every value read back must be the
//! one written and every reply must fit its request.

use testkit::reference::{self, Memcached, MEMCACHED};

#[test]
fn verified_runs_against_memcached_in_both_protocols() {
    let Some(binary) = reference::find() else {
        testkit::missing_tool(&format!(
            "{MEMCACHED} not found; loadgen was not checked against memcached"
        ));
        return;
    };
    let server = Memcached::start(binary, 2).expect("start memcached");
    let runs = loadgen::check::check_server(&server.addr.to_string())
        .unwrap_or_else(|e| panic!("against memcached: {e}"));
    assert_eq!(runs.len(), 2, "one run per protocol");
}
