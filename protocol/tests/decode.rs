//! Per-command decoder tests with exact bytes. Expected replies for bad
//! input were taken from memcached 1.6.18 on the wire.

use protocol::{
    Decoder, ErrorKind, Frame, Limits, OwnedStorageHeader, ProtocolError, Request, StorageCommand,
    StorageHeader, Tokens,
};

/// One decoded step, for comparisons.
#[derive(Debug, PartialEq)]
enum Out {
    Req(String),
    Start(String),
    Chunk(Vec<u8>),
    End,
    Discarded(usize),
    /// The exact reply bytes, and whether the connection closes.
    Err(Vec<u8>, bool),
}

/// Decodes `input` to completion (as a connection would) and lists the
/// steps; `Ok(None)` ends it.
fn run(limits: Limits, input: &[u8]) -> (Vec<Out>, usize) {
    let mut d = Decoder::new(limits);
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        match d.decode(&input[pos..]) {
            Ok(None) => return (out, pos),
            Ok(Some((frame, used))) => {
                pos += used;
                out.push(match frame {
                    Frame::Request(r) => Out::Req(format!("{r:?}")),
                    Frame::ValueStart(h) => Out::Start(format!("{h:?}")),
                    Frame::ValueChunk(c) => Out::Chunk(c.to_vec()),
                    Frame::ValueEnd => Out::End,
                    Frame::Discarded => Out::Discarded(used),
                });
            }
            Err(e) => {
                pos += e.consumed;
                out.push(Out::Err(e.reply().to_vec(), e.close));
                if e.close {
                    return (out, pos);
                }
            }
        }
    }
}

fn steps(input: &[u8]) -> Vec<Out> {
    run(Limits::default(), input).0
}

fn one(input: &[u8]) -> Request<'_> {
    let mut d = Decoder::new(Limits::default());
    match d.decode(input) {
        Ok(Some((Frame::Request(r), used))) => {
            assert_eq!(used, input.len(), "did not use the whole request");
            r
        }
        other => panic!("{input:?} decoded as {other:?}"),
    }
}

fn error(input: &[u8]) -> ProtocolError {
    let mut d = Decoder::new(Limits::default());
    match d.decode(input) {
        Err(e) => e,
        other => panic!("{input:?} decoded as {other:?}"),
    }
}

fn reply(input: &[u8]) -> Vec<u8> {
    error(input).reply().to_vec()
}

fn keys(t: Tokens<'_>) -> Vec<&[u8]> {
    t.iter().collect()
}

const BAD_LINE: &[u8] = b"CLIENT_ERROR bad command line format\r\n";

#[test]
fn get_many_keys() {
    let Request::Get { keys: k } = one(b"get a bb ccc\r\n") else {
        panic!()
    };
    assert_eq!(keys(k), [&b"a"[..], b"bb", b"ccc"]);
    // More keys than memcached's 24 tokens, extra spaces, and \n alone.
    let line = format!(
        "get {}  \n",
        (0..100)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join("  ")
    );
    let Request::Get { keys: k } = one(line.as_bytes()) else {
        panic!()
    };
    assert_eq!(k.len(), 100);
    let Request::Gets { keys: k } = one(b"gets a\r\n") else {
        panic!()
    };
    assert_eq!(keys(k), [&b"a"[..]]);
}

#[test]
fn get_without_key_is_error() {
    assert_eq!(reply(b"get\r\n"), b"ERROR\r\n");
    assert_eq!(reply(b"get \r\n"), b"ERROR\r\n");
    assert_eq!(reply(b"gets\r\n"), b"ERROR\r\n");
}

#[test]
fn key_too_long() {
    let long = "k".repeat(251);
    assert_eq!(reply(format!("get a {long} b\r\n").as_bytes()), BAD_LINE);
    let ok = "k".repeat(250);
    assert!(matches!(
        one(format!("get {ok}\r\n").as_bytes()),
        Request::Get { .. }
    ));
    // The data block is then read as a command (memcached replies ERROR to it).
    let (out, _) = run(
        Limits::default(),
        format!("set {long} 0 0 5\r\nhello\r\n").as_bytes(),
    );
    assert_eq!(
        out,
        [
            Out::Err(BAD_LINE.to_vec(), false),
            Out::Err(b"ERROR\r\n".to_vec(), false)
        ]
    );
}

