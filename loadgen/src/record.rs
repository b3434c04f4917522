//! What a client thread records: HdrHistograms per operation kind (corrected
//! latency of every request, of the answered ones, service time, and the
//! censored samples) and plain counters.
//!
//! # Histogram bounds
//!
//! Values are **microseconds**, tracked from [`LOWEST_US`] (1 us) to
//! [`HIGHEST_US`] (60 s) with [`SIGFIG`] (3) significant digits: every value is
//! kept within 0.1 % of its true value. A duration is rounded *up* to whole
//! microseconds (so a sub-microsecond reply records as 1 us, never 0); one above
//! 60 s is recorded as 60 s, which only a `--timeout` above 60 s can produce.
//!
//! *Latency* is measured from a request's intended send time: in the open loop
//! its slot in the fixed-rate schedule, in the closed loop the moment its slot in
//! the pipeline became free (which is when it is sent). *Service time* is
//! measured from when the request was handed to the socket. In the closed loop
//! the two coincide; in the open loop their difference is the queueing that a
//! stalled server imposed on requests which were due but could not be sent.
//!
//! # Every request counts
//!
//! The headline latency (`latency`) covers every request that was meant to
//! be sent in the measured window, not only the answered ones: leaving out
//! the requests a server never answers is coordinated omission at the level
//! of connections, the error the open loop corrects at the level of
//! requests. An answered request (a value, a miss or an error reply) is
//! recorded at its latency. One that got no reply is a *censored* sample:
//! recorded at how long it had waited when it was given up (its timeout
//! fired, its connection was lost, or the run ended), since its true latency
//! is at least that. Censored samples also go into `censored`, so that a
//! percentile can tell whether it is exact or only a lower bound (see
//! `summary::Stats`). `answered` keeps the answered-only distribution.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::config::OpKind;

/// Lowest discernible value: 1 microsecond.
pub const LOWEST_US: u64 = 1;
/// Highest trackable value: 60 seconds, in microseconds.
pub const HIGHEST_US: u64 = 60_000_000;
/// Significant decimal digits kept.
pub const SIGFIG: u8 = 3;

/// A histogram with the documented bounds.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy the crate's preconditions.
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG)
        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
}

/// A duration in whole microseconds, rounded up.
#[inline]
pub fn micros_ceil(d: Duration) -> u64 {
    let nanos = d.as_nanos();
    u64::try_from(nanos.div_ceil(1000)).unwrap_or(u64::MAX)
}

/// The histograms of one operation kind.
#[derive(Debug, Clone)]
pub struct OpHistograms {
    /// Every measured request, from the intended send time: answered ones at
    /// their latency, unanswered ones (censored) at how long they waited.
    pub latency: Histogram<u64>,
    /// Requests answered with the expected kind of reply, from the intended
    /// send time.
    pub answered: Histogram<u64>,
    /// Answered requests, from the actual send time.
    pub service: Histogram<u64>,
    /// The censored samples of `latency` alone.
    pub censored: Histogram<u64>,
}

impl OpHistograms {
    /// Empty histograms.
    pub fn new() -> OpHistograms {
        OpHistograms {
            latency: new_histogram(),
            answered: new_histogram(),
            service: new_histogram(),
            censored: new_histogram(),
        }
    }

    /// The histogram of `m`.
    pub fn get(&self, m: Measure) -> &Histogram<u64> {
        match m {
            Measure::Latency => &self.latency,
            Measure::Answered => &self.answered,
            Measure::Service => &self.service,
            Measure::Censored => &self.censored,
        }
    }

    /// The histogram of `m`, to record into.
    pub fn get_mut(&mut self, m: Measure) -> &mut Histogram<u64> {
        match m {
            Measure::Latency => &mut self.latency,
            Measure::Answered => &mut self.answered,
            Measure::Service => &mut self.service,
            Measure::Censored => &mut self.censored,
        }
    }
}

/// Which histogram of an operation: the names of the `.hgrm` files and of
/// the interval log's tags follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Every request, corrected latency (censored samples included).
    Latency,
    /// Answered requests only, corrected latency.
    Answered,
    /// Answered requests, service time (from the actual send time).
    Service,
    /// The censored samples alone.
    Censored,
}

