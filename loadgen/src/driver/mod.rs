//! One client thread: a mio event loop driving many non-blocking connections.
//!
//! ```text
//!              +-------------------- client thread ---------------------+
//!  run.rs  --> | schedule (open loop heap | closed loop refill on reply) |
//!  start/end   |        |                                               |
//!              |   Client 0 .. Client n   (rng, key chooser, in flight)  |
//!              |     |  one Sock per server: out buffer, in buffer,      |
//!              |     |  FIFO of pending requests (replies come in order) |
//!              |   mio Poll (edge-triggered, READABLE|WRITABLE)          |
//!              +---------------- per-second IntervalReport --------------+
//!                                   |  crossbeam channel
//!                                   v  run.rs merges, prints, logs
//! ```
//!
//! A *client* is one of the `--connections`: it has one TCP connection (a
//! `Sock`) to each server and sends each request to the server its key
//! hashes to, with at most `--pipeline` requests in flight over its sockets.
//!
//! * Closed loop: each client keeps `--pipeline` requests in flight; a request
//!   is issued the moment a reply frees its slot (intended = send time).
//! * Open loop: client `i` of `n` sends at `start + i/rate + j*n/rate`. When its
//!   slots are full the request waits, but its latency still counts from that
//!   intended time (coordinated omission corrected, as in wrk2).
//!
//! Replies are matched to requests in order. A request older than `--timeout`
//! counts as a timeout together with everything behind it on that socket, and
//! the socket is reopened, since the reply stream can no longer be matched. The
//! loop never waits past the run's end, so a silent server cannot hang a run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::config::{OpKind, RunConfig};
use crate::record::{Counters, Histograms, VerifyFailure};
use crate::rng::Rng;
use crate::wire::{self, Reply};
use crate::workload::{pick_op, KeyChooser, KeySpace, Values};

/// Verify failures a thread reports with their key (all are counted).
const MAX_FAILURES_REPORTED: usize = 100;

/// Requests in flight per client during the preload.
const PRELOAD_DEPTH: usize = 16;

/// How long a run waits after its measured window for the replies still in
/// flight (at most the timeout).
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// What every client thread shares, read-only.
#[derive(Debug)]
pub struct Shared {
    /// The run's configuration.
    pub cfg: RunConfig,
    /// Resolved server addresses, in `--server` order.
    pub addrs: Vec<SocketAddr>,
    /// Key formatting and placement.
    pub keyspace: KeySpace,
    /// Value building and checking.
    pub values: Values,
}

/// When the load phase runs, sent by the coordinator to every thread at once.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Load starts (warm-up begins).
    pub run_start: Instant,
    /// Recording starts (warm-up ends).
    pub measure_start: Instant,
    /// Recording and load stop.
    pub end: Instant,
}

/// One second (or the last partial second) of one thread's results.
#[derive(Debug)]
pub struct IntervalReport {
    /// The thread that sent it.
    pub thread: usize,
    /// Interval index: second `index` after `measure_start`; negative in warm-up.
    pub index: i64,
    /// Histograms of requests measured and completed in this interval.
    pub hists: Histograms,
    /// Counters of measured requests (errors on connections once measuring).
    pub counters: Counters,
    /// Requests completed during warm-up (not recorded).
    pub warmup_completed: u64,
    /// Wrong values seen, with their keys (at most 100 per thread in all).
    pub failures: Vec<VerifyFailure>,
    /// Measured requests sent to each server, by index of `--server`.
    pub server_requests: Vec<u64>,
}

/// What a thread tells the coordinator.
#[derive(Debug)]
pub enum Report {
    /// The preload share of the thread is done.
    Preloaded {
        /// Keys set.
        keys: u64,
        /// Keys that could not be set.
        failed: u64,
    },
    /// An interval is over.
    Interval(IntervalReport),
    /// The thread is done; `last` is the final interval.
    Done(IntervalReport),
    /// The thread could not run.
    Failed(String),
}

/// The keys of a request.
#[derive(Debug)]
enum Keys {
    One(u64),
    Many(Box<[u64]>),
}

/// A request sent and not yet answered.
#[derive(Debug)]
struct Pending {
    kind: OpKind,
    keys: Keys,
    intended: Instant,
    sent: Instant,
    /// Intended at or after the start of measurement.
    measured: bool,
    /// Part of the preload.
    preload: bool,
    /// Values received so far (get/mget).
    values: u32,
    /// Next requested key a returned value may match (mget: in order).
    cursor: usize,
    /// Its first value answers it whole (a meta get of one key): no `END`
    /// or `MN` follows.
    value_ends: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum SockState {
    Connecting,
    Ready,
    /// Closed; reopen at this time.
    Down(Instant),
}

/// One TCP connection of a client to one server.
#[derive(Debug)]
struct Sock {
    stream: Option<TcpStream>,
    state: SockState,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Vec<u8>,
    in_len: usize,
    pending: VecDeque<Pending>,
    /// Already on the thread's flush list.
    dirty: bool,
    /// Counts the connections opened on this slot (in the low bits of the token).
    generation: u32,
    /// Load phase: a request was queued on this slot (over any of its connections).
    load_sent: bool,
    /// Load phase: a reply completed on this slot.
    load_answered: bool,
}

/// One of the `--connections`.
#[derive(Debug)]
struct Client {
    socks: Vec<Sock>,
    rng: Rng,
    chooser: KeyChooser,
    in_flight: usize,
    /// Open loop: next intended send time.
    next_intended: Instant,
    /// Open loop: on the schedule heap.
    scheduled: bool,
}

/// Which requests the loop generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preload,
    Load,
}

