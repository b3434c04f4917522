//! Pacing: which request a client sends, and when.
//!
//! * Preload: every key is set once, dealt round-robin to the threads, with
//!   [`PRELOAD_DEPTH`] requests in flight per client (or `--pipeline`, if
//!   more). A preload that stops making progress is given up; the run goes on.
//! * Closed loop: each client keeps `--pipeline` requests in flight; a request
//!   is issued the moment a reply frees its slot (intended = send time).
//! * Open loop: client `i` of `n` sends at `start + i/rate + j*n/rate`. When its
//!   slots are full the request waits, but its latency still counts from that
//!   intended time (coordinated omission corrected, as in wrk2). Clients wait
//!   for their next intended time on a min-heap.
//! * After the window: the drain waits (a little) for the replies still in
//!   flight, then whatever is left is settled as unanswered, and in the open
//!   loop every request that fell due and was never sent is counted.
//!
//! The loop never waits past the run's end (plus the drain), so a silent
//! server cannot hang a run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Events;

use crate::config::{OpKind, RunConfig};
use crate::wire;
use crate::workload::pick_op;

use super::matcher::{Keys, Pending};
use super::{Driver, Report};

/// Requests in flight per client during the preload.
const PRELOAD_DEPTH: usize = 16;

/// How long a run waits after its measured window for the replies still in
/// flight (at most the timeout).
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

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

impl Schedule {
    /// Index of the interval that `t` falls in (negative during warm-up).
    pub(super) fn interval_of(&self, t: Instant) -> i64 {
        let ms = self.measure_start;
        if t >= ms {
            (t - ms).as_secs() as i64
        } else {
            -(((ms - t).as_nanos().div_ceil(1_000_000_000)) as i64)
        }
    }

    /// When interval `index` ends.
    fn boundary_after(&self, index: i64) -> Instant {
        let ms = self.measure_start;
        let next = index + 1;
        if next >= 0 {
            ms + Duration::from_secs(next as u64)
        } else {
            ms - Duration::from_secs(next.unsigned_abs())
        }
    }
}

/// Which requests the loop generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Preload,
    Load,
}

/// A thread's schedule state.
#[derive(Debug)]
pub(super) struct Pacing {
    pub(super) phase: Phase,
    /// The load phase's times (all `now` until the coordinator sends them).
    pub(super) sched: Schedule,
    /// Open loop: time between two requests of one client.
    period: Option<Duration>,
    /// Open loop: (intended time, client) min-heap.
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Preload: the next key this thread sets.
    preload_next: u64,
}

impl Pacing {
    /// Thread `thread`'s pacing, before the coordinator's schedule arrives.
    pub(super) fn new(cfg: &RunConfig, thread: usize, now: Instant) -> Pacing {
        Pacing {
            phase: if cfg.preload {
                Phase::Preload
            } else {
                Phase::Load
            },
            sched: Schedule {
                run_start: now,
                measure_start: now,
                end: now,
            },
            period: cfg
                .rate
                .map(|r| Duration::from_secs_f64(cfg.connections as f64 / r)),
            heap: BinaryHeap::new(),
            preload_next: thread as u64,
        }
    }

    /// Whether what happens at `now` is recorded.
    pub(super) fn measuring(&self, now: Instant) -> bool {
        self.phase == Phase::Load && now >= self.sched.measure_start
    }
}

impl Driver {
    fn timeout_scan_period(&self) -> Duration {
        (self.shared.cfg.timeout.0 / 10).clamp(Duration::from_millis(1), Duration::from_millis(100))
    }

