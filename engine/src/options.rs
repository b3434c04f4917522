//! Options of an engine and the durability setting.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// When writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Never synced by the engine, except on roll-over and close. A crash of
    /// the machine loses what the kernel had not written back; a crash of the
    /// process loses nothing (records live in the shared page cache).
    None,
    /// A background thread runs fdatasync every given interval.
    Interval(Duration),
    /// A write's ticket is durable once an fdatasync covering it returned.
    /// One fdatasync covers every record written before it started (group
    /// commit).
    Always,
}

/// The interval of `interval` without a number.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(50);

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::None => f.write_str("none"),
            Durability::Interval(d) => write!(f, "interval:{}", d.as_millis()),
            Durability::Always => f.write_str("always"),
        }
    }
}

/// A durability string that is not `none`, `interval`, `interval:<ms>` or `always`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid durability {0:?}: expected none, interval, interval:<ms> (ms >= 1) or always")]
pub struct ParseDurabilityError(pub String);

impl FromStr for Durability {
    type Err = ParseDurabilityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDurabilityError(s.to_string());
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Durability::None),
            "always" => Ok(Durability::Always),
            "interval" => Ok(Durability::Interval(DEFAULT_SYNC_INTERVAL)),
            other => {
                let ms = other.strip_prefix("interval:").ok_or_else(err)?;
                let ms: u64 = ms.parse().map_err(|_| err())?;
                if ms == 0 {
                    return Err(err());
                }
                Ok(Durability::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

/// How values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// As they are.
    #[default]
    None,
    /// LZ4 per record (lz4_flex), marked in the record's header so files
    /// with both kinds stay readable. A value that does not shrink, or is
    /// shorter than [`MIN_COMPRESS_LEN`], is stored raw.
    Lz4,
}

/// Values shorter than this are never compressed: LZ4 cannot win enough on
/// them to pay for the decompression on every read.
pub const MIN_COMPRESS_LEN: usize = 64;

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
        })
    }
}

/// A compression string that is not `none` or `lz4`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid compression {0:?}: expected none or lz4")]
pub struct ParseCompressionError(pub String);

impl FromStr for Compression {
    type Err = ParseCompressionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            _ => Err(ParseCompressionError(s.to_string())),
        }
    }
}

/// The current time in unix seconds, as expiry times are compared against.
pub fn unix_now() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// How an engine is opened.
#[derive(Debug, Clone)]
pub struct Options {
    pub durability: Durability,
    /// Size at which the active HSTable is sealed and a new one started. The
    /// active file is preallocated to this size. 4 KiB ..= 3 GiB.
    pub max_file_size: u64,
    /// Verify each record's CRC on every read (recovery, compaction and
    /// `kvtool verify` always verify). Default on: a corrupt record is then
    /// never served. The cost is one CRC32 pass over header, key and value
    /// per read. Measured with `engine-bench --verify-checksums true|false`
    /// (one pair of runs on a shared 2-core VM, ops per CPU-second): 100-byte
    /// random reads 1.70M vs 2.26M (the pass is small, but so is everything
    /// else a read does); 100 KB values 109k vs 329k; 1 MiB values 10.7k vs
    /// 259k, i.e. about 95 us of CRC per MiB (~10 GB/s), where the read
    /// without it only touches one byte per page. A server that copies the
    /// value to a socket pays a pass over the bytes anyway, so the relative
    /// cost there is lower than these figures. Turn it off for benchmarks.
    pub verify_checksums: bool,
    /// Per-record value compression (default none).
    pub compression: Compression,
    /// Largest value accepted (default and upper bound: 1 GiB - 1, what the
    /// record format can hold).
    pub max_value_size: usize,
    /// A streaming write ([`crate::Engine::put_stream`]) of at most this many
    /// bytes is gathered in memory and written as one record at commit;
    /// a longer one is written straight into an HSTable of its own, chunk
    /// by chunk, so no side holds it in memory. Default 1 MiB.
    pub stream_buffer_limit: usize,
    /// Map HSTables with huge page-cache folios (`MADV_HUGEPAGE`; used where
    /// the file system supports large folios, e.g. ext4 on Linux 6.16+).
    /// Random reads then take one TLB entry per 2 MiB instead of per 4 KiB,
    /// which speeds up in-memory random reads markedly (see engine-bench).
    /// Off by default because of two costs: a cold read pulls a whole 2 MiB
    /// folio from disk (bad when the data is larger than RAM), and each
    /// fdatasync writes back the whole dirty 2 MiB folio around the tail
    /// (bad with frequent syncs: `always`, short intervals).
    pub huge_pages: bool,
    /// The clock expiry times are compared against (unix seconds); tests
    /// inject their own.
    pub clock: fn() -> u32,
    /// Run compaction in a background thread. [`crate::Engine::compact`]
    /// works either way.
    pub background_compaction: bool,
    /// A sealed HSTable is compacted once this fraction of its record bytes
    /// is dead (0 < threshold <= 1). At 0.5 each file is at most half
    /// garbage, so disk bytes stay below about 2x the live bytes.
    pub compaction_threshold: f64,
    /// Upper bound on the bytes per second compaction reads and writes
    /// (0: unlimited), so it does not starve foreground writes of disk
    /// bandwidth or of the second core.
    pub compaction_rate: u64,
    /// How often the background thread looks for files to compact (it is
    /// also woken at every roll-over).
    pub compaction_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Interval(DEFAULT_SYNC_INTERVAL),
            max_file_size: 64 << 20,
            verify_checksums: true,
            compression: Compression::None,
            max_value_size: crate::format::MAX_VALUE_LEN,
            stream_buffer_limit: 1 << 20,
            huge_pages: false,
            clock: unix_now,
            background_compaction: true,
            compaction_threshold: 0.5,
            compaction_rate: 256 << 20,
            compaction_interval: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_parses_and_round_trips() {
        for (s, d) in [
            ("none", Durability::None),
            ("always", Durability::Always),
            ("interval", Durability::Interval(Duration::from_millis(50))),
            ("interval:7", Durability::Interval(Duration::from_millis(7))),
        ] {
            let parsed: Durability = s.parse().expect("valid");
            assert_eq!(parsed, d);
            assert_eq!(parsed.to_string().parse::<Durability>(), Ok(d));
        }
        for bad in ["", "sometimes", "interval:", "interval:0", "interval:x"] {
            assert!(bad.parse::<Durability>().is_err(), "{bad}");
        }
    }
}