/// A client thread's state.
pub struct Driver {
    shared: Arc<Shared>,
    thread: usize,
    poll: Poll,
    clients: Vec<Client>,
    nservers: usize,
    /// Key and value scratch space.
    key_buf: Vec<u8>,
    val_buf: Vec<u8>,
    /// Sockets (as token numbers) with output to flush.
    dirty: Vec<usize>,
    /// Open loop: (intended time, client) min-heap.
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Open loop: time between two requests of one client.
    period: Option<Duration>,
    phase: Phase,
    preload_next: u64,
    preload_failed: u64,
    preload_done: u64,
    sched: Schedule,
    version: u64,
    cur: IntervalReport,
    failures_reported: usize,
    tx: Sender<Report>,
}

/// Index of a client's socket to one server, as used on the flush list.
fn slot_of(client: usize, server: usize, nservers: usize) -> usize {
    client * nservers + server
}

/// The mio token of connection number `generation` of a slot. Each reopen
/// gets a new token, so an event of a closed connection that is still in the
/// batch being handled is recognised as stale instead of being applied to
/// the connection that replaced it.
fn token_of(slot: usize, generation: u32) -> Token {
    Token((generation as usize) << 32 | slot)
}

/// Slot and generation of a token.
fn untoken(t: Token) -> (usize, u32) {
    (t.0 & 0xFFFF_FFFF, (t.0 >> 32) as u32)
}

/// Runs one client thread to the end; every outcome is sent on `tx`.
pub fn run_thread(
    shared: Arc<Shared>,
    thread: usize,
    client_ids: Vec<usize>,
    tx: Sender<Report>,
    start_rx: Receiver<Schedule>,
) {
    let result = Driver::new(shared, thread, &client_ids, tx.clone())
        .and_then(|mut d| d.run(&start_rx).map(|()| d));
    match result {
        Ok(mut d) => {
            let last = d.take_interval(d.cur.index);
            let _ = tx.send(Report::Done(last));
        }
        Err(e) => {
            let _ = tx.send(Report::Failed(format!("thread {thread}: {e}")));
        }
    }
}

impl Driver {
    fn new(
        shared: Arc<Shared>,
        thread: usize,
        client_ids: &[usize],
        tx: Sender<Report>,
    ) -> io::Result<Driver> {
        let poll = Poll::new()?;
        let cfg = &shared.cfg;
        let nservers = shared.addrs.len();
        let now = Instant::now();
        let clients = client_ids
            .iter()
            .map(|&id| Client {
                socks: (0..nservers)
                    .map(|_| Sock {
                        stream: None,
                        state: SockState::Down(now),
                        out: Vec::with_capacity(4096),
                        out_pos: 0,
                        inbuf: vec![0; 16 * 1024],
                        in_len: 0,
                        pending: VecDeque::new(),
                        dirty: false,
                        generation: 0,
                        load_sent: false,
                        load_answered: false,
                    })
                    .collect(),
                rng: Rng::new(cfg.seed, id as u64),
                chooser: KeyChooser::new(cfg.key_dist, cfg.keys, id, cfg.connections),
                in_flight: 0,
                next_intended: now,
                scheduled: false,
            })
            .collect();
        let period = cfg
            .rate
            .map(|r| Duration::from_secs_f64(cfg.connections as f64 / r));
        Ok(Driver {
            thread,
            poll,
            clients,
            nservers,
            key_buf: Vec::with_capacity(256),
            val_buf: Vec::with_capacity(cfg.value_size.max),
            dirty: Vec::new(),
            heap: BinaryHeap::new(),
            period,
            phase: if cfg.preload {
                Phase::Preload
            } else {
                Phase::Load
            },
            preload_next: thread as u64,
            preload_failed: 0,
            preload_done: 0,
            sched: Schedule {
                run_start: now,
                measure_start: now,
                end: now,
            },
            // Unique per write over the whole run: thread in the top 16 bits.
            version: (thread as u64) << 48,
            cur: IntervalReport {
                thread,
                index: i64::MIN,
                hists: Histograms::default(),
                counters: Counters::default(),
                warmup_completed: 0,
                failures: Vec::new(),
                server_requests: vec![0; nservers],
            },
            failures_reported: 0,
            tx,
            shared,
        })
    }

