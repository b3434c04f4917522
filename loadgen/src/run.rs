//! `loadgen run`: starts the client threads, merges their per-second
//! reports, prints the live line, and writes the output directory.
//!
//! The coordinator owns the results: every thread sends one
//! [`IntervalReport`] per second; the coordinator adds the reports of each
//! second across threads, writes that second to the `.hlog`, prints it, and
//! adds it to the totals. So the totals in `summary.json` are exactly the sum
//! of the intervals in the log, and `loadgen merge` of one log reproduces them.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, unbounded, RecvTimeoutError};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::config::{Distribution, OpKind, RunConfig};
use crate::driver::{run_thread, IntervalReport, Report, Schedule, Shared};
use crate::hlog;
use crate::ketama::Ketama;
use crate::output::{summary_with_files, write_outputs};
use crate::record::{new_histogram, Counters, Histograms, VerifyFailure};
use crate::summary::{ClientCpu, Measured, PreloadSummary, ServerRequests, Summary};
use crate::workload::{KeySpace, Values};
use crate::Error;

/// How long the coordinator waits past the end for threads to finish.
const FINISH_GRACE: Duration = Duration::from_secs(5);

/// Verify failures kept with their keys in `summary.json`.
const MAX_FAILURES_KEPT: usize = 100;

/// The result of a run.
#[derive(Debug)]
pub struct RunOutcome {
    /// What was measured (also in `summary.json` when `--out` was given).
    pub summary: Summary,
    /// Why the run counts as failed (exit status 3), if it does.
    pub failure: Option<String>,
}

/// Resolves every `--server` and checks that it accepts a connection.
fn resolve_and_probe(cfg: &RunConfig) -> Result<Vec<SocketAddr>, Error> {
    let probe_timeout = cfg.timeout.0.min(Duration::from_secs(2));
    cfg.servers
        .iter()
        .map(|s| {
            let addr = s
                .to_socket_addrs()
                .map_err(|e| Error::Connect {
                    addr: s.clone(),
                    source: e,
                })?
                .next()
                .ok_or_else(|| Error::Config(format!("--server {s}: no address")))?;
            TcpStream::connect_timeout(&addr, probe_timeout).map_err(|e| Error::Connect {
                addr: s.clone(),
                source: e,
            })?;
            Ok(addr)
        })
        .collect()
}

/// Adds up the reports of one interval across threads.
#[derive(Default)]
struct Pending {
    reports: usize,
    hists: Histograms,
    counters: Counters,
    warmup_completed: u64,
    server_requests: Vec<u64>,
}

