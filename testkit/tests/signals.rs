//! Signals over the test matrix: the first SIGTERM waits for the replies in
//! hand, even to a client that does not read them; a second one ends the
//! wait at once with its own exit status.

use std::io::Read;
use std::time::{Duration, Instant};

use testkit::Server;

/// A reply this large cannot fit the socket buffers, so a client that does
/// not read keeps the server owing it replies.
const VALUE_LEN: usize = 512 * 1024;
const GETS: usize = 64;

#[test]
fn a_second_signal_exits_at_once_while_a_reply_is_stuck() {
    for (f, d) in testkit::matrix() {
        let cell = format!("{} / {d}", f.name());
        let mut server = Server::start(f, &["--threads", "2", "--durability", d]).expect("starts");
        let value = vec![b'v'; VALUE_LEN];
        assert_eq!(
            server.client().set("big", &value).expect("set"),
            "STORED\r\n"
        );

        // Asks for 32 MiB of replies and never reads them.
        let mut stuck = server.client();
        stuck
            .send("get big\r\n".repeat(GETS).as_bytes())
            .expect("send gets");
        // Wait for the first reply to start, so the server holds the rest
        // (which the socket buffers cannot take) when the signal comes; a
        // fixed sleep would race a slow machine.
        let mut first = [0u8; 5];
        stuck
            .stream()
            .read_exact(&mut first)
            .expect("the first reply starts");
        assert_eq!(&first, b"VALUE", "{cell}");

        assert!(
            server.terminate(Duration::from_millis(500)).is_none(),
            "{cell}: the first signal waits for the replies in hand"
        );
        let second = Instant::now();
        let status = server
            .terminate(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{cell}: the second signal did not end it"));
        assert_eq!(
            status.code(),
            Some(service::FORCED_EXIT_CODE),
            "{cell}: {status:?}"
        );
        assert!(second.elapsed() < Duration::from_secs(5), "{cell}");
        drop(stuck);
    }
}
