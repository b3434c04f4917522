//! The binary's life cycle: SIGTERM stops it cleanly (exit 0, data kept),
//! a second signal ends a shutdown that is waiting on a client at once.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use common::{connect, round_trip, ServerProcess};

#[test]
fn sigterm_stops_cleanly_and_keeps_the_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProcess::start(dir.path(), &["--threads", "2"]);
    let mut c = connect(server.addr);
    assert_eq!(
        round_trip(&mut c, b"set kept 5 0 3\r\nabc\r\n", b"\r\n"),
        b"STORED\r\n"
    );
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(status.success(), "exit status {status:?}");

    let restarted = ServerProcess::start(dir.path(), &["--accept", "dispatch"]);
    let mut c = connect(restarted.addr);
    assert_eq!(
        round_trip(&mut c, b"get kept\r\n", b"END\r\n"),
        b"VALUE kept 5 3\r\nabc\r\nEND\r\n"
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProcess::start(dir.path(), &["--threads", "1"]);
    let mut c = connect(server.addr);
    let mut set = b"set big 0 0 100000\r\n".to_vec();
    set.resize(set.len() + 100_000, b'x');
    set.extend_from_slice(b"\r\n");
    assert_eq!(round_trip(&mut c, &set, b"\r\n"), b"STORED\r\n");
    // A client that asks for far more than the socket buffers hold and never
    // reads keeps the shutdown waiting for its replies.
    c.set_write_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let gets = b"get big\r\n".repeat(1000);
    for _ in 0..200 {
        match c.write_all(&gets) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    // Wait for the first reply to start: the server has then parsed a
    // batch of gets whose replies (100 KB each) cannot all fit in the socket
    // buffers. Signalling earlier races a slow server, which may not have
    // read any request yet and then rightly has nothing to wait for.
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut first = [0u8; 5];
    c.read_exact(&mut first).expect("the first reply starts");
    assert_eq!(&first, b"VALUE");
    server.signal(libc::SIGTERM);
    assert!(
        server.wait_exit(Duration::from_millis(500)).is_none(),
        "the first signal should wait for the stuck client's replies"
    );
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(server_eventloop::FORCED_EXIT_CODE));
}
