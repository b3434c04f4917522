//! The on-disk format of an HSTable: file header, record codec, the index of
//! a sealed file and its footer. `FORMAT.md` describes the same bytes in
//! prose; this module is the only code that knows the layout.
//!
//! Everything is little-endian and fixed-width; nothing here relies on
//! alignment, so any offset can be decoded.

use std::fmt;

/// Magic at the start of every HSTable.
pub const FILE_MAGIC: [u8; 8] = *b"HSTABLE\0";
/// Magic in the footer of a sealed HSTable.
pub const FOOTER_MAGIC: [u8; 8] = *b"HSTFOOT\0";
/// The format version written by this code into new stores. Version 2 gave
/// header byte 5 (reserved, zero, in version 1) the value encoding; version
/// 3 hashes keys with the store's own random seed (the `SEED` file) instead
/// of [`HASH_SEED`]. This code reads all three.
pub const FORMAT_VERSION: u32 = 3;
/// The version this code writes into a store created before version 3 (no
/// `SEED` file): its sealed indexes hold hashes with [`HASH_SEED`], so it
/// goes on with that seed and that version.
pub const LEGACY_FORMAT_VERSION: u32 = 2;
/// The oldest format version this code reads.
pub const MIN_FORMAT_VERSION: u32 = 1;

/// Header byte 5: the value is stored as is.
pub const ENCODING_RAW: u8 = 0;
/// Header byte 5: the value is LZ4-compressed (lz4_flex block format, the
/// uncompressed length prepended as a little-endian u32).
pub const ENCODING_LZ4: u8 = 1;

/// Bytes of the file header: magic, version, file id.
pub const FILE_HEADER_LEN: usize = 16;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 28;
/// Bytes of one entry of a sealed file's index.
pub const INDEX_ENTRY_LEN: usize = 28;
/// Bytes of the footer.
pub const FOOTER_LEN: usize = 40;

/// Longest key a record can carry (the key length field is 16 bits).
pub const MAX_KEY_LEN: usize = u16::MAX as usize;
/// Largest value a record can carry; keeps every record offset in a file
/// below 4 GiB so a sealed index can store offsets as u32.
pub const MAX_VALUE_LEN: usize = (1 << 30) - 1;

/// Highest sequence number a record may carry. Far above anything a store
/// reaches (each crash skips 2^32; 2^30 crashes to get here), and far below
/// `u64::MAX`, so `last_seq + gap` never overflows; a record that claims
/// more is not one this engine wrote.
pub const MAX_SEQ: u64 = 1 << 62;

/// Seed of the key hash of stores of format versions 1 and 2. Public, so
/// keys can be brute-forced against it; version 3 stores have their own.
pub const HASH_SEED: u64 = 0x4b69_6e67_4442_0001;

/// The 64-bit hash of a key with [`HASH_SEED`] (stores of versions 1, 2).
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, HASH_SEED)
}

/// How a store writes its HSTables: their format version and the seed of
/// its key hash (sealed indexes store hashes, so a store keeps both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFormat {
    pub version: u32,
    pub seed: u64,
}

impl StoreFormat {
    /// A store made before version 3: no `SEED` file.
    pub const LEGACY: StoreFormat = StoreFormat {
        version: LEGACY_FORMAT_VERSION,
        seed: HASH_SEED,
    };

    /// The hash of `key` in this store.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(key, self.seed)
    }
}

/// Magic of a store's `SEED` file.
pub const SEED_MAGIC: [u8; 8] = *b"HSTSEED\0";
/// Bytes of the `SEED` file: magic, seed (u64), CRC32 of the 16 bytes before.
pub const SEED_FILE_LEN: usize = 20;

/// The `SEED` file of a version 3 store.
pub fn encode_seed(seed: u64) -> [u8; SEED_FILE_LEN] {
    let mut out = [0u8; SEED_FILE_LEN];
    out[0..8].copy_from_slice(&SEED_MAGIC);
    out[8..16].copy_from_slice(&seed.to_le_bytes());
    let crc = crc32fast::hash(&out[0..16]);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The seed in a `SEED` file; `None` if the bytes are not a valid one.
pub fn decode_seed(b: &[u8]) -> Option<u64> {
    if b.len() != SEED_FILE_LEN || b[0..8] != SEED_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(b[16..20].try_into().ok()?);
    if crc32fast::hash(&b[0..16]) != crc {
        return None;
    }
    Some(u64::from_le_bytes(b[8..16].try_into().ok()?))
}

/// What a record means. Stored as one byte; 0 and unknown bytes are rejected,
/// which also makes zero-filled (preallocated, never written) space invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// A key with its value and metadata.
    Put = 1,
    /// A tombstone: the key was deleted.
    Delete = 2,
    /// Every record with a lower sequence number is dead (memcached flush_all).
    Clear = 3,
}

