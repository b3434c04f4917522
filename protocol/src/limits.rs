//! Limits the decoder enforces before it buffers anything.

/// Limits on request size. Defaults match memcached 1.6.18.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key accepted (memcached's `KEY_MAX_LENGTH`, 250).
    pub max_key_len: usize,
    /// A line with no newline within this many bytes closes the connection,
    /// except `get`/`gets`, whose many keys may make lines of any length (up
    /// to `max_item_size` here, so a client cannot grow a buffer forever).
    pub max_line_len: usize,
    /// memcached's item size limit (`-I`, default 1 MiB, here up to 1 GiB).
    /// Compared, as memcached does, against the value plus the key plus 59
    /// bytes of per-item header (63 with non-zero flags).
    pub max_item_size: usize,
    /// Values longer than this are handed over in chunks
    /// (`Frame::ValueStart`/`ValueChunk`/`ValueEnd`) instead of whole.
    pub chunk_threshold: usize,
}

/// Per-item overhead memcached 1.6.18 counts against the item size limit:
/// item header (48) + CAS (8) + key terminator (1) + data CRLF (2).
pub const ITEM_OVERHEAD: usize = 59;

/// The largest `max_item_size` accepted.
pub const MAX_ITEM_SIZE_LIMIT: usize = 1 << 30;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_len: 250,
            max_line_len: 2048,
            max_item_size: 1 << 20,
            chunk_threshold: 64 << 10,
        }
    }
}

impl Limits {
    /// The longest `get`/`gets` line accepted (its many keys may make it
    /// longer than `max_line_len`).
    pub fn max_multiget_line(&self) -> usize {
        self.max_item_size.max(self.max_line_len)
    }

    /// The most input a front-end must be able to hold for the decoder to
    /// take any of it: the longest line with a whole unchunked value, or the
    /// longest multi-get line, with its CRLF. Both front-ends size their
    /// input by this, so they accept the same requests.
    pub fn max_buffered(&self) -> usize {
        (self.max_line_len + self.chunk_threshold + 2).max(self.max_multiget_line() + 2)
    }

    /// Whether memcached would refuse a value of `len` bytes for this key and
    /// flags with `SERVER_ERROR object too large for cache`.
    pub fn too_large(&self, key_len: usize, flags: u32, len: usize) -> bool {
        let flags_len = if flags != 0 { 4 } else { 0 };
        let total = len
            .saturating_add(key_len)
            .saturating_add(ITEM_OVERHEAD + flags_len);
        total > self.max_item_size.min(MAX_ITEM_SIZE_LIMIT)
    }
}
