//! Replies: what the service answers, encoded into the caller's buffer with
//! memcached's exact bytes; the client side decodes the same type.

use std::io::Write;

/// The status word of a meta reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaStatus {
    /// `VA`: value follows.
    Va,
    /// `HD`: success, no value.
    Hd,
    /// `EN`: miss (mg).
    En,
    /// `NS`: not stored (ms).
    Ns,
    /// `EX`: CAS mismatch.
    Ex,
    /// `NF`: not found.
    Nf,
    /// `MN`: reply to `mn`.
    Mn,
}

impl MetaStatus {
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            MetaStatus::Va => b"VA",
            MetaStatus::Hd => b"HD",
            MetaStatus::En => b"EN",
            MetaStatus::Ns => b"NS",
            MetaStatus::Ex => b"EX",
            MetaStatus::Nf => b"NF",
            MetaStatus::Mn => b"MN",
        }
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        Some(match b {
            b"VA" => MetaStatus::Va,
            b"HD" => MetaStatus::Hd,
            b"EN" => MetaStatus::En,
            b"NS" => MetaStatus::Ns,
            b"EX" => MetaStatus::Ex,
            b"NF" => MetaStatus::Nf,
            b"MN" => MetaStatus::Mn,
            _ => return None,
        })
    }
}

/// One reply. `Value` borrows its data: nothing is copied until `encode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    /// Ends a get or a stats listing.
    End,
    Ok,
    /// Reply to `stats reset`.
    Reset,
    /// One item of a get: `VALUE <key> <flags> <bytes> [<cas>]`, then data.
    Value {
        key: &'a [u8],
        flags: u32,
        data: &'a [u8],
        /// Present for gets/gats.
        cas: Option<u64>,
    },
    /// Reply to incr/decr.
    Number(u64),
    Version(&'a str),
    /// `STAT <name> <value>`
    Stat(&'a str, &'a str),
    Error,
    /// `CLIENT_ERROR <message>`
    ClientError(&'a str),
    /// `SERVER_ERROR <message>`
    ServerError(&'a str),
    /// A meta reply: status, return flags already rendered (`c63 ka O1`,
    /// may be empty), and for `VA` the value.
    Meta {
        status: MetaStatus,
        flags: &'a [u8],
        data: Option<&'a [u8]>,
    },
}

/// Appends `VALUE <key> <flags> <len>[ <cas>]\r\n`; the caller then appends
/// the data and `\r\n` (so a large value can be written from its parts
/// without first assembling it).
pub fn encode_value_header(
    out: &mut Vec<u8>,
    key: &[u8],
    flags: u32,
    len: usize,
    cas: Option<u64>,
) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    // Writing into a Vec cannot fail.
    let _ = match cas {
        Some(cas) => write!(out, " {flags} {len} {cas}\r\n"),
        None => write!(out, " {flags} {len}\r\n"),
    };
}

impl Response<'_> {
    /// Appends the exact wire bytes of this reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let simple: &[u8] = match self {
            Response::Stored => b"STORED\r\n",
            Response::NotStored => b"NOT_STORED\r\n",
            Response::Exists => b"EXISTS\r\n",
            Response::NotFound => b"NOT_FOUND\r\n",
            Response::Deleted => b"DELETED\r\n",
            Response::Touched => b"TOUCHED\r\n",
            Response::End => b"END\r\n",
            Response::Ok => b"OK\r\n",
            Response::Reset => b"RESET\r\n",
            Response::Error => b"ERROR\r\n",
            Response::Value {
                key,
                flags,
                data,
                cas,
            } => {
                encode_value_header(out, key, *flags, data.len(), *cas);
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
                return;
            }
            Response::Number(n) => {
                let _ = write!(out, "{n}\r\n");
                return;
            }
            Response::Version(v) => {
                let _ = write!(out, "VERSION {v}\r\n");
                return;
            }
            Response::Stat(name, value) => {
                let _ = write!(out, "STAT {name} {value}\r\n");
                return;
            }
            Response::ClientError(msg) => {
                let _ = write!(out, "CLIENT_ERROR {msg}\r\n");
                return;
            }
            Response::ServerError(msg) => {
                let _ = write!(out, "SERVER_ERROR {msg}\r\n");
                return;
            }
            Response::Meta {
                status,
                flags,
                data,
            } => {
                out.extend_from_slice(status.as_bytes());
                if let Some(data) = data {
                    let _ = write!(out, " {}", data.len());
                }
                if !flags.is_empty() {
                    out.push(b' ');
                    out.extend_from_slice(flags);
                }
                out.extend_from_slice(b"\r\n");
                if let Some(data) = data {
                    out.extend_from_slice(data);
                    out.extend_from_slice(b"\r\n");
                }
                return;
            }
        };
        out.extend_from_slice(simple);
    }
}
