//! An in-process memcached test server for loadgen's tests: std threads, one
//! per connection, speaking get (one or many keys), set and delete, and their
//! meta forms (mg with k, v and q, ms, md, mn), with knobs to corrupt a value,
//! stall once, or stop answering. 127.0.0.1 only.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Requests the server saw, by kind (a `get` with several keys, or quiet
/// `mg`s ended by `mn`, is an mget).
#[derive(Debug, Default)]
pub struct Counts {
    pub get: AtomicU64,
    pub mget: AtomicU64,
    pub set: AtomicU64,
    pub delete: AtomicU64,
}

#[derive(Default)]
struct State {
    store: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    counts: Counts,
    /// A get of this key returns its value with one byte flipped.
    corrupt: Mutex<Option<Vec<u8>>>,
    /// Requests handled inside this window wait until its end.
    stall: Mutex<Option<(Instant, Instant)>>,
    /// Read requests but never answer.
    silent: AtomicBool,
    stop: AtomicBool,
    open_connections: AtomicUsize,
    /// Bumped to make every open connection close (before its next reply).
    kick: AtomicU64,
    /// Serve at most this many connections at a time, like a thread pool
    /// with this many workers: the others wait in the accept queue.
    max_served: AtomicUsize,
}

pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            max_served: AtomicUsize::new(usize::MAX),
            ..State::default()
        });
        let st = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !st.stop.load(Ordering::Relaxed) {
                if st.open_connections.load(Ordering::SeqCst)
                    >= st.max_served.load(Ordering::SeqCst)
                {
                    // Every worker is busy: leave the connection in the queue.
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                match listener.accept() {
                    Ok((stream, _)) => {
                        let st = Arc::clone(&st);
                        st.open_connections.fetch_add(1, Ordering::SeqCst);
                        workers.push(std::thread::spawn(move || {
                            serve(stream, &st);
                            st.open_connections.fetch_sub(1, Ordering::SeqCst);
                        }));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => break,
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        TestServer {
            addr,
            state,
            accept: Some(accept),
        }
    }

    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    pub fn counts(&self) -> [u64; 4] {
        let c = &self.state.counts;
        [
            c.get.load(Ordering::SeqCst),
            c.set.load(Ordering::SeqCst),
            c.delete.load(Ordering::SeqCst),
            c.mget.load(Ordering::SeqCst),
        ]
    }

    pub fn corrupt_key(&self, key: &str) {
        *self.state.corrupt.lock().unwrap() = Some(key.as_bytes().to_vec());
    }

    /// Every request handled from `after` from now for `length` waits until the end.
    pub fn stall_once(&self, after: Duration, length: Duration) {
        let from = Instant::now() + after;
        *self.state.stall.lock().unwrap() = Some((from, from + length));
    }

    /// Closes every connection open now (each at its next request).
    pub fn close_connections(&self) {
        self.state.kick.fetch_add(1, Ordering::SeqCst);
    }

    /// Serves at most `n` connections at a time; the rest wait unanswered
    /// in the accept queue until a served one closes.
    pub fn serve_at_most(&self, n: usize) {
        self.state.max_served.store(n, Ordering::SeqCst);
    }

    pub fn go_silent(&self) {
        self.state.silent.store(true, Ordering::SeqCst);
    }

    /// Waits (bounded) until every client connection has been closed and read to its end.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.state.open_connections.load(Ordering::SeqCst) == 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(stream: TcpStream, st: &State) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = stream.set_nodelay(true);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut out = Vec::new();
    let generation = st.kick.load(Ordering::SeqCst);
    loop {
        if st.stop.load(Ordering::Relaxed) || st.kick.load(Ordering::SeqCst) != generation {
            return;
        }
        line.clear();
        match read_line(&mut reader, &mut line, st) {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        out.clear();
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let words: Vec<&str> = text.split(' ').collect();
        match words.first().copied() {
            Some("get") if words.len() > 1 => {
                let c = if words.len() > 2 {
                    &st.counts.mget
                } else {
                    &st.counts.get
                };
                c.fetch_add(1, Ordering::SeqCst);
                for k in &words[1..] {
                    if let Some(v) = lookup(st, k) {
                        out.extend_from_slice(format!("VALUE {k} 0 {}\r\n", v.len()).as_bytes());
                        out.extend_from_slice(&v);
                        out.extend_from_slice(b"\r\n");
                    }
                }
                out.extend_from_slice(b"END\r\n");
            }
            Some("mg") if words.len() > 1 => {
                let flags = &words[2..];
                let quiet = flags.contains(&"q");
                if !quiet {
                    st.counts.get.fetch_add(1, Ordering::SeqCst);
                }
                match lookup(st, words[1]) {
                    Some(v) => {
                        out.extend_from_slice(format!("VA {}", v.len()).as_bytes());
                        if flags.contains(&"k") {
                            out.extend_from_slice(format!(" k{}", words[1]).as_bytes());
                        }
                        out.extend_from_slice(b"\r\n");
                        out.extend_from_slice(&v);
                        out.extend_from_slice(b"\r\n");
                    }
                    None if !quiet => out.extend_from_slice(b"EN\r\n"),
                    None => {}
                }
            }
            Some("mn") => {
                st.counts.mget.fetch_add(1, Ordering::SeqCst);
                out.extend_from_slice(b"MN\r\n");
            }
            Some(cmd @ ("set" | "ms")) if words.len() >= if cmd == "ms" { 3 } else { 5 } => {
                let meta = cmd == "ms";
                let Ok(n) = words[if meta { 2 } else { 4 }].parse::<usize>() else {
                    return;
                };
                let mut data = vec![0; n + 2];
                if read_exact(&mut reader, &mut data, st).is_err() {
                    return;
                }
                data.truncate(n);
                st.counts.set.fetch_add(1, Ordering::SeqCst);
                st.store
                    .lock()
                    .unwrap()
                    .insert(words[1].as_bytes().to_vec(), data);
                out.extend_from_slice(if meta { b"HD\r\n" } else { b"STORED\r\n" });
            }
            Some(cmd @ ("delete" | "md")) if words.len() >= 2 => {
                st.counts.delete.fetch_add(1, Ordering::SeqCst);
                let found = st
                    .store
                    .lock()
                    .unwrap()
                    .remove(words[1].as_bytes())
                    .is_some();
                out.extend_from_slice(match (cmd == "md", found) {
                    (false, true) => b"DELETED\r\n",
                    (false, false) => b"NOT_FOUND\r\n",
                    (true, true) => b"HD\r\n",
                    (true, false) => b"NF\r\n",
                });
            }
            _ => out.extend_from_slice(b"ERROR\r\n"),
        }
        let stall = *st.stall.lock().unwrap();
        if let Some((from, to)) = stall {
            let now = Instant::now();
            if now >= from && now < to {
                std::thread::sleep(to - now);
            }
        }
        if st.silent.load(Ordering::SeqCst) {
            continue;
        }
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

/// The stored value of `key`, with one byte flipped if it is the key to corrupt.
fn lookup(st: &State, key: &str) -> Option<Vec<u8>> {
    let mut v = st.store.lock().unwrap().get(key.as_bytes())?.clone();
    if st.corrupt.lock().unwrap().as_deref() == Some(key.as_bytes()) && !v.is_empty() {
        let last = v.len() - 1;
        v[last] ^= 0x20;
    }
    Some(v)
}

/// Reads one line; false at end of stream. Read timeouts only re-check `stop`.
fn read_line(
    r: &mut BufReader<TcpStream>,
    line: &mut Vec<u8>,
    st: &State,
) -> std::io::Result<bool> {
    loop {
        match r.read_until(b'\n', line) {
            Ok(0) => return Ok(false),
            Ok(_) if line.ends_with(b"\n") => return Ok(true),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if st.stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn read_exact(r: &mut BufReader<TcpStream>, buf: &mut [u8], st: &State) -> std::io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..]) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if st.stop.load(Ordering::Relaxed) {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