    fn run(&mut self, start_rx: &Receiver<Schedule>) -> io::Result<()> {
        let now = Instant::now();
        for c in 0..self.clients.len() {
            for s in 0..self.nservers {
                self.connect(c, s, now);
            }
        }
        if self.phase == Phase::Preload {
            self.preload()?;
        }
        let _ = self.tx.send(Report::Preloaded {
            keys: self.preload_done,
            failed: self.preload_failed,
        });
        // The coordinator answers once every thread is ready; if it is gone, stop.
        let Ok(sched) = start_rx.recv() else {
            return Ok(());
        };
        self.sched = sched;
        self.phase = Phase::Load;
        self.cur.index = self.interval_of(sched.run_start);
        self.load()
    }

    /// Index of the interval that `t` falls in (negative during warm-up).
    fn interval_of(&self, t: Instant) -> i64 {
        let ms = self.sched.measure_start;
        if t >= ms {
            (t - ms).as_secs() as i64
        } else {
            -(((ms - t).as_nanos().div_ceil(1_000_000_000)) as i64)
        }
    }

    fn boundary_after(&self, index: i64) -> Instant {
        let ms = self.sched.measure_start;
        let next = index + 1;
        if next >= 0 {
            ms + Duration::from_secs(next as u64)
        } else {
            ms - Duration::from_secs(next.unsigned_abs())
        }
    }

    /// Hands over the current interval and starts interval `next`.
    fn take_interval(&mut self, next: i64) -> IntervalReport {
        let hists = std::mem::take(&mut self.cur.hists);
        IntervalReport {
            thread: self.thread,
            index: std::mem::replace(&mut self.cur.index, next),
            hists,
            counters: std::mem::take(&mut self.cur.counters),
            warmup_completed: std::mem::take(&mut self.cur.warmup_completed),
            failures: std::mem::take(&mut self.cur.failures),
            server_requests: std::mem::replace(
                &mut self.cur.server_requests,
                vec![0; self.nservers],
            ),
        }
    }

    fn timeout_scan_period(&self) -> Duration {
        (self.shared.cfg.timeout.0 / 10).clamp(Duration::from_millis(1), Duration::from_millis(100))
    }

    fn preload(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let timeout = self.shared.cfg.timeout.0;
        let stall_limit = timeout * 3 + Duration::from_secs(1);
        let scan = self.timeout_scan_period();
        let mut next_scan = Instant::now() + scan;
        let mut last_progress = Instant::now();
        let mut progress_mark = 0u64;
        for c in 0..self.clients.len() {
            self.refill(c, Instant::now());
        }
        loop {
            let now = Instant::now();
            let outstanding: usize = self.clients.iter().map(|c| c.in_flight).sum();
            if self.preload_next >= self.shared.cfg.keys && outstanding == 0 {
                return Ok(());
            }
            let mark = self.preload_done + self.preload_failed;
            if mark != progress_mark {
                progress_mark = mark;
                last_progress = now;
            } else if now - last_progress > stall_limit {
                // The servers stopped taking keys: give up on the rest, the run decides.
                let left = self.shared.cfg.keys.saturating_sub(self.preload_next)
                    / self.shared.cfg.threads as u64;
                self.preload_failed += left + outstanding as u64;
                self.preload_next = self.shared.cfg.keys;
                tracing::warn!(
                    thread = self.thread,
                    "preload stalled; continuing without it"
                );
                return Ok(());
            }
            if now >= next_scan {
                self.scan(now);
                next_scan = now + scan;
            }
            self.flush_dirty(now);
            let wait = next_scan.saturating_duration_since(now);
            self.poll.poll(&mut events, Some(wait))?;
            self.handle(&events);
        }
    }