impl Measure {
    /// Every measure, in file and log order.
    pub const ALL: [Measure; 4] = [
        Measure::Latency,
        Measure::Answered,
        Measure::Service,
        Measure::Censored,
    ];

    /// The suffix after the operation's name: `get`, `get-answered`,
    /// `get-service`, `get-censored`.
    pub fn suffix(self) -> &'static str {
        match self {
            Measure::Latency => "",
            Measure::Answered => "-answered",
            Measure::Service => "-service",
            Measure::Censored => "-censored",
        }
    }
}

impl Default for OpHistograms {
    fn default() -> Self {
        OpHistograms::new()
    }
}

/// One [`OpHistograms`] per [`OpKind`], indexed by `kind as usize`.
#[derive(Debug, Clone, Default)]
pub struct Histograms {
    /// Per operation kind.
    pub ops: [OpHistograms; 4],
}

impl Histograms {
    /// Records one completed request.
    #[inline]
    pub fn record(&mut self, kind: OpKind, latency: Duration, service: Duration) {
        let h = &mut self.ops[kind as usize];
        let us = micros_ceil(latency);
        h.latency.saturating_record(us);
        h.answered.saturating_record(us);
        h.service.saturating_record(micros_ceil(service));
    }

    /// Records a request answered with an error reply: it was answered, so
    /// its latency is exact, but it is not a completed request.
    #[inline]
    pub fn record_error(&mut self, kind: OpKind, latency: Duration) {
        self.ops[kind as usize]
            .latency
            .saturating_record(micros_ceil(latency));
    }

    /// Records a request that never got a reply and was given up after
    /// `waited` (from its intended send time): a censored sample.
    #[inline]
    pub fn record_censored(&mut self, kind: OpKind, waited: Duration) {
        let h = &mut self.ops[kind as usize];
        let us = micros_ceil(waited);
        h.latency.saturating_record(us);
        h.censored.saturating_record(us);
    }

    /// Adds another set (exact: histograms with equal bounds add bucket by bucket).
    pub fn add(&mut self, other: &Histograms) {
        for (a, b) in self.ops.iter_mut().zip(other.ops.iter()) {
            for m in Measure::ALL {
                // Same bounds on both sides, so addition cannot fail.
                let _ = a.get_mut(m).add(b.get(m));
            }
        }
    }

    /// Empties every histogram, keeping its allocation.
    pub fn reset(&mut self) {
        for h in &mut self.ops {
            for m in Measure::ALL {
                h.get_mut(m).reset();
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.iter().all(|h| h.latency.is_empty())
    }
}

/// Counters of one operation kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounters {
    /// Requests sent (whole request handed to the socket).
    pub requests: u64,
    /// Requests answered with the expected kind of reply (also the histogram count).
    pub completed: u64,
    /// Requests answered with ERROR, CLIENT_ERROR, SERVER_ERROR or an unexpected reply.
    pub errors: u64,
    /// Requests without a reply within `--timeout`.
    pub timeouts: u64,
    /// Requests lost when their connection closed, or still in flight at the end.
    pub unfinished: u64,
    /// Measured requests answered after the measured window closed, while
    /// the run waited for the replies still in flight: in `completed` and
    /// the histograms, not in the throughput.
    #[serde(default)]
    pub drained: u64,
    /// Requests of any phase (warm-up or measured) still without a reply when
    /// the run ended. The measured ones are also in `unfinished`; this one
    /// also shows what the warm-up sent and never got an answer to.
    #[serde(default)]
    pub unanswered_at_end: u64,
    /// Requests sent during the warm-up that timed out or were lost with
    /// their connection (measured ones count as `timeouts` / `unfinished`).
    #[serde(default)]
    pub warmup_lost: u64,
    /// get/mget: keys found. delete: DELETED. set: STORED.
    pub hits: u64,
    /// get/mget: keys not found. delete: NOT_FOUND. set: NOT_STORED.
    pub misses: u64,
}

impl OpCounters {
    /// Adds another set of counters.
    pub fn add(&mut self, o: &OpCounters) {
        self.requests += o.requests;
        self.completed += o.completed;
        self.errors += o.errors;
        self.timeouts += o.timeouts;
        self.unfinished += o.unfinished;
        self.drained += o.drained;
        self.unanswered_at_end += o.unanswered_at_end;
        self.warmup_lost += o.warmup_lost;
        self.hits += o.hits;
        self.misses += o.misses;
    }
}

/// Errors by kind, over all operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// `SERVER_ERROR ...` replies.
    pub server_error: u64,
    /// `CLIENT_ERROR ...` replies.
    pub client_error: u64,
    /// `ERROR` replies.
    pub error: u64,
    /// Replies that do not parse or do not fit the request (the connection is reopened).
    pub bad_reply: u64,
    /// Requests without a reply within `--timeout` (the connection is reopened).
    pub timeouts: u64,
    /// Values that failed `--verify`.
    pub verify_failures: u64,
    /// Connections the server closed or reset.
    pub connection_closed: u64,
    /// Connection attempts that failed.
    pub connect_failed: u64,
    /// Connections reopened after a close, a timeout or a bad reply.
    pub reconnects: u64,
}

