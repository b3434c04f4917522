//! The reference memcached, started for tests that hold our code to it: the
//! conformance table and the load generator are checked against memcached
//! itself when its binary is installed (CI installs it).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's memcached package installs the binary.
pub const MEMCACHED: &str = "/usr/bin/memcached";

/// How long memcached may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A memcached child process on a free loopback port; killed (by its PID)
/// and reaped when dropped, also when a test panics.
pub struct Memcached {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The memcached binary, if installed.
pub fn find() -> Option<&'static str> {
    std::path::Path::new(MEMCACHED)
        .exists()
        .then_some(MEMCACHED)
}

impl Memcached {
    /// Starts `binary` with `threads` worker threads (TCP only, 64 MiB) on a
    /// free port and waits until it accepts connections.
    pub fn start(binary: &str, threads: usize) -> io::Result<Memcached> {
        // Ask the kernel for a free port, then hand it to memcached.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Command::new(binary);
        command.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"]);
        command.args(["-m", "64", "-t", &threads.to_string()]);
        // memcached refuses to run as root unless told which user to be.
        if is_root() {
            command.args(["-u", "root"]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut server = Memcached {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let start = Instant::now();
        while TcpStream::connect(server.addr).is_err() {
            if let Some(status) = server.child.try_wait()? {
                return Err(io::Error::other(format!("memcached exited: {status}")));
            }
            if start.elapsed() > START_LIMIT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("memcached did not start listening on {}", server.addr),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

/// Whether this process runs with effective uid 0 (read from /proc).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}