    fn load(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let scan = self.timeout_scan_period();
        let start = self.sched.run_start;
        // Every thread starts at the same instant.
        let now = Instant::now();
        if start > now {
            std::thread::sleep(start - now);
        }
        let now = Instant::now();
        let mut next_scan = now + scan;
        let mut next_boundary = self.boundary_after(self.cur.index);
        if let Some(period) = self.period {
            let n = self.shared.cfg.connections as f64;
            let ids: Vec<usize> = (0..self.clients.len()).collect();
            for c in ids {
                // Spread the clients' schedules evenly over one period.
                let global = self.thread + c * self.shared.cfg.threads;
                let t = start + period.mul_f64(global as f64 / n);
                self.clients[c].next_intended = t;
                self.clients[c].scheduled = true;
                self.heap.push(Reverse((t, c)));
            }
        } else {
            for c in 0..self.clients.len() {
                self.refill(c, now);
            }
        }
        loop {
            let now = Instant::now();
            if now >= self.sched.end {
                break;
            }
            while now >= next_boundary {
                let idx = self.cur.index;
                let report = self.take_interval(idx + 1);
                let _ = self.tx.send(Report::Interval(report));
                next_boundary = self.boundary_after(self.cur.index);
            }
            if now >= next_scan {
                self.scan(now);
                next_scan = now + scan;
            }
            self.run_schedule(now);
            self.flush_dirty(now);
            let mut wake = next_scan.min(next_boundary).min(self.sched.end);
            if let Some(Reverse((t, _))) = self.heap.peek() {
                wake = wake.min(*t);
            }
            // epoll waits in whole milliseconds: round up so we never spin.
            let wait = wake.saturating_duration_since(now);
            self.poll.poll(&mut events, Some(wait))?;
            self.handle(&events);
        }
        self.drain(&mut events)?;
        // Whatever is still in flight was measured but never answered; in the
        // open loop, so were requests that were due but had no free slot.
        // Each counts as a censored sample at how long it had waited when the
        // run ended.
        let end = self.sched.end;
        let stop = Instant::now().max(end);
        let measure_start = self.sched.measure_start;
        let mut counters = Counters::default();
        let mut due = 0u64;
        let cur = &mut self.cur;
        for c in &mut self.clients {
            if let Some(period) = self.period {
                // Slots from the first measured one that was never sent to
                // the end, every `period`.
                let mut t = c.next_intended;
                if t < measure_start {
                    let skip = (measure_start - t).as_nanos().div_ceil(period.as_nanos());
                    t += period.saturating_mul(u32::try_from(skip).unwrap_or(u32::MAX));
                }
                while t < end {
                    due += 1;
                    let kind = pick_op(&self.shared.cfg, &mut c.rng);
                    cur.hists.record_censored(kind, stop - t);
                    t += period;
                }
            }
            for s in &mut c.socks {
                for p in s.pending.drain(..) {
                    if p.preload {
                        // Already counted in the preload's `failed`.
                        continue;
                    }
                    counters.op(p.kind).unanswered_at_end += 1;
                    if counted(cur, &p, stop, &self.sched) {
                        cur.counters.op(p.kind).unfinished += 1;
                        cur.hists
                            .record_censored(p.kind, stop.saturating_duration_since(p.intended));
                    }
                }
                if s.load_sent && !s.load_answered {
                    counters.connections_never_answered += 1;
                }
            }
            c.in_flight = 0;
        }
        counters.unsent = due;
        self.cur.counters.add(&counters);
        Ok(())
    }

    /// After the measured window: no request intended after it is sent, but
    /// replies to the measured requests still in flight are waited for (and
    /// recorded), and in the open loop requests that fell due in the window
    /// without a free slot are still sent as slots free up (their latency
    /// counts from their intended time), for up to [`DRAIN_LIMIT`] or the
    /// timeout, whichever is shorter. So a healthy run ends with every
    /// request answered, and only a server that leaves requests unanswered
    /// leaves censored samples.
    fn drain(&mut self, events: &mut Events) -> io::Result<()> {
        let end = self.sched.end;
        let limit = end + DRAIN_LIMIT.min(self.shared.cfg.timeout.0);
        let scan = self.timeout_scan_period();
        let mut next_scan = Instant::now() + scan;
        let open = self.period.is_some();
        loop {
            let now = Instant::now();
            let waiting = self.clients.iter().any(|c| {
                (open && c.next_intended < end)
                    || c.socks
                        .iter()
                        .any(|s| s.pending.iter().any(|p| p.measured && !p.preload))
            });
            if !waiting || now >= limit {
                return Ok(());
            }
            if now >= next_scan {
                self.scan(now);
                next_scan = now + scan;
            }
            self.run_schedule(now);
            self.flush_dirty(now);
            let wait = next_scan.min(limit).saturating_duration_since(now);
            self.poll.poll(events, Some(wait))?;
            self.handle(events);
        }
    }

    /// Open loop: issue every request whose time has come, where slots allow.
    fn run_schedule(&mut self, now: Instant) {
        let Some(period) = self.period else { return };
        let cap = self.shared.cfg.pipeline;
        while let Some(&Reverse((t, c))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            self.clients[c].scheduled = false;
            self.send_due(c, now, period, cap);
        }
    }

    /// Open loop: sends client `c`'s overdue requests while it has free slots,
    /// then puts it back on the heap if it can take its next one.
    fn send_due(&mut self, c: usize, now: Instant, period: Duration, cap: usize) {
        while self.clients[c].in_flight < cap && self.clients[c].next_intended <= now {
            if self.clients[c].next_intended >= self.sched.end {
                return;
            }
            let intended = self.clients[c].next_intended;
            self.issue(c, intended, now);
            self.clients[c].next_intended += period;
        }
        let client = &mut self.clients[c];
        if !client.scheduled && client.in_flight < cap {
            client.scheduled = true;
            self.heap.push(Reverse((client.next_intended, c)));
        }
    }

    /// Closed loop and preload: fill client `c`'s free slots now.
    fn refill(&mut self, c: usize, now: Instant) {
        let cap = match self.phase {
            Phase::Preload => self.shared.cfg.pipeline.max(PRELOAD_DEPTH),
            Phase::Load => self.shared.cfg.pipeline,
        };
        while self.clients[c].in_flight < cap {
            if self.phase == Phase::Preload && self.preload_next >= self.shared.cfg.keys {
                return;
            }
            self.issue(c, now, now);
        }
    }

