//! `merge` of interval logs equals the histogram of the combined samples.

mod common;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::V2DeflateSerializer;
use loadgen::config::{OpKind, RunConfig};
use loadgen::hgrm::{write_percentile_distribution, HGRM_SCALE};
use loadgen::record::{Histograms, HIGHEST_US};
use loadgen::rng::Rng;
use loadgen::summary::Stats;

/// Records one sample: answered (latency, service), or censored when the
/// service time is 0 (a request that got no reply, given up after `latency`).
fn record(h: &mut Histograms, (l, s): (u64, u64)) {
    if s == 0 {
        h.record_censored(OpKind::Get, Duration::from_micros(l));
    } else {
        h.record(
            OpKind::Get,
            Duration::from_micros(l),
            Duration::from_micros(s),
        );
    }
}

/// Writes `samples` (latency, service) as an interval log, one interval per
/// `per_interval` samples, starting at `start`.
fn write_log(path: &PathBuf, start: SystemTime, samples: &[(u64, u64)], per_interval: usize) {
    let mut file: Box<dyn std::io::Write> = Box::new(std::fs::File::create(path).unwrap());
    let mut ser = V2DeflateSerializer::new();
    let mut log = loadgen::hlog::begin(&mut file, &mut ser, start).unwrap();
    for (i, chunk) in samples.chunks(per_interval).enumerate() {
        let mut h = Histograms::default();
        for &sample in chunk {
            record(&mut h, sample);
        }
        loadgen::hlog::write_interval(
            &mut log,
            &h,
            &[OpKind::Get],
            Duration::from_secs(i as u64),
            Duration::from_secs(1),
        )
        .unwrap();
    }
}

#[test]
fn merge_of_two_logs_equals_the_combined_histogram() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(9, 0);
    // Heavy-tailed samples, so the high percentiles are not trivial.
    let mut draw = |n: usize| -> Vec<(u64, u64)> {
        (0..n)
            .map(|_| {
                let base = 50 + rng.below(500);
                let tail = if rng.below(100) == 0 {
                    rng.below(2_000_000)
                } else {
                    0
                };
                let l = (base + tail).min(HIGHEST_US);
                // One in 400 got no reply and was given up after 1 s.
                if rng.below(400) == 0 {
                    (1_000_000, 0)
                } else {
                    (l, base)
                }
            })
            .collect()
    };
    let a = draw(30_000);
    let b = draw(20_000);
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let pa = dir.path().join("a.hlog");
    let pb = dir.path().join("b.hlog");
    write_log(&pa, t0, &a, 7_000);
    // The second run started half a second later and ran 4 s.
    write_log(&pb, t0 + Duration::from_millis(500), &b, 5_000);

    let out = dir.path().join("merged");
    let s = loadgen::merge::merge(&out, &[pa, pb]).unwrap();

    let mut combined = Histograms::default();
    for &sample in a.iter().chain(b.iter()) {
        record(&mut combined, sample);
    }
    let want = &combined.ops[OpKind::Get as usize];
    let get = &s.operations["get"];
    assert_eq!(
        get.latency_us,
        Stats::of_censored(&want.latency, &want.censored)
    );
    assert_eq!(get.latency_answered_us, Stats::of(&want.answered));
    assert_eq!(get.service_time_us, Stats::of(&want.service));
    assert_eq!(get.latency_us.count, 50_000);
    // The censored samples add up exactly, and their marks survive.
    let censored = a.iter().chain(b.iter()).filter(|x| x.1 == 0).count() as u64;
    assert!(censored > 50, "{censored}");
    assert_eq!(get.latency_us.censored, censored);
    assert!(get.latency_us.is_lower_bound("max"));
    assert_eq!(get.latency_answered_us.count, 50_000 - censored);
    assert_eq!(s.kind, "merge");
    // Window: a spans 5 intervals from t0, b spans 4 from t0 + 0.5 s.
    assert!((s.duration_s - 5.0).abs() < 1e-6, "{}", s.duration_s);

    let mut expected = Vec::new();
    write_percentile_distribution(
        &want.latency,
        Some(&want.censored),
        HGRM_SCALE,
        &mut expected,
    )
    .unwrap();
    let written = String::from_utf8(std::fs::read(out.join("get.hgrm")).unwrap()).unwrap();
    assert_eq!(written, String::from_utf8(expected).unwrap());
    assert!(
        written.contains(&format!("#[Censored = {censored:>12}, LowerBoundFrom = ")),
        "{written}"
    );
}

#[test]
fn merge_of_two_concurrent_runs_adds_their_counts() {
    let server = common::TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let addr = server.addr_string();
    let outs: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("run{i}"))).collect();
    let summaries: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = outs
            .iter()
            .enumerate()
            .map(|(i, out)| {
                let seed = (i + 1).to_string();
                let args = [
                    "--quiet",
                    "--server",
                    &addr,
                    "--connections",
                    "2",
                    "--duration",
                    "1s",
                    "--seed",
                    &seed,
                    "--out",
                    out.to_str().unwrap(),
                ];
                let cfg = RunConfig::from_args(&args).unwrap();
                scope.spawn(move || loadgen::run::run(cfg).unwrap())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().summary)
            .collect()
    });
    let merged_dir = dir.path().join("merged");
    let logs: Vec<PathBuf> = outs.iter().map(|o| o.join("latency.hlog")).collect();
    let m = loadgen::merge::merge(&merged_dir, &logs).unwrap();
    for name in ["get", "set"] {
        let sum: u64 = summaries
            .iter()
            .map(|s| s.operations[name].counters.completed)
            .sum();
        assert_eq!(m.operations[name].latency_answered_us.count, sum, "{name}");
        let req: u64 = summaries
            .iter()
            .map(|s| s.operations[name].counters.requests)
            .sum();
        assert_eq!(
            m.operations[name].counters.requests, req,
            "{name}: counters from the summaries"
        );
    }
    let max = summaries
        .iter()
        .map(|s| s.total.latency_us.max)
        .max()
        .unwrap();
    assert_eq!(m.total.latency_us.max, max);
    assert!(merged_dir.join("summary.json").exists());
}