#[test]
fn key_with_control_bytes_is_accepted_as_memcached_does() {
    // memcaslap's keys carry bytes below 0x20; memcached 1.6.18 stores them.
    assert_eq!(
        one(b"delete a\x7f\x10\tb\r\n"),
        Request::Delete {
            key: b"a\x7f\x10\tb",
            noreply: false
        }
    );
}

#[test]
fn gat_and_gats() {
    assert_eq!(
        one(b"gat 10 a b\r\n"),
        Request::Gat {
            exptime: 10,
            keys: Tokens::new(b" a b")
        }
    );
    let Request::Gats { exptime, keys: k } = one(b"gats -1 a\r\n") else {
        panic!()
    };
    assert_eq!((exptime, keys(k)), (-1, vec![&b"a"[..]]));
    // memcached answers END to a gat without keys.
    let Request::Gat { keys: k, .. } = one(b"gat 10\r\n") else {
        panic!()
    };
    assert!(k.is_empty());
    assert_eq!(
        reply(b"gat x a\r\n"),
        b"CLIENT_ERROR invalid exptime argument\r\n"
    );
    assert_eq!(reply(b"gat\r\n"), b"ERROR\r\n");
}

fn header(
    command: StorageCommand,
    key: &[u8],
    flags: u32,
    exptime: i64,
    len: usize,
) -> StorageHeader<'_> {
    StorageHeader {
        command,
        key,
        flags,
        exptime,
        len,
        cas: 0,
        noreply: false,
        meta: None,
    }
}

#[test]
fn storage_commands() {
    for (name, command) in [
        ("set", StorageCommand::Set),
        ("add", StorageCommand::Add),
        ("replace", StorageCommand::Replace),
        ("append", StorageCommand::Append),
        ("prepend", StorageCommand::Prepend),
    ] {
        let input = format!("{name} k 7 100 3\r\nabc\r\n");
        assert_eq!(
            one(input.as_bytes()),
            Request::Store {
                header: header(command, b"k", 7, 100, 3),
                data: b"abc"
            }
        );
    }
    let mut h = header(StorageCommand::Cas, b"k", 0, 0, 1);
    h.cas = 99;
    h.noreply = true;
    assert_eq!(
        one(b"cas k 0 0 1 99 noreply\r\nx\r\n"),
        Request::Store {
            header: h,
            data: b"x"
        }
    );
    // A sixth token that is not noreply is ignored, as memcached does.
    assert!(matches!(
        one(b"set a 0 0 1 foo\r\na\r\n"),
        Request::Store {
            header: StorageHeader { noreply: false, .. },
            ..
        }
    ));
    // Empty value.
    assert!(matches!(
        one(b"set a 0 0 0\r\n\r\n"),
        Request::Store { data: b"", .. }
    ));
}

#[test]
fn flags_round_trip_and_truncate_like_memcached() {
    let Request::Store { header: h, .. } = one(b"set a 4294967295 0 1\r\na\r\n") else {
        panic!()
    };
    assert_eq!(h.flags, u32::MAX);
    let Request::Store { header: h, .. } = one(b"set a 4294967296 0 1\r\na\r\n") else {
        panic!()
    };
    assert_eq!(h.flags, 0);
    let Request::Store { header: h, .. } = one(b"set a +5 0 1\r\na\r\n") else {
        panic!()
    };
    assert_eq!(h.flags, 5);
    assert_eq!(reply(b"set a -1 0 1\r\na\r\n"), BAD_LINE);
}

