//! Child processes of a run: a server or `loadgen`, started on its own
//! cores, watched through `/proc/<pid>`, and always stopped by its PID
//! (SIGTERM, then SIGKILL after a grace period), also when a cell fails:
//! [`Managed`] stops its process when dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::Error;

/// Raises this process's open-file limit to its hard limit; children inherit
/// it. A cell with 10,000 connections needs that many descriptors in both
/// the server and `loadgen`. Returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct; raising the soft limit up to
        // the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            lim = want;
        }
    }
    lim.rlim_cur
}

/// A port on 127.0.0.1 that was free a moment ago (the kernel picked it).
pub fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Process(format!("bind: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::Process(format!("local_addr: {e}")))
}

/// Starts `argv` confined to `cores`, its stdout and stderr into `log`.
pub fn spawn_pinned(argv: &[String], cores: &[usize], log: &Path) -> Result<Child, Error> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::Process("empty command line".into()))?;
    let out = File::create(log).map_err(|e| Error::io(log, e))?;
    let err = out.try_clone().map_err(|e| Error::io(log, e))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // SAFETY: zeroed cpu_set_t is a valid empty set; CPU_SET stays inside it
    // for ids below CPU_SETSIZE, which the filter ensures.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cores.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: see above.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    let pin = !cores.is_empty();
    // SAFETY: the closure runs in the child between fork and exec; it only
    // makes the sched_setaffinity system call (async-signal-safe) on a set
    // copied into the closure, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if pin && libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| Error::Process(format!("cannot start {program}: {e}")))
}

/// A child that is stopped by PID when dropped, whatever happened before.
pub struct Managed {
    child: Option<Child>,
    name: String,
}

impl Managed {
    /// Takes charge of `child`.
    pub fn new(child: Child, name: impl Into<String>) -> Managed {
        Managed {
            child: Some(child),
            name: name.into(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if it has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `limit` for the process to end by itself; past that, stops it.
    /// Returns its status, or None when it had to be stopped.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, then SIGKILL after `grace`; says how the process ended.
    pub fn stop(&mut self, grace: Duration) -> String {
        let Some(mut child) = self.child.take() else {
            return "already stopped".into();
        };
        if let Ok(Some(s)) = child.try_wait() {
            return format!("had already ended ({s})");
        }
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) on the PID of our own child, which has not been
        // reaped yet (try_wait said it is running), so the PID is still ours.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < grace {
            if let Ok(Some(s)) = child.try_wait() {
                return format!("{s} {:.2} s after SIGTERM", started.elapsed().as_secs_f64());
            }
            sleep(Duration::from_millis(10));
        }
        tracing::warn!(process = %self.name, pid, "did not stop after SIGTERM; SIGKILL");
        // Child::kill sends SIGKILL to this child's PID.
        let _ = child.kill();
        let _ = child.wait();
        format!(
            "killed (SIGKILL) after {:.1} s without exiting on SIGTERM",
            grace.as_secs_f64()
        )
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop(Duration::from_secs(5));
        }
    }
}

/// Waits until `addr` accepts a connection; fails if the process ends first
/// or `limit` passes.
pub fn wait_ready(addr: SocketAddr, proc_: &mut Managed, limit: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = proc_.try_wait() {
            return Err(Error::Process(format!("server exited at start ({s})")));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Process(format!(
                "server did not accept connections on {addr} within {} s",
                limit.as_secs()
            )));
        }
        sleep(Duration::from_millis(25));
    }
}

