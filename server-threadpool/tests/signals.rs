//! Signals on the built binary: the first SIGTERM waits for the request in
//! hand, a second one exits at once.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Client, ServerProcess};

/// A reply this large cannot fit the socket buffers, so a client that does
/// not read keeps its worker blocked in a write.
const VALUE_LEN: usize = 512 * 1024;
const GETS: usize = 64;

#[test]
fn second_signal_exits_at_once_while_a_reply_is_stuck() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProcess::start(dir.path(), &["--threads", "2"]);
    let mut writer = Client::connect(server.addr);
    let value = "v".repeat(VALUE_LEN);
    writer.set("big", &value);

    // Asks for ~32 MiB of replies and never reads them.
    let mut stuck = Client::connect(server.addr);
    stuck
        .stream()
        .write_all("get big\r\n".repeat(GETS).as_bytes())
        .expect("send gets");
    // Wait for the first reply to start, so a worker holds the rest of the
    // replies (which the socket buffers cannot take) when the signal comes;
    // a fixed sleep raced a slow machine.
    let mut first = [0u8; 5];
    stuck
        .stream()
        .read_exact(&mut first)
        .expect("the first reply starts");
    assert_eq!(&first, b"VALUE");

    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.wait_exit_within(Duration::ZERO).is_none(),
        "the first signal waits for the reply in hand"
    );
    let second = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(1), "second signal: {status:?}");
    assert!(second.elapsed() < Duration::from_secs(5));
    drop(stuck);
}
