//! Requests as the decoder hands them to the service, and their encoding on
//! the client side. Everything borrows from the input buffer: keys, values
//! and flag tokens are slices of it, never copies.

use std::fmt;

/// Space-separated tokens (the keys of a multi-get, the arguments of
/// `stats`, the flags of a meta command), kept as the raw slice of the
/// request line and split on demand so a multi-get with many keys needs no
/// allocation. Empty tokens (runs of spaces) are skipped, as memcached does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tokens<'a> {
    raw: &'a [u8],
}

impl<'a> Tokens<'a> {
    /// Wraps raw space-separated tokens (used by the client side to build
    /// requests; the decoder validates what it hands out).
    pub fn new(raw: &'a [u8]) -> Self {
        Tokens { raw }
    }

    /// The tokens as they appeared on the line, spaces included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    pub fn iter(&self) -> TokenIter<'a> {
        TokenIter { rest: self.raw }
    }

    /// Number of tokens (counts by scanning).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl fmt::Debug for Tokens<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|t| String::from_utf8_lossy(t)))
            .finish()
    }
}

impl<'a> IntoIterator for Tokens<'a> {
    type Item = &'a [u8];
    type IntoIter = TokenIter<'a>;
    fn into_iter(self) -> TokenIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Tokens`].
#[derive(Clone, Debug)]
pub struct TokenIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TokenIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&b| b != b' ')?;
        let rest = &self.rest[start..];
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

/// Which storage command a data block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageCommand {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    /// Store only if the item's CAS value still equals `StorageHeader::cas`.
    Cas,
}

impl StorageCommand {
    pub fn name(self) -> &'static str {
        match self {
            StorageCommand::Set => "set",
            StorageCommand::Add => "add",
            StorageCommand::Replace => "replace",
            StorageCommand::Append => "append",
            StorageCommand::Prepend => "prepend",
            StorageCommand::Cas => "cas",
        }
    }
}

/// The line of a storage command (classic or `ms`): everything but the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageHeader<'a> {
    pub command: StorageCommand,
    pub key: &'a [u8],
    /// Opaque client flags, returned as sent.
    pub flags: u32,
    /// Raw exptime as memcached reads it (a 32-bit signed value); convert with
    /// [`crate::expiry_from_exptime`].
    pub exptime: i64,
    /// Length of the data block, without its trailing `\r\n`.
    pub len: usize,
    /// Compare-and-swap value (`cas` command, `ms` with `C`); 0 otherwise.
    pub cas: u64,
    /// Send no reply on success (classic commands only; see `meta.quiet`).
    pub noreply: bool,
    /// Present for `ms`: the flags that shape its reply.
    pub meta: Option<MetaFlags<'a>>,
}

impl StorageHeader<'_> {
    /// The CAS value the write must still match: the `cas` command's, or
    /// the `C` flag of an `ms`. `None`: the command compares none.
    pub fn compare_cas(&self) -> Option<u64> {
        match &self.meta {
            Some(meta) => meta.compare_cas,
            None => (self.command == StorageCommand::Cas).then_some(self.cas),
        }
    }
}

/// A [`StorageHeader`] that owns its bytes (key, meta flag tokens, opaque),
/// for a command kept while its value arrives over several reads, after
/// the input its line was read from is gone. [`OwnedStorageHeader::header`]
/// lends it back: the command has one meaning, whoever holds its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedStorageHeader {
    /// The header with its borrowed parts empty: they live below.
    header: StorageHeader<'static>,
    key: Vec<u8>,
    /// `ms`: its flag tokens as sent.
    tokens: Option<Vec<u8>>,
    /// `ms`: its `O` flag's argument.
    opaque: Option<Vec<u8>>,
}

impl OwnedStorageHeader {
    /// The header, borrowing from this copy.
    pub fn header(&self) -> StorageHeader<'_> {
        StorageHeader {
            key: &self.key,
            meta: self.header.meta.map(|meta| MetaFlags {
                tokens: self.tokens.as_deref().map(Tokens::new),
                opaque: self.opaque.as_deref(),
                ..meta
            }),
            ..self.header
        }
    }
}

impl From<&StorageHeader<'_>> for OwnedStorageHeader {
    fn from(h: &StorageHeader<'_>) -> Self {
        OwnedStorageHeader {
            header: StorageHeader {
                key: b"",
                meta: h.meta.map(|meta| MetaFlags {
                    tokens: None,
                    opaque: None,
                    ..meta
                }),
                ..*h
            },
            key: h.key.to_vec(),
            tokens: h.meta.and_then(|m| m.tokens).map(|t| t.as_bytes().to_vec()),
            opaque: h.meta.and_then(|m| m.opaque).map(<[u8]>::to_vec),
        }
    }
}

/// The flags of a meta command (`mg`, `ms`, `md`), parsed, plus the raw
/// tokens so a reply can echo return flags in the order they were asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaFlags<'a> {
    /// All flag tokens as sent, e.g. `v k T30 Oabc`.
    pub tokens: Option<Tokens<'a>>,
    /// `b`: the key is base64 (passed through; the key is not decoded).
    pub base64_key: bool,
    /// `c`: return the CAS value.
    pub return_cas: bool,
    /// `f`: return the client flags.
    pub return_flags: bool,
    /// `h`: return whether the item was hit before.
    pub return_hit: bool,
    /// `k`: return the key.
    pub return_key: bool,
    /// `l`: return seconds since last access.
    pub return_last_access: bool,
    /// `s`: return the value size.
    pub return_size: bool,
    /// `t`: return the remaining TTL (-1 for none).
    pub return_ttl: bool,
    /// `v`: return the value (`mg`).
    pub return_value: bool,
    /// `u`: do not bump the item in the LRU.
    pub no_bump: bool,
    /// `q`: quiet mode, suppress the common-case reply (EN for mg, HD for
    /// ms/md, NF for md).
    pub quiet: bool,
    /// `I`: invalidate (mark stale) instead of removing/storing normally.
    pub invalidate: bool,
    /// `O<token>`: opaque, echoed back (at most 32 bytes).
    pub opaque: Option<&'a [u8]>,
    /// `T<exptime>`: update (mg) or set (ms) the exptime, raw.
    pub ttl: Option<i64>,
    /// `N<exptime>`: vivify on miss with this exptime (mg).
    pub vivify: Option<i64>,
    /// `R<exptime>`: recache window (mg).
    pub recache: Option<i64>,
    /// `C<cas>`: compare CAS (ms, md).
    pub compare_cas: Option<u64>,
    /// `F<flags>`: client flags to store (ms).
    pub client_flags: Option<u32>,
    /// `M<mode>`: ms mode byte as sent (E add, A append, P prepend, R replace, S set).
    pub mode: Option<u8>,
}

/// A complete request. Commands carry `noreply` where memcached accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    Get {
        keys: Tokens<'a>,
    },
    Gets {
        keys: Tokens<'a>,
    },
    /// Get and touch.
    Gat {
        exptime: i64,
        keys: Tokens<'a>,
    },
    Gats {
        exptime: i64,
        keys: Tokens<'a>,
    },
    /// set/add/replace/append/prepend/cas (and ms) with its whole value.
    Store {
        header: StorageHeader<'a>,
        data: &'a [u8],
    },
    Delete {
        key: &'a [u8],
        noreply: bool,
    },
    Incr {
        key: &'a [u8],
        delta: u64,
        noreply: bool,
    },
    Decr {
        key: &'a [u8],
        delta: u64,
        noreply: bool,
    },
    Touch {
        key: &'a [u8],
        exptime: i64,
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`; `delay` is a raw exptime (0 = now).
    FlushAll {
        delay: i64,
        noreply: bool,
    },
    Version,
    Verbosity {
        level: u32,
        noreply: bool,
    },
    /// `stats [args...]`: empty args is the general stats.
    Stats {
        args: Tokens<'a>,
    },
    Quit,
    /// `mg <key> <flags>*`
    MetaGet {
        key: &'a [u8],
        flags: MetaFlags<'a>,
    },
    /// `md <key> <flags>*`
    MetaDelete {
        key: &'a [u8],
        flags: MetaFlags<'a>,
    },
    /// `mn`: replies `MN`, marks the end of a pipeline of quiet meta commands.
    MetaNoop,
}

