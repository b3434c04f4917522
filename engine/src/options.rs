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
    /// Verify each record's CRC on every read (recovery always verifies).
    pub verify_checksums: bool,
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
