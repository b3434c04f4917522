//! The load generator's verified run, in each protocol, over the test
//! matrix: every value read back is the one written, every reply fits its
//! request.

use testkit::Server;

#[test]
fn loadgen_reads_back_what_it_wrote() {
    for (f, d) in testkit::matrix() {
        let server = Server::start(f, &["--durability", d]).expect("starts");
        if let Err(e) = loadgen::check::check_server(&server.addr.to_string()) {
            panic!("{} / {d}: {e}", f.name());
        }
    }
}
