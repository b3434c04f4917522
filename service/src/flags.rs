//! The command-line flags both front-ends share, defined once so the two
//! binaries accept the same options with the same defaults (each flattens
//! [`Flags`] into its own clap command), plus logging set-up and the mapping
//! from flags to engine options.
//!
//! `--threads` and `--pin` have no common default: each front-end picks its
//! own (the thread pool: 150 workers, unpinned; the event loop: one pinned
//! loop per core).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

/// The largest `--max-item-size` accepted, as memcached's `-I` (1 GiB).
pub const MAX_ITEM_SIZE_LIMIT: u64 = 1 << 30;
/// The smallest `--max-item-size` accepted, as memcached's `-I` (1 KiB).
pub const MIN_ITEM_SIZE: u64 = 1 << 10;

/// Flags shared by both servers.
#[derive(Args, Clone, Debug)]
pub struct Flags {
    /// Address to listen on (memcached's -l/-p).
    #[arg(long, default_value = "127.0.0.1:11211")]
    pub listen: SocketAddr,

    /// Directory of the engine's data files; created if missing. One server
    /// at a time per directory.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,

    /// Worker threads (thread pool, default 150) or event loops (event loop,
    /// default one per core).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Pin threads to cores: on or off (thread pool default off, event loop
    /// default on).
    #[arg(long, value_parser = parse_on_off)]
    pub pin: Option<bool>,

    /// Connections served or queued at once; more are answered with
    /// `SERVER_ERROR too many open connections` and closed. 0 means no limit.
    /// Higher than memcached's 1024 because the event loop is meant to hold
    /// ten thousand connections.
    #[arg(long, default_value_t = 10240)]
    pub max_connections: usize,

    /// Largest value accepted, in bytes with an optional k/m/g suffix
    /// (binary units), from 1k up to 1g. Larger sets get `SERVER_ERROR object
    /// too large for cache`.
    #[arg(long, default_value = "1m", value_parser = parse_size)]
    pub max_item_size: u64,

    /// Size of each data file (HSTable), with an optional k/m/g suffix, from
    /// 4k up to 3g: the file being written is preallocated to it and sealed
    /// when full. Smaller files are compacted sooner and at less cost each;
    /// every file costs a mapping and a descriptor.
    #[arg(long, default_value = "64m", value_parser = parse_hstable_size)]
    pub hstable_size: u64,

    /// When a write is acknowledged: none (never synced by us), interval
    /// (fdatasync every 50 ms in the background), interval:<ms>, or always
    /// (reply only after an fdatasync covering the write).
    #[arg(long, default_value = "interval")]
    pub durability: DurabilityFlag,

    /// Seconds a connection may stay silent before it is closed; 0 = never.
    /// Default: never for the event loop (as memcached), 300 for the thread
    /// pool, where a silent client holds a worker.
    #[arg(long)]
    pub idle_timeout: Option<u64>,

    /// Seconds a client may leave its replies unread (none of them taken
    /// while some are pending) before its connection is closed; 0 = never.
    /// Bounds how long a client that never reads holds a thread-pool worker.
    #[arg(long, default_value_t = 10)]
    pub write_timeout: u64,

    /// Value compression on disk: none or lz4.
    #[arg(long, default_value = "none")]
    pub compression: Compression,

    /// Log filter (error, warn, info, debug, trace, or a tracing directive
    /// list); RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

impl Flags {
    /// `--pin`, or the front-end's default when not given.
    pub fn pin_or(&self, default: bool) -> bool {
        self.pin.unwrap_or(default)
    }

    /// `--threads`, or the front-end's default when not given (or 0).
    pub fn threads_or(&self, default: usize) -> usize {
        self.threads.filter(|&n| n > 0).unwrap_or(default)
    }

    /// `--idle-timeout` as a duration, or the front-end's default (in
    /// seconds) when not given; `None` when connections never time out.
    pub fn idle_timeout_or(&self, default_s: u64) -> Option<Duration> {
        let s = self.idle_timeout.unwrap_or(default_s);
        (s > 0).then(|| Duration::from_secs(s))
    }

    /// `--write-timeout` as a duration; `None` when never.
    pub fn write_timeout(&self) -> Option<Duration> {
        (self.write_timeout > 0).then(|| Duration::from_secs(self.write_timeout))
    }

