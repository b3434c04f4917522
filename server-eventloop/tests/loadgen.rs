//! The load generator's verified run in each protocol against the event-loop
//! server, in both accept modes: every value read back is the one written,
//! every reply fits its request.

mod common;

use common::InProcess;
use engine::Durability;
use server_eventloop::AcceptMode;

#[test]
fn loadgen_reads_back_what_it_wrote() {
    for mode in [AcceptMode::ReusePort, AcceptMode::Dispatch] {
        let server = InProcess::start(mode, Durability::None);
        if let Err(e) = loadgen::check::check_server(&server.addr.to_string()) {
            panic!("accept {mode}: {e}");
        }
        server.stop();
    }
}
