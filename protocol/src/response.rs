//! Replies: the one place that spells them on the wire. The service writes
//! each reply through [`Response::encode`] and the few functions here into
//! any [`ReplySink`] (its reply queue, or a `Vec`), with memcached's exact
//! bytes; the client side decodes the same type.
//!
//! Nothing here allocates: numbers are formatted on the stack, and a value
//! can be written from its parts ([`encode_value_header`], the caller's
//! data, [`encode_data_end`]) so a large one is never copied to be framed.

use std::fmt;

use crate::request::MetaFlags;

/// Where replies are written: bytes are appended in order.
///
/// Implemented for `Vec<u8>` here and by the service's reply queue, so a
/// reply is written straight into the buffer it is sent from.
pub trait ReplySink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl ReplySink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// The line a connection refused at the connection limit gets before it is
/// closed (memcached's wording).
pub const TOO_MANY_CONNECTIONS: &[u8] = b"SERVER_ERROR too many open connections\r\n";

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

/// The error replies the service sends for a request the decoder accepted,
/// in memcached 1.6.18's words.
impl Response<'static> {
    /// A value over the item size limit (the decoder refuses one it sees
    /// coming with the same line, [`crate::ErrorKind::TooLarge`]).
    pub const TOO_LARGE: Self = Response::ServerError("object too large for cache");
    /// An append or prepend whose result would exceed the item size limit
    /// (memcached's reply to the failed allocation).
    pub const OUT_OF_MEMORY: Self = Response::ServerError("out of memory storing object");
    /// incr/decr of a value that is not a decimal number.
    pub const NON_NUMERIC: Self =
        Response::ClientError("cannot increment or decrement non-numeric value");
}

const CRLF: &[u8] = b"\r\n";

impl Response<'_> {
    /// Appends the exact wire bytes of this reply to `out`.
    pub fn encode<S: ReplySink + ?Sized>(&self, out: &mut S) {
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
                out.put(data);
                encode_data_end(out);
                return;
            }
            Response::Number(n) => {
                let mut line = Piece::new();
                line.num(*n);
                line.push(CRLF);
                out.put(line.as_bytes());
                return;
            }
            Response::Version(v) => {
                text_line(out, b"VERSION ", format_args!("{v}"));
                return;
            }
            Response::Stat(name, value) => {
                encode_stat(out, name, value);
                return;
            }
            Response::ClientError(msg) => {
                text_line(out, b"CLIENT_ERROR ", format_args!("{msg}"));
                return;
            }
            Response::ServerError(msg) => {
                encode_server_error(out, msg);
                return;
            }
            Response::Meta {
                status,
                flags,
                data,
            } => {
                meta_status(out, *status, data.map(<[u8]>::len));
                if !flags.is_empty() {
                    out.put(b" ");
                    out.put(flags);
                }
                out.put(CRLF);
                if let Some(data) = data {
                    out.put(data);
                    encode_data_end(out);
                }
                return;
            }
        };
        out.put(simple);
    }
}

/// Appends `VALUE <key> <flags> <len>[ <cas>]\r\n`; the caller then appends
/// the data and [`encode_data_end`] (so a large value can be written from
/// its parts without first assembling it).
#[inline]
pub fn encode_value_header<S: ReplySink + ?Sized>(
    out: &mut S,
    key: &[u8],
    flags: u32,
    len: usize,
    cas: Option<u64>,
) {
    out.put(b"VALUE ");
    out.put(key);
    let mut tail = Piece::new();
    tail.push(b" ");
    tail.num(u64::from(flags));
    tail.push(b" ");
    tail.num(len as u64);
    if let Some(cas) = cas {
        tail.push(b" ");
        tail.num(cas);
    }
    tail.push(CRLF);
    out.put(tail.as_bytes());
}

/// Appends the `\r\n` that ends a data block (after a `VALUE` or `VA` line
/// and the value).
#[inline]
pub fn encode_data_end<S: ReplySink + ?Sized>(out: &mut S) {
    out.put(CRLF);
}

