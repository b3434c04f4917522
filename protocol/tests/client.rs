//! Client side: requests encoded by `encode_request` decode to the same
//! request on the server side, and every reply `Response::encode` writes
//! decodes back with `decode_response`, byte for byte.

use protocol::{
    decode_response, encode_request, encode_value_header, Decoder, Frame, Limits, MetaFlags,
    MetaStatus, Request, Response, ResponseError, StorageCommand, StorageHeader, Tokens,
};

fn server_side(bytes: &[u8]) -> Request<'_> {
    let mut d = Decoder::new(Limits::default());
    match d.decode(bytes) {
        Ok(Some((Frame::Request(r), used))) if used == bytes.len() => r,
        other => panic!("{bytes:?}: {other:?}"),
    }
}

#[test]
fn requests_round_trip() {
    let h = |command, cas, noreply| StorageHeader {
        command,
        key: b"key:1",
        flags: u32::MAX,
        exptime: -1,
        len: 5,
        cas,
        noreply,
        meta: None,
    };
    let requests = [
        Request::Get {
            keys: Tokens::new(b" a b"),
        },
        Request::Gets {
            keys: Tokens::new(b" a"),
        },
        Request::Gat {
            exptime: 30,
            keys: Tokens::new(b" a"),
        },
        Request::Gats {
            exptime: 30,
            keys: Tokens::new(b" a"),
        },
        Request::Store {
            header: h(StorageCommand::Set, 0, false),
            data: b"hello",
        },
        Request::Store {
            header: h(StorageCommand::Add, 0, true),
            data: b"hello",
        },
        Request::Store {
            header: h(StorageCommand::Cas, 77, false),
            data: b"hello",
        },
        Request::Delete {
            key: b"a",
            noreply: true,
        },
        Request::Incr {
            key: b"a",
            delta: 3,
            noreply: false,
        },
        Request::Decr {
            key: b"a",
            delta: 3,
            noreply: true,
        },
        Request::Touch {
            key: b"a",
            exptime: 100,
            noreply: false,
        },
        Request::FlushAll {
            delay: 0,
            noreply: false,
        },
        Request::FlushAll {
            delay: 5,
            noreply: true,
        },
        Request::Version,
        Request::Verbosity {
            level: 1,
            noreply: false,
        },
        Request::Stats {
            args: Tokens::new(b" settings"),
        },
        Request::Quit,
        Request::MetaNoop,
    ];
    for r in requests {
        let mut out = Vec::new();
        encode_request(&r, &mut out);
        assert_eq!(server_side(&out), r, "{}", String::from_utf8_lossy(&out));
    }
    let mut out = Vec::new();
    encode_request(
        &Request::Get {
            keys: Tokens::new(b" a b"),
        },
        &mut out,
    );
    assert_eq!(out, b"get a b\r\n");
    // Meta commands are written from their flag tokens.
    let flags = MetaFlags {
        tokens: Some(Tokens::new(b"v k T30")),
        ..MetaFlags::default()
    };
    let mut out = Vec::new();
    encode_request(&Request::MetaGet { key: b"a", flags }, &mut out);
    assert_eq!(out, b"mg a v k T30\r\n");
    let Request::MetaGet { flags: parsed, .. } = server_side(&out) else {
        panic!()
    };
    assert!(parsed.return_value && parsed.return_key && parsed.ttl == Some(30));
}

#[test]
fn replies_encode_exactly_and_decode_back() {
    let cases: &[(Response<'_>, &[u8])] = &[
        (Response::Stored, b"STORED\r\n"),
        (Response::NotStored, b"NOT_STORED\r\n"),
        (Response::Exists, b"EXISTS\r\n"),
        (Response::NotFound, b"NOT_FOUND\r\n"),
        (Response::Deleted, b"DELETED\r\n"),
        (Response::Touched, b"TOUCHED\r\n"),
        (Response::End, b"END\r\n"),
        (Response::Ok, b"OK\r\n"),
        (Response::Reset, b"RESET\r\n"),
        (Response::Error, b"ERROR\r\n"),
        (
            Response::Value {
                key: b"a",
                flags: 4294967295,
                data: b"x\r\ny",
                cas: None,
            },
            b"VALUE a 4294967295 4\r\nx\r\ny\r\n",
        ),
        (
            Response::Value {
                key: b"a",
                flags: 0,
                data: b"",
                cas: Some(20),
            },
            b"VALUE a 0 0 20\r\n\r\n",
        ),
        (
            Response::Number(18446744073709551615),
            b"18446744073709551615\r\n",
        ),
        (Response::Version("1.6.18"), b"VERSION 1.6.18\r\n"),
        (Response::Stat("pid", "42"), b"STAT pid 42\r\n"),
        (
            Response::ClientError("cannot increment or decrement non-numeric value"),
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (
            Response::ServerError("object too large for cache"),
            b"SERVER_ERROR object too large for cache\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Va,
                flags: b"ka c60 f0 t-1 s1 Oab",
                data: Some(b"x"),
            },
            b"VA 1 ka c60 f0 t-1 s1 Oab\r\nx\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Hd,
                flags: b"",
                data: None,
            },
            b"HD\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Nf,
                flags: b"ka O5",
                data: None,
            },
            b"NF ka O5\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::En,
                flags: b"",
                data: None,
            },
            b"EN\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Mn,
                flags: b"",
                data: None,
            },
            b"MN\r\n",
        ),
    ];
    for (response, bytes) in cases {
        let mut out = Vec::new();
        response.encode(&mut out);
        assert_eq!(&out, bytes);
        assert_eq!(
            decode_response(bytes).unwrap(),
            Some((*response, bytes.len()))
        );
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_response(&bytes[..cut]).unwrap(),
                None,
                "{:?}",
                &bytes[..cut]
            );
        }
    }
    let mut out = Vec::new();
    encode_value_header(&mut out, b"k", 3, 10, Some(9));
    assert_eq!(out, b"VALUE k 3 10 9\r\n");
}

#[test]
fn get_reply_sequence() {
    let buf = b"VALUE a 0 1\r\nx\r\nVALUE b 5 2\r\nyz\r\nEND\r\n";
    let mut pos = 0;
    let mut got = Vec::new();
    while let Some((r, used)) = decode_response(&buf[pos..]).unwrap() {
        got.push(r);
        pos += used;
    }
    assert_eq!(pos, buf.len());
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], Response::End);
}

#[test]
fn malformed_replies() {
    assert!(matches!(
        decode_response(b"WHAT\r\n"),
        Err(ResponseError::Malformed(_))
    ));
    assert!(matches!(
        decode_response(b"END\n"),
        Err(ResponseError::Malformed(_))
    ));
    assert_eq!(
        decode_response(b"VALUE a 0 1\r\nxyz"),
        Err(ResponseError::BadDataTerminator)
    );
    assert!(matches!(
        decode_response(b"VALUE a x 1\r\n"),
        Err(ResponseError::Malformed(_))
    ));
}