fn push_num(out: &mut Vec<u8>, n: impl fmt::Display) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{n}");
}

fn push_keys(out: &mut Vec<u8>, keys: &Tokens<'_>) {
    for k in keys.iter() {
        out.push(b' ');
        out.extend_from_slice(k);
    }
}

fn push_noreply(out: &mut Vec<u8>, noreply: bool) {
    if noreply {
        out.extend_from_slice(b" noreply");
    }
}

/// Appends the line of a storage command (without its data block).
pub fn encode_storage_header(h: &StorageHeader<'_>, out: &mut Vec<u8>) {
    if let Some(meta) = &h.meta {
        out.extend_from_slice(b"ms ");
        out.extend_from_slice(h.key);
        out.push(b' ');
        push_num(out, h.len);
        if let Some(tokens) = &meta.tokens {
            push_keys(out, tokens);
        }
        out.extend_from_slice(b"\r\n");
        return;
    }
    out.extend_from_slice(h.command.name().as_bytes());
    out.push(b' ');
    out.extend_from_slice(h.key);
    out.push(b' ');
    push_num(out, h.flags);
    out.push(b' ');
    push_num(out, h.exptime);
    out.push(b' ');
    push_num(out, h.len);
    if h.command == StorageCommand::Cas {
        out.push(b' ');
        push_num(out, h.cas);
    }
    push_noreply(out, h.noreply);
    out.extend_from_slice(b"\r\n");
}