impl ErrorCounts {
    fn add(&mut self, o: &ErrorCounts) {
        self.server_error += o.server_error;
        self.client_error += o.client_error;
        self.error += o.error;
        self.bad_reply += o.bad_reply;
        self.timeouts += o.timeouts;
        self.verify_failures += o.verify_failures;
        self.connection_closed += o.connection_closed;
        self.connect_failed += o.connect_failed;
        self.reconnects += o.reconnects;
    }

    /// What `--max-errors` is compared with: every failed request or
    /// connection (reconnects are a consequence, not counted again).
    pub fn total(&self) -> u64 {
        self.server_error
            + self.client_error
            + self.error
            + self.bad_reply
            + self.timeouts
            + self.verify_failures
            + self.connection_closed
            + self.connect_failed
    }
}

/// All counters of a thread or a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Per operation kind, indexed by `kind as usize`.
    pub ops: [OpCounters; 4],
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// Open loop: requests due before the end that never found a free slot
    /// (their kind was never drawn, so they are not in any operation's counts).
    pub unsent: u64,
    /// Connections (one per client and server) that were sent requests during
    /// the load phase and never received a single reply in it.
    pub connections_never_answered: u64,
}

impl Counters {
    /// Adds another set of counters.
    pub fn add(&mut self, o: &Counters) {
        for (a, b) in self.ops.iter_mut().zip(o.ops.iter()) {
            a.add(b);
        }
        self.errors.add(&o.errors);
        self.unsent += o.unsent;
        self.connections_never_answered += o.connections_never_answered;
    }

    /// Per-kind counters.
    #[inline]
    pub fn op(&mut self, kind: OpKind) -> &mut OpCounters {
        &mut self.ops[kind as usize]
    }
}

/// A value that failed verification, with its key: never silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyFailure {
    /// The key the value was read under.
    pub key: String,
    /// The operation that read it (get or mget).
    pub op: String,
    /// What was wrong.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_up() {
        assert_eq!(micros_ceil(Duration::from_nanos(1)), 1);
        assert_eq!(micros_ceil(Duration::from_nanos(1000)), 1);
        assert_eq!(micros_ceil(Duration::from_nanos(1001)), 2);
        assert_eq!(micros_ceil(Duration::ZERO), 0);
    }

    #[test]
    fn record_saturates_at_the_upper_bound() {
        let mut h = Histograms::default();
        h.record(
            OpKind::Get,
            Duration::from_secs(120),
            Duration::from_micros(5),
        );
        let g = &h.ops[OpKind::Get as usize];
        assert!(g.latency.equivalent(g.latency.max(), HIGHEST_US));
        assert_eq!(g.service.max(), 5);
    }

    #[test]
    fn histograms_add_exactly() {
        let mut a = Histograms::default();
        let mut b = Histograms::default();
        a.record(
            OpKind::Set,
            Duration::from_micros(10),
            Duration::from_micros(10),
        );
        b.record(
            OpKind::Set,
            Duration::from_micros(20),
            Duration::from_micros(20),
        );
        a.add(&b);
        assert_eq!(a.ops[OpKind::Set as usize].latency.len(), 2);
        assert_eq!(a.ops[OpKind::Set as usize].latency.max(), 20);
        a.reset();
        assert!(a.is_empty());
    }
}
