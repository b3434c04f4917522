//! Starting the event-loop server for integration tests: in-process on a
//! real engine in a temp dir, or as the built binary (when a test needs its
//! own process: signals, or more file descriptors than one process has).

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::{Durability, Engine, Options};
use server_eventloop::{run, AcceptMode, Error, Listeners, Settings, Shutdown, MODEL};
use service::{FrontendInfo, Service, ServiceConfig};

/// A server running on threads of the test process.
pub struct InProcess {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<Result<(), Error>>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    pub fn start(mode: AcceptMode, durability: Durability) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = Options {
            durability,
            ..Options::default()
        };
        let engine = Arc::new(Engine::open(dir.path(), options).expect("open engine"));
        let settings = Settings {
            loops: 2,
            ..Settings::default()
        };
        let listeners = Listeners::bind("127.0.0.1:0".parse().expect("addr"), mode, settings.loops)
            .expect("bind");
        let addr = listeners.local_addr();
        let config = ServiceConfig {
            listen: addr,
            ..ServiceConfig::default()
        };
        let frontend = FrontendInfo {
            model: MODEL,
            threads: settings.loops,
        };
        let service = Arc::new(Service::new(Arc::clone(&engine), config, frontend));
        let shutdown = Shutdown::new();
        let thread = {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || run(service, &settings, listeners, &shutdown))
        };
        InProcess {
            addr,
            engine,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Stops the loops and closes the engine, as the binary does.
    pub fn stop(mut self) {
        self.shutdown.trigger();
        let served = self.thread.take().expect("running").join().expect("join");
        served.expect("server stopped cleanly");
        self.engine.close().expect("engine closed cleanly");
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The server binary running as a child process.
pub struct ServerProcess {
    pub addr: SocketAddr,
    child: Child,
}

impl ServerProcess {
    /// Starts the binary on a free loopback port with `data_dir` and `args`,
    /// and waits for its "listening on" line.
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server-eventloop"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--log-level", "warn"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start server-eventloop");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read startup line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected startup line {line:?}"));
        ServerProcess { addr, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the server (by its PID).
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill has no memory-safety preconditions; the PID is our
        // own child, which we have not reaped yet.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Waits up to `limit` for the server to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Raises this test process's open-file soft limit to its hard limit and
/// returns the new soft limit.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct we pass.
    #[allow(unsafe_code)]
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// Sends `request` and reads until the reply ends with `terminator`.
pub fn round_trip(s: &mut TcpStream, request: &[u8], terminator: &[u8]) -> Vec<u8> {
    s.write_all(request).expect("send");
    read_until(s, terminator)
}

pub fn read_until(s: &mut TcpStream, terminator: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(terminator) {
        let n = s.read(&mut buf).expect("read reply");
        assert!(
            n > 0,
            "connection closed; got {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// One `stats` figure.
pub fn stat(addr: SocketAddr, name: &str) -> u64 {
    let mut s = connect(addr);
    let reply = round_trip(&mut s, b"stats\r\n", b"END\r\n");
    let text = String::from_utf8(reply).expect("ascii stats");
    let prefix = format!("STAT {name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in stats:\n{text}"))
        .trim()
        .parse()
        .expect("numeric stat")
}
