//! The built binary across restarts: a graceful stop (SIGTERM) keeps every
//! write, and with durability `always` so does SIGKILL, because a write is
//! acknowledged only once it is synced.

mod common;

use std::time::Duration;

use common::{Client, ServerProcess};

const KEYS: usize = 200;
const EXIT_WAIT: Duration = Duration::from_secs(30);

fn write_keys(client: &mut Client, tag: &str) {
    for i in 0..KEYS {
        client.set(&format!("{tag}-{i}"), &format!("value-{tag}-{i}"));
    }
}

fn check_keys(client: &mut Client, tag: &str) {
    for i in 0..KEYS {
        assert_eq!(
            client.get(&format!("{tag}-{i}")).as_deref(),
            Some(format!("value-{tag}-{i}").as_str()),
            "key {tag}-{i} after restart"
        );
    }
}

#[test]
fn sigterm_exits_zero_and_keeps_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProcess::start(dir.path(), &["--threads", "4"]);
    for part in [
        format!("listening on {}", server.addr),
        format!("data dir {}", dir.path().display()),
        "model threadpool".to_string(),
        "4 workers".to_string(),
    ] {
        assert!(
            server.startup.contains(&part),
            "{:?} lacks {part:?}",
            server.startup
        );
    }
    let mut client = Client::connect(server.addr);
    write_keys(&mut client, "term");
    // A connected, idle client must not hold the shutdown up.
    server.signal("TERM");
    let status = server.wait_exit(EXIT_WAIT);
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    assert!(
        client
            .stream()
            .peek(&mut [0u8; 1])
            .map(|n| n == 0)
            .unwrap_or(true),
        "the idle connection is closed by the shutdown"
    );

    let server = ServerProcess::start(dir.path(), &["--threads", "4"]);
    check_keys(&mut Client::connect(server.addr), "term");
    server.kill();
}

#[test]
fn sigkill_keeps_acknowledged_writes_with_durability_always() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = ["--threads", "4", "--durability", "always"];
    let server = ServerProcess::start(dir.path(), &flags);
    let mut client = Client::connect(server.addr);
    write_keys(&mut client, "kill");
    server.kill();

    let server = ServerProcess::start(dir.path(), &flags);
    check_keys(&mut Client::connect(server.addr), "kill");
    server.kill();
}