#[test]
fn exptime_is_kept_raw() {
    let Request::Store { header: h, .. } = one(b"set a 0 -1 1\r\na\r\n") else {
        panic!()
    };
    assert_eq!(h.exptime, -1);
    let Request::Store { header: h, .. } = one(b"set a 0 2592001 1\r\na\r\n") else {
        panic!()
    };
    assert_eq!(h.exptime, 2_592_001);
    // memcached keeps 32 bits: 2^32 reads as 0 (never expires).
    let Request::Store { header: h, .. } = one(b"set a 0 4294967296 1\r\na\r\n") else {
        panic!()
    };
    assert_eq!(h.exptime, 0);
}

#[test]
fn storage_bad_lines() {
    assert_eq!(reply(b"set a 0 0 abc\r\n"), BAD_LINE);
    assert_eq!(reply(b"set a 0 0 -1\r\n"), BAD_LINE);
    assert_eq!(reply(b"set a x 0 1\r\n"), BAD_LINE);
    assert_eq!(reply(b"cas a 0 0 1 x\r\n"), BAD_LINE);
    assert_eq!(reply(b"cas a 0 0 1 -1\r\n"), BAD_LINE);
    assert_eq!(reply(b"set a 0 0\r\n"), b"ERROR\r\n");
    assert_eq!(reply(b"set a 0 0 1 2 3\r\n"), b"ERROR\r\n");
    assert_eq!(reply(b"cas a 0 0 1\r\n"), b"ERROR\r\n");
    // noreply silences errors (memcached 1.6 sends nothing).
    let e = error(b"set a 0 0 abc noreply\r\n");
    assert_eq!((e.kind, e.reply()), (ErrorKind::BadCommandLine, &b""[..]));
    // ... but the data block is still read as the next command.
    assert_eq!(
        steps(b"set a 0 0 abc\r\nabc\r\n"),
        [
            Out::Err(BAD_LINE.to_vec(), false),
            Out::Err(b"ERROR\r\n".to_vec(), false)
        ]
    );
}

#[test]
fn bad_data_chunk() {
    // memcached reads len + 2 bytes, complains, and parses on from there.
    assert_eq!(
        steps(b"set a 0 0 3\r\nabcde\r\nversion\r\n"),
        [
            Out::Err(b"CLIENT_ERROR bad data chunk\r\n".to_vec(), false),
            Out::Err(b"ERROR\r\n".to_vec(), false),
            Out::Req("Version".into()),
        ]
    );
    assert_eq!(
        steps(b"set a 0 0 3 noreply\r\nabcde\r\n"),
        [
            Out::Err(vec![], false),
            Out::Err(b"ERROR\r\n".to_vec(), false)
        ]
    );
    assert_eq!(
        steps(b"set a 0 0 1\nx\nget a\n"),
        [
            Out::Err(b"CLIENT_ERROR bad data chunk\r\n".to_vec(), false),
            Out::Err(b"ERROR\r\n".to_vec(), false),
        ]
    );
}

#[test]
fn too_large_is_swallowed_without_buffering() {
    let limits = Limits::default();
    // The value bytes arrive in pieces; each is dropped as it comes.
    let mut d = Decoder::new(limits);
    let e = d.decode(b"set a 0 0 2000000\r\n").unwrap_err();
    assert_eq!(e.reply(), b"SERVER_ERROR object too large for cache\r\n");
    assert_eq!((e.consumed, e.close), (19, false));
    let mut left = 2_000_002;
    let piece = vec![b'x'; 65536];
    while left > 0 {
        let n = left.min(piece.len());
        assert_eq!(d.decode(&piece[..n]).unwrap(), Some((Frame::Discarded, n)));
        left -= n;
    }
    assert_eq!(
        d.decode(b"version\r\n").unwrap(),
        Some((Frame::Request(Request::Version), 9))
    );
    // The limit counts key and item header like memcached: with key "a" and
    // flags 0, 1048516 bytes fit in 1 MiB and 1048517 do not.
    assert!(!limits.too_large(1, 0, 1_048_516));
    assert!(limits.too_large(1, 0, 1_048_517));
    assert!(limits.too_large(1, 5, 1_048_513));
    assert!(!limits.too_large(100, 0, 1_048_417));
    // noreply: memcached sends nothing, still swallows.
    let mut d = Decoder::new(limits);
    let e = d.decode(b"set a 0 0 2000000 noreply\r\n").unwrap_err();
    assert_eq!(e.reply(), b"");
    assert!(!d.is_idle());
}