    /// `--max-item-size` in bytes as a `usize`.
    pub fn max_item_size(&self) -> usize {
        // The parser caps it at 1 GiB, which fits a usize on every target we build for.
        usize::try_from(self.max_item_size).unwrap_or(usize::MAX)
    }
}

/// `--durability`: the engine's durability setting as a flag value. Kept
/// separate from `engine::Durability` so the flag's spelling is defined (and
/// tested) here; [`DurabilityFlag::to_engine`] maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurabilityFlag {
    None,
    Interval(Duration),
    Always,
}

/// The interval `--durability interval` means.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(50);

impl DurabilityFlag {
    /// The engine's setting for this flag.
    pub fn to_engine(self) -> engine::Durability {
        match self {
            DurabilityFlag::None => engine::Durability::None,
            DurabilityFlag::Interval(every) => engine::Durability::Interval(every),
            DurabilityFlag::Always => engine::Durability::Always,
        }
    }
}

/// A flag value that could not be parsed; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FlagError(String);

impl FromStr for DurabilityFlag {
    type Err = FlagError;
    fn from_str(s: &str) -> Result<Self, FlagError> {
        let bad = || {
            FlagError(format!(
                "invalid durability {s:?}: expected none, interval, interval:<ms> or always"
            ))
        };
        match s {
            "none" => Ok(DurabilityFlag::None),
            "always" => Ok(DurabilityFlag::Always),
            "interval" => Ok(DurabilityFlag::Interval(DEFAULT_SYNC_INTERVAL)),
            _ => {
                let ms = s.strip_prefix("interval:").ok_or_else(bad)?;
                let ms: u64 = ms.parse().map_err(|_| bad())?;
                if ms == 0 {
                    return Err(FlagError(format!(
                        "invalid durability {s:?}: the interval must be at least 1 ms"
                    )));
                }
                Ok(DurabilityFlag::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl fmt::Display for DurabilityFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurabilityFlag::None => f.write_str("none"),
            DurabilityFlag::Always => f.write_str("always"),
            DurabilityFlag::Interval(every) => write!(f, "interval:{}", every.as_millis()),
        }
    }
}

/// `--compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Lz4,
}

impl FromStr for Compression {
    type Err = FlagError;
    fn from_str(s: &str) -> Result<Self, FlagError> {
        match s {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            _ => Err(FlagError(format!(
                "invalid compression {s:?}: expected none or lz4"
            ))),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
        })
    }
}

fn parse_on_off(s: &str) -> Result<bool, FlagError> {
    match s {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(FlagError(format!(
            "invalid value {s:?}: expected on or off"
        ))),
    }
}

