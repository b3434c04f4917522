//! The run configuration: every flag of `loadgen run`, parsed, validated and
//! serialisable, so that `summary.json` carries the exact configuration that
//! produced it.
//!
//! The clap `Args` struct *is* the configuration: one definition serves the
//! command line, the validation and the JSON record, so they cannot drift.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use serde::{Serialize, Serializer};

use crate::Error;

/// The kinds of operation the generator issues. Each has its own histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// `get <key>`
    Get,
    /// `set <key> 0 0 <len>`
    Set,
    /// `delete <key>`
    Delete,
    /// `get <k1> ... <kK>` (multi-get of `--mget-keys` keys)
    Mget,
}

impl OpKind {
    /// Every kind, in the fixed order used by arrays indexed by `as usize`.
    pub const ALL: [OpKind; 4] = [OpKind::Get, OpKind::Set, OpKind::Delete, OpKind::Mget];

    /// The name used in flags, file names, hlog tags and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Set => "set",
            OpKind::Delete => "delete",
            OpKind::Mget => "mget",
        }
    }

    /// The inverse of [`OpKind::name`].
    pub fn from_name(s: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A duration written as `10s`, `500ms`, `2m`, `1.5s`, `250us` or plain seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let v: f64 = num
            .parse()
            .map_err(|_| format!("bad duration {s:?}: expected e.g. 10s, 500ms, 2m"))?;
        let secs = match unit {
            "" | "s" => v,
            "ms" => v / 1e3,
            "us" => v / 1e6,
            "m" | "min" => v * 60.0,
            "h" => v * 3600.0,
            _ => return Err(format!("bad duration unit in {s:?}: use us, ms, s, m or h")),
        };
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("bad duration {s:?}"));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}

impl Serialize for Dur {
    /// Seconds, as a number: scripts should not have to parse units.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0.as_secs_f64())
    }
}

/// How keys are drawn from the key space `0..keys`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform,
    /// Zipf with the given exponent; key 0 is the hottest.
    Zipf(f64),
    /// Each connection walks the key space in order from its own offset.
    Sequential,
}

impl FromStr for KeyDist {
    type Err = String;
    fn from_str(s: &str) -> Result<KeyDist, String> {
        match s {
            "uniform" => Ok(KeyDist::Uniform),
            "seq" | "sequential" => Ok(KeyDist::Sequential),
            _ => {
                let Some(p) = s.strip_prefix("zipf") else {
                    return Err(format!(
                        "bad key distribution {s:?}: uniform, zipf:S or seq"
                    ));
                };
                let p = p
                    .strip_prefix(':')
                    .unwrap_or(if p.is_empty() { "0.99" } else { p });
                let e: f64 = p
                    .parse()
                    .map_err(|_| format!("bad zipf exponent in {s:?}"))?;
                if !(e > 0.0 && e.is_finite()) {
                    return Err(format!("zipf exponent must be > 0 in {s:?}"));
                }
                Ok(KeyDist::Zipf(e))
            }
        }
    }
}

impl fmt::Display for KeyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDist::Uniform => f.write_str("uniform"),
            KeyDist::Zipf(e) => write!(f, "zipf:{e}"),
            KeyDist::Sequential => f.write_str("seq"),
        }
    }
}

/// Value sizes: fixed (`32`) or uniform over an inclusive range (`16-1024`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueSize {
    /// Smallest value size in bytes.
    pub min: usize,
    /// Largest value size in bytes (inclusive).
    pub max: usize,
}

impl FromStr for ValueSize {
    type Err = String;
    fn from_str(s: &str) -> Result<ValueSize, String> {
        let parse = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad value size {s:?}: use N or MIN-MAX"))
        };
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => (parse(s)?, parse(s)?),
        };
        if min > max {
            return Err(format!("bad value size {s:?}: MIN > MAX"));
        }
        Ok(ValueSize { min, max })
    }
}

impl fmt::Display for ValueSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// The operation mix as integer weights, e.g. `get=90,set=10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weight per [`OpKind`], indexed by `OpKind as usize`.
    pub weights: [u32; 4],
}