#[test]
fn large_values_stream_in_chunks() {
    let limits = Limits {
        chunk_threshold: 4,
        ..Limits::default()
    };
    let (out, used) = run(limits, b"set k 1 2 10\r\n0123456789\r\nget k\r\n");
    assert_eq!(used, 33);
    assert_eq!(out.len(), 4);
    assert_eq!(
        out[0],
        Out::Start(format!("{:?}", header(StorageCommand::Set, b"k", 1, 2, 10)))
    );
    assert_eq!(out[1], Out::Chunk(b"0123456789".to_vec()));
    assert_eq!(out[2], Out::End);
    // Piecewise: chunks as the bytes arrive, never the CRLF.
    let mut d = Decoder::new(limits);
    assert!(matches!(
        d.decode(b"set k 0 0 10\r\n0123").unwrap(),
        Some((Frame::ValueStart(_), 14))
    ));
    assert_eq!(
        d.decode(b"0123").unwrap(),
        Some((Frame::ValueChunk(b"0123"), 4))
    );
    assert_eq!(
        d.decode(b"456789\r").unwrap(),
        Some((Frame::ValueChunk(b"456789"), 6))
    );
    assert_eq!(d.decode(b"\r").unwrap(), None);
    assert_eq!(d.decode(b"\r\n").unwrap(), Some((Frame::ValueEnd, 2)));
    // A bad terminator ends the value with an error.
    let mut d = Decoder::new(limits);
    d.decode(b"set k 0 0 5\r\n").unwrap();
    assert_eq!(
        d.decode(b"01234XY").unwrap(),
        Some((Frame::ValueChunk(b"01234"), 5))
    );
    let e = d.decode(b"XY").unwrap_err();
    assert_eq!(
        (e.reply(), e.consumed),
        (&b"CLIENT_ERROR bad data chunk\r\n"[..], 2)
    );
    assert!(d.is_idle());
}

#[test]
fn delete() {
    assert_eq!(
        one(b"delete k\r\n"),
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        one(b"delete k 0\r\n"),
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        one(b"delete k noreply\r\n"),
        Request::Delete {
            key: b"k",
            noreply: true
        }
    );
    assert_eq!(
        one(b"delete k 0 noreply\r\n"),
        Request::Delete {
            key: b"k",
            noreply: true
        }
    );
    let usage = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
    assert_eq!(reply(b"delete k 1\r\n"), usage);
    assert_eq!(reply(b"delete k x y\r\n"), usage);
    assert_eq!(reply(b"delete\r\n"), b"ERROR\r\n");
}

#[test]
fn incr_decr() {
    assert_eq!(
        one(b"incr k 5\r\n"),
        Request::Incr {
            key: b"k",
            delta: 5,
            noreply: false
        }
    );
    assert_eq!(
        one(b"decr k 18446744073709551615 noreply\r\n"),
        Request::Decr {
            key: b"k",
            delta: u64::MAX,
            noreply: true
        }
    );
    let bad = b"CLIENT_ERROR invalid numeric delta argument\r\n";
    assert_eq!(reply(b"incr k x\r\n"), bad);
    assert_eq!(reply(b"incr k -1\r\n"), bad);
    assert_eq!(reply(b"incr k 18446744073709551616\r\n"), bad);
    assert_eq!(reply(b"incr k x noreply\r\n"), b"");
    assert_eq!(reply(b"incr k\r\n"), b"ERROR\r\n");
}