/// A byte that is not a known [`RecordKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownKind(pub u8);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown record kind {:#04x}", self.0)
    }
}

impl TryFrom<u8> for RecordKind {
    type Error = UnknownKind;
    fn try_from(b: u8) -> Result<Self, UnknownKind> {
        match b {
            1 => Ok(RecordKind::Put),
            2 => Ok(RecordKind::Delete),
            3 => Ok(RecordKind::Clear),
            other => Err(UnknownKind(other)),
        }
    }
}

/// The fixed-width header in front of every record's key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub crc: u32,
    pub kind: RecordKind,
    /// How the value is stored: [`ENCODING_RAW`] or [`ENCODING_LZ4`].
    pub encoding: u8,
    pub key_len: u16,
    pub value_len: u32,
    pub flags: u32,
    pub expiry: u32,
    pub seq: u64,
}

/// Why bytes do not form a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer bytes than the header or the lengths it announces.
    Truncated,
    UnknownKind(u8),
    /// The encoding byte is not a known encoding.
    Reserved,
    /// The lengths are impossible (e.g. a tombstone with a value).
    BadLength,
    /// The sequence number is 0 or above [`MAX_SEQ`]: no writer hands
    /// those out, so the bytes are not a record this engine wrote.
    BadSeq(u64),
    Checksum {
        stored: u32,
        computed: u32,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Truncated => f.write_str("record truncated"),
            RecordError::UnknownKind(b) => write!(f, "unknown record kind {b:#04x}"),
            RecordError::Reserved => f.write_str("unknown value encoding byte"),
            RecordError::BadLength => f.write_str("impossible key or value length"),
            RecordError::BadSeq(seq) => write!(f, "impossible sequence number {seq}"),
            RecordError::Checksum { stored, computed } => {
                write!(
                    f,
                    "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
        }
    }
}

impl RecordHeader {
    /// Bytes of the whole record: header, key, value.
    #[inline]
    pub fn record_len(&self) -> usize {
        RECORD_HEADER_LEN + self.key_len as usize + self.value_len as usize
    }

    /// Decodes the header fields without checking the checksum.
    #[inline]
    pub fn decode(b: &[u8]) -> Result<RecordHeader, RecordError> {
        if b.len() < RECORD_HEADER_LEN {
            return Err(RecordError::Truncated);
        }
        let kind = RecordKind::try_from(b[4]).map_err(|e| RecordError::UnknownKind(e.0))?;
        if b[5] > ENCODING_LZ4 {
            return Err(RecordError::Reserved);
        }
        let h = RecordHeader {
            crc: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            kind,
            encoding: b[5],
            key_len: u16::from_le_bytes(b[6..8].try_into().expect("2 bytes")),
            value_len: u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")),
            flags: u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")),
            expiry: u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")),
            seq: u64::from_le_bytes(b[20..28].try_into().expect("8 bytes")),
        };
        let ok = match kind {
            RecordKind::Put => h.value_len as usize <= MAX_VALUE_LEN,
            RecordKind::Delete => h.value_len == 0,
            RecordKind::Clear => h.value_len == 0 && h.key_len == 0,
        };
        if !ok {
            return Err(RecordError::BadLength);
        }
        if !(1..=MAX_SEQ).contains(&h.seq) {
            return Err(RecordError::BadSeq(h.seq));
        }
        Ok(h)
    }

    /// Writes the header into `out[..RECORD_HEADER_LEN]` with `crc` as given.
    #[inline]
    fn write_fields(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.crc.to_le_bytes());
        out[4] = self.kind as u8;
        out[5] = self.encoding;
        out[6..8].copy_from_slice(&self.key_len.to_le_bytes());
        out[8..12].copy_from_slice(&self.value_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.flags.to_le_bytes());
        out[16..20].copy_from_slice(&self.expiry.to_le_bytes());
        out[20..28].copy_from_slice(&self.seq.to_le_bytes());
    }
}

/// The checksum of a record: CRC32 over header bytes 4..28, key and value.
#[inline]
pub fn record_crc(header_tail: &[u8], key: &[u8], value: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header_tail);
    h.update(key);
    h.update(value);
    h.finalize()
}

/// Encodes a record header for `key` and `value` with its checksum.
/// The caller writes header, key and value back to back.
#[inline]
pub fn encode_header(
    kind: RecordKind,
    key: &[u8],
    value: &[u8],
    flags: u32,
    expiry: u32,
    seq: u64,
) -> [u8; RECORD_HEADER_LEN] {
    encode_header_with(kind, ENCODING_RAW, key, value, flags, expiry, seq)
}

