//! Restarts over the test matrix: a graceful stop (SIGTERM, exit 0, an idle
//! client does not hold it up) keeps every write, and with durability
//! `always` so does SIGKILL, because a write is acknowledged only once it
//! is synced. Each store is reopened by the next front-end of the list, so
//! every front-end reads what another wrote.

use std::time::Duration;

use testkit::{Client, Frontend, Server};

const KEYS: usize = 200;
const EXIT_WAIT: Duration = Duration::from_secs(30);

fn write_keys(client: &mut Client, tag: &str) {
    for i in 0..KEYS {
        let value = format!("value-{tag}-{i}");
        assert_eq!(
            client
                .set(&format!("{tag}-{i}"), value.as_bytes())
                .expect("set"),
            "STORED\r\n"
        );
    }
}

fn check_keys(server: &Server, tag: &str, cell: &str) {
    let mut client = server.client();
    for i in 0..KEYS {
        assert_eq!(
            client.get(&format!("{tag}-{i}")).expect("get"),
            Some(format!("value-{tag}-{i}").into_bytes()),
            "{cell}: key {tag}-{i} after the restart on {}",
            server.frontend.name()
        );
    }
}

/// The front-end after `f` in [`Frontend::OURS`], round.
fn next(f: Frontend) -> Frontend {
    let at = Frontend::OURS.iter().position(|&o| o == f).expect("ours");
    Frontend::OURS[(at + 1) % Frontend::OURS.len()]
}

#[test]
fn sigterm_keeps_every_write_and_sigkill_every_acknowledged_one() {
    for (f, d) in testkit::matrix() {
        let cell = format!("{} / {d}", f.name());
        let dir = tempfile::tempdir().expect("temp dir");
        let flags = ["--threads", "4", "--durability", d];

        let mut server = Server::start_in(f, dir.path(), &flags);
        for part in [
            format!("listening on {}, ", server.addr),
            format!("data dir {}, ", dir.path().display()),
            format!("model {}, ", f.model()),
            "4 ".to_string(),
        ] {
            assert!(
                server.startup.contains(&part),
                "{cell}: {:?} lacks {part:?}",
                server.startup
            );
        }
        let mut client = server.client();
        // `--listen` asked for port 0; the settings name the port in use.
        assert_eq!(
            client.setting("tcpport"),
            server.addr.port().to_string(),
            "{cell}"
        );
        write_keys(&mut client, "term");
        // A connected, idle client must not hold the shutdown up.
        let status = server
            .terminate(EXIT_WAIT)
            .unwrap_or_else(|| panic!("{cell}: no exit within {EXIT_WAIT:?} of SIGTERM"));
        assert!(
            status.success(),
            "{cell}: exit status after SIGTERM: {status:?}"
        );
        assert!(
            client
                .stream()
                .peek(&mut [0u8; 1])
                .map(|n| n == 0)
                .unwrap_or(true),
            "{cell}: the idle connection is closed by the shutdown"
        );

        let mut server = Server::start_in(next(f), dir.path(), &flags);
        check_keys(&server, "term", &cell);
        if d != "always" {
            continue;
        }
        write_keys(&mut server.client(), "kill");
        server.kill();
        let server = Server::start_in(f, dir.path(), &flags);
        check_keys(&server, "kill", &cell);
    }
}
