//! Test harness for the front-ends, kept out of the production crates: start
//! any front-end (or the reference memcached) as a process of its own on a
//! free loopback port, talk to it with a plain blocking client, read its
//! memory from `/proc`; the conformance table ([`conformance`]), the
//! memccapable runner ([`memccapable`]), the reference memcached
//! ([`reference`](mod@reference)), the hostile-client suite ([`hostile`]),
//! and a scripted stand-in for the service that runs any front-end's loop
//! in the test process ([`script`]).
//!
//! Binaries come from this workspace's target directory, built on first use
//! with the profile of the calling test (`cargo build -p server-threadpool
//! -p server-eventloop`, a no-op when `cargo test --workspace` already built
//! them).

pub mod conformance;
pub mod disk;
pub mod hostile;
pub mod memccapable;
pub mod reference;
pub mod script;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A server the tests can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// server-threadpool.
    Threadpool,
    /// server-eventloop, `--accept reuseport`.
    EventloopReuseport,
    /// server-eventloop, `--accept dispatch`.
    EventloopDispatch,
    /// The reference memcached (when installed).
    Memcached,
}

impl Frontend {
    /// Our front-ends, in every accept mode.
    pub const OURS: [Frontend; 3] = [
        Frontend::Threadpool,
        Frontend::EventloopReuseport,
        Frontend::EventloopDispatch,
    ];

    /// The model it reports in `stats` and its startup line.
    pub fn model(self) -> &'static str {
        match self {
            Frontend::Threadpool => "threadpool",
            Frontend::EventloopReuseport | Frontend::EventloopDispatch => "eventloop",
            Frontend::Memcached => "memcached",
        }
    }

    /// A short name for output.
    pub fn name(self) -> &'static str {
        match self {
            Frontend::Threadpool => "threadpool",
            Frontend::EventloopReuseport => "eventloop-reuseport",
            Frontend::EventloopDispatch => "eventloop-dispatch",
            Frontend::Memcached => "memcached",
        }
    }
}

/// The `--durability` values of the test matrix: nothing synced by the
/// server, and every reply after the sync covering its write.
pub const DURABILITIES: [&str; 2] = ["none", "always"];

/// The test matrix: each of our front-ends with each of [`DURABILITIES`].
pub fn matrix() -> impl Iterator<Item = (Frontend, &'static str)> {
    Frontend::OURS
        .into_iter()
        .flat_map(|f| DURABILITIES.into_iter().map(move |d| (f, d)))
}

/// The workspace's target directory for this build profile: where cargo
/// put the calling binary (`target/<profile>/deps/x` or `target/<profile>/x`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let mut dir = exe.parent().expect("has a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Builds `packages` with the profile of the calling binary (a no-op when
/// they are up to date, as after `cargo test --workspace`) and returns the
/// directory their binaries are in.
pub fn build(packages: &[&str]) -> PathBuf {
    let dir = profile_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "building {packages:?} failed");
    dir
}

/// Builds both servers once per process and returns the directory they
/// are in. `TESTKIT_SERVER_DIR` points at other builds instead (to compare
/// with an older revision).
pub fn server_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("TESTKIT_SERVER_DIR") {
            return PathBuf::from(dir);
        }
        build(&["server-threadpool", "server-eventloop"])
    })
}

/// Whether a test that needs a tool must fail rather than skip when it is
/// missing: under CI (`CI=true`), which installs it.
pub fn required_in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A test's tool (memcached, memccapable) is missing: under CI, which
/// installs it, that is a failure; elsewhere the test says it skipped.
pub fn missing_tool(what: &str) {
    assert!(
        !required_in_ci(),
        "{what}: CI installs it, so its absence is a failure here"
    );
    eprintln!("skipped: {what}");
}