/// [`encode_header`] for a value stored with `encoding`.
#[inline]
pub fn encode_header_with(
    kind: RecordKind,
    encoding: u8,
    key: &[u8],
    value: &[u8],
    flags: u32,
    expiry: u32,
    seq: u64,
) -> [u8; RECORD_HEADER_LEN] {
    debug_assert!(key.len() <= MAX_KEY_LEN && value.len() <= MAX_VALUE_LEN);
    let mut out = [0u8; RECORD_HEADER_LEN];
    let h = RecordHeader {
        crc: 0,
        kind,
        encoding,
        // NOTE: lengths are checked against MAX_KEY_LEN / MAX_VALUE_LEN by the engine before encoding.
        key_len: key.len() as u16,
        value_len: value.len() as u32,
        flags,
        expiry,
        seq,
    };
    h.write_fields(&mut out);
    let crc = record_crc(&out[4..], key, value);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// [`encode_header`] for a raw value of `value_len` bytes that is not in
/// memory: `value_crc` has hashed exactly its bytes (a streaming write).
pub fn encode_header_streamed(
    key: &[u8],
    value_len: usize,
    value_crc: &crc32fast::Hasher,
    flags: u32,
    expiry: u32,
    seq: u64,
) -> [u8; RECORD_HEADER_LEN] {
    let mut out = [0u8; RECORD_HEADER_LEN];
    let h = RecordHeader {
        crc: 0,
        kind: RecordKind::Put,
        encoding: ENCODING_RAW,
        // NOTE: lengths are checked by the engine before encoding.
        key_len: key.len() as u16,
        value_len: value_len as u32,
        flags,
        expiry,
        seq,
    };
    h.write_fields(&mut out);
    let mut c = crc32fast::Hasher::new();
    c.update(&out[4..]);
    c.update(key);
    c.combine(value_crc);
    out[0..4].copy_from_slice(&c.finalize().to_le_bytes());
    out
}

/// Encodes a whole record into a new buffer (tests and tools; the engine
/// writes the parts straight into the file map).
pub fn encode_record(
    kind: RecordKind,
    key: &[u8],
    value: &[u8],
    flags: u32,
    expiry: u32,
    seq: u64,
) -> Vec<u8> {
    let h = encode_header(kind, key, value, flags, expiry, seq);
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + key.len() + value.len());
    out.extend_from_slice(&h);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// A record decoded from bytes, borrowing key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub header: RecordHeader,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Decodes the record at the start of `b`, verifying its checksum.
pub fn decode_record(b: &[u8]) -> Result<RecordRef<'_>, RecordError> {
    let header = RecordHeader::decode(b)?;
    let len = header.record_len();
    if b.len() < len {
        return Err(RecordError::Truncated);
    }
    let key_end = RECORD_HEADER_LEN + header.key_len as usize;
    let key = &b[RECORD_HEADER_LEN..key_end];
    let value = &b[key_end..len];
    let computed = record_crc(&b[4..RECORD_HEADER_LEN], key, value);
    if computed != header.crc {
        return Err(RecordError::Checksum {
            stored: header.crc,
            computed,
        });
    }
    Ok(RecordRef { header, key, value })
}

/// The file header: magic, format version, file id.
pub fn encode_file_header(file_id: u32, version: u32) -> [u8; FILE_HEADER_LEN] {
    let mut out = [0u8; FILE_HEADER_LEN];
    out[0..8].copy_from_slice(&FILE_MAGIC);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    out[12..16].copy_from_slice(&file_id.to_le_bytes());
    out
}

/// Magic of a list of compacted files (`NNNNNNNN.obsolete`).
pub const OBSOLETE_MAGIC: [u8; 8] = *b"HSTOBSL\0";

/// A list of compacted HSTables to delete: magic, count (u32), the ids
/// (u32 each), CRC32 of all the bytes before it.
pub fn encode_obsolete(ids: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 4 * ids.len());
    out.extend_from_slice(&OBSOLETE_MAGIC);
    // NOTE: a compaction group holds a handful of files.
    out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The ids of a list written by [`encode_obsolete`]; `None` if the bytes
