//! Errors of the request decoder: what to reply, and whether the connection
//! can go on.

/// Why a request was rejected. Each kind has one exact reply line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Unknown command, or a known one with the wrong number of tokens.
    UnknownCommand,
    /// A malformed line: bad number, key too long.
    BadCommandLine,
    /// `delete` with arguments other than `0` and `noreply`.
    BadDeleteUsage,
    /// `incr`/`decr` delta that is not an unsigned 64-bit number.
    InvalidDelta,
    /// `touch`/`gat`/`flush_all` exptime that is not a number.
    InvalidExptime,
    /// The data block was not followed by `\r\n`.
    BadDataChunk,
    /// The value exceeds the item size limit; its data block is swallowed.
    TooLarge,
    /// A meta command flag memcached does not know.
    InvalidMetaFlag,
    /// A meta command flag given twice.
    DuplicateMetaFlag,
    /// `md` with an unknown, repeated or malformed flag (md's single message).
    InvalidOrDuplicateMetaFlag,
    /// An `O` (opaque) flag longer than 32 bytes, flag byte included.
    OpaqueTooLong,
    /// `ms` with an `M` token that is not exactly one mode byte.
    MsModeLength,
    /// `ms` with an `M` mode other than E, A, P, R, S (either case).
    InvalidMsMode,
    /// A meta command flag token that does not parse (e.g. `T` with no number).
    BadMetaToken,
    /// No newline within the line length limit: the connection must close.
    LineTooLong,
    /// The request line looks like HTTP: the connection must close.
    Http,
}

impl ErrorKind {
    /// The exact reply memcached 1.6.18 sends for this error.
    pub fn reply(self) -> &'static [u8] {
        match self {
            ErrorKind::UnknownCommand => b"ERROR\r\n",
            ErrorKind::BadCommandLine => b"CLIENT_ERROR bad command line format\r\n",
            ErrorKind::BadDeleteUsage => {
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            }
            ErrorKind::InvalidDelta => b"CLIENT_ERROR invalid numeric delta argument\r\n",
            ErrorKind::InvalidExptime => b"CLIENT_ERROR invalid exptime argument\r\n",
            ErrorKind::BadDataChunk => b"CLIENT_ERROR bad data chunk\r\n",
            ErrorKind::TooLarge => b"SERVER_ERROR object too large for cache\r\n",
            ErrorKind::InvalidMetaFlag => b"CLIENT_ERROR invalid flag\r\n",
            ErrorKind::DuplicateMetaFlag => b"CLIENT_ERROR duplicate flag\r\n",
            ErrorKind::InvalidOrDuplicateMetaFlag => b"CLIENT_ERROR invalid or duplicate flag\r\n",
            ErrorKind::OpaqueTooLong => b"CLIENT_ERROR opaque token too long\r\n",
            ErrorKind::MsModeLength => b"CLIENT_ERROR incorrect length for M token\r\n",
            ErrorKind::InvalidMsMode => b"CLIENT_ERROR invalid mode for ms M token\r\n",
            ErrorKind::BadMetaToken => b"CLIENT_ERROR bad token in command line format\r\n",
            ErrorKind::LineTooLong | ErrorKind::Http => b"",
        }
    }
}

/// A rejected request.
///
/// The decoder has already accounted for the bytes of the bad request:
/// the caller drops `consumed` bytes, sends `reply()`, and either closes the
/// connection (`close`) or goes on decoding the rest of its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} (close: {close})")]
pub struct ProtocolError {
    pub kind: ErrorKind,
    /// The connection cannot resync; close it after sending `reply()`.
    pub close: bool,
    /// Bytes of the input the bad request used; drop them before decoding on.
    pub consumed: usize,
    /// The request carried `noreply`, and memcached 1.6 then sends nothing,
    /// errors included (only `ERROR` for an unknown command is always sent).
    pub silent: bool,
}

impl ProtocolError {
    pub(crate) fn new(kind: ErrorKind, consumed: usize, silent: bool) -> Self {
        let close = matches!(kind, ErrorKind::LineTooLong | ErrorKind::Http);
        ProtocolError {
            kind,
            close,
            consumed,
            silent,
        }
    }

    /// The exact bytes memcached sends for this error (empty when `silent`
    /// or when the connection is simply closed).
    pub fn reply(&self) -> &'static [u8] {
        if self.silent {
            b""
        } else {
            self.kind.reply()
        }
    }
}
