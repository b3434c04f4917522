//! The few memcached requests and replies the generator uses, as a thin
//! adapter over the `protocol` crate's client side (its request encoder and
//! reply decoder), so the driver speaks in its own small vocabulary whichever
//! protocol, classic or meta, is on the wire.

use protocol::{MetaFlags, MetaStatus, Request, Response, StorageCommand, StorageHeader, Tokens};

use crate::config::Protocol;

/// A reply, as far as the driver cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `VALUE <key> <flags> <bytes>` and its data block; in meta, `VA <bytes>
    /// k<key>` and its data block.
    Value {
        /// The key the server returned.
        key: &'a [u8],
        /// The data block (without CRLF).
        data: &'a [u8],
    },
    /// `END`; in meta, `MN` (the end of a multi-get).
    End,
    /// Meta `EN`: the miss of a get of one key. Kept apart from `MN`, so a
    /// server that answers a quiet miss cannot end a multi-get early.
    Miss,
    /// `STORED`
    Stored,
    /// Meta `HD`: a store or delete that succeeded.
    Done,
    /// `NOT_STORED`, meta `NS`
    NotStored,
    /// `EXISTS`, meta `EX`
    Exists,
    /// `NOT_FOUND`, meta `NF`
    NotFound,
    /// `DELETED`
    Deleted,
    /// `ERROR`
    Error,
    /// `CLIENT_ERROR ...`
    ClientError,
    /// `SERVER_ERROR ...`
    ServerError,
    /// Any other well-formed reply (not expected by any request we send).
    Other,
}

/// A reply that cannot be parsed: the stream cannot be trusted any further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadReply(pub String);

/// Appends a get of `keys`. Classic: `get <k1> [<k2> ...]`, the keys
/// written space-separated into `scratch` first, the shape `protocol`'s key
/// list takes. Meta: `mg <key> k v` for one key, answered by `VA` or `EN`;
/// for several, a quiet `mg <key> k v q` each (misses are not answered) and
/// `mn`, whose `MN` ends the reply as `END` does a classic one.
pub fn encode_get(proto: Protocol, keys: &[&[u8]], scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    if proto == Protocol::Meta {
        let flags: &[u8] = if keys.len() == 1 { b"k v" } else { b"k v q" };
        for &key in keys {
            let flags = MetaFlags {
                tokens: Some(Tokens::new(flags)),
                ..MetaFlags::default()
            };
            protocol::encode_request(&Request::MetaGet { key, flags }, out);
        }
        if keys.len() > 1 {
            protocol::encode_request(&Request::MetaNoop, out);
        }
        return;
    }
    let raw: &[u8] = if let [one] = keys {
        one
    } else {
        scratch.clear();
        for (i, k) in keys.iter().enumerate() {
            if i > 0 {
                scratch.push(b' ');
            }
            scratch.extend_from_slice(k);
        }
        scratch
    };
    protocol::encode_request(
        &Request::Get {
            keys: Tokens::new(raw),
        },
        out,
    );
}

/// True when a get of `keys` keys is answered by its value alone (meta, one
/// key), with no `END` or `MN` after it.
pub fn value_ends_get(proto: Protocol, keys: usize) -> bool {
    proto == Protocol::Meta && keys == 1
}

/// Appends `set <key> 0 0 <len>` (meta: `ms <key> <len>`) and the value.
pub fn encode_set(proto: Protocol, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let header = StorageHeader {
        command: StorageCommand::Set,
        key,
        flags: 0,
        exptime: 0,
        len: value.len(),
        cas: 0,
        noreply: false,
        meta: (proto == Protocol::Meta).then(MetaFlags::default),
    };
    protocol::encode_request(
        &Request::Store {
            header,
            data: value,
        },
        out,
    );
}

/// Appends `delete <key>` (meta: `md <key>`).
pub fn encode_delete(proto: Protocol, key: &[u8], out: &mut Vec<u8>) {
    let req = match proto {
        Protocol::Classic => Request::Delete {
            key,
            noreply: false,
        },
        Protocol::Meta => Request::MetaDelete {
            key,
            flags: MetaFlags::default(),
        },
    };
    protocol::encode_request(&req, out);
}

