//! Memory over the test matrix: a connection's memory stays bounded
//! whatever the client sends. An oversized value is swallowed as it streams
//! in, and a long pipeline of large replies goes out in bounded pieces.
//! Measured as the growth of the server process's peak resident set
//! (VmHWM).

use std::io::Read;

use testkit::Server;

const MIB: usize = 1 << 20;
/// Allowed growth of the peak RSS while 64 MiB stream in or 32 MiB stream
/// out; buffering either whole would exceed it several times over.
const BOUND: u64 = 16 * MIB as u64;

#[test]
fn an_oversized_value_is_swallowed_without_buffering_it() {
    for (f, d) in testkit::matrix() {
        let cell = format!("{} / {d}", f.name());
        let server = Server::start(f, &["--threads", "2", "--durability", d]).expect("starts");
        let mut client = server.client();
        assert_eq!(client.set("before", b"ok").expect("set"), "STORED\r\n");
        let before = server.peak_rss();

        let len = 64 * MIB;
        client
            .send(format!("set huge 0 0 {len}\r\n").as_bytes())
            .expect("send");
        let chunk = vec![b'x'; 256 * 1024];
        for _ in 0..len / chunk.len() {
            client.send(&chunk).expect("send");
        }
        client.send(b"\r\n").expect("send");
        assert_eq!(
            client.read_until(b"\r\n").expect("reply"),
            b"SERVER_ERROR object too large for cache\r\n",
            "{cell}"
        );
        // The connection is still in step: the next request gets its reply.
        assert_eq!(
            client.get("before").expect("get"),
            Some(b"ok".to_vec()),
            "{cell}"
        );
        assert_eq!(client.get("huge").expect("get"), None, "{cell}");

        let grown = server.peak_rss().saturating_sub(before);
        assert!(grown < BOUND, "{cell}: peak RSS grew by {grown} bytes");
    }
}

#[test]
fn pipelined_large_replies_go_out_in_bounded_pieces() {
    for (f, d) in testkit::matrix() {
        let cell = format!("{} / {d}", f.name());
        let server = Server::start(f, &["--threads", "2", "--durability", d]).expect("starts");
        let mut client = server.client();
        let value = vec![b'v'; 512 * 1024];
        assert_eq!(client.set("large", &value).expect("set"), "STORED\r\n");
        let before = server.peak_rss();

        let gets = 64;
        client
            .send("get large\r\n".repeat(gets).as_bytes())
            .expect("send");
        let mut one = format!("VALUE large 0 {}\r\n", value.len()).into_bytes();
        one.extend_from_slice(&value);
        one.extend_from_slice(b"\r\nEND\r\n");
        let mut got = vec![0u8; one.len() * gets];
        client.stream().read_exact(&mut got).expect("all replies");
        assert!(
            got.chunks(one.len()).all(|reply| reply == one),
            "{cell}: a reply differs"
        );

        let grown = server.peak_rss().saturating_sub(before);
        assert!(grown < BOUND, "{cell}: peak RSS grew by {grown} bytes");
    }
}
