//! Server-wide counters ([`ServerStats`]) and the replies to `stats` and
//! `stats settings`.
//!
//! Counters are relaxed atomics: each is a tally read by `stats`, never used
//! to order other memory. Names and meanings follow memcached's where one
//! applies, so tools written for memcached read them unchanged; the engine's
//! counters (`engine_*`) and the front-end's (`frontend_*`, queue and idle
//! figures) follow.
//!
//! Where memcached's figure has no equivalent here it is still sent, with a
//! documented value, because clients expect the name:
//! * `limit_maxbytes` / `maxbytes`: 0. Items live on disk, there is no memory
//!   limit and nothing is evicted.
//! * `get_expired`: always 0. The engine reports an expired item as missing,
//!   so such a get counts as a miss.

use crate::output::Output;
use protocol::{encode_stat, Response};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Who serves the connections, for `stats` and the startup line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendInfo {
    /// `threadpool` or `eventloop`.
    pub model: &'static str,
    /// Worker threads or event loops.
    pub threads: usize,
}

/// Declares the counters once: the struct fields and the `stats` lines in
/// this order come from the same list, so a counter cannot be added to one
/// and forgotten in the other.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Tallies updated by sessions and front-ends, read by `stats`: one
        /// shard of them (see [`ServerStats::counters`]).
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// The counters summed over every shard.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct Totals {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Totals {
            fn add(&mut self, shard: &Counters) {
                // Wrapping: a gauge may go up in one shard and down in another.
                $(self.$name = self.$name.wrapping_add(shard.$name.load(Relaxed));)*
            }

            fn for_each(&self, mut f: impl FnMut(&'static str, u64)) {
                $(f(stringify!($name), self.$name);)*
            }
        }
    };
}

counters! {
    /// Connections open now (served or queued).
    curr_connections,
    /// Connections accepted since start.
    total_connections,
    /// Connections turned away at the connection limit.
    rejected_connections,
    /// get/gets/gat/gats keys and mg requests looked up.
    cmd_get,
    /// Storage commands executed (set/add/replace/append/prepend/cas/ms).
    cmd_set,
    /// flush_all commands.
    cmd_flush,
    /// touch, gat and gats keys.
    cmd_touch,
    /// Meta commands (mg/ms/md/mn).
    cmd_meta,
    get_hits,
    get_misses,
    get_expired,
    get_flushed,
    delete_misses,
    delete_hits,
    incr_misses,
    incr_hits,
    decr_misses,
    decr_hits,
    cas_misses,
    cas_hits,
    cas_badval,
    touch_hits,
    touch_misses,
    /// Sets refused because the value exceeded `--max-item-size`.
    store_too_large,
    /// Bytes read from clients (requests consumed).
    bytes_read,
    /// Bytes of replies produced for clients.
    bytes_written,
    /// Items stored since start.
    total_items,
    /// Connections accepted into a queue before a worker took them (thread pool).
    total_queued,
    /// Connections closed for being idle longer than `--idle-timeout`.
    idle_kicks,
    /// Connections closed because serving them panicked.
    connection_panics,
}

/// Shards of counters. Every request bumps a few counters; with one shared
/// set, every core would fight over the same cache lines. Each thread bumps
/// its own shard (threads are spread round robin) and `stats` sums them.
const SHARDS: usize = 16;

/// One shard on its own cache lines (128: adjacent-line prefetch pairs lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Counters);

thread_local! {
    /// This thread's shard; `usize::MAX` until first used.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn shard_index() -> usize {
    SHARD.with(|shard| {
        if shard.get() == usize::MAX {
            shard.set(NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS);
        }
        shard.get()
    })
}

/// Server-wide statistics: the counters plus the figures that are not
/// tallies (gauges, start time).
#[derive(Debug)]
pub struct ServerStats {
    shards: Box<[Shard]>,
    /// Connections waiting in the queue now (thread pool).
    queued_now: AtomicU64,
    /// How long the last connection taken from the queue had waited, in µs.
    last_queue_wait_us: AtomicU64,
    /// The longest queue wait seen, in µs.
    max_queue_wait_us: AtomicU64,
    /// `uptime` counts from here.
    started: Instant,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            queued_now: AtomicU64::new(0),
            last_queue_wait_us: AtomicU64::new(0),
            max_queue_wait_us: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl ServerStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// The calling thread's shard of the counters, to bump.
    pub fn counters(&self) -> &Counters {
        &self.shards[shard_index()].0
    }