/// Bytes with an optional k, m or g suffix (binary units).
fn parse_bytes(s: &str) -> Result<u64, FlagError> {
    let bad = || {
        FlagError(format!(
            "invalid size {s:?}: expected bytes with an optional k, m or g suffix"
        ))
    };
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_lowercase()),
        _ => (s, 'b'),
    };
    let shift = match unit {
        'b' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// Parses a byte size: digits with an optional k, m or g suffix (binary
/// units, either case), between 1k and 1g.
pub fn parse_size(s: &str) -> Result<u64, FlagError> {
    let bytes = parse_bytes(s)?;
    if !(MIN_ITEM_SIZE..=MAX_ITEM_SIZE_LIMIT).contains(&bytes) {
        return Err(FlagError(format!(
            "size {s:?} out of range: must be between 1k and 1g"
        )));
    }
    Ok(bytes)
}

/// A data-file size (`--hstable-size`): as [`parse_size`], from 4k up to
/// 3g (an index offset in a sealed file is 32 bits).
pub fn parse_hstable_size(s: &str) -> Result<u64, FlagError> {
    let bytes = parse_bytes(s)?;
    if !((4 << 10)..=(3 << 30)).contains(&bytes) {
        return Err(FlagError(format!(
            "size {s:?} out of range: must be between 4k and 3g"
        )));
    }
    Ok(bytes)
}

/// Installs the global tracing subscriber: `RUST_LOG` when set, otherwise
/// `--log-level`. Calling it twice (tests) leaves the first one in place.
pub fn init_logging(flags: &Flags) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(&flags.log_level),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The engine options the flags ask for.
///
/// `--compression lz4` compresses each stored value of 64 bytes or more
/// that LZ4 shrinks (the engine marks each record, so a data directory can
/// switch back and forth).
pub fn engine_options(flags: &Flags) -> engine::Options {
    engine::Options {
        durability: flags.durability.to_engine(),
        max_file_size: flags.hstable_size,
        compression: match flags.compression {
            Compression::None => engine::Compression::None,
            Compression::Lz4 => engine::Compression::Lz4,
        },
        ..engine::Options::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        flags: Flags,
    }

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Cli::try_parse_from(std::iter::once("server").chain(args.iter().copied())).map(|c| c.flags)
    }

    #[test]
    fn defaults() {
        let f = parse(&[]).expect("defaults parse");
        assert_eq!(f.listen, "127.0.0.1:11211".parse().expect("addr"));
        assert_eq!(f.data_dir, PathBuf::from("./data"));
        assert_eq!(f.threads, None);
        assert_eq!(f.threads_or(150), 150);
        assert!(!f.pin_or(false));
        assert!(f.pin_or(true));
        assert_eq!(f.max_connections, 10240);
        assert_eq!(f.max_item_size, 1 << 20);
        assert_eq!(
            f.durability,
            DurabilityFlag::Interval(Duration::from_millis(50))
        );
        assert_eq!(f.idle_timeout_or(0), None);
        assert_eq!(f.idle_timeout_or(300), Some(Duration::from_secs(300)));
        assert_eq!(f.write_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(f.compression, Compression::None);
        assert_eq!(f.log_level, "info");
    }

    #[test]
    fn every_flag_parses() {
        let f = parse(&[
            "--listen",
            "0.0.0.0:9999",
            "--data-dir",
            "/var/lib/kv",
            "--threads",
            "8",
            "--pin",
            "on",
            "--max-connections",
            "0",
            "--max-item-size",
            "64K",
            "--durability",
            "interval:5",
            "--idle-timeout",
            "30",
            "--compression",
            "lz4",
            "--log-level",
            "debug",
        ])
        .expect("parses");
        assert_eq!(f.listen.port(), 9999);
        assert_eq!(f.data_dir, PathBuf::from("/var/lib/kv"));
        assert_eq!(f.threads_or(150), 8);
        assert!(f.pin_or(false));
        assert_eq!(f.max_connections, 0);
        assert_eq!(f.max_item_size(), 64 * 1024);
        assert_eq!(
            f.durability,
            DurabilityFlag::Interval(Duration::from_millis(5))
        );
        assert_eq!(f.idle_timeout_or(300), Some(Duration::from_secs(30)));
        assert_eq!(f.compression, Compression::Lz4);
        assert_eq!(engine_options(&f).compression, engine::Compression::Lz4);
        assert_eq!(f.log_level, "debug");
        assert!(!parse(&["--pin", "off"]).expect("off").pin_or(true));
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            &["--durability", "sometimes"][..],
            &["--durability", "interval:"],
            &["--durability", "interval:0"],
            &["--max-item-size", "2g"],
            &["--max-item-size", "512"],
            &["--max-item-size", "1t"],
            &["--max-item-size", "m"],
            &["--compression", "zstd"],
            &["--pin", "maybe"],
            &["--listen", "localhost"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be rejected");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("1025m").is_err());
        assert!(parse_size("99999999999999999999g").is_err());
    }

    #[test]
    fn durability_round_trips() {
        for s in ["none", "always", "interval:50", "interval:1000"] {
            let d: DurabilityFlag = s.parse().expect(s);
            assert_eq!(d.to_string(), s);
        }
        assert!(matches!(
            DurabilityFlag::Always.to_engine(),
            engine::Durability::Always
        ));
        assert!(matches!(
            DurabilityFlag::Interval(Duration::from_millis(7)).to_engine(),
            engine::Durability::Interval(d) if d == Duration::from_millis(7)
        ));
    }

    #[test]
    fn help_names_every_default() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "127.0.0.1:11211",
            "./data",
            "10240",
            "[default: 1m]",
            "[default: interval]",
            "[default: 10]",
            "300 for the thread pool",
            "[default: none]",
            "[default: info]",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
        }
    }

    #[test]
    fn engine_options_follow_flags() {
        let f = parse(&["--durability", "always"]).expect("parses");
        assert!(matches!(
            engine_options(&f).durability,
            engine::Durability::Always
        ));
        assert_eq!(engine_options(&f).max_file_size, 64 << 20);
        let f = parse(&["--hstable-size", "256k"]).expect("parses");
        assert_eq!(engine_options(&f).max_file_size, 256 << 10);
        let f = parse(&["--hstable-size", "3g"]).expect("parses");
        assert_eq!(engine_options(&f).max_file_size, 3 << 30);
        for bad in ["1k", "4g", "64x"] {
            assert!(parse(&["--hstable-size", bad]).is_err(), "{bad}");
        }
    }
}