#[test]
fn touch_flush_verbosity_version_quit() {
    assert_eq!(
        one(b"touch k 10\r\n"),
        Request::Touch {
            key: b"k",
            exptime: 10,
            noreply: false
        }
    );
    assert_eq!(
        reply(b"touch k x\r\n"),
        b"CLIENT_ERROR invalid exptime argument\r\n"
    );
    assert_eq!(
        one(b"flush_all\r\n"),
        Request::FlushAll {
            delay: 0,
            noreply: false
        }
    );
    assert_eq!(
        one(b"flush_all 10\r\n"),
        Request::FlushAll {
            delay: 10,
            noreply: false
        }
    );
    assert_eq!(
        one(b"flush_all noreply\r\n"),
        Request::FlushAll {
            delay: 0,
            noreply: true
        }
    );
    assert_eq!(
        one(b"flush_all -1\r\n"),
        Request::FlushAll {
            delay: -1,
            noreply: false
        }
    );
    assert_eq!(
        one(b"flush_all 1 2\r\n"),
        Request::FlushAll {
            delay: 1,
            noreply: false
        }
    );
    assert_eq!(
        reply(b"flush_all x\r\n"),
        b"CLIENT_ERROR invalid exptime argument\r\n"
    );
    assert_eq!(
        one(b"verbosity 1\r\n"),
        Request::Verbosity {
            level: 1,
            noreply: false
        }
    );
    assert_eq!(
        one(b"verbosity 1 noreply\r\n"),
        Request::Verbosity {
            level: 1,
            noreply: true
        }
    );
    assert_eq!(reply(b"verbosity x\r\n"), BAD_LINE);
    assert_eq!(reply(b"verbosity\r\n"), b"ERROR\r\n");
    assert_eq!(one(b"version\r\n"), Request::Version);
    assert_eq!(one(b"version x\r\n"), Request::Version);
    assert_eq!(one(b"quit\r\n"), Request::Quit);
}

#[test]
fn stats() {
    let Request::Stats { args } = one(b"stats\r\n") else {
        panic!()
    };
    assert!(args.is_empty());
    let Request::Stats { args } = one(b"stats settings\r\n") else {
        panic!()
    };
    assert_eq!(keys(args), [&b"settings"[..]]);
}

#[test]
fn unknown() {
    for input in [
        &b"foo\r\n"[..],
        b"\r\n",
        b"x\r\n",
        b"GET\r\n",
        b"SET a 0 0 1\r\n",
        b"gxx a\r\n",
        b"mx\r\n",
    ] {
        assert_eq!(reply(input), b"ERROR\r\n", "{input:?}");
    }
    // A NUL ends the line, as in memcached's C strings.
    assert_eq!(
        one(b"get a\0b\r\n"),
        Request::Get {
            keys: Tokens::new(b" a")
        }
    );
}

