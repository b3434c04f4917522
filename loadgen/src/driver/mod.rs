//! One client thread: a mio event loop driving many non-blocking connections.
//!
//! ```text
//!              +-------------------- client thread ---------------------+
//!  run.rs  --> | pacing: open loop heap | closed loop refill on reply   |
//!  start/end   |        |                                               |
//!              |   Client 0 .. Client n   (rng, key chooser, in flight)  |
//!              |     |  socket: one Sock per server, out buffer,        |
//!              |     |  matcher: in buffer and FIFO of pending requests |
//!              |   mio Poll (edge-triggered, READABLE|WRITABLE)          |
//!              |   tally: counters and histograms of settled requests   |
//!              +---------------- per-second IntervalReport --------------+
//!                                   |  crossbeam channel
//!                                   v  run.rs merges, prints, logs
//! ```
//!
//! A *client* is one of the `--connections`: it has one TCP connection (a
//! `Sock`) to each server and sends each request to the server its key
//! hashes to, with at most `--pipeline` requests in flight over its sockets.
//!
//! The thread's work is split by concept, each part owning its state:
//!
//! * `pacing`: the preload, closed and open loop schedules (intended send
//!   times), building each request, and the drain after the window.
//! * `socket`: connections: connect, read, write, timeouts, losing a
//!   connection and reopening it.
//! * `matcher`: the requests in flight on a connection and the reply bytes
//!   received on it, matched in order into answered requests (values
//!   verified); it sees bytes, never a socket.
//! * `tally`: what each settled request adds to the interval's counters and
//!   histograms, censored samples included.
//!
//! This module holds what they share: the thread's clients and its entry point.

mod matcher;
mod pacing;
mod socket;
mod tally;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use mio::Poll;

use crate::config::RunConfig;
use crate::record::{Counters, Histograms, VerifyFailure};
use crate::rng::Rng;
use crate::workload::{KeyChooser, KeySpace, Values};

pub use pacing::Schedule;

use pacing::{Pacing, Phase};
use socket::Sock;
use tally::Tally;

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

/// One of the `--connections`.
#[derive(Debug)]
struct Client {
    /// One per server, by index of `--server`.
    socks: Vec<Sock>,
    rng: Rng,
    chooser: KeyChooser,
    /// Requests in flight over all its sockets.
    in_flight: usize,
    /// Open loop: next intended send time.
    next_intended: Instant,
    /// Open loop: on the schedule heap.
    scheduled: bool,
}

/// A client thread's state.
pub struct Driver {
    shared: Arc<Shared>,
    thread: usize,
    poll: Poll,
    clients: Vec<Client>,
    nservers: usize,
    /// Sockets (as slot numbers) with output to flush.
    dirty: Vec<usize>,
    /// What is sent when.
    pace: Pacing,
    /// What has been recorded.
    tally: Tally,
    /// Key and value scratch space.
    key_buf: Vec<u8>,
    val_buf: Vec<u8>,
    /// The version of the last value written: unique per write over the
    /// whole run, with the thread in the top 16 bits.
    version: u64,
    tx: Sender<Report>,
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
            let last = d.tally.take_interval(d.tally.cur.index);
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
                socks: (0..nservers).map(|_| Sock::new(now)).collect(),
                rng: Rng::new(cfg.seed, id as u64),
                chooser: KeyChooser::new(cfg.key_dist, cfg.keys, id, cfg.connections),
                in_flight: 0,
                next_intended: now,
                scheduled: false,
            })
            .collect();
        Ok(Driver {
            thread,
            poll,
            clients,
            nservers,
            key_buf: Vec::with_capacity(256),
            val_buf: Vec::with_capacity(cfg.value_size.max),
            dirty: Vec::new(),
            pace: Pacing::new(cfg, thread, now),
            tally: Tally::new(thread, nservers),
            version: (thread as u64) << 48,
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
        if self.pace.phase == Phase::Preload {
            self.preload()?;
        }
        let _ = self.tx.send(Report::Preloaded {
            keys: self.tally.preload_done,
            failed: self.tally.preload_failed,
        });
        // The coordinator answers once every thread is ready; if it is gone, stop.
        let Ok(sched) = start_rx.recv() else {
            return Ok(());
        };
        self.pace.sched = sched;
        self.pace.phase = Phase::Load;
        self.tally.cur.index = sched.interval_of(sched.run_start);
        self.load()
    }
}