/// A server process on a free loopback port; stopped by its PID (and
/// reaped) when dropped, also when a test panics.
pub struct Server {
    /// Which one.
    pub frontend: Frontend,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The line it printed once listening (ours; empty for memcached).
    pub startup: String,
    child: Child,
    /// Its data directory (ours only), removed with it.
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `frontend` with `extra` flags (ours; memcached gets its own
    /// defaults and `-c` for `--max-connections`), on a fresh data directory.
    /// `None` when the front-end is memcached and it is not installed.
    pub fn start(frontend: Frontend, extra: &[&str]) -> Option<Server> {
        if frontend == Frontend::Memcached {
            return start_memcached(extra);
        }
        let data = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start_in(frontend, data.path(), extra);
        server._data = Some(data);
        Some(server)
    }

    /// Starts one of ours on the data directory `dir`, which outlives it
    /// (to restart on the same store, or on a copy of it).
    ///
    /// # Panics
    /// If `frontend` is memcached, or the server does not come up: it
    /// prints its listening address once it serves, so a store it cannot
    /// open fails here with the server's own error on stderr.
    pub fn start_in(frontend: Frontend, dir: &Path, extra: &[&str]) -> Server {
        let (bin, mode) = match frontend {
            Frontend::Threadpool => ("server-threadpool", None),
            Frontend::EventloopReuseport => ("server-eventloop", Some("reuseport")),
            Frontend::EventloopDispatch => ("server-eventloop", Some("dispatch")),
            Frontend::Memcached => panic!("memcached has no data directory"),
        };
        let mut cmd = Command::new(server_dir().join(bin));
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--log-level", "warn"]);
        if let Some(m) = mode {
            cmd.args(["--accept", m]);
        }
        let mut child = cmd
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the startup line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.split(',').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{bin}: unexpected startup line {line:?}"));
        Server {
            frontend,
            addr,
            startup: line.trim().to_string(),
            child,
            _data: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size now (`VmRSS`), bytes.
    pub fn rss(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:") * 1024
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Peak resident set size so far (`VmHWM`), bytes.
    pub fn peak_rss(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:") * 1024
    }

    /// Sends SIGTERM (by PID) and waits up to `limit` for the exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = i32::try_from(self.child.id()).ok()?;
        // SAFETY: kill has no memory-safety preconditions; the PID is our
        // own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes it with SIGSTOP and waits until every thread has stopped
    /// (see [`freeze`]).
    pub fn freeze(&self) {
        freeze(self.pid());
    }

    /// Ends it with SIGKILL (by PID) and reaps it.
    pub fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGSTOP to `pid` (our own child) and waits until each of its
/// threads is stopped. A signal takes effect when a thread next returns to
/// user space, so a thread inside `fdatasync` finishes it first; once all
/// are stopped, nothing of the process reaches the disk any more.
///
/// # Panics
/// If the threads have not all stopped within 10 s.
pub fn freeze(pid: u32) {
    let Ok(id) = i32::try_from(pid) else {
        panic!("pid {pid} out of range")
    };
    // SAFETY: kill has no memory-safety preconditions; the PID is the
    // caller's own child, not yet reaped.
    unsafe { libc::kill(id, libc::SIGSTOP) };
    let stopped = wait_for(Duration::from_secs(10), || {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return true;
        };
        tasks.flatten().all(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // The state follows the command name, which is in parentheses.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            state.is_empty() || state.starts_with('T') || state.starts_with('t')
        })
    });
    assert!(stopped, "process {pid} did not stop within 10 s of SIGSTOP");
}

/// memcached (when installed) on a free port: TCP only, 1 GiB, two worker
/// threads, `--max-connections N` from `extra` as `-c N`.
fn start_memcached(extra: &[&str]) -> Option<Server> {
    let bin = reference::find()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut cmd = Command::new(bin);
    cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"])
        .args(["-m", "1024", "-t", "2"]);
    if let Some(i) = extra.iter().position(|a| *a == "--max-connections") {
        cmd.args(["-c", extra.get(i + 1).copied().unwrap_or("1024")]);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // memcached refuses to run as root unless told which user to be.
        cmd.args(["-u", "root"]);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("memcached starts");
    let mut server = Server {
        frontend: Frontend::Memcached,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        startup: String::new(),
        child,
        _data: None,
    };
    let up = wait_for(Duration::from_secs(10), || {
        TcpStream::connect(server.addr).is_ok()
    });
    assert!(up && server.alive(), "memcached did not start listening");
    Some(server)
}

/// A `/proc/<pid>/status` field in KiB (0 when unreadable).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A blocking memcached client with a read timeout.
pub struct Client {
    stream: TcpStream,
}

impl Client {
    /// Connects (with a 10 s read timeout).
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = stream.set_nodelay(true);
        Client { stream }
    }

    /// The socket.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Sends bytes.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads until the reply ends with `terminator`.
    pub fn read_until(&mut self, terminator: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        while !buf.ends_with(terminator) {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok(buf)
    }

    /// One request line, its reply (up to `\r\n`).
    pub fn line(&mut self, request: &str) -> String {
        self.send(format!("{request}\r\n").as_bytes())
            .expect("send");
        String::from_utf8_lossy(&self.read_until(b"\r\n").expect("reply")).into_owned()
    }

    /// `set key 0 0 <len>` with `value`; the reply line.
    pub fn set(&mut self, key: &str, value: &[u8]) -> std::io::Result<String> {
        let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        self.send(&req)?;
        Ok(String::from_utf8_lossy(&self.read_until(b"\r\n")?).into_owned())
    }

    /// `get key`: the value, if any.
    pub fn get(&mut self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.send(format!("get {key}\r\n").as_bytes())?;
        let r = self.read_until(b"END\r\n")?;
        if r.starts_with(b"END") {
            return Ok(None);
        }
        let header_end = r
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let body = &r[header_end + 2..r.len() - b"\r\nEND\r\n".len()];
        Ok(Some(body.to_vec()))
    }

    /// One value of a `stats` reply (`request`: `stats`, `stats settings`).
    fn stats_value(&mut self, request: &str, name: &str) -> String {
        self.send(format!("{request}\r\n").as_bytes())
            .expect("send");
        let r = self.read_until(b"END\r\n").expect(request);
        let text = String::from_utf8_lossy(&r);
        text.lines()
            .filter_map(|l| l.strip_prefix("STAT "))
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    }

    /// One `stats` value.
    pub fn stat(&mut self, name: &str) -> String {
        self.stats_value("stats", name)
    }

    /// One `stats settings` value.
    pub fn setting(&mut self, name: &str) -> String {
        self.stats_value("stats settings", name)
    }
}

/// Waits until `cond` holds or `limit` passes; whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}
