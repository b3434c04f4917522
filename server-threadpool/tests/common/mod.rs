//! Helpers shared by the integration tests: the built server binary as a
//! child process (on a port it picks itself, in a temp data dir, stopped by
//! PID), and a minimal memcached client over a real socket.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use server_threadpool::{bind, run, Options, Shutdown};
use service::{Service, ServiceConfig};

/// How long a test waits for the server to say where it listens, or to exit.
pub const STARTUP: Duration = Duration::from_secs(20);
/// Read timeout on test client sockets, so a missing reply fails the test
/// instead of hanging it.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The server started in this process on `127.0.0.1:0`, on an engine in a
/// temp dir; stopped through its [`Shutdown`] handle.
pub struct InProcess {
    pub addr: SocketAddr,
    pub service: Arc<Service>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<Result<(), server_threadpool::Error>>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    /// Starts `workers` workers with durability `none`; `configure` adjusts
    /// the service settings.
    pub fn start(workers: usize, configure: impl FnOnce(&mut ServiceConfig)) -> InProcess {
        Self::start_with(workers, engine::Durability::None, configure)
    }

    pub fn start_with(
        workers: usize,
        durability: engine::Durability,
        configure: impl FnOnce(&mut ServiceConfig),
    ) -> InProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine::Engine::open(
            dir.path(),
            engine::Options {
                durability,
                ..engine::Options::default()
            },
        )
        .expect("open engine");
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let mut config = ServiceConfig {
            listen: addr,
            ..ServiceConfig::default()
        };
        configure(&mut config);
        let options = Options {
            workers,
            pin: false,
            grace: Duration::from_secs(2),
        };
        let service = Arc::new(Service::new(Arc::new(engine), config, options.frontend()));
        let shutdown = Shutdown::new();
        let thread = {
            let service = Arc::clone(&service);
            let shutdown = shutdown.clone();
            std::thread::spawn(move || run(listener, service, &options, &shutdown))
        };
        InProcess {
            addr,
            service,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Stops the server and checks it stopped cleanly.
    pub fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("server thread")
                .expect("server stopped cleanly");
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A running `server-threadpool` process.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    /// The startup line naming the address, data dir, model and workers.
    pub startup: String,
}

impl ServerProcess {
    /// Starts the binary on `127.0.0.1:0` with `data_dir` and `extra` flags,
    /// and waits for the startup line that names the bound address.
    pub fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server-threadpool"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start server-threadpool");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send((addr, line));
                }
            }
        });
        match rx.recv_timeout(STARTUP) {
            Ok((addr, startup)) => ServerProcess {
                child,
                addr,
                startup,
            },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("server did not report its address (exit: {status:?})");
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a `kill` name such as "TERM") to this process only.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits for the process to exit, failing the test after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.wait_exit_within(timeout)
            .unwrap_or_else(|| panic!("server did not exit in {timeout:?}"))
    }

    /// The exit status if the process exits within `timeout`.
    pub fn wait_exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
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

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses the address out of the startup line ("... listening on ADDR ...").
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    rest.split(|c: char| c.is_whitespace() || c == ',')
        .next()?
        .parse()
        .ok()
}

/// A blocking memcached text-protocol client for tests.
pub struct Client {
    stream: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("read timeout");
        Client { stream }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads until the reply ends with `terminator`.
    pub fn read_until(&mut self, terminator: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(terminator) {
            let n = self.stream.read(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "reading reply: {e}; got so far: {:?}",
                    String::from_utf8_lossy(&got)
                )
            });
            assert!(
                n > 0,
                "connection closed; got: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    /// Whatever one read returns (empty at end of input).
    pub fn read_some(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// Sends a request and reads a one-line reply.
    pub fn line(&mut self, request: &str) -> String {
        self.send(request.as_bytes());
        String::from_utf8(self.read_until(b"\r\n")).expect("utf8")
    }

    pub fn set(&mut self, key: &str, value: &str) {
        let reply = self.line(&format!("set {key} 0 0 {}\r\n{value}\r\n", value.len()));
        assert_eq!(reply, "STORED\r\n", "set {key}");
    }

    /// The value of `key`, or None on a miss.
    pub fn get(&mut self, key: &str) -> Option<String> {
        self.send(format!("get {key}\r\n").as_bytes());
        let reply = String::from_utf8(self.read_until(b"END\r\n")).expect("utf8");
        if reply == "END\r\n" {
            return None;
        }
        let mut lines = reply.split("\r\n");
        let header = lines.next().expect("VALUE line");
        assert!(
            header.starts_with(&format!("VALUE {key} ")),
            "reply: {reply:?}"
        );
        Some(lines.next().expect("data").to_string())
    }

    /// `stats` as (name, value) pairs.
    pub fn stats(&mut self) -> Vec<(String, String)> {
        self.send(b"stats\r\n");
        let reply = String::from_utf8(self.read_until(b"END\r\n")).expect("utf8");
        reply
            .lines()
            .filter_map(|l| l.strip_prefix("STAT "))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

pub fn stat<'a>(stats: &'a [(String, String)], name: &str) -> &'a str {
    stats
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no stat {name} in {stats:?}"))
}
