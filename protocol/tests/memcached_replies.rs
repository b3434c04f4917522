//! The decoder's error replies checked against memcached 1.6.18 itself:
//! each input below is rejected as a whole, so the bytes memcached sends for
//! it must equal the concatenated `reply()` of our errors. Skipped (with a
//! message) when no memcached binary is installed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use protocol::{Decoder, Frame, Limits, Request};

const MEMCACHED: &str = "/usr/bin/memcached";

/// Inputs that memcached and our decoder both reject entirely (a data block
/// read as a command included).
fn inputs() -> Vec<Vec<u8>> {
    let long_key = "k".repeat(251);
    let mut v: Vec<Vec<u8>> = [
        &b"get\r\n"[..],
        b"gets \r\n",
        b"foo\r\n",
        b"\r\n",
        b"x\r\n",
        b"GET\r\n",
        b"set a 0 0\r\n",
        b"set a 0 0 1 2 3\r\n",
        b"set a 0 0 abc\r\nabc\r\n",
        b"set a 0 0 abc noreply\r\nabc\r\n",
        b"set a 0 0 -1\r\n",
        b"set a -1 0 1\r\na\r\n",
        b"cas a 0 0 1\r\nx\r\n",
        b"cas a 0 0 1 x\r\nx\r\n",
        b"delete a 1\r\n",
        b"delete a x y\r\n",
        b"delete\r\n",
        b"incr a\r\n",
        b"incr a x\r\n",
        b"incr a -1\r\n",
        b"incr a 18446744073709551616\r\n",
        b"incr a x noreply\r\n",
        b"touch a x\r\n",
        b"touch a x noreply\r\n",
        b"gat x a\r\n",
        b"gat\r\n",
        b"flush_all x\r\n",
        b"flush_all noreply 5\r\n",
        b"verbosity\r\n",
        b"verbosity x\r\n",
        b"verbosity noreply\r\n",
        b"gxx a HTTP/1.1\r\n",
        b"mg\r\n",
        b"mx\r\n",
        b"mg a z\r\n",
        b"mg a v v\r\n",
        b"mg a Tx\r\n",
        b"md k Cx\r\n",
        b"md k q q\r\n",
        b"ms a\r\n",
        b"ms a x\r\nxy\r\n",
        b"ms a 2 z\r\nxy\r\n",
        b"ms a 2 MZ\r\nxy\r\n",
        b"ms a 2 M\r\nxy\r\n",
        b"ms a 2 F-1\r\nxy\r\n",
        b"ms a 2 Tx\r\nxy\r\n",
        b"ms a 2 q\r\nxyz\r\n",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    v.push(format!("get a {long_key} b\r\n").into_bytes());
    v.push(format!("set {long_key} 0 0 5\r\nhello\r\n").into_bytes());
    v.push(format!("delete {long_key} noreply\r\n").into_bytes());
    v.push(format!("incr {long_key} 1\r\n").into_bytes());
    v.push(format!("mg {long_key} v\r\n").into_bytes());
    v.push(format!("mg k O{}\r\n", "a".repeat(32)).into_bytes());
    v.push(b"set a 0 0 3\r\nabcde\r\n".to_vec());
    v.push(b"set a 0 0 3 noreply\r\nabcde\r\n".to_vec());
    let big = 2_000_000;
    let mut too_large = format!("set a 0 0 {big}\r\n").into_bytes();
    too_large.extend(std::iter::repeat_n(b'x', big));
    too_large.extend_from_slice(b"\r\n");
    v.push(too_large);
    v
}

/// What our decoder says memcached sends for `input`, which must decode to
/// errors (and swallowed data) only.
fn predicted(input: &[u8]) -> Vec<u8> {
    let mut d = Decoder::new(Limits::default());
    let (mut pos, mut out) = (0, Vec::new());
    while pos < input.len() {
        match d.decode(&input[pos..]) {
            Ok(Some((Frame::Discarded, used))) => pos += used,
            Err(e) => {
                assert!(!e.close, "{input:?}");
                out.extend_from_slice(e.reply());
                pos += e.consumed;
            }
            other => panic!("{:?} decoded as {other:?}", String::from_utf8_lossy(input)),
        }
    }
    out
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start() -> Option<(Server, u16)> {
    if !std::path::Path::new(MEMCACHED).exists() {
        eprintln!("{MEMCACHED} not installed: skipping the comparison");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut cmd = Command::new(MEMCACHED);
    cmd.args([
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-t",
        "1",
    ]);
    // memcached refuses to run as root without -u.
    if std::env::var("USER").as_deref() == Ok("root")
        || std::env::var("HOME").as_deref() == Ok("/root")
    {
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((server, port));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("memcached did not start on port {port}");
}

/// Sends `input` then `version`, and returns what came back before the
/// version reply.
fn exchange(port: u16, input: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(input).expect("send");
    s.write_all(b"version\r\n").expect("send");
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    loop {
        if let Some(at) = got.windows(8).position(|w| w == b"VERSION ") {
            if got[at..].ends_with(b"\r\n") {
                got.truncate(at);
                return got;
            }
        }
        let n = s.read(&mut buf).expect("read reply");
        assert!(n > 0, "memcached closed the connection after {input:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn error_replies_match_memcached() {
    let Some((_server, port)) = start() else {
        return;
    };
    for input in inputs() {
        let shown = String::from_utf8_lossy(&input[..input.len().min(80)]).into_owned();
        assert_eq!(
            String::from_utf8_lossy(&exchange(port, &input)),
            String::from_utf8_lossy(&predicted(&input)),
            "input {shown:?}"
        );
    }
    // Sanity: the sentinel itself decodes as a request.
    let mut d = Decoder::new(Limits::default());
    assert_eq!(
        d.decode(b"version\r\n").unwrap(),
        Some((Frame::Request(Request::Version), 9))
    );
}