    /// A slot of client `c` was freed at `now`.
    fn slot_freed(&mut self, c: usize, now: Instant) {
        match (self.phase, self.period) {
            (Phase::Load, Some(period)) => {
                let cap = self.shared.cfg.pipeline;
                self.send_due(c, now, period, cap);
            }
            _ => {
                if self.phase == Phase::Preload || now < self.sched.end {
                    self.refill(c, now);
                }
            }
        }
    }

    /// Builds one request for client `c` and queues it on the right socket.
    fn issue(&mut self, c: usize, intended: Instant, now: Instant) {
        let shared = Arc::clone(&self.shared);
        let cfg = &shared.cfg;
        let ks = &shared.keyspace;
        let client = &mut self.clients[c];
        let (kind, keys) = if self.phase == Phase::Preload {
            let k = self.preload_next;
            self.preload_next += cfg.threads as u64;
            (OpKind::Set, Keys::One(k))
        } else {
            let kind = pick_op(cfg, &mut client.rng);
            let first = client.chooser.next(&mut client.rng);
            if kind == OpKind::Mget && cfg.mget_keys > 1 {
                let mut v = Vec::with_capacity(cfg.mget_keys);
                v.push(first);
                ks.write_key(first, &mut self.key_buf);
                let server = ks.server_of(&self.key_buf);
                // Keys of one multi-get must live on one server: draw until they do
                // (bounded, expected `servers` draws per key).
                let mut tries = 0;
                while v.len() < cfg.mget_keys && tries < 64 * cfg.mget_keys {
                    tries += 1;
                    let k = client.chooser.next(&mut client.rng);
                    if self.nservers > 1 {
                        ks.write_key(k, &mut self.key_buf);
                        if ks.server_of(&self.key_buf) != server {
                            continue;
                        }
                    }
                    v.push(k);
                }
                (kind, Keys::Many(v.into_boxed_slice()))
            } else {
                (kind, Keys::One(first))
            }
        };
        let first = match &keys {
            Keys::One(k) => *k,
            Keys::Many(v) => v[0],
        };
        ks.write_key(first, &mut self.key_buf);
        let server = ks.server_of(&self.key_buf);
        let sock = &mut client.socks[server];
        match (&keys, kind) {
            (Keys::Many(v), _) => {
                let ksz = cfg.key_size;
                let mut all = Vec::with_capacity(v.len() * ksz);
                for &k in v.iter() {
                    ks.write_key(k, &mut self.key_buf);
                    all.extend_from_slice(&self.key_buf);
                }
                let refs: Vec<&[u8]> = all.chunks(ksz).collect();
                wire::encode_get(cfg.protocol, &refs, &mut self.val_buf, &mut sock.out);
            }
            (Keys::One(_), OpKind::Get | OpKind::Mget) => wire::encode_get(
                cfg.protocol,
                &[&self.key_buf],
                &mut self.val_buf,
                &mut sock.out,
            ),
            (Keys::One(_), OpKind::Set) => {
                self.version += 1;
                let len = shared.values.size(&mut client.rng);
                self.val_buf.clear();
                shared
                    .values
                    .write(&self.key_buf, self.version, len, &mut self.val_buf);
                wire::encode_set(cfg.protocol, &self.key_buf, &self.val_buf, &mut sock.out);
            }
            (Keys::One(_), OpKind::Delete) => {
                wire::encode_delete(cfg.protocol, &self.key_buf, &mut sock.out)
            }
        }
        let key_count = match &keys {
            Keys::One(_) => 1,
            Keys::Many(v) => v.len(),
        };
        let value_ends = matches!(kind, OpKind::Get | OpKind::Mget)
            && wire::value_ends_get(cfg.protocol, key_count);
        let measured = self.phase == Phase::Load && intended >= self.sched.measure_start;
        sock.load_sent |= self.phase == Phase::Load;
        sock.pending.push_back(Pending {
            kind,
            keys,
            intended,
            sent: now,
            measured,
            preload: self.phase == Phase::Preload,
            values: 0,
            cursor: 0,
            value_ends,
        });
        client.in_flight += 1;
        if measured {
            self.cur.counters.op(kind).requests += 1;
            self.cur.server_requests[server] += 1;
        }
        if !sock.dirty {
            sock.dirty = true;
            self.dirty.push(slot_of(c, server, self.nservers));
        }
    }

    fn flush_dirty(&mut self, now: Instant) {
        while let Some(t) = self.dirty.pop() {
            let (c, s) = (t / self.nservers, t % self.nservers);
            self.clients[c].socks[s].dirty = false;
            self.flush(c, s, now);
        }
    }