#[test]
fn http_closes() {
    let e = error(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(e.close);
    assert_eq!((e.kind, e.reply()), (ErrorKind::Http, &b""[..]));
    assert!(error(b"rxx a HTTP/1.0\r\n").close);
    // Only unknown commands are checked, like memcached: these are ERROR / a get.
    assert!(!error(b"gxx a HTTP/1.1\r\n").close);
    assert!(matches!(one(b"get a HTTP/1.0\r\n"), Request::Get { .. }));
}

#[test]
fn line_too_long_closes_except_multiget() {
    let limits = Limits::default();
    let mut d = Decoder::new(limits);
    assert_eq!(d.decode(&[b'x'; 2048]).unwrap(), None);
    let e = d.decode(&[b'x'; 2049]).unwrap_err();
    assert!(e.close && e.kind == ErrorKind::LineTooLong);
    let long_get = format!("get {}", "a ".repeat(3000));
    assert_eq!(d.decode(long_get.as_bytes()).unwrap(), None);
    let full = format!("{long_get}\r\n");
    let Some((Frame::Request(Request::Get { keys: k }), _)) = d.decode(full.as_bytes()).unwrap()
    else {
        panic!()
    };
    assert_eq!(k.len(), 3000);
    assert!(
        d.decode(format!("set {}", "a".repeat(3000)).as_bytes())
            .unwrap_err()
            .close
    );
}

#[test]
fn incomplete_prefixes_need_more() {
    let requests: &[&[u8]] = &[
        b"get a b\r\n",
        b"set k 1 2 3\r\nabc\r\n",
        b"cas k 1 2 3 4 noreply\r\nabc\r\n",
        b"delete k\r\n",
        b"incr k 1\r\n",
        b"touch k 1\r\n",
        b"flush_all\r\n",
        b"stats\r\n",
        b"mg k v\r\n",
        b"ms k 2 T0\r\nab\r\n",
        b"mn\r\n",
    ];
    for req in requests {
        for cut in 0..req.len() {
            let mut d = Decoder::new(Limits::default());
            assert_eq!(d.decode(&req[..cut]).unwrap(), None, "{:?}", &req[..cut]);
        }
        let mut d = Decoder::new(Limits::default());
        let (_, used) = d.decode(req).unwrap().unwrap();
        assert_eq!(used, req.len());
    }
}

#[test]
fn pipelined() {
    let out = steps(b"set a 0 0 1\r\nx\r\nget a\r\ndelete a noreply\r\nbogus\r\nversion\r\nget");
    assert_eq!(out.len(), 5);
    assert!(matches!(&out[0], Out::Req(s) if s.starts_with("Store")));
    assert!(matches!(&out[1], Out::Req(s) if s.starts_with("Get")));
    assert!(matches!(&out[2], Out::Req(s) if s.starts_with("Delete")));
    assert_eq!(out[3], Out::Err(b"ERROR\r\n".to_vec(), false));
    assert_eq!(out[4], Out::Req("Version".into()));
}

#[test]
fn trailing_whitespace() {
    assert_eq!(
        one(b"get a  \r\n"),
        Request::Get {
            keys: Tokens::new(b" a  ")
        }
    );
    assert_eq!(
        one(b"  delete k \r\n"),
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        one(b"incr k 1 \r\n"),
        Request::Incr {
            key: b"k",
            delta: 1,
            noreply: false
        }
    );
    // A tab is part of the token; after a number it is accepted (strtol).
    assert_eq!(
        one(b"incr k 1\t\r\n"),
        Request::Incr {
            key: b"k",
            delta: 1,
            noreply: false
        }
    );
}

#[test]
fn meta_commands() {
    let Request::MetaGet { key, flags } = one(b"mg k v k c f t s Oab q T30\r\n") else {
        panic!()
    };
    assert_eq!(key, b"k");
    assert!(flags.return_value && flags.return_key && flags.return_cas && flags.return_flags);
    assert!(flags.return_ttl && flags.return_size && flags.quiet);
    assert_eq!((flags.opaque, flags.ttl), (Some(&b"ab"[..]), Some(30)));
    assert_eq!(flags.tokens.map(keys).unwrap().len(), 9);
    let Request::Store { header: h, data } = one(b"ms k 2 T0 F5 MA C9 q\r\nxy\r\n") else {
        panic!()
    };
    assert_eq!(
        (h.command, h.flags, h.exptime, h.cas, data),
        (StorageCommand::Append, 5, 0, 9, &b"xy"[..])
    );
    assert!(h.meta.unwrap().quiet);
    let Request::MetaDelete { flags, .. } = one(b"md k q C5\r\n") else {
        panic!()
    };
    assert_eq!(flags.compare_cas, Some(5));
    assert_eq!(one(b"mn\r\n"), Request::MetaNoop);
    assert_eq!(reply(b"mg\r\n"), b"ERROR\r\n");
    assert_eq!(reply(b"mg a z\r\n"), b"CLIENT_ERROR invalid flag\r\n");
    assert_eq!(reply(b"mg a v v\r\n"), b"CLIENT_ERROR duplicate flag\r\n");
    assert_eq!(
        reply(b"mg a Tx\r\n"),
        b"CLIENT_ERROR bad token in command line format\r\n"
    );
    assert_eq!(reply(b"ms a\r\n"), BAD_LINE);
    assert_eq!(reply(b"mg a E5\r\n"), b"CLIENT_ERROR invalid flag\r\n");
    let opaque_31 = format!("mg a O{}\r\n", "a".repeat(31));
    assert!(matches!(one(opaque_31.as_bytes()), Request::MetaGet { .. }));
    let opaque_32 = format!("mg a O{}\r\n", "a".repeat(32));
    assert_eq!(
        reply(opaque_32.as_bytes()),
        b"CLIENT_ERROR opaque token too long\r\n"
    );
    for md in [
        &b"md k Cx\r\n"[..],
        b"md k x\r\n",
        b"md k q q\r\n",
        b"md k T\r\n",
    ] {
        assert_eq!(reply(md), b"CLIENT_ERROR invalid or duplicate flag\r\n");
    }
    let bad_token = b"CLIENT_ERROR bad token in command line format\r\n".to_vec();
    assert_eq!(
        steps(b"ms k 2 Tx\r\nxy\r\n")[0],
        Out::Err(bad_token.clone(), false)
    );
    assert_eq!(steps(b"ms k 2 C\r\nxy\r\n")[0], Out::Err(bad_token, false));
    assert_eq!(
        steps(b"ms k 2 M\r\nxy\r\n")[0],
        Out::Err(
            b"CLIENT_ERROR incorrect length for M token\r\n".to_vec(),
            false
        )
    );
    assert_eq!(
        steps(b"ms k 2 MS MS\r\nxy\r\nmn\r\n"),
        [
            Out::Err(b"CLIENT_ERROR duplicate flag\r\n".to_vec(), false),
            Out::Discarded(4),
            Out::Req("MetaNoop".into()),
        ]
    );
    // Meta errors ignore q: a bad data chunk is always reported.
    assert_eq!(
        steps(b"ms k 2 q\r\nxyz\r\n")[0],
        Out::Err(b"CLIENT_ERROR bad data chunk\r\n".to_vec(), false)
    );
    // After the length is known, an error swallows the data block.
    assert_eq!(
        steps(b"ms a 2 z\r\nxy\r\nmn\r\n"),
        [
            Out::Err(b"CLIENT_ERROR invalid flag\r\n".to_vec(), false),
            Out::Discarded(4),
            Out::Req("MetaNoop".into()),
        ]
    );
    assert_eq!(
        steps(b"ms a 2 MZ\r\nxy\r\n")[0],
        Out::Err(
            b"CLIENT_ERROR invalid mode for ms M token\r\n".to_vec(),
            false
        )
    );
    assert_eq!(
        steps(b"ms a 2 F-1\r\nxy\r\n")[0],
        Out::Err(BAD_LINE.to_vec(), false)
    );
    // The length itself is bad: the data is read as a command.
    assert_eq!(
        steps(b"ms a x\r\nxy\r\n"),
        [
            Out::Err(BAD_LINE.to_vec(), false),
            Out::Err(b"ERROR\r\n".to_vec(), false)
        ]
    );
}

#[test]
fn a_storage_header_kept_across_reads_means_what_it_did() {
    for (line, compare_cas) in [
        (&b"set k 1 2 2\r\nxy\r\n"[..], None),
        (b"cas k 1 2 2 77 noreply\r\nxy\r\n", Some(77)),
        (b"append k 1 2 2\r\nxy\r\n", None),
        (b"ms k 2 F5 T9 Oop k MA c\r\nxy\r\n", None),
        (b"ms k 2 C0 ME q\r\nxy\r\n", Some(0)),
    ] {
        fn store(input: &[u8]) -> StorageHeader<'_> {
            match one(input) {
                Request::Store { header, .. } => header,
                other => panic!("{other:?}"),
            }
        }
        let input = line.to_vec();
        let owned = OwnedStorageHeader::from(&store(&input));
        // The input the header borrowed from is gone: the copy still means
        // what the line said.
        drop(input);
        let header = store(line);
        assert_eq!(header.compare_cas(), compare_cas, "{line:?}");
        assert_eq!(owned.header(), header, "{line:?}");
    }
}