    /// The counters summed over all shards, to read.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for shard in self.shards.iter() {
            totals.add(&shard.0);
        }
        // A gauge that went down in one shard before the matching up was
        // summed could read as "negative"; show 0 instead.
        if (totals.curr_connections as i64) < 0 {
            totals.curr_connections = 0;
        }
        totals
    }

    /// A connection was accepted and is being (or will be) served.
    pub fn connection_opened(&self) {
        let c = self.counters();
        c.curr_connections.fetch_add(1, Relaxed);
        c.total_connections.fetch_add(1, Relaxed);
    }

    /// A connection counted by [`connection_opened`](Self::connection_opened) ended.
    pub fn connection_closed(&self) {
        // May wrap in this shard: the sum over shards is what counts.
        self.counters().curr_connections.fetch_sub(1, Relaxed);
    }

    /// A connection was refused at the connection limit.
    /// A connection was refused at the limit, with `reply_bytes` sent to it.
    pub fn refused(&self, reply_bytes: u64) {
        self.connection_rejected();
        self.add_bytes_written(reply_bytes);
    }

    pub fn connection_rejected(&self) {
        self.counters().rejected_connections.fetch_add(1, Relaxed);
    }

    /// A connection was put into the queue to wait for a worker.
    pub fn queued(&self) {
        self.queued_now.fetch_add(1, Relaxed);
        self.counters().total_queued.fetch_add(1, Relaxed);
    }

    /// A worker took a connection that had waited `wait` in the queue.
    pub fn dequeued(&self, wait: Duration) {
        let _ = self
            .queued_now
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
        let us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.last_queue_wait_us.store(us, Relaxed);
        self.max_queue_wait_us.fetch_max(us, Relaxed);
    }

    /// A connection was closed for being idle.
    pub fn idle_kick(&self) {
        self.counters().idle_kicks.fetch_add(1, Relaxed);
    }

    /// Serving a connection panicked and it was closed.
    pub fn connection_panicked(&self) {
        self.counters().connection_panics.fetch_add(1, Relaxed);
    }

    /// Bytes a front-end read or wrote outside a session (e.g. a rejection line).
    pub fn add_bytes_written(&self, n: u64) {
        self.counters().bytes_written.fetch_add(n, Relaxed);
    }

    /// Seconds since the stats were created (server start).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Connections waiting in the queue now.
    pub fn queued_connections(&self) -> u64 {
        self.queued_now.load(Relaxed)
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }
}

/// What `stats` needs besides the counters.
pub(crate) struct StatsContext<'a> {
    pub stats: &'a ServerStats,
    pub engine: engine::EngineStats,
    pub frontend: FrontendInfo,
    pub max_connections: usize,
}