/// Runs the load and returns its summary; writes the output directory if asked.
pub fn run(cfg: RunConfig) -> Result<RunOutcome, Error> {
    cfg.validate()?;
    let addrs = resolve_and_probe(&cfg)?;
    let out_dir = cfg.out.clone();
    if let Some(dir) = &out_dir {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    let shared = Arc::new(Shared {
        keyspace: KeySpace {
            keys: cfg.keys,
            key_size: cfg.key_size,
            servers: addrs.len(),
            ketama: (cfg.distribution == Distribution::Ketama)
                .then(|| Arc::new(Ketama::new(&cfg.servers))),
        },
        values: Values::new(&cfg),
        addrs,
        cfg: cfg.clone(),
    });
    let threads = cfg.threads;
    let (tx, rx) = unbounded::<Report>();
    let mut start_txs = Vec::new();
    let mut handles = Vec::new();
    for t in 0..threads {
        let ids: Vec<usize> = (t..cfg.connections).step_by(threads).collect();
        let (stx, srx) = bounded::<Schedule>(1);
        start_txs.push(stx);
        let shared = Arc::clone(&shared);
        let tx = tx.clone();
        let core = (!cfg.pin.is_empty()).then(|| cfg.pin[t % cfg.pin.len()]);
        let h = std::thread::Builder::new()
            .name(format!("loadgen-client-{t}"))
            .spawn(move || {
                if let Some(id) = core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                        tracing::warn!(thread = t, core = id, "could not pin thread");
                    }
                }
                let panic_tx = tx.clone();
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_thread(shared, t, ids, tx, srx)
                }));
                if r.is_err() {
                    let _ = panic_tx.send(Report::Failed(format!("thread {t} panicked")));
                }
            })
            .map_err(|e| Error::Thread(format!("spawn: {e}")))?;
        handles.push(h);
    }
    drop(tx);

    // Preload: wait for every thread (each bounds its own preload).
    let preload_started = Instant::now();
    let mut preload = PreloadSummary::default();
    for _ in 0..threads {
        match rx.recv() {
            Ok(Report::Preloaded { keys, failed }) => {
                preload.keys += keys;
                preload.failed += failed;
            }
            Ok(Report::Failed(e)) => return Err(Error::Thread(e)),
            Ok(_) => return Err(Error::Thread("report out of order".into())),
            Err(_) => return Err(Error::Thread("client threads ended early".into())),
        }
    }
    preload.seconds = preload_started.elapsed().as_secs_f64();
    if cfg.preload {
        tracing::info!(
            keys = preload.keys,
            failed = preload.failed,
            "preloaded in {:.2} s",
            preload.seconds
        );
        if !cfg.quiet {
            eprintln!(
                "preload: {} keys set, {} failed, {:.2} s",
                preload.keys, preload.failed, preload.seconds
            );
        }
    }

    let cpu_before = ClientCpu::now();
    let run_start = Instant::now() + Duration::from_millis(10);
    let measure_start = run_start + cfg.warmup.0;
    let end = measure_start + cfg.duration.0;
    let measure_start_wall = SystemTime::now() + (measure_start - Instant::now());
    for stx in &start_txs {
        let _ = stx.send(Schedule {
            run_start,
            measure_start,
            end,
        });
    }

    let kinds: Vec<OpKind> = OpKind::ALL
        .into_iter()
        .filter(|k| cfg.mix.weights[*k as usize] > 0)
        .collect();
    let mut log_file: Box<dyn Write> = match &out_dir {
        Some(dir) => {
            let p = dir.join("latency.hlog");
            Box::new(BufWriter::new(File::create(&p).map_err(|e| io_err(&p, e))?))
        }
        None => Box::new(std::io::sink()),
    };
    let mut serializer = V2DeflateSerializer::new();
    let mut log = hlog::begin(&mut log_file, &mut serializer, measure_start_wall)?;

    let mut totals = Histograms::default();
    let mut counters = Counters::default();
    let mut warmup_completed = 0u64;
    let mut server_requests = vec![0u64; cfg.servers.len()];
    let mut failures: Vec<VerifyFailure> = Vec::new();
    let mut pending: BTreeMap<i64, Pending> = BTreeMap::new();
    let mut done = 0usize;
    let mut failed_thread: Option<String> = None;
    // A request still waiting when the window opened counts as measured
    // when it settles, and one that settles right at the boundary can land
    // in a thread's last warm-up interval: carry such samples into the
    // first measured interval, so that the log and the totals hold them.
    let mut carried = Histograms::default();
    let mut finish = |index: i64, mut p: Pending, log: &mut hlog::LogWriter<'_, '_>| {
        let mut length = Duration::from_secs(1);
        if index < 0 {
            carried.add(&p.hists);
        } else {
            if index == 0 {
                p.hists.add(&carried);
            }
            totals.add(&p.hists);
            let offset = Duration::from_secs(index as u64);
            length = cfg.duration.0.saturating_sub(offset).min(length);
            hlog::write_interval(log, &p.hists, &kinds, offset, length)?;
        }
        counters.add(&p.counters);
        warmup_completed += p.warmup_completed;
        for (a, b) in server_requests.iter_mut().zip(&p.server_requests) {
            *a += b;
        }
        if !cfg.quiet {
            eprintln!("{}", live_line(index, &p, length));
        }
        Ok::<(), Error>(())
    };
    while done < threads {
        let deadline = end + FINISH_GRACE;
        let wait = deadline.saturating_duration_since(Instant::now());
        let report = match rx.recv_timeout(wait) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                return Err(Error::Thread(
                    "client threads did not stop at the end".into(),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                failed_thread.get_or_insert_with(|| "client threads ended early".into());
                break;
            }
        };
        let r: IntervalReport = match report {
            Report::Interval(r) => r,
            Report::Done(r) => {
                done += 1;
                r
            }
            Report::Failed(e) => {
                failed_thread = Some(e);
                break;
            }
            Report::Preloaded { .. } => continue,
        };
        for f in r.failures {
            if failures.len() < MAX_FAILURES_KEPT {
                failures.push(f);
            }
        }
        let p = pending.entry(r.index).or_default();
        p.reports += 1;
        p.hists.add(&r.hists);
        p.counters.add(&r.counters);
        p.warmup_completed += r.warmup_completed;
        p.server_requests.resize(r.server_requests.len(), 0);
        for (a, b) in p.server_requests.iter_mut().zip(&r.server_requests) {
            *a += b;
        }
        // Intervals are complete, in order, once every thread has sent them.
        while let Some(entry) = pending.first_entry() {
            if entry.get().reports < threads {
                break;
            }
            let (index, p) = entry.remove_entry();
            finish(index, p, &mut log)?;
        }
    }
    for (index, p) in std::mem::take(&mut pending) {
        finish(index, p, &mut log)?;
    }
    drop(log);
    log_file
        .flush()
        .map_err(|e| Error::Output(format!("latency.hlog: {e}")))?;
    for h in handles {
        let _ = h.join();
    }
    let client_cpu = ClientCpu {
        // The cores its threads could run on: the pinned ones, or as many as
        // it has threads.
        cores: if cfg.pin.is_empty() {
            threads.min(std::thread::available_parallelism().map_or(1, |n| n.get()))
        } else {
            let mut pins = cfg.pin.clone();
            pins.sort_unstable();
            pins.dedup();
            pins.len().min(threads)
        },
        ..ClientCpu::now().since(&cpu_before, run_start.elapsed())
    };
    if let Some(e) = failed_thread {
        return Err(Error::Thread(e));
    }

    let duration_s = cfg.duration.0.as_secs_f64();
    let mut summary = Summary::measured(Measured {
        kind: "run",
        mode: if cfg.rate.is_some() { "open" } else { "closed" },
        started_at_unix_s: unix_s(measure_start_wall),
        duration_s,
        hists: &totals,
        counters: &counters,
        verify_failures: failures,
        warmup_completed,
    });
    summary.config = serde_json::to_value(&cfg).ok();
    summary.client_cpu = Some(client_cpu);
    summary.servers = cfg
        .servers
        .iter()
        .zip(&server_requests)
        .map(|(server, &requests)| ServerRequests {
            server: server.clone(),
            requests,
        })
        .collect();
    summary.preload = cfg.preload.then_some(preload);
    if let Some(dir) = &out_dir {
        write_outputs(
            dir,
            summary_with_files(&mut summary, &kinds, true),
            &totals,
            &kinds,
        )?;
    }
    let failure = failure_of(&summary, cfg.max_errors, cfg.verify);
    Ok(RunOutcome { summary, failure })
}