/// are not a whole, valid list (a write torn by a crash).
pub fn decode_obsolete(b: &[u8]) -> Option<Vec<u32>> {
    if b.len() < 16 || b[0..8] != OBSOLETE_MAGIC {
        return None;
    }
    let n = u32::from_le_bytes(b[8..12].try_into().ok()?) as usize;
    if b.len() != 16 + 4 * n {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    Some(
        body[12..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Why a file header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileHeaderError {
    Truncated,
    BadMagic,
    Version(u32),
}

/// Decodes a file header, returning the file id.
pub fn decode_file_header(b: &[u8]) -> Result<u32, FileHeaderError> {
    decode_file_header_version(b).map(|(id, _)| id)
}

/// Decodes a file header, returning the file id and the format version.
pub fn decode_file_header_version(b: &[u8]) -> Result<(u32, u32), FileHeaderError> {
    if b.len() < FILE_HEADER_LEN {
        return Err(FileHeaderError::Truncated);
    }
    if b[0..8] != FILE_MAGIC {
        return Err(FileHeaderError::BadMagic);
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(FileHeaderError::Version(version));
    }
    Ok((
        u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")),
        version,
    ))
}

/// One entry of a sealed file's index: enough to rebuild the in-memory index
/// and the byte counters without reading the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub hash: u64,
    pub seq: u64,
    pub offset: u32,
    pub len: u32,
    pub kind: RecordKind,
}

impl IndexEntry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hash.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.push(self.kind as u8);
        out.extend_from_slice(&[0, 0, 0]);
    }

    pub fn decode(b: &[u8]) -> Result<IndexEntry, UnknownKind> {
        Ok(IndexEntry {
            hash: u64::from_le_bytes(b[0..8].try_into().expect("8 bytes")),
            seq: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
            offset: u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")),
            len: u32::from_le_bytes(b[20..24].try_into().expect("4 bytes")),
            kind: RecordKind::try_from(b[24])?,
        })
    }
}

/// The footer at the very end of a sealed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Where the index starts; also where the records end.
    pub index_offset: u64,
    pub entry_count: u64,
    /// CRC32 of the index bytes.
    pub index_crc: u32,
    /// The format version of the file.
    pub version: u32,
}

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        out[0..8].copy_from_slice(&self.index_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.entry_count.to_le_bytes());
        out[16..20].copy_from_slice(&self.index_crc.to_le_bytes());
        out[20..24].copy_from_slice(&self.version.to_le_bytes());
        out[24..32].copy_from_slice(&FOOTER_MAGIC);
        // 32..36 reserved, zero
        let crc = crc32fast::hash(&out[0..36]);
        out[36..40].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes the last [`FOOTER_LEN`] bytes of a file; `None` if they are
    /// not a valid footer (the file is then scanned record by record).
    pub fn decode(b: &[u8]) -> Option<Footer> {
        if b.len() != FOOTER_LEN || b[24..32] != FOOTER_MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(b[36..40].try_into().ok()?);
        if crc32fast::hash(&b[0..36]) != crc {
            return None;
        }
        let version = u32::from_le_bytes(b[20..24].try_into().ok()?);
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return None;
        }
        Some(Footer {
            index_offset: u64::from_le_bytes(b[0..8].try_into().ok()?),
            entry_count: u64::from_le_bytes(b[8..16].try_into().ok()?),
            index_crc: u32::from_le_bytes(b[16..20].try_into().ok()?),
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode_record(RecordKind::Put, b"key-1", b"some value bytes", 7, 1234, 42)
    }

    #[test]
    fn round_trip() {
        let rec = sample();
        let r = decode_record(&rec).expect("valid");
        assert_eq!(r.key, b"key-1");
        assert_eq!(r.value, b"some value bytes");
        assert_eq!(r.header.kind, RecordKind::Put);
        assert_eq!(r.header.flags, 7);
        assert_eq!(r.header.expiry, 1234);
        assert_eq!(r.header.seq, 42);
        assert_eq!(r.header.record_len(), rec.len());

        let t = encode_record(RecordKind::Delete, b"k", b"", 0, 0, 9);
        let r = decode_record(&t).expect("valid tombstone");
        assert_eq!(r.header.kind, RecordKind::Delete);
        assert!(r.value.is_empty());
    }

    #[test]
    fn trailing_bytes_are_ignored_and_truncation_detected() {
        let mut rec = sample();
        let len = rec.len();
        rec.extend_from_slice(&[0xAA; 10]);
        assert_eq!(decode_record(&rec).expect("valid").header.record_len(), len);
        for cut in 0..len {
            assert!(decode_record(&rec[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn every_single_byte_corruption_is_detected() {
        let rec = sample();
        for i in 0..rec.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut bad = rec.clone();
                bad[i] ^= flip;
                // A corrupted length may make the record claim more bytes
                // than exist (Truncated) or fewer (checksum over the wrong
                // range): either way it must not decode.
                assert!(
                    decode_record(&bad).is_err(),
                    "byte {i} ^ {flip:#x} accepted"
                );
            }
        }
    }

    #[test]
    fn encoding_byte_round_trips_and_unknown_ones_are_rejected() {
        let h = encode_header_with(RecordKind::Put, ENCODING_LZ4, b"k", b"zz", 0, 0, 3);
        let mut rec = h.to_vec();
        rec.extend_from_slice(b"kzz");
        assert_eq!(
            decode_record(&rec).expect("valid").header.encoding,
            ENCODING_LZ4
        );
        rec[5] = 2;
        assert_eq!(decode_record(&rec), Err(RecordError::Reserved));
    }

    #[test]
    fn obsolete_list_round_trips_and_a_torn_one_is_rejected() {
        let b = encode_obsolete(&[3, 7, 12]);
        assert_eq!(decode_obsolete(&b), Some(vec![3, 7, 12]));
        for cut in 0..b.len() {
            assert_eq!(decode_obsolete(&b[..cut]), None, "cut at {cut}");
        }
        let mut bad = b.clone();
        bad[13] ^= 1;
        assert_eq!(decode_obsolete(&bad), None);
    }

    #[test]
    fn seed_file_round_trips_and_corruption_is_rejected() {
        let b = encode_seed(0x0123_4567_89ab_cdef);
        assert_eq!(decode_seed(&b), Some(0x0123_4567_89ab_cdef));
        for i in 0..b.len() {
            let mut bad = b;
            bad[i] ^= 0x04;
            assert_eq!(decode_seed(&bad), None, "byte {i}");
        }
        assert_eq!(decode_seed(&b[..19]), None);
        let s = StoreFormat {
            version: FORMAT_VERSION,
            seed: 1,
        };
        assert_ne!(s.hash(b"k"), StoreFormat::LEGACY.hash(b"k"));
        assert_eq!(StoreFormat::LEGACY.hash(b"k"), key_hash(b"k"));
    }

    #[test]
    fn impossible_sequence_numbers_are_rejected() {
        for seq in [0, MAX_SEQ + 1, u64::MAX] {
            let rec = encode_record(RecordKind::Put, b"k", b"v", 0, 0, seq);
            assert_eq!(decode_record(&rec), Err(RecordError::BadSeq(seq)));
        }
        let rec = encode_record(RecordKind::Put, b"k", b"v", 0, 0, MAX_SEQ);
        assert!(decode_record(&rec).is_ok());
    }

    #[test]
    fn unknown_kind_rejected() {
        assert_eq!(RecordKind::try_from(0), Err(UnknownKind(0)));
        for b in 4..=255u8 {
            assert!(RecordKind::try_from(b).is_err());
        }
        let mut rec = sample();
        rec[4] = 9;
        assert_eq!(decode_record(&rec), Err(RecordError::UnknownKind(9)));
        // Zero-filled space never parses as a record.
        assert!(decode_record(&[0u8; 64]).is_err());
    }

    #[test]
    fn footer_and_index_round_trip() {
        let f = Footer {
            index_offset: 1000,
            entry_count: 3,
            index_crc: 0xdead_beef,
            version: FORMAT_VERSION,
        };
        let b = f.encode();
        assert_eq!(Footer::decode(&b), Some(f));
        for i in 0..FOOTER_LEN {
            let mut bad = b;
            bad[i] ^= 0x10;
            assert_eq!(Footer::decode(&bad), None, "byte {i}");
        }
        let e = IndexEntry {
            hash: 1,
            seq: 2,
            offset: 3,
            len: 4,
            kind: RecordKind::Delete,
        };
        let mut out = Vec::new();
        e.encode(&mut out);
        assert_eq!(out.len(), INDEX_ENTRY_LEN);
        assert_eq!(IndexEntry::decode(&out), Ok(e));
    }

    #[test]
    fn file_header_round_trip() {
        let h = encode_file_header(17, FORMAT_VERSION);
        assert_eq!(decode_file_header_version(&h), Ok((17, 3)));
        let mut v = h;
        v[8] = 1;
        assert_eq!(decode_file_header(&v), Ok(17), "version 1 is read");
        v[8] = 2;
        assert_eq!(decode_file_header(&v), Ok(17), "version 2 is read");
        v[8] = 4;
        assert_eq!(decode_file_header(&v), Err(FileHeaderError::Version(4)));
        v[8] = 0;
        assert_eq!(decode_file_header(&v), Err(FileHeaderError::Version(0)));
        assert_eq!(
            decode_file_header(&h[..10]),
            Err(FileHeaderError::Truncated)
        );
    }
}
