//! What the numbers were measured on, and how the cores were split.
//!
//! The server gets the first half of the cores this process may run on and
//! the load generator the other half, so neither steals cycles from the
//! other; on a 2-core machine that is core 0 for the server and core 1 for
//! `loadgen`. With a single core both share it, and the report says so.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The machine, toolchain and source a run used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// CPU model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical CPUs this process may run on.
    pub cpus: usize,
    /// Physical memory, bytes.
    pub memory_bytes: u64,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `git rev-parse HEAD` of the tree that was built.
    pub git_commit: String,
    /// Whether the tree had uncommitted changes.
    pub git_dirty: bool,
    /// `memcached -V`, when installed.
    pub memcached: Option<String>,
}

impl MachineInfo {
    /// Describes this machine; fields stay empty where unknown.
    pub fn current() -> MachineInfo {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let memory_bytes = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        MachineInfo {
            cpu_model,
            cpus: allowed_cores().len(),
            memory_bytes,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            rustc: output_of(&rustc, &["--version"]).unwrap_or_default(),
            git_commit: output_of("git", &["rev-parse", "HEAD"]).unwrap_or_default(),
            git_dirty: output_of("git", &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()),
            memcached: output_of("memcached", &["-V"]),
        }
    }
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The trimmed stdout of a command that succeeded.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The cores of the server and of the load generator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreSplit {
    /// Core ids the server may run on.
    pub server: Vec<usize>,
    /// Core ids `loadgen` may run on.
    pub loadgen: Vec<usize>,
    /// Whether the two share cores (a single-core machine).
    pub shared: bool,
}

impl CoreSplit {
    /// Half and half; both on the one core of a single-core machine.
    pub fn halves(cores: &[usize]) -> CoreSplit {
        match cores.len() {
            0 => CoreSplit {
                server: vec![0],
                loadgen: vec![0],
                shared: true,
            },
            1 => CoreSplit {
                server: cores.to_vec(),
                loadgen: cores.to_vec(),
                shared: true,
            },
            n => CoreSplit {
                server: cores[..n / 2].to_vec(),
                loadgen: cores[n / 2..].to_vec(),
                shared: false,
            },
        }
    }

    /// One sentence for the report.
    pub fn describe(&self) -> String {
        let list = |c: &[usize]| {
            c.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        if self.shared {
            format!(
                "server and load generator share core(s) {} (not enough cores to separate them)",
                list(&self.server)
            )
        } else {
            format!(
                "server on core(s) {} ({} core(s)), load generator on core(s) {} ({} core(s)); \
                 each process is confined to its set with sched_setaffinity",
                list(&self.server),
                self.server.len(),
                list(&self.loadgen),
                self.loadgen.len()
            )
        }
    }
}

/// The cores this process may run on (its affinity mask).
pub fn allowed_cores() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data, all-zero is a valid empty set, and
    // sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; pid 0 is this thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return (0..n).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: i is below CPU_SETSIZE, inside the set.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `2026-11-23T22:06:14Z` for Unix seconds `t`.
pub fn iso_utc(t: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A run id: `2026-11-23T22-06-14` (no colons, so it is a portable file name).
pub fn run_id(t: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}-{mi:02}-{s:02}")
}

/// Unix seconds to (year, month, day, hour, minute, second), UTC, by Howard
/// Hinnant's days-from-civil inverse (no time-zone library needed for UTC).
fn civil(t: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t % 86_400;
    let days = (t / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_795_471_574), "2026-11-23T22:06:14Z");
        assert_eq!(run_id(1_795_471_574), "2026-11-23T22-06-14");
    }

    #[test]
    fn core_halves() {
        let s = CoreSplit::halves(&[0, 1]);
        assert_eq!((s.server.clone(), s.loadgen.clone()), (vec![0], vec![1]));
        assert!(!s.shared);
        let s = CoreSplit::halves(&[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(s.server, vec![0, 1, 2, 3]);
        assert_eq!(s.loadgen, vec![4, 5, 6, 7]);
        assert!(CoreSplit::halves(&[3]).shared);
        assert!(s.describe().contains("core(s) 0,1,2,3"));
    }
}