impl Mix {
    /// Sum of the weights (> 0 once parsed).
    pub fn total(&self) -> u32 {
        self.weights.iter().sum()
    }

    /// The operation for a draw `r` in `0..total()`.
    pub fn pick(&self, mut r: u32) -> OpKind {
        for kind in OpKind::ALL {
            let w = self.weights[kind as usize];
            if r < w {
                return kind;
            }
            r -= w;
        }
        OpKind::Get
    }
}

impl FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut weights = [0u32; 4];
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, w) = part
                .split_once('=')
                .ok_or_else(|| format!("bad mix entry {part:?}: use op=weight"))?;
            let kind = OpKind::from_name(name.trim())
                .ok_or_else(|| format!("unknown operation {name:?}: get, set, delete, mget"))?;
            weights[kind as usize] = w
                .trim()
                .parse()
                .map_err(|_| format!("bad weight in {part:?}"))?;
        }
        let mix = Mix { weights };
        if mix.total() == 0 {
            return Err(format!("mix {s:?} has no operation with a weight > 0"));
        }
        if weights.iter().map(|&w| u64::from(w)).sum::<u64>() > u64::from(u32::MAX) {
            return Err(format!("mix {s:?}: weights too large"));
        }
        Ok(mix)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for kind in OpKind::ALL {
            let w = self.weights[kind as usize];
            if w > 0 {
                if !first {
                    f.write_str(",")?;
                }
                write!(f, "{kind}={w}")?;
                first = false;
            }
        }
        Ok(())
    }
}

/// The request protocol: memcached's classic text commands, or its meta
/// commands (`mg`, `ms`, `md`, `mn`), which memcached answers to pipelined
/// requests with one write per batch instead of one per reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `get`, `set`, `delete`; a multi-get is one `get k1 ... kK`.
    #[default]
    Classic,
    /// `mg <key> k v`, `ms <key> <len>`, `md <key>`; a multi-get is K quiet
    /// `mg <key> k v q` followed by `mn`.
    Meta,
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Protocol, String> {
        match s {
            "classic" => Ok(Protocol::Classic),
            "meta" => Ok(Protocol::Meta),
            _ => Err(format!("bad protocol {s:?}: classic or meta")),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Classic => "classic",
            Protocol::Meta => "meta",
        })
    }
}

/// How keys are placed over several `--server`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Distribution {
    /// `xxh3(key) % servers`: even, cheap, and unlike any memcached client.
    #[default]
    Modulo,
    /// libmemcached's and twemproxy's ketama with MD5 ([`crate::ketama`]):
    /// every key on the server a ketama client or proxy would choose.
    Ketama,
}

impl FromStr for Distribution {
    type Err = String;
    fn from_str(s: &str) -> Result<Distribution, String> {
        match s {
            "modulo" => Ok(Distribution::Modulo),
            "ketama" => Ok(Distribution::Ketama),
            _ => Err(format!("bad distribution {s:?}: modulo or ketama")),
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Distribution::Modulo => "modulo",
            Distribution::Ketama => "ketama",
        })
    }
}

