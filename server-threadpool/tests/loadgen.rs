//! The load generator's verified run in each protocol against the thread-pool
//! server: every value read back is the one written, every reply fits its
//! request.

mod common;

use common::InProcess;

#[test]
fn loadgen_reads_back_what_it_wrote() {
    // More workers than the run's connections: each one holds a worker.
    let server = InProcess::start(16, |_| {});
    if let Err(e) = loadgen::check::check_server(&server.addr.to_string()) {
        panic!("{e}");
    }
    server.stop();
}
