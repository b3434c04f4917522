//! The few memcached requests and replies the generator uses, as a thin
//! adapter over the `protocol` crate's client side (its request encoder and
//! reply decoder), so the driver speaks in its own small vocabulary.

use protocol::{Request, Response, StorageCommand, StorageHeader, Tokens};

/// A reply, as far as the driver cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `VALUE <key> <flags> <bytes>` and its data block.
    Value {
        /// The key the server returned.
        key: &'a [u8],
        /// The data block (without CRLF).
        data: &'a [u8],
    },
    /// `END`
    End,
    /// `STORED`
    Stored,
    /// `NOT_STORED`
    NotStored,
    /// `EXISTS`
    Exists,
    /// `NOT_FOUND`
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

/// Appends `get <k1> [<k2> ...]`. Several keys are written space-separated
/// into `scratch` first, the shape `protocol`'s key list takes.
pub fn encode_get(keys: &[&[u8]], scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
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

/// Appends `set <key> 0 0 <len>` and the value.
pub fn encode_set(key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let header = StorageHeader {
        command: StorageCommand::Set,
        key,
        flags: 0,
        exptime: 0,
        len: value.len(),
        cas: 0,
        noreply: false,
        meta: None,
    };
    protocol::encode_request(
        &Request::Store {
            header,
            data: value,
        },
        out,
    );
}

/// Appends `delete <key>`.
pub fn encode_delete(key: &[u8], out: &mut Vec<u8>) {
    protocol::encode_request(
        &Request::Delete {
            key,
            noreply: false,
        },
        out,
    );
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
        _ => Reply::Other,
    };
    Ok(Some((reply, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_on_the_wire() {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        encode_get(&[b"k1"], &mut scratch, &mut out);
        encode_get(&[b"k1", b"k2"], &mut scratch, &mut out);
        encode_set(b"k1", b"abc", &mut out);
        encode_delete(b"k1", &mut out);
        assert_eq!(
            out,
            b"get k1\r\nget k1 k2\r\nset k1 0 0 3\r\nabc\r\ndelete k1\r\n"
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