/// The server's reply to `stats`, up to and including `END`.
pub fn fetch_stats(addr: SocketAddr) -> Result<String, Error> {
    let err = |e: std::io::Error| Error::Process(format!("stats from {addr}: {e}"));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(err)?;
    s.write_all(b"stats\r\n").map_err(err)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while !buf.ends_with(b"END\r\n") {
        let n = s.read(&mut chunk).map_err(err)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let _ = s.write_all(b"quit\r\n");
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// CPU time, peak RSS, threads and storage writes of a live process, from
/// `/proc/<pid>`, and the machine's steal time, when it was taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// User CPU seconds (all threads).
    pub user_s: f64,
    /// System CPU seconds (all threads).
    pub system_s: f64,
    /// VmHWM, bytes.
    pub peak_rss_bytes: u64,
    /// Threads.
    pub threads: u64,
    /// `write_bytes` of `/proc/<pid>/io` (0 where it cannot be read).
    pub write_bytes: u64,
    /// The machine's (steal, total) CPU time in ticks, from `/proc/stat`.
    pub steal_ticks: (u64, u64),
    /// When the sample was taken.
    pub at: std::time::Instant,
}

impl Default for ProcSample {
    fn default() -> Self {
        ProcSample {
            user_s: 0.0,
            system_s: 0.0,
            peak_rss_bytes: 0,
            threads: 0,
            write_bytes: 0,
            steal_ticks: (0, 0),
            at: std::time::Instant::now(),
        }
    }
}

/// Reads `/proc/<pid>/stat`, `/proc/<pid>/status`, `/proc/<pid>/io` and `/proc/stat`.
pub fn sample(pid: u32) -> Result<ProcSample, Error> {
    let stat_path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&stat_path).map_err(|e| Error::io(&stat_path, e))?;
    let status_path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&status_path).map_err(|e| Error::io(&status_path, e))?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut s = parse_proc(&stat, &status, ticks)
        .ok_or_else(|| Error::Process(format!("cannot parse {stat_path} or {status_path}")))?;
    s.write_bytes = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|t| parse_io_write_bytes(&t))
        .unwrap_or(0);
    s.steal_ticks = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| parse_steal(&t))
        .unwrap_or((0, 0));
    Ok(s)
}

/// `write_bytes` of a `/proc/<pid>/io` file.
pub fn parse_io_write_bytes(io: &str) -> Option<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// (steal, total) ticks of the `cpu` line of `/proc/stat`.
pub fn parse_steal(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest
    // time is already in user, so the total stops at steal.
    let total = f.iter().take(8).sum();
    Some((f.get(7).copied().unwrap_or(0), total))
}

/// What a process used between two samples, on `cores` cores.
pub fn usage_between(
    before: &ProcSample,
    after: &ProcSample,
    cores: usize,
) -> crate::model::ServerUsage {
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let (steal, total) = (
        after.steal_ticks.0.saturating_sub(before.steal_ticks.0),
        after.steal_ticks.1.saturating_sub(before.steal_ticks.1),
    );
    crate::model::ServerUsage {
        cpu_user_s: round3(after.user_s - before.user_s),
        cpu_system_s: round3(after.system_s - before.system_s),
        requests: 0,
        peak_rss_bytes: after.peak_rss_bytes,
        threads: after.threads,
        wall_s: round3(after.at.saturating_duration_since(before.at).as_secs_f64()),
        cores,
        disk_write_bytes: after.write_bytes.saturating_sub(before.write_bytes),
        steal_fraction: if total > 0 {
            round3(steal as f64 / total as f64)
        } else {
            0.0
        },
    }
}

/// Parses the two `/proc` files; `ticks` is clock ticks per second.
pub fn parse_proc(stat: &str, status: &str, ticks: f64) -> Option<ProcSample> {
    // The command name (field 2) is in parentheses and may hold spaces: count
    // fields after the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(ProcSample {
        user_s: utime / ticks,
        system_s: stime / ticks,
        peak_rss_bytes: field("VmHWM:").unwrap_or(0) * 1024,
        threads: field("Threads:").unwrap_or(0),
        ..ProcSample::default()
    })
}

/// A command line as a shell would need it typed.
pub fn shell_quote(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nThreads:\t3\n";
        let s = parse_proc(stat, status, 100.0).unwrap();
        assert_eq!(
            parse_io_write_bytes("rchar: 1\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n"),
            Some(4096)
        );
        assert_eq!(
            parse_steal("cpu  10 0 10 70 0 0 0 10 5 0\ncpu0 1 2 3\n"),
            Some((10, 100))
        );
        assert_eq!(s.user_s, 2.5);
        assert_eq!(s.system_s, 0.5);
        assert_eq!(s.peak_rss_bytes, 2048 * 1024);
        assert_eq!(s.threads, 3);
    }

    #[test]
    fn own_process_sample() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.peak_rss_bytes > 0);
        assert!(s.threads >= 1);
    }

    #[test]
    fn quoting() {
        let argv = vec![
            "loadgen".to_string(),
            "--mix".into(),
            "get=90,set=10".into(),
            "a b".into(),
        ];
        assert_eq!(shell_quote(&argv), "loadgen --mix get=90,set=10 'a b'");
    }

    #[test]
    fn stop_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let child = spawn_pinned(
            &["sleep".to_string(), "30".into()],
            &[],
            &dir.path().join("log"),
        )
        .unwrap();
        let mut m = Managed::new(child, "sleep");
        assert!(m.try_wait().is_none());
        let how = m.stop(Duration::from_secs(5));
        assert!(how.contains("SIGTERM"), "{how}");
        assert_eq!(m.pid(), None);
    }
}