/// Appends the `stats` reply: `STAT <name> <value>` lines then `END`.
pub(crate) fn write_general(ctx: &StatsContext<'_>, out: &mut Output) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (user, system) = rusage();
    let mut stat = |name: &str, value: &dyn std::fmt::Display| encode_stat(out, name, value);
    stat("pid", &std::process::id());
    stat("uptime", &ctx.stats.uptime().as_secs());
    stat("time", &now);
    stat("version", &crate::VERSION);
    stat("server_version", &crate::SERVER_VERSION);
    stat("pointer_size", &(usize::BITS));
    stat(
        "rusage_user",
        &format_args!("{}.{:06}", user.as_secs(), user.subsec_micros()),
    );
    stat(
        "rusage_system",
        &format_args!("{}.{:06}", system.as_secs(), system.subsec_micros()),
    );
    stat("max_connections", &ctx.max_connections);
    ctx.stats
        .totals()
        .for_each(|name, value| stat(name, &value));
    stat("limit_maxbytes", &0);
    stat("threads", &ctx.frontend.threads);
    stat("curr_items", &ctx.engine.keys);
    stat("bytes", &ctx.engine.live_bytes);
    stat("evictions", &0);
    stat("engine_keys", &ctx.engine.keys);
    stat("engine_files", &ctx.engine.files);
    stat("engine_live_bytes", &ctx.engine.live_bytes);
    stat("engine_dead_bytes", &ctx.engine.dead_bytes);
    stat("engine_bytes_written", &ctx.engine.bytes_written);
    stat("engine_syncs", &ctx.engine.syncs);
    stat("engine_bad_records", &ctx.engine.bad_records);
    stat("engine_compactions", &ctx.engine.compactions);
    stat("engine_index_bytes", &ctx.engine.index_bytes);
    stat("frontend_model", &ctx.frontend.model);
    stat("frontend_threads", &ctx.frontend.threads);
    stat("queued_connections", &ctx.stats.queued_connections());
    stat(
        "last_queue_wait_us",
        &ctx.stats.last_queue_wait_us.load(Relaxed),
    );
    stat(
        "max_queue_wait_us",
        &ctx.stats.max_queue_wait_us.load(Relaxed),
    );
    Response::End.encode(out);
}

/// The settings `stats settings` reports.
pub(crate) struct Settings<'a> {
    pub config: &'a crate::ServiceConfig,
    pub frontend: FrontendInfo,
    pub verbosity: u32,
}

/// Appends the `stats settings` reply.
pub(crate) fn write_settings(s: &Settings<'_>, out: &mut Output) {
    let c = s.config;
    let mut stat = |name: &str, value: &dyn std::fmt::Display| encode_stat(out, name, value);
    stat("maxbytes", &0);
    stat("maxconns", &c.max_connections);
    stat("tcpport", &c.listen.port());
    stat("udpport", &0);
    stat("inter", &c.listen.ip());
    stat("verbosity", &s.verbosity);
    stat("evictions", &"off");
    stat("num_threads", &s.frontend.threads);
    stat("cas_enabled", &"yes");
    stat("item_size_max", &c.max_item_size);
    stat("idle_timeout", &c.idle_timeout.map_or(0, |d| d.as_secs()));
    stat("write_timeout", &c.write_timeout.map_or(0, |d| d.as_secs()));
    stat("flush_enabled", &"yes");
    stat("durability", &c.durability);
    stat("compression", &c.compression);
    stat("frontend_model", &s.frontend.model);
    Response::End.encode(out);
}

/// User and system CPU time of this process.
fn rusage() -> (Duration, Duration) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given,
    // which points at a zeroed, properly aligned `rusage` we own.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    // SAFETY: getrusage returned 0, so it filled the struct (and it was
    // zero-initialised before, which is a valid `rusage` anyway).
    #[allow(unsafe_code)]
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_gauges() {
        let s = ServerStats::new();
        s.connection_opened();
        s.connection_opened();
        assert_eq!(s.totals().curr_connections, 2);
        // Closed on other threads (other shards): the sum is still right.
        std::thread::scope(|scope| {
            scope.spawn(|| s.connection_closed());
            scope.spawn(|| s.connection_closed());
        });
        assert_eq!(s.totals().curr_connections, 0);
        s.connection_closed();
        assert_eq!(s.totals().curr_connections, 0, "never shown below zero");
        assert_eq!(s.totals().total_connections, 2);
        s.connection_rejected();
        assert_eq!(s.totals().rejected_connections, 1);
    }

    #[test]
    fn queue_waits() {
        let s = ServerStats::new();
        s.queued();
        s.queued();
        assert_eq!(s.queued_connections(), 2);
        s.dequeued(Duration::from_micros(700));
        s.dequeued(Duration::from_micros(300));
        assert_eq!(s.queued_connections(), 0);
        assert_eq!(s.last_queue_wait_us.load(Relaxed), 300);
        assert_eq!(s.max_queue_wait_us.load(Relaxed), 700);
        assert_eq!(s.totals().total_queued, 2);
    }

    #[test]
    fn rusage_moves() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let (user, system) = rusage();
        assert!(user + system > Duration::ZERO);
    }
}