/// Appends `SERVER_ERROR <reason>\r\n`. The reason (an engine error, say) is
/// kept to one line, CR and LF turned into spaces, so that the client reads
/// exactly one reply.
pub fn encode_server_error<S: ReplySink + ?Sized>(out: &mut S, reason: &dyn fmt::Display) {
    text_line(out, b"SERVER_ERROR ", format_args!("{reason}"));
}

/// Appends one `STAT <name> <value>\r\n` line of a `stats` listing.
pub fn encode_stat<S: ReplySink + ?Sized>(out: &mut S, name: &str, value: &dyn fmt::Display) {
    text_line(out, b"STAT ", format_args!("{name} {value}"));
}

/// What a meta reply's return flags can report about an item; the key and
/// the opaque come from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaItem {
    /// `f`: the client flags.
    pub flags: u32,
    /// `s`: the value's length.
    pub size: usize,
    /// `c`: the CAS value.
    pub cas: u64,
    /// `t`: seconds left to live; -1 for an item that never expires.
    pub ttl: i64,
}

/// Appends the line of a meta reply: its status, for `VA` the value's length
/// (`value_len`), then the return flags `request` asked for in the order it
/// gave them (`O` and `k` always; `c`, `f`, `s` and `t` only about an
/// `item`), then `\r\n`. After a `VA` line the caller appends the value and
/// [`encode_data_end`].
pub fn encode_meta_line<S: ReplySink + ?Sized>(
    out: &mut S,
    status: MetaStatus,
    value_len: Option<usize>,
    request: &MetaFlags<'_>,
    key: &[u8],
    item: Option<&MetaItem>,
) {
    meta_status(out, status, value_len);
    for token in request.tokens.into_iter().flatten() {
        let Some((&letter, arg)) = token.split_first() else {
            continue;
        };
        let mut flag = Piece::new();
        match (letter, item) {
            (b'O', _) => {
                out.put(b" O");
                out.put(arg);
                continue;
            }
            (b'k', _) => {
                out.put(b" k");
                out.put(key);
                continue;
            }
            (b'c', Some(i)) => {
                flag.push(b" c");
                flag.num(i.cas);
            }
            (b'f', Some(i)) => {
                flag.push(b" f");
                flag.num(u64::from(i.flags));
            }
            (b's', Some(i)) => {
                flag.push(b" s");
                flag.num(i.size as u64);
            }
            (b't', Some(i)) => {
                flag.push(b" t");
                flag.signed(i.ttl);
            }
            _ => continue,
        }
        out.put(flag.as_bytes());
    }
    out.put(CRLF);
}

/// `<status>[ <len>]`, the start of every meta reply line.
fn meta_status<S: ReplySink + ?Sized>(out: &mut S, status: MetaStatus, len: Option<usize>) {
    let mut head = Piece::new();
    head.push(status.as_bytes());
    if let Some(len) = len {
        head.push(b" ");
        head.num(len as u64);
    }
    out.put(head.as_bytes());
}

/// Appends `prefix`, the text, `\r\n`: one line whatever the text holds.
fn text_line<S: ReplySink + ?Sized>(out: &mut S, prefix: &[u8], text: fmt::Arguments<'_>) {
    out.put(prefix);
    // Our writer never fails; a Display that does leaves its text cut short,
    // still ended by the CRLF.
    let _ = fmt::Write::write_fmt(&mut OneLine(out), text);
    out.put(CRLF);
}

/// Formatted text into a sink, with CR and LF written as spaces: a reply
/// line cannot be split by the text it carries.
struct OneLine<'a, S: ?Sized>(&'a mut S);

impl<S: ReplySink + ?Sized> fmt::Write for OneLine<'_, S> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, part) in s.split(['\r', '\n']).enumerate() {
            if i > 0 {
                self.0.put(b" ");
            }
            self.0.put(part.as_bytes());
        }
        Ok(())
    }
}