fn ser_display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `loadgen run`: drive one or more memcached servers and record latency.
#[derive(Debug, Clone, Args, Serialize)]
pub struct RunConfig {
    /// Server address host:port; repeat for several servers (keys are spread
    /// over them as --distribution says). Every connection opens one TCP
    /// connection to each server.
    #[arg(
        long = "server",
        default_value = "127.0.0.1:11211",
        value_name = "ADDR"
    )]
    pub servers: Vec<String>,

    /// Key placement over several servers: modulo (xxh3 of the key modulo
    /// the number of servers) or ketama (libmemcached's and twemproxy's
    /// consistent hashing with MD5; write each --server as in the proxy's
    /// server list, since ketama hashes the names).
    #[arg(long, default_value = "modulo")]
    #[serde(serialize_with = "ser_display")]
    pub distribution: Distribution,

    /// Client threads; connections are spread over them round-robin.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Pin client thread i to core CORES[i % len] (comma-separated core ids).
    #[arg(long, value_delimiter = ',', value_name = "CORES")]
    pub pin: Vec<usize>,

    /// Connections in total (over all threads), each one TCP connection per server.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,

    /// Requests in flight per connection at most (closed loop: always this many).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,

    /// Open loop: total requests per second, spread evenly over the connections.
    /// Latency is measured from each request's intended send time
    /// (coordinated omission corrected). Without it: closed loop.
    #[arg(long, value_name = "OPS_PER_SEC")]
    pub rate: Option<f64>,

    /// Measured run time (after warm-up), e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s")]
    #[serde(serialize_with = "ser_dur")]
    pub duration: Dur,

    /// Load applied before measuring; its replies are not recorded.
    #[arg(long, default_value = "0s")]
    #[serde(serialize_with = "ser_dur")]
    pub warmup: Dur,

    /// Key space size: keys are numbers 0..KEYS written as fixed-width text.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,

    /// Key length in bytes ("k" followed by the zero-padded key number).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,

    /// Key distribution: uniform, zipf:S (e.g. zipf:0.99, key 0 hottest) or seq.
    #[arg(long, default_value = "uniform")]
    #[serde(serialize_with = "ser_display")]
    pub key_dist: KeyDist,

    /// Value size in bytes: N, or MIN-MAX for a uniform range.
    #[arg(long, default_value = "32")]
    #[serde(serialize_with = "ser_display")]
    pub value_size: ValueSize,

    /// Operation mix as weights: get=W,set=W,delete=W,mget=W.
    #[arg(long, default_value = "get=90,set=10")]
    #[serde(serialize_with = "ser_display")]
    pub mix: Mix,

    /// Request protocol: classic (get/set/delete) or meta (mg/ms/md/mn).
    #[arg(long, default_value = "classic")]
    #[serde(serialize_with = "ser_display")]
    pub protocol: Protocol,

    /// Keys per multi-get (`mget` in the mix).
    #[arg(long, default_value_t = 10)]
    pub mget_keys: usize,

    /// Set every key of the key space once before the run.
    #[arg(long)]
    pub preload: bool,

    /// Values carry a checksum of key and version; every value read is checked.
    /// Needs values of at least 16 bytes.
    #[arg(long)]
    pub verify: bool,

    /// A request without its reply after this long counts as a timeout (the
    /// connection is then closed and reopened).
    #[arg(long, default_value = "1s")]
    #[serde(serialize_with = "ser_dur")]
    pub timeout: Dur,

    /// Seed of all randomness (keys, values, operations).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Exit with status 3 when errors (including timeouts and wrong values)
    /// exceed this count. Without it, errors alone never fail the run, except
    /// wrong values under --verify.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,

    /// Output directory for summary.json, *.hgrm and latency.hlog.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// No live line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

fn ser_dur<S: Serializer>(d: &Dur, s: S) -> Result<S::Ok, S::Error> {
    d.serialize(s)
}

/// Bytes of the value header under `--verify`: version (8) and checksum (8).
pub const VERIFY_HEADER: usize = 16;

/// `RunConfig` as a whole command line, for [`RunConfig::from_args`].
#[derive(clap::Parser)]
#[command(name = "loadgen run")]
struct RunArgs {
    #[command(flatten)]
    run: RunConfig,
}

impl RunConfig {
    /// The configuration the flags `args` give on the command line of
    /// `loadgen run` (without the program and subcommand names); unset flags
    /// take their defaults. Not yet validated: [`crate::run::run`] does that.
    pub fn from_args(args: &[&str]) -> Result<RunConfig, clap::Error> {
        use clap::Parser;
        let argv = std::iter::once("loadgen run").chain(args.iter().copied());
        Ok(RunArgs::try_parse_from(argv)?.run)
    }