    /// Writes what the socket will take; the rest waits for a WRITABLE event.
    fn flush(&mut self, c: usize, s: usize, now: Instant) {
        let sock = &mut self.clients[c].socks[s];
        if sock.state != SockState::Ready {
            return;
        }
        let Some(stream) = sock.stream.as_mut() else {
            return;
        };
        while sock.out_pos < sock.out.len() {
            match stream.write(&sock.out[sock.out_pos..]) {
                Ok(0) => {
                    self.lost(c, s, now, Loss::Closed);
                    return;
                }
                Ok(n) => sock.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.lost(c, s, now, Loss::Closed);
                    return;
                }
            }
        }
        sock.out.clear();
        sock.out_pos = 0;
    }

    fn handle(&mut self, events: &Events) {
        let now = Instant::now();
        for ev in events.iter() {
            let (t, generation) = untoken(ev.token());
            let (c, s) = (t / self.nservers, t % self.nservers);
            if c >= self.clients.len() || self.clients[c].socks[s].generation != generation {
                // A connection closed earlier in this batch: its events are void.
                continue;
            }
            if self.clients[c].socks[s].state == SockState::Connecting {
                if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                    self.finish_connect(c, s, now);
                }
                continue;
            }
            if self.clients[c].socks[s].state != SockState::Ready {
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                self.read(c, s, now);
                // Send the requests these replies made room for before reading
                // the next connection, so the server works while we read.
                self.flush_dirty(now);
            }
            if ev.is_writable() && self.clients[c].socks[s].state == SockState::Ready {
                self.flush(c, s, now);
            }
        }
        self.flush_dirty(now);
    }

    fn connect(&mut self, c: usize, s: usize, now: Instant) {
        let addr = self.shared.addrs[s];
        let sock = &mut self.clients[c].socks[s];
        sock.generation = sock.generation.wrapping_add(1);
        let token = token_of(slot_of(c, s, self.nservers), sock.generation);
        match TcpStream::connect(addr) {
            Ok(mut stream) => {
                let _ = stream.set_nodelay(true);
                match self.poll.registry().register(
                    &mut stream,
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    Ok(()) => {
                        sock.stream = Some(stream);
                        sock.state = SockState::Connecting;
                    }
                    Err(e) => {
                        tracing::debug!(%addr, "register failed: {e}");
                        self.connect_failed(c, s, now);
                    }
                }
            }
            Err(e) => {
                tracing::debug!(%addr, "connect failed: {e}");
                self.connect_failed(c, s, now);
            }
        }
    }

    fn finish_connect(&mut self, c: usize, s: usize, now: Instant) {
        let sock = &mut self.clients[c].socks[s];
        let Some(stream) = sock.stream.as_ref() else {
            return;
        };
        let ok = matches!(stream.take_error(), Ok(None)) && stream.peer_addr().is_ok();
        if ok {
            sock.state = SockState::Ready;
            self.flush(c, s, now);
            // Replies may already be waiting (edge-triggered: no second event).
            if self.clients[c].socks[s].state == SockState::Ready {
                self.read(c, s, now);
            }
        } else {
            self.connect_failed(c, s, now);
        }
    }

    fn measuring(&self, now: Instant) -> bool {
        self.phase == Phase::Load && now >= self.sched.measure_start
    }

    fn connect_failed(&mut self, c: usize, s: usize, now: Instant) {
        if self.measuring(now) {
            self.cur.counters.errors.connect_failed += 1;
        }
        self.drop_sock(c, s, now, LostAs::Unfinished);
        let retry = (self.shared.cfg.timeout.0 / 10)
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        self.clients[c].socks[s].state = SockState::Down(now + retry);
    }

    /// Closes a socket and settles its pending requests.
    fn drop_sock(&mut self, c: usize, s: usize, now: Instant, how: LostAs) {
        let client = &mut self.clients[c];
        let sock = &mut client.socks[s];
        if let Some(mut stream) = sock.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        sock.out.clear();
        sock.out_pos = 0;
        sock.in_len = 0;
        let n = sock.pending.len();
        for p in sock.pending.drain(..) {
            if p.preload {
                self.preload_failed += 1;
            } else if !counted(&mut self.cur, &p, now, &self.sched) {
                self.cur.counters.op(p.kind).warmup_lost += 1;
            } else {
                let oc = self.cur.counters.op(p.kind);
                match how {
                    LostAs::Timeout => oc.timeouts += 1,
                    LostAs::Unfinished => oc.unfinished += 1,
                }
                // No reply: it waited this long at least.
                self.cur
                    .hists
                    .record_censored(p.kind, now.saturating_duration_since(p.intended));
            }
            if how == LostAs::Timeout && !p.preload && now >= self.sched.measure_start {
                self.cur.counters.errors.timeouts += 1;
            }
        }
        client.in_flight -= n;
        sock.state = SockState::Down(now);
        for _ in 0..n {
            // Freed slots refill on other sockets (or this one once reopened).
            self.slot_freed(c, now);
        }
    }

    /// A socket failed while open: count it, reopen it at once.
    fn lost(&mut self, c: usize, s: usize, now: Instant, why: Loss) {
        if self.measuring(now) {
            let e = &mut self.cur.counters.errors;
            match why {
                Loss::Closed => e.connection_closed += 1,
                Loss::BadReply => e.bad_reply += 1,
                Loss::Timeout => {}
            }
            e.reconnects += 1;
        }
        let how = if why == Loss::Timeout {
            LostAs::Timeout
        } else {
            LostAs::Unfinished
        };
        // Settle the pending requests before reconnecting so that refills
        // triggered by freed slots land on the new connection.
        let sock = &mut self.clients[c].socks[s];
        sock.state = SockState::Down(now);
        self.drop_sock(c, s, now, how);
        self.connect(c, s, now);
    }

    /// Timeouts and due reconnects.
    fn scan(&mut self, now: Instant) {
        let timeout = self.shared.cfg.timeout.0;
        for c in 0..self.clients.len() {
            for s in 0..self.nservers {
                let sock = &self.clients[c].socks[s];
                match sock.state {
                    SockState::Down(at) if at <= now => {
                        if self.measuring(now) {
                            self.cur.counters.errors.reconnects += 1;
                        }
                        self.connect(c, s, now);
                    }
                    _ => {
                        if let Some(p) = sock.pending.front() {
                            if now.duration_since(p.sent) > timeout {
                                self.lost(c, s, now, Loss::Timeout);
                            }
                        }
                    }
                }
            }
        }
    }

    fn read(&mut self, c: usize, s: usize, now: Instant) {
        loop {
            let sock = &mut self.clients[c].socks[s];
            let Some(stream) = sock.stream.as_mut() else {
                return;
            };
            if sock.in_len == sock.inbuf.len() {
                let grow = sock.inbuf.len();
                sock.inbuf.resize(grow * 2, 0);
            }
            match stream.read(&mut sock.inbuf[sock.in_len..]) {
                Ok(0) => {
                    self.lost(c, s, now, Loss::Closed);
                    return;
                }
                Ok(n) => {
                    sock.in_len += n;
                    if !self.parse(c, s, now) {
                        return;
                    }
                    // Edge-triggered readiness is only re-armed by a read
                    // that says WouldBlock (epoll(7)); a short read is not
                    // taken as proof that the socket is drained, since a
                    // socket left with unread bytes or an unread EOF may
                    // never be reported again.
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.lost(c, s, now, Loss::Closed);
                    return;
                }
            }
        }
    }

    /// Consumes every complete reply in the socket's buffer. False if the
    /// socket was closed because of what it received.
    fn parse(&mut self, c: usize, s: usize, now: Instant) -> bool {
        let shared = Arc::clone(&self.shared);
        let mut used = 0;
        let mut freed = 0usize;
        let mut broken = false;
        {
            let sock = &mut self.clients[c].socks[s];
            let buf = &sock.inbuf[..sock.in_len];
            while used < buf.len() {
                let reply = match wire::decode(&buf[used..]) {
                    Ok(Some((reply, n))) => {
                        used += n;
                        reply
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!("bad reply: {}", e.0);
                        broken = true;
                        break;
                    }
                };
                let Some(p) = sock.pending.front_mut() else {
                    tracing::debug!("reply without a request");
                    broken = true;
                    break;
                };
                let outcome = match on_reply(&shared, p, &reply, &mut self.key_buf) {
                    Ok(outcome) => outcome,
                    Err(WrongValue(detail)) => {
                        // Counted in every phase: a wrong value is never ignored.
                        self.cur.counters.errors.verify_failures += 1;
                        let key = String::from_utf8_lossy(reply_key(&reply)).into_owned();
                        tracing::warn!(%key, "wrong value: {detail}");
                        if self.failures_reported < MAX_FAILURES_REPORTED {
                            self.failures_reported += 1;
                            self.cur.failures.push(VerifyFailure {
                                key,
                                op: p.kind.name().to_string(),
                                detail,
                            });
                        }
                        value_outcome(p)
                    }
                };
                match outcome {
                    Outcome::More => {}
                    Outcome::BadKey => {
                        broken = true;
                        break;
                    }
                    Outcome::Done(result) => {
                        let Some(p) = sock.pending.pop_front() else {
                            break;
                        };
                        freed += 1;
                        sock.load_answered |= !p.preload;
                        settle(
                            &mut self.cur,
                            &mut self.preload_done,
                            &mut self.preload_failed,
                            &p,
                            result,
                            now,
                            &self.sched,
                        );
                    }
                }
            }
            if used > 0 {
                sock.inbuf.copy_within(used..sock.in_len, 0);
                sock.in_len -= used;
            }
        }
        self.clients[c].in_flight -= freed;
        if broken {
            self.lost(c, s, now, Loss::BadReply);
            return false;
        }
        for _ in 0..freed {
            self.slot_freed(c, now);
        }
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    Closed,
    BadReply,
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LostAs {
    Timeout,
    Unfinished,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Hit,
    Miss,
    ServerError,
    ClientError,
    Error,
}

enum Outcome {
    /// Part of a multi-line reply; the request goes on.
    More,
    /// A value for a key we did not ask for: the stream is out of step.
    BadKey,
    /// The request is answered.
    Done(Ending),
}

fn reply_key<'a>(r: &Reply<'a>) -> &'a [u8] {
    match r {
        Reply::Value { key, .. } => key,
        _ => b"",
    }
}