/// Decodes one reply from the front of `buf`: `Ok(None)` when incomplete.
pub fn decode(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, BadReply> {
    let Some((r, used)) = protocol::decode_response(buf).map_err(|e| BadReply(e.to_string()))?
    else {
        return Ok(None);
    };
    let reply = match r {
        Response::Value { key, data, .. } => Reply::Value { key, data },
        Response::End => Reply::End,
        Response::Stored => Reply::Stored,
        Response::NotStored => Reply::NotStored,
        Response::Exists => Reply::Exists,
        Response::NotFound => Reply::NotFound,
        Response::Deleted => Reply::Deleted,
        Response::Error => Reply::Error,
        Response::ClientError(_) => Reply::ClientError,
        Response::ServerError(_) => Reply::ServerError,
        Response::Meta {
            status,
            flags,
            data,
        } => match (status, data) {
            (MetaStatus::Va, Some(data)) => Reply::Value {
                key: returned_key(flags),
                data,
            },
            (MetaStatus::En, _) => Reply::Miss,
            (MetaStatus::Mn, _) => Reply::End,
            (MetaStatus::Hd, _) => Reply::Done,
            (MetaStatus::Ns, _) => Reply::NotStored,
            (MetaStatus::Ex, _) => Reply::Exists,
            (MetaStatus::Nf, _) => Reply::NotFound,
            _ => Reply::Other,
        },
        _ => Reply::Other,
    };
    Ok(Some((reply, used)))
}

/// The key a meta reply returns with the `k` flag (`k<key>` among its
/// flags); empty without one, which matches no requested key.
fn returned_key(flags: &[u8]) -> &[u8] {
    flags
        .split(|&b| b == b' ')
        .find_map(|t| t.strip_prefix(b"k"))
        .unwrap_or(b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_on_the_wire() {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        let c = Protocol::Classic;
        encode_get(c, &[b"k1"], &mut scratch, &mut out);
        encode_get(c, &[b"k1", b"k2"], &mut scratch, &mut out);
        encode_set(c, b"k1", b"abc", &mut out);
        encode_delete(c, b"k1", &mut out);
        assert_eq!(
            out,
            b"get k1\r\nget k1 k2\r\nset k1 0 0 3\r\nabc\r\ndelete k1\r\n"
        );
    }

    #[test]
    fn meta_requests_on_the_wire() {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        let m = Protocol::Meta;
        encode_get(m, &[b"k1"], &mut scratch, &mut out);
        encode_get(m, &[b"k1", b"k2"], &mut scratch, &mut out);
        encode_set(m, b"k1", b"abc", &mut out);
        encode_delete(m, b"k1", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "mg k1 k v\r\nmg k1 k v q\r\nmg k2 k v q\r\nmn\r\nms k1 3\r\nabc\r\nmd k1\r\n"
        );
        assert!(value_ends_get(m, 1));
        assert!(!value_ends_get(m, 2));
        assert!(!value_ends_get(Protocol::Classic, 1));
    }

    #[test]
    fn meta_replies_in_sequence() {
        let buf = b"VA 3 k1\r\nabc\r\nEN\r\nVA 2 f0 kk2 c9\r\nxy\r\nMN\r\nHD\r\nNS\r\nNF\r\nVA 1\r\nz\r\n";
        let mut at = 0;
        let mut got = Vec::new();
        while let Some((r, n)) = decode(&buf[at..]).unwrap() {
            got.push(r);
            at += n;
        }
        assert_eq!(
            got,
            vec![
                Reply::Value {
                    key: b"1",
                    data: b"abc"
                },
                Reply::Miss,
                Reply::Value {
                    key: b"k2",
                    data: b"xy"
                },
                Reply::End,
                Reply::Done,
                Reply::NotStored,
                Reply::NotFound,
                Reply::Value {
                    key: b"",
                    data: b"z"
                },
            ]
        );
    }

    #[test]
    fn replies_in_sequence() {
        let buf = b"VALUE k1 0 3\r\nabc\r\nEND\r\nSTORED\r\nSERVER_ERROR oom\r\nVALUE k2 0 5\r\nab";
        let mut at = 0;
        let mut got = Vec::new();
        while let Some((r, n)) = decode(&buf[at..]).unwrap() {
            got.push(format!("{r:?}"));
            at += n;
        }
        assert_eq!(got.len(), 4);
        assert!(got[0].contains("Value"));
        assert_eq!(got[1], "End");
        assert_eq!(got[3], "ServerError");
        assert!(decode(b"BOGUS\r\n").is_err());
    }
}