/// Client side: appends the wire form of `req` to `out`.
///
/// For `Store`, `data.len()` must equal `header.len`. Meta commands are
/// written from `MetaFlags::tokens` (the other fields are not consulted).
pub fn encode_request(req: &Request<'_>, out: &mut Vec<u8>) {
    match req {
        Request::Get { keys } => {
            out.extend_from_slice(b"get");
            push_keys(out, keys);
        }
        Request::Gets { keys } => {
            out.extend_from_slice(b"gets");
            push_keys(out, keys);
        }
        Request::Gat { exptime, keys } | Request::Gats { exptime, keys } => {
            out.extend_from_slice(if matches!(req, Request::Gat { .. }) {
                b"gat "
            } else {
                b"gats "
            });
            push_num(out, exptime);
            push_keys(out, keys);
        }
        Request::Store { header, data } => {
            encode_storage_header(header, out);
            out.extend_from_slice(data);
        }
        Request::Delete { key, noreply } => {
            out.extend_from_slice(b"delete ");
            out.extend_from_slice(key);
            push_noreply(out, *noreply);
        }
        Request::Incr {
            key,
            delta,
            noreply,
        }
        | Request::Decr {
            key,
            delta,
            noreply,
        } => {
            out.extend_from_slice(if matches!(req, Request::Incr { .. }) {
                b"incr "
            } else {
                b"decr "
            });
            out.extend_from_slice(key);
            out.push(b' ');
            push_num(out, delta);
            push_noreply(out, *noreply);
        }
        Request::Touch {
            key,
            exptime,
            noreply,
        } => {
            out.extend_from_slice(b"touch ");
            out.extend_from_slice(key);
            out.push(b' ');
            push_num(out, exptime);
            push_noreply(out, *noreply);
        }
        Request::FlushAll { delay, noreply } => {
            out.extend_from_slice(b"flush_all");
            if *delay != 0 {
                out.push(b' ');
                push_num(out, delay);
            }
            push_noreply(out, *noreply);
        }
        Request::Version => out.extend_from_slice(b"version"),
        Request::Verbosity { level, noreply } => {
            out.extend_from_slice(b"verbosity ");
            push_num(out, level);
            push_noreply(out, *noreply);
        }
        Request::Stats { args } => {
            out.extend_from_slice(b"stats");
            push_keys(out, args);
        }
        Request::Quit => out.extend_from_slice(b"quit"),
        Request::MetaGet { key, flags } | Request::MetaDelete { key, flags } => {
            out.extend_from_slice(if matches!(req, Request::MetaGet { .. }) {
                b"mg "
            } else {
                b"md "
            });
            out.extend_from_slice(key);
            if let Some(tokens) = &flags.tokens {
                push_keys(out, tokens);
            }
        }
        Request::MetaNoop => out.extend_from_slice(b"mn"),
    }
    out.extend_from_slice(b"\r\n");
}
