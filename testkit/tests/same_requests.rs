//! Both front-ends (in every accept mode), started with the same flags,
//! behave alike and as memcached does: the same request lines accepted (a
//! multi-get line of about 100 KB) or refused (a line that never ends), the
//! same argument errors, the same admission and refusal at the connection
//! limit (over the wire and in `stats`), the same clean shutdown.

use std::io::Read;
use std::time::Duration;

use testkit::{Frontend, Server};

/// Replies to `request`, read until `end` or the connection closes.
fn exchange(server: &Server, request: &[u8], end: &[u8]) -> (Vec<u8>, bool) {
    let mut c = server.client();
    c.stream()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.send(request).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match c.stream().read(&mut buf) {
            Ok(0) | Err(_) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.ends_with(end) {
            return (got, false);
        }
    }
}

fn servers() -> Vec<Server> {
    let mut v: Vec<Server> = Frontend::OURS
        .iter()
        .map(|f| Server::start(*f, &[]).expect("starts"))
        .collect();
    match Server::start(Frontend::Memcached, &[]) {
        Some(m) => v.push(m),
        None if testkit::required_in_ci() => panic!("memcached is not installed (CI installs it)"),
        None => eprintln!("memcached not installed: comparing the front-ends with each other only"),
    }
    v
}

#[test]
fn a_multi_get_line_of_100_kb_is_answered_by_every_server() {
    let mut line = b"get".to_vec();
    for i in 0..12_000 {
        line.extend_from_slice(format!(" key{i:05}").as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    assert!(line.len() > 100_000);
    for s in servers() {
        let mut c = s.client();
        assert_eq!(c.set("key00007", b"seven").expect("set"), "STORED\r\n");
        let (reply, closed) = exchange(&s, &line, b"END\r\n");
        assert!(!closed, "{:?} closed the connection", s.frontend);
        assert_eq!(
            reply, b"VALUE key00007 0 5\r\nseven\r\nEND\r\n",
            "{:?}",
            s.frontend
        );
    }
}

#[test]
fn argument_errors_and_endless_lines_are_answered_alike() {
    let cases: [(&[u8], &[u8]); 4] = [
        (b"verbosity abc\r\n", b"\r\n"),
        (b"verbosity\r\n", b"\r\n"),
        (b"flush_all abc\r\n", b"\r\n"),
        (b"incr k abc\r\n", b"\r\n"),
    ];
    let all = servers();
    for (request, end) in cases {
        let replies: Vec<(Frontend, Vec<u8>)> = all
            .iter()
            .map(|s| (s.frontend, exchange(s, request, end).0))
            .collect();
        for (f, r) in &replies[1..] {
            assert_eq!(
                String::from_utf8_lossy(r),
                String::from_utf8_lossy(&replies[0].1),
                "{:?} vs {:?} on {:?}",
                f,
                replies[0].0,
                String::from_utf8_lossy(request)
            );
        }
    }
    for s in &all {
        let (_, closed) = exchange(s, &[b'x'; 4096], b"\r\n");
        assert!(closed, "{:?} keeps a 4 KB line without newline", s.frontend);
    }
}

#[test]
fn admission_and_refusal_at_the_limit_are_the_same() {
    for f in Frontend::OURS {
        let server = Server::start(f, &["--max-connections", "3"]).expect("starts");
        let mut held: Vec<testkit::Client> = (0..3).map(|_| server.client()).collect();
        for c in &mut held {
            assert_eq!(c.line("version"), "VERSION 1.6.18\r\n", "{f:?}");
        }
        // The fourth is told why, then closed (no reset overtaking the line).
        let (reply, closed) = exchange(&server, b"version\r\n", b"never");
        assert!(closed, "{f:?}");
        assert_eq!(
            reply,
            service::TOO_MANY_CONNECTIONS,
            "{f:?}: {:?}",
            String::from_utf8_lossy(&reply)
        );
        let c = &mut held[0];
        assert_eq!(c.stat("rejected_connections"), "1", "{f:?}");
        assert_eq!(c.stat("curr_connections"), "3", "{f:?}");
        drop(held);
    }
}

#[test]
fn sigterm_stops_both_cleanly_after_the_replies_in_hand() {
    for f in Frontend::OURS {
        let mut server = Server::start(f, &[]).expect("starts");
        let mut c = server.client();
        assert_eq!(c.set("k", b"v").expect("set"), "STORED\r\n");
        let status = server
            .terminate(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{f:?} did not stop within 15 s"));
        assert!(status.success(), "{f:?}: {status}");
    }
}