    /// Checks the combinations clap cannot, with messages a user can act on.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        if self.servers.is_empty() {
            return bad("at least one --server is needed".into());
        }
        if self.threads == 0 || self.connections == 0 || self.pipeline == 0 {
            return bad("--threads, --connections and --pipeline must be at least 1".into());
        }
        if self.connections < self.threads {
            return bad(format!(
                "--connections {} is fewer than --threads {}: every thread needs a connection",
                self.connections, self.threads
            ));
        }
        if self.keys == 0 {
            return bad("--keys must be at least 1".into());
        }
        let digits = (self.keys - 1).to_string().len();
        if self.key_size < digits + 1 || self.key_size > 250 {
            return bad(format!(
                "--key-size {} must be between {} (to number {} keys) and 250",
                self.key_size,
                digits + 1,
                self.keys
            ));
        }
        if self.verify && self.value_size.min < VERIFY_HEADER {
            return bad(format!(
                "--verify needs values of at least {VERIFY_HEADER} bytes (version and checksum)"
            ));
        }
        if self.value_size.max > 1 << 30 {
            return bad("--value-size above 1 GiB".into());
        }
        if self.mix.weights[OpKind::Mget as usize] > 0 && self.mget_keys == 0 {
            return bad("--mget-keys must be at least 1".into());
        }
        if let Some(r) = self.rate {
            if !(r > 0.0 && r.is_finite()) {
                return bad("--rate must be a positive number".into());
            }
        }
        if self.duration.0.is_zero() {
            return bad("--duration must be more than 0".into());
        }
        if self.timeout.0.is_zero() {
            return bad("--timeout must be more than 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!("10s".parse::<Dur>().unwrap().0, Duration::from_secs(10));
        assert_eq!(
            "500ms".parse::<Dur>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!("2m".parse::<Dur>().unwrap().0, Duration::from_secs(120));
        assert_eq!("1.5".parse::<Dur>().unwrap().0, Duration::from_millis(1500));
        assert!("10x".parse::<Dur>().is_err());
        assert!("".parse::<Dur>().is_err());
    }

    #[test]
    fn key_dists() {
        assert_eq!("uniform".parse::<KeyDist>().unwrap(), KeyDist::Uniform);
        assert_eq!("seq".parse::<KeyDist>().unwrap(), KeyDist::Sequential);
        assert_eq!("zipf:0.8".parse::<KeyDist>().unwrap(), KeyDist::Zipf(0.8));
        assert_eq!("zipf".parse::<KeyDist>().unwrap(), KeyDist::Zipf(0.99));
        assert!("zipf:-1".parse::<KeyDist>().is_err());
        assert!("normal".parse::<KeyDist>().is_err());
        assert_eq!(KeyDist::Zipf(0.99).to_string(), "zipf:0.99");
    }

    #[test]
    fn value_sizes() {
        assert_eq!(
            "32".parse::<ValueSize>().unwrap(),
            ValueSize { min: 32, max: 32 }
        );
        assert_eq!(
            "16-1024".parse::<ValueSize>().unwrap(),
            ValueSize { min: 16, max: 1024 }
        );
        assert!("10-5".parse::<ValueSize>().is_err());
        assert_eq!(
            "16-1024".parse::<ValueSize>().unwrap().to_string(),
            "16-1024"
        );
    }

    #[test]
    fn mixes() {
        let m: Mix = "get=90,set=10".parse().unwrap();
        assert_eq!(m.weights, [90, 10, 0, 0]);
        assert_eq!(m.pick(0), OpKind::Get);
        assert_eq!(m.pick(89), OpKind::Get);
        assert_eq!(m.pick(90), OpKind::Set);
        assert_eq!(m.to_string(), "get=90,set=10");
        let m: Mix = "mget=1,delete=2".parse().unwrap();
        assert_eq!(m.pick(0), OpKind::Delete);
        assert_eq!(m.pick(2), OpKind::Mget);
        assert!("get=0".parse::<Mix>().is_err());
        assert!("put=1".parse::<Mix>().is_err());
    }

    #[test]
    fn protocols() {
        for p in [Protocol::Classic, Protocol::Meta] {
            assert_eq!(p.to_string().parse::<Protocol>().unwrap(), p);
        }
        assert!("binary".parse::<Protocol>().is_err());
        for d in [Distribution::Modulo, Distribution::Ketama] {
            assert_eq!(d.to_string().parse::<Distribution>().unwrap(), d);
        }
        assert!("crc32".parse::<Distribution>().is_err());
    }
}