/// Why a finished run should exit non-zero.
pub fn failure_of(s: &Summary, max_errors: Option<u64>, verify: bool) -> Option<String> {
    if verify && s.errors.verify_failures > 0 {
        return Some(format!(
            "{} values failed verification",
            s.errors.verify_failures
        ));
    }
    match max_errors {
        Some(max) if s.errors_total > max => Some(format!(
            "{} errors exceed --max-errors {max}",
            s.errors_total
        )),
        _ => None,
    }
}

pub(crate) fn io_err(p: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(p).display().to_string(),
        source,
    }
}

fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// The line printed on stderr every second.
/// `length`: how long the interval was (the last one may be shorter than 1 s).
fn live_line(index: i64, p: &Pending, length: Duration) -> String {
    let per_s = |n: u64| {
        let secs = length.as_secs_f64();
        if secs > 0.0 {
            (n as f64 / secs).round() as u64
        } else {
            n
        }
    };
    let mut all = new_histogram();
    for h in &p.hists.ops {
        let _ = all.add(&h.latency);
    }
    let e = &p.counters.errors;
    if index < 0 {
        format!(
            "[warmup] {:>10} ops/s  errors {}  timeouts {}",
            per_s(p.warmup_completed),
            e.total(),
            e.timeouts
        )
    } else {
        let p99 = if all.is_empty() {
            "-".to_string()
        } else {
            format!("{} us", all.value_at_quantile(0.99))
        };
        format!(
            "[{:>5}s] {:>10} ops/s  p99 {:>10}  errors {}  timeouts {}",
            index + 1,
            per_s(all.len()),
            p99,
            e.total(),
            e.timeouts
        )
    }
}