/// A value that failed verification: what is wrong with it.
struct WrongValue(String);

/// Applies one reply to the request at the head of the queue. A wrong value
/// is an `Err`, counted as a value of the request all the same.
fn on_reply(
    shared: &Shared,
    p: &mut Pending,
    reply: &Reply<'_>,
    key_buf: &mut Vec<u8>,
) -> Result<Outcome, WrongValue> {
    Ok(match (p.kind, reply) {
        (_, Reply::Error) => Outcome::Done(Ending::Error),
        (_, Reply::ClientError) => Outcome::Done(Ending::ClientError),
        (_, Reply::ServerError) => Outcome::Done(Ending::ServerError),
        (OpKind::Get | OpKind::Mget, Reply::Value { key, data }) => {
            let requested: &[u64] = match &p.keys {
                Keys::One(k) => std::slice::from_ref(k),
                Keys::Many(v) => v,
            };
            // Values come back in request order, each key at most once per request.
            let mut found = false;
            while p.cursor < requested.len() {
                shared.keyspace.write_key(requested[p.cursor], key_buf);
                p.cursor += 1;
                if key_buf.as_slice() == *key {
                    found = true;
                    break;
                }
            }
            if !found {
                return Ok(Outcome::BadKey);
            }
            p.values += 1;
            if shared.values.verifying() {
                if let Err(e) = shared.values.check(key, data) {
                    return Err(WrongValue(e.to_string()));
                }
            }
            value_outcome(p)
        }
        (OpKind::Get | OpKind::Mget, Reply::End) => Outcome::Done(Ending::Hit),
        (OpKind::Set, Reply::Stored | Reply::Done) => Outcome::Done(Ending::Hit),
        (OpKind::Set, Reply::NotStored | Reply::Exists | Reply::NotFound) => {
            Outcome::Done(Ending::Miss)
        }
        (OpKind::Delete, Reply::Deleted | Reply::Done) => Outcome::Done(Ending::Hit),
        (OpKind::Delete, Reply::NotFound) => Outcome::Done(Ending::Miss),
        _ => Outcome::BadKey,
    })
}