/// A few bytes of a reply line (separators and numbers) built on the stack,
/// so they cost the sink one copy and no formatting machinery. Callers push
/// at most a status word and three 20-digit numbers with their separators,
/// well within the capacity.
struct Piece {
    buf: [u8; 64],
    len: usize,
}

impl Piece {
    #[inline]
    fn new() -> Self {
        Piece {
            buf: [0; 64],
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// `n` in decimal.
    #[inline]
    fn num(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[start..]);
    }

    /// `n` in decimal, with a `-` when negative.
    fn signed(&mut self, n: i64) {
        if n < 0 {
            self.push(b"-");
        }
        self.num(n.unsigned_abs());
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tokens;
    use proptest::prelude::*;

    fn encoded(r: Response<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(&mut out);
        out
    }

    proptest! {
        #[test]
        fn numbers_are_spelled_as_display_spells_them(n: u64, flags: u32, len: u32, ttl: i64) {
            prop_assert_eq!(encoded(Response::Number(n)), format!("{n}\r\n").into_bytes());
            let mut header = Vec::new();
            encode_value_header(&mut header, b"k", flags, len as usize, Some(n));
            prop_assert_eq!(header, format!("VALUE k {flags} {len} {n}\r\n").into_bytes());
            let request = MetaFlags {
                tokens: Some(Tokens::new(b"t c")),
                ..MetaFlags::default()
            };
            let item = MetaItem { flags, size: 0, cas: n, ttl };
            let mut line = Vec::new();
            encode_meta_line(&mut line, MetaStatus::Hd, None, &request, b"k", Some(&item));
            prop_assert_eq!(line, format!("HD t{ttl} c{n}\r\n").into_bytes());
        }
    }

    #[test]
    fn the_longest_value_header_fits() {
        let mut out = Vec::new();
        encode_value_header(&mut out, b"k", u32::MAX, usize::MAX, Some(u64::MAX));
        assert_eq!(
            out,
            format!("VALUE k {} {} {}\r\n", u32::MAX, usize::MAX, u64::MAX).into_bytes()
        );
    }

    #[test]
    fn error_text_stays_on_one_line() {
        let mut out = Vec::new();
        encode_server_error(&mut out, &"I/O error on /data/a\r\nb: disk full\n");
        assert_eq!(out, b"SERVER_ERROR I/O error on /data/a  b: disk full \r\n");
        assert_eq!(
            encoded(Response::ClientError("bad\nline")),
            b"CLIENT_ERROR bad line\r\n"
        );
    }

    #[test]
    fn meta_lines_echo_flags_in_request_order() {
        let request = MetaFlags {
            tokens: Some(Tokens::new(b"v s Oab k f t c q")),
            ..MetaFlags::default()
        };
        let item = MetaItem {
            flags: 7,
            size: 2,
            cas: 63,
            ttl: -1,
        };
        let mut out = Vec::new();
        encode_meta_line(
            &mut out,
            MetaStatus::Va,
            Some(2),
            &request,
            b"key",
            Some(&item),
        );
        assert_eq!(out, b"VA 2 s2 Oab kkey f7 t-1 c63\r\n");
        // Without an item only the request's own opaque and key come back.
        out.clear();
        encode_meta_line(&mut out, MetaStatus::Nf, None, &request, b"key", None);
        assert_eq!(out, b"NF Oab kkey\r\n");
    }

    #[test]
    fn the_too_large_refusal_is_the_decoders_line() {
        assert_eq!(
            encoded(Response::TOO_LARGE),
            crate::ErrorKind::TooLarge.reply()
        );
    }

    #[test]
    fn the_connection_refusal_decodes_as_a_server_error() {
        assert_eq!(
            crate::decode_response(TOO_MANY_CONNECTIONS).unwrap(),
            Some((
                Response::ServerError("too many open connections"),
                TOO_MANY_CONNECTIONS.len()
            ))
        );
    }
}
