//! What a client thread records of each request that settles: answered,
//! answered with an error, given up (timeout, lost connection), still
//! unanswered when the run ends, or part of the preload.
//!
//! A request counts in the measurement when it was intended in the window,
//! or was sent in the warm-up and still waited when the window opened (a
//! request a server leaves unanswered from the warm-up on is the one that
//! matters most); the latter is counted as a measured request when it
//! settles. One that gets no reply is a censored sample at how long it had
//! waited (see `record`).

use std::time::Instant;

use crate::config::OpKind;
use crate::record::{Counters, Histograms, VerifyFailure};

use super::matcher::{Ending, Pending};
use super::pacing::Schedule;
use super::IntervalReport;

/// Verify failures a thread reports with their key (all are counted).
const MAX_FAILURES_REPORTED: usize = 100;

/// How a request that got no reply is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LostAs {
    Timeout,
    Unfinished,
}

/// A thread's results so far: the interval being recorded and the preload.
#[derive(Debug)]
pub(super) struct Tally {
    /// The interval being recorded.
    pub(super) cur: IntervalReport,
    /// Preload keys set.
    pub(super) preload_done: u64,
    /// Preload keys that could not be set.
    pub(super) preload_failed: u64,
    /// Wrong values reported with their key so far, over the whole run.
    failures_reported: usize,
}

impl Tally {
    /// Nothing recorded yet, for thread `thread` of a run against `nservers`.
    pub(super) fn new(thread: usize, nservers: usize) -> Tally {
        Tally {
            cur: IntervalReport {
                thread,
                index: i64::MIN,
                hists: Histograms::default(),
                counters: Counters::default(),
                warmup_completed: 0,
                failures: Vec::new(),
                server_requests: vec![0; nservers],
            },
            preload_done: 0,
            preload_failed: 0,
            failures_reported: 0,
        }
    }

    /// Hands over the current interval and starts interval `next`.
    pub(super) fn take_interval(&mut self, next: i64) -> IntervalReport {
        let nservers = self.cur.server_requests.len();
        let cur = &mut self.cur;
        IntervalReport {
            thread: cur.thread,
            index: std::mem::replace(&mut cur.index, next),
            hists: std::mem::take(&mut cur.hists),
            counters: std::mem::take(&mut cur.counters),
            warmup_completed: std::mem::take(&mut cur.warmup_completed),
            failures: std::mem::take(&mut cur.failures),
            server_requests: std::mem::replace(&mut cur.server_requests, vec![0; nservers]),
        }
    }

    /// A value failed verification. Counted in every phase: a wrong value
    /// is never ignored.
    pub(super) fn wrong_value(&mut self, failure: VerifyFailure) {
        self.cur.counters.errors.verify_failures += 1;
        tracing::warn!(key = %failure.key, "wrong value: {}", failure.detail);
        if self.failures_reported < MAX_FAILURES_REPORTED {
            self.failures_reported += 1;
            self.cur.failures.push(failure);
        }
    }

    /// Whether request `p`, settled (answered or given up) at `now`, counts
    /// in the measurement; a request carried over from the warm-up is
    /// counted as sent here.
    fn counted(&mut self, p: &Pending, now: Instant, sched: &Schedule) -> bool {
        if p.preload {
            return false;
        }
        if p.measured {
            return true;
        }
        let carried = now >= sched.measure_start;
        if carried {
            self.cur.counters.op(p.kind).requests += 1;
        }
        carried
    }

    /// Records a request answered at `now`.
    pub(super) fn answered(&mut self, p: &Pending, ending: Ending, now: Instant, sched: &Schedule) {
        if p.preload {
            if ending == Ending::Hit {
                self.preload_done += 1;
            } else {
                self.preload_failed += 1;
            }
            return;
        }
        if !self.counted(p, now, sched) {
            self.cur.warmup_completed += 1;
            return;
        }
        let cur = &mut self.cur;
        let oc = cur.counters.op(p.kind);
        match ending {
            Ending::Hit | Ending::Miss => {
                oc.completed += 1;
                if now >= sched.end {
                    oc.drained += 1;
                }
                match p.kind {
                    OpKind::Get | OpKind::Mget => {
                        let asked = p.keys.as_slice().len() as u64;
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

    /// Records a request given up at `now` without a reply, because its
    /// connection was closed (`how` says why).
    pub(super) fn given_up(&mut self, p: &Pending, how: LostAs, now: Instant, sched: &Schedule) {
        if p.preload {
            self.preload_failed += 1;
        } else if !self.counted(p, now, sched) {
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
        if how == LostAs::Timeout && !p.preload && now >= sched.measure_start {
            self.cur.counters.errors.timeouts += 1;
        }
    }

    /// Records a request still in flight when the run stopped at `stop`.
    pub(super) fn unanswered_at_end(&mut self, p: &Pending, stop: Instant, sched: &Schedule) {
        if p.preload {
            // Already counted in the preload's `failed`.
            return;
        }
        self.cur.counters.op(p.kind).unanswered_at_end += 1;
        if self.counted(p, stop, sched) {
            self.cur.counters.op(p.kind).unfinished += 1;
            self.cur
                .hists
                .record_censored(p.kind, stop.saturating_duration_since(p.intended));
        }
    }
}