    pub(super) fn preload(&mut self) -> io::Result<()> {
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
            if self.pace.preload_next >= self.shared.cfg.keys && outstanding == 0 {
                return Ok(());
            }
            let mark = self.tally.preload_done + self.tally.preload_failed;
            if mark != progress_mark {
                progress_mark = mark;
                last_progress = now;
            } else if now - last_progress > stall_limit {
                // The servers stopped taking keys: give up on the rest, the run decides.
                let left = self.shared.cfg.keys.saturating_sub(self.pace.preload_next)
                    / self.shared.cfg.threads as u64;
                self.tally.preload_failed += left + outstanding as u64;
                self.pace.preload_next = self.shared.cfg.keys;
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

    /// The load phase, from the schedule's start to its end and the drain.
    pub(super) fn load(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let scan = self.timeout_scan_period();
        let start = self.pace.sched.run_start;
        // Every thread starts at the same instant.
        let now = Instant::now();
        if start > now {
            std::thread::sleep(start - now);
        }
        let now = Instant::now();
        let mut next_scan = now + scan;
        let mut next_boundary = self.pace.sched.boundary_after(self.tally.cur.index);
        if let Some(period) = self.pace.period {
            let n = self.shared.cfg.connections as f64;
            for c in 0..self.clients.len() {
                // Spread the clients' schedules evenly over one period.
                let global = self.thread + c * self.shared.cfg.threads;
                let t = start + period.mul_f64(global as f64 / n);
                self.clients[c].next_intended = t;
                self.clients[c].scheduled = true;
                self.pace.heap.push(Reverse((t, c)));
            }
        } else {
            for c in 0..self.clients.len() {
                self.refill(c, now);
            }
        }
        loop {
            let now = Instant::now();
            if now >= self.pace.sched.end {
                break;
            }
            while now >= next_boundary {
                let idx = self.tally.cur.index;
                let report = self.tally.take_interval(idx + 1);
                let _ = self.tx.send(Report::Interval(report));
                next_boundary = self.pace.sched.boundary_after(self.tally.cur.index);
            }
            if now >= next_scan {
                self.scan(now);
                next_scan = now + scan;
            }
            self.run_schedule(now);
            self.flush_dirty(now);
            let mut wake = next_scan.min(next_boundary).min(self.pace.sched.end);
            if let Some(Reverse((t, _))) = self.pace.heap.peek() {
                wake = wake.min(*t);
            }
            // epoll waits in whole milliseconds: round up so we never spin.
            let wait = wake.saturating_duration_since(now);
            self.poll.poll(&mut events, Some(wait))?;
            self.handle(&events);
        }
        self.drain(&mut events)?;
        self.settle_at_end();
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
        let end = self.pace.sched.end;
        let limit = end + DRAIN_LIMIT.min(self.shared.cfg.timeout.0);
        let scan = self.timeout_scan_period();
        let mut next_scan = Instant::now() + scan;
        let open = self.pace.period.is_some();
        loop {
            let now = Instant::now();
            let waiting = self.clients.iter().any(|c| {
                (open && c.next_intended < end)
                    || c.socks
                        .iter()
                        .any(|s| s.pending().any(|p| p.measured && !p.preload))
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

    /// After the drain: whatever is still in flight was measured but never
    /// answered; in the open loop, so were requests that were due but had no
    /// free slot. Each counts as a censored sample at how long it had waited
    /// when the run ended.
    fn settle_at_end(&mut self) {
        let sched = self.pace.sched;
        let stop = Instant::now().max(sched.end);
        let tally = &mut self.tally;
        let mut due = 0u64;
        for c in &mut self.clients {
            if let Some(period) = self.pace.period {
                // Slots from the first measured one that was never sent to
                // the end, every `period`.
                let mut t = c.next_intended;
                if t < sched.measure_start {
                    let skip = (sched.measure_start - t)
                        .as_nanos()
                        .div_ceil(period.as_nanos());
                    t += period.saturating_mul(u32::try_from(skip).unwrap_or(u32::MAX));
                }
                while t < sched.end {
                    due += 1;
                    let kind = pick_op(&self.shared.cfg, &mut c.rng);
                    tally.cur.hists.record_censored(kind, stop - t);
                    t += period;
                }
            }
            for s in &mut c.socks {
                for p in s.abandon() {
                    tally.unanswered_at_end(&p, stop, &sched);
                }
                if s.never_answered() {
                    tally.cur.counters.connections_never_answered += 1;
                }
            }
            c.in_flight = 0;
        }
        tally.cur.counters.unsent += due;
    }

    /// Open loop: issue every request whose time has come, where slots allow.
    fn run_schedule(&mut self, now: Instant) {
        let Some(period) = self.pace.period else {
            return;
        };
        let cap = self.shared.cfg.pipeline;
        while let Some(&Reverse((t, c))) = self.pace.heap.peek() {
            if t > now {
                break;
            }
            self.pace.heap.pop();
            self.clients[c].scheduled = false;
            self.send_due(c, now, period, cap);
        }
    }

    /// Open loop: sends client `c`'s overdue requests while it has free slots,
    /// then puts it back on the heap if it can take its next one.
    fn send_due(&mut self, c: usize, now: Instant, period: Duration, cap: usize) {
        while self.clients[c].in_flight < cap && self.clients[c].next_intended <= now {
            if self.clients[c].next_intended >= self.pace.sched.end {
                return;
            }
            let intended = self.clients[c].next_intended;
            self.issue(c, intended, now);
            self.clients[c].next_intended += period;
        }
        let client = &mut self.clients[c];
        if !client.scheduled && client.in_flight < cap {
            client.scheduled = true;
            self.pace.heap.push(Reverse((client.next_intended, c)));
        }
    }

    /// Closed loop and preload: fill client `c`'s free slots now.
    fn refill(&mut self, c: usize, now: Instant) {
        let cap = match self.pace.phase {
            Phase::Preload => self.shared.cfg.pipeline.max(PRELOAD_DEPTH),
            Phase::Load => self.shared.cfg.pipeline,
        };
        while self.clients[c].in_flight < cap {
            if self.pace.phase == Phase::Preload && self.pace.preload_next >= self.shared.cfg.keys {
                return;
            }
            self.issue(c, now, now);
        }
    }

    /// A slot of client `c` was freed at `now`.
    pub(super) fn slot_freed(&mut self, c: usize, now: Instant) {
        match (self.pace.phase, self.pace.period) {
            (Phase::Load, Some(period)) => {
                let cap = self.shared.cfg.pipeline;
                self.send_due(c, now, period, cap);
            }
            _ => {
                if self.pace.phase == Phase::Preload || now < self.pace.sched.end {
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
        let preload = self.pace.phase == Phase::Preload;
        let client = &mut self.clients[c];
        let (kind, keys) = if preload {
            let k = self.pace.preload_next;
            self.pace.preload_next += cfg.threads as u64;
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
        ks.write_key(keys.as_slice()[0], &mut self.key_buf);
        let server = ks.server_of(&self.key_buf);
        let sock = &mut client.socks[server];
        let out = sock.outbox();
        match (&keys, kind) {
            (Keys::Many(v), _) => {
                let ksz = cfg.key_size;
                let mut all = Vec::with_capacity(v.len() * ksz);
                for &k in v.iter() {
                    ks.write_key(k, &mut self.key_buf);
                    all.extend_from_slice(&self.key_buf);
                }
                let refs: Vec<&[u8]> = all.chunks(ksz).collect();
                wire::encode_get(cfg.protocol, &refs, &mut self.val_buf, out);
            }
            (Keys::One(_), OpKind::Get | OpKind::Mget) => {
                wire::encode_get(cfg.protocol, &[&self.key_buf], &mut self.val_buf, out)
            }
            (Keys::One(_), OpKind::Set) => {
                self.version += 1;
                let len = shared.values.size(&mut client.rng);
                self.val_buf.clear();
                shared
                    .values
                    .write(&self.key_buf, self.version, len, &mut self.val_buf);
                wire::encode_set(cfg.protocol, &self.key_buf, &self.val_buf, out);
            }
            (Keys::One(_), OpKind::Delete) => wire::encode_delete(cfg.protocol, &self.key_buf, out),
        }
        let measured = !preload && intended >= self.pace.sched.measure_start;
        let newly_dirty = sock.queue(Pending::new(
            kind,
            keys,
            cfg.protocol,
            intended,
            now,
            measured,
            preload,
        ));
        client.in_flight += 1;
        if measured {
            self.tally.cur.counters.op(kind).requests += 1;
            self.tally.cur.server_requests[server] += 1;
        }
        if newly_dirty {
            self.mark_dirty(c, server);
        }
    }
}