/// What a value (right or wrong) means for the get it answers: the end of
/// a meta get of one key, a part of any other.
fn value_outcome(p: &Pending) -> Outcome {
    if p.value_ends {
        Outcome::Done(Ending::Hit)
    } else {
        Outcome::More
    }
}

/// Whether request `p`, settled (answered or given up) at `now`, counts in
/// the measurement: when it was intended in the window, or was sent in the
/// warm-up and still waited when the window opened (a request a server
/// leaves unanswered from the warm-up on is the one that matters most). The
/// latter is counted as a measured request here, when it settles.
fn counted(cur: &mut IntervalReport, p: &Pending, now: Instant, sched: &Schedule) -> bool {
    if p.preload {
        return false;
    }
    if p.measured {
        return true;
    }
    let carried = now >= sched.measure_start;
    if carried {
        cur.counters.op(p.kind).requests += 1;
    }
    carried
}

/// Records an answered request.
fn settle(
    cur: &mut IntervalReport,
    preload_done: &mut u64,
    preload_failed: &mut u64,
    p: &Pending,
    ending: Ending,
    now: Instant,
    sched: &Schedule,
) {
    if p.preload {
        if ending == Ending::Hit {
            *preload_done += 1;
        } else {
            *preload_failed += 1;
        }
        return;
    }
    if !counted(cur, p, now, sched) {
        cur.warmup_completed += 1;
        return;
    }
    let oc = cur.counters.op(p.kind);
    match ending {
        Ending::Hit | Ending::Miss => {
            oc.completed += 1;
            if now >= sched.end {
                oc.drained += 1;
            }
            match p.kind {
                OpKind::Get | OpKind::Mget => {
                    let asked = match &p.keys {
                        Keys::One(_) => 1,
                        Keys::Many(v) => v.len() as u64,
                    };
                    let got = u64::from(p.values);
                    oc.hits += got;
                    oc.misses += asked.saturating_sub(got);
                }
                _ => {
                    if ending == Ending::Hit {
                        oc.hits += 1;
                    } else {
                        oc.misses += 1;
                    }
                }
            }
            cur.hists.record(
                p.kind,
                now.saturating_duration_since(p.intended),
                now.saturating_duration_since(p.sent),
            );
        }
        Ending::ServerError | Ending::ClientError | Ending::Error => {
            oc.errors += 1;
            cur.hists
                .record_error(p.kind, now.saturating_duration_since(p.intended));
            let e = &mut cur.counters.errors;
            match ending {
                Ending::ServerError => e.server_error += 1,
                Ending::ClientError => e.client_error += 1,
                _ => e.error += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_connection_gets_a_token_of_its_own() {
        let slot = slot_of(70_000, 1, 2);
        let first = token_of(slot, 1);
        let second = token_of(slot, 2);
        assert_ne!(first, second, "events of the old connection must not match");
        assert_eq!(untoken(first), (slot, 1));
        assert_eq!(untoken(second), (slot, 2));
        assert_eq!(untoken(token_of(slot, u32::MAX)), (slot, u32::MAX));
    }
}
