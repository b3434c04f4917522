//! Runs against the in-process test server: exact counts, verification,
//! timeouts, coordinated-omission correction, exit conditions.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use loadgen::config::RunConfig;
use loadgen::run::run;
use loadgen::summary::Summary;

fn cfg(server: &TestServer, args: &[&str]) -> RunConfig {
    let addr = server.addr_string();
    let mut v = vec!["--quiet", "--server", &addr];
    v.extend_from_slice(args);
    RunConfig::from_args(&v).expect("flags parse")
}

fn op<'a>(s: &'a Summary, name: &str) -> &'a loadgen::summary::OpSummary {
    &s.operations[name]
}

#[test]
fn counts_every_request_exactly() {
    for protocol in ["classic", "meta"] {
        counts_every_request_exactly_in(protocol);
    }
}

fn counts_every_request_exactly_in(protocol: &str) {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let c = cfg(
        &server,
        &[
            "--protocol",
            protocol,
            "--threads",
            "2",
            "--connections",
            "6",
            "--pipeline",
            "2",
            "--duration",
            "1s",
            "--keys",
            "500",
            "--key-size",
            "10",
            "--mix",
            "get=50,set=30,delete=10,mget=10",
            "--mget-keys",
            "4",
            "--out",
            out,
        ],
    );
    let outcome = run(c).unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    assert!(
        server.wait_idle(Duration::from_secs(5)),
        "connections left open"
    );
    let s = &outcome.summary;
    let seen = server.counts();
    for (i, name) in ["get", "set", "delete", "mget"].iter().enumerate() {
        let o = op(s, name);
        assert!(o.counters.requests > 0, "{protocol} {name}: no requests");
        assert_eq!(
            o.counters.requests, seen[i],
            "{protocol} {name}: sent vs seen by the server"
        );
        assert_eq!(
            o.counters.completed + o.counters.errors + o.counters.timeouts + o.counters.unfinished,
            o.counters.requests,
            "{protocol} {name}: every request accounted for"
        );
        // A healthy run: every request answered, no censored sample, and
        // the all-requests latency is the answered one.
        assert_eq!(o.latency_us.count, o.counters.completed);
        assert_eq!(o.latency_us.censored, 0, "{protocol} {name}");
        assert!(o.latency_us.lower_bounds.is_empty(), "{protocol} {name}");
        assert_eq!(o.latency_us, o.latency_answered_us, "{protocol} {name}");
        assert_eq!(o.counters.unfinished, 0, "{protocol} {name}: drained");
        assert_eq!(o.service_time_us.count, o.counters.completed);
    }
    assert_eq!(s.errors_total, 0);
    assert_eq!(
        s.total.counters.completed,
        ["get", "set", "delete", "mget"]
            .iter()
            .map(|n| op(s, n).counters.completed)
            .sum::<u64>()
    );
    // Multi-gets ask for 4 keys each: hits + misses count keys.
    let mget = op(s, "mget");
    assert_eq!(
        mget.counters.hits + mget.counters.misses,
        4 * mget.counters.completed
    );

    // The output directory holds what the summary lists, and the JSON reads back.
    let text = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    let back: Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, s);
    assert_eq!(back.schema, "loadgen-summary/2");
    for f in &s.files {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    let hgrm = std::fs::read_to_string(dir.path().join("get.hgrm")).unwrap();
    assert!(hgrm.contains(&format!(
        "Total count    = {:>12}]",
        op(s, "get").counters.completed
    )));
    assert!(!hgrm.contains("Censored"), "{hgrm}");
    // loadgen's own CPU time over the load phase: two threads busy for 1 s.
    let cpu = s.client_cpu.expect("a run records its CPU time");
    assert!(cpu.user_s + cpu.system_s > 0.0, "{cpu:?}");
    assert!(cpu.wall_s >= 1.0 && cpu.wall_s < 5.0, "{cpu:?}");
    assert_eq!(cpu.cores.max(1), cpu.cores, "{cpu:?}");
    assert!(cpu.utilisation().unwrap() <= 1.05, "{cpu:?}");
}

#[test]
fn verify_reports_a_corrupted_value_with_its_key() {
    for protocol in ["classic", "meta"] {
        verify_reports_a_corrupted_value_with_its_key_in(protocol);
    }
}

fn verify_reports_a_corrupted_value_with_its_key_in(protocol: &str) {
    let server = TestServer::start();
    server.corrupt_key("k0042");
    let c = cfg(
        &server,
        &[
            "--protocol",
            protocol,
            "--connections",
            "2",
            "--duration",
            "1s",
            "--keys",
            "50",
            "--key-size",
            "5",
            "--key-dist",
            "seq",
            "--mix",
            "get=1,mget=1",
            "--mget-keys",
            "3",
            "--preload",
            "--verify",
        ],
    );
    let outcome = run(c).unwrap();
    let s = &outcome.summary;
    assert_eq!(s.preload.as_ref().unwrap().keys, 50);
    assert!(s.errors.verify_failures > 0, "{protocol}");
    assert!(!s.verify_failures.is_empty());
    assert!(
        s.verify_failures.iter().all(|f| f.key == "k0042"),
        "{protocol}: {:?}",
        s.verify_failures
    );
    // Every other key was read and checked without complaint, and a wrong
    // value inside a multi-get did not put the stream out of step.
    for name in ["get", "mget"] {
        let o = op(s, name);
        assert!(o.counters.completed > 50, "{protocol} {name}");
        assert_eq!(o.counters.misses, 0, "{protocol} {name}");
    }
    assert_eq!(s.errors.bad_reply, 0, "{protocol}");
    assert!(outcome.failure.is_some(), "a wrong value fails the run");
}

#[test]
fn a_silent_server_times_out_and_the_run_ends_on_time() {
    let server = TestServer::start();
    let c = cfg(
        &server,
        &[
            "--connections",
            "4",
            "--duration",
            "1500ms",
            "--timeout",
            "200ms",
            "--mix",
            "get=9,set=1",
            "--max-errors",
            "0",
        ],
    );
    let started = Instant::now();
    let silencer = {
        let s = &server;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(400));
                s.go_silent();
            });
            run(c).unwrap()
        })
    };
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3500), "run took {took:?}");
    let s = &silencer.summary;
    assert!(s.errors.timeouts > 0);
    assert_eq!(
        s.errors.timeouts,
        op(s, "get").counters.timeouts + op(s, "set").counters.timeouts
    );
    assert!(
        s.errors.reconnects > 0,
        "a timed-out connection is reopened"
    );
    assert!(
        op(s, "get").counters.completed > 0,
        "answers before the silence"
    );
    assert!(silencer.failure.is_some(), "timeouts exceed --max-errors 0");
}

#[test]
fn open_loop_latency_shows_a_stall_that_service_time_hides() {
    let server = TestServer::start();
    server.stall_once(Duration::from_millis(500), Duration::from_secs(1));
    let c = cfg(
        &server,
        &[
            "--connections",
            "4",
            "--rate",
            "1000",
            "--duration",
            "2500ms",
            "--timeout",
            "5s",
            "--mix",
            "get=1",
        ],
    );
    let outcome = run(c).unwrap();
    let get = op(&outcome.summary, "get");
    // About 2500 requests were due; the 1 s stall delays the ~1000 due during it.
    assert!(get.counters.completed > 2000, "{:?}", get.counters);
    assert!(
        get.latency_us.p99 > 500_000,
        "corrected p99 {} us should show the stall",
        get.latency_us.p99
    );
    assert!(get.latency_us.max > 800_000);
    assert!(
        get.service_time_us.p99 < 250_000,
        "service-time p99 {} us should not",
        get.service_time_us.p99
    );
    // The requests caught in the stall itself took the whole second.
    assert!(get.service_time_us.max > 800_000);
    assert_eq!(outcome.summary.mode, "open");
}

#[test]
fn closed_port_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let c = RunConfig::from_args(&["--quiet", "--server", &addr, "--duration", "1s"]).unwrap();
    let err = run(c).unwrap_err();
    assert!(matches!(err, loadgen::Error::Connect { .. }), "{err}");
}

#[test]
fn binary_exit_status_and_help() {
    let bin = env!("CARGO_BIN_EXE_loadgen");
    let help = std::process::Command::new(bin)
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--rate",
        "--pipeline",
        "--verify",
        "--key-dist",
        "--max-errors",
        "--out",
    ] {
        assert!(text.contains(flag), "{flag} not documented");
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let st = std::process::Command::new(bin)
        .args(["run", "--quiet", "--duration", "1s", "--server"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&st.stderr).contains("could not connect"));
}

#[test]
fn keys_spread_over_two_servers_and_are_found_where_they_were_put() {
    keys_spread_over_two_servers_in("modulo");
}

#[test]
fn ketama_places_keys_as_its_continuum_says_and_counts_requests_per_server() {
    keys_spread_over_two_servers_in("ketama");
}

fn keys_spread_over_two_servers_in(distribution: &str) {
    let a = TestServer::start();
    let b = TestServer::start();
    let (aa, ba) = (a.addr_string(), b.addr_string());
    let c = RunConfig::from_args(&[
        "--quiet",
        "--distribution",
        distribution,
        "--server",
        &aa,
        "--server",
        &ba,
        "--connections",
        "3",
        "--pipeline",
        "3",
        "--duration",
        "1s",
        "--keys",
        "300",
        "--key-size",
        "6",
        "--mix",
        "get=3,mget=1",
        "--mget-keys",
        "5",
        "--preload",
        "--verify",
    ])
    .unwrap();
    let outcome = run(c).unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    let s = &outcome.summary;
    assert_eq!(s.preload.as_ref().unwrap().keys, 300);
    // Every key was preloaded on the server its hash names, and read back from it.
    for name in ["get", "mget"] {
        let o = op(s, name);
        assert!(o.counters.completed > 0, "{name}");
        assert_eq!(
            o.counters.misses, 0,
            "{name}: a key was looked up on the wrong server"
        );
    }
    assert!(a.wait_idle(Duration::from_secs(5)) && b.wait_idle(Duration::from_secs(5)));
    let (ca, cb) = (a.counts(), b.counts());
    assert!(
        ca[1] > 100 && cb[1] > 100,
        "preload sets spread: {ca:?} {cb:?}"
    );
    assert_eq!(ca[1] + cb[1], 300);
    assert_eq!(ca[0] + cb[0], op(s, "get").counters.requests);
    assert_eq!(ca[3] + cb[3], op(s, "mget").counters.requests);
    // Requests per server in the summary: what each server was sent.
    let per: Vec<(&str, u64)> = s
        .servers
        .iter()
        .map(|x| (x.server.as_str(), x.requests))
        .collect();
    assert_eq!(
        per,
        [(aa.as_str(), ca[0] + ca[3]), (ba.as_str(), cb[0] + cb[3])]
    );
    if distribution == "ketama" {
        let k = loadgen::ketama::Ketama::new(&[&aa, &ba]);
        let on_a = (0..300)
            .filter(|n| k.server_of(format!("k{n:05}").as_bytes()) == 0)
            .count() as u64;
        assert_eq!(ca[1], on_a, "preload sets on the first server");
    }
}

#[test]
fn closed_connections_are_counted_and_reopened() {
    let server = TestServer::start();
    let c = cfg(
        &server,
        &[
            "--connections",
            "3",
            "--duration",
            "1200ms",
            "--mix",
            "get=1",
        ],
    );
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(400));
            server.close_connections();
        });
        run(c).unwrap()
    });
    let s = &outcome.summary;
    assert_eq!(s.errors.connection_closed, 3, "{:?}", s.errors);
    assert!(s.errors.reconnects >= 3, "{:?}", s.errors);
    let get = op(s, "get");
    assert!(
        get.counters.unfinished <= 6,
        "one in flight per connection lost with it, and one at the end: {:?}",
        get.counters
    );
    // Requests go on over the new connections.
    assert!(get.counters.completed > 100);
    assert_eq!(s.errors_total, 3);
}

#[test]
fn open_loop_against_a_silent_server_ends_on_time_and_counts_what_was_due() {
    let server = TestServer::start();
    server.go_silent();
    let c = cfg(
        &server,
        &[
            "--connections",
            "2",
            "--rate",
            "200",
            "--duration",
            "1s",
            "--timeout",
            "10s",
        ],
    );
    let started = Instant::now();
    let outcome = run(c).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    let s = &outcome.summary;
    // One request per connection went out and was never answered; the
    // other ~198 due in the second had no free slot.
    assert_eq!(s.total.counters.requests, 2);
    assert_eq!(s.total.counters.unfinished, 2);
    assert_eq!(s.total.counters.completed, 0);
    assert!(s.unsent >= 190 && s.unsent <= 200, "unsent {}", s.unsent);
}

#[test]
fn requests_a_server_never_answers_are_counted_whatever_phase_sent_them() {
    // Two "workers": of six connections, four wait in the accept queue for
    // the whole run, and their requests, sent in the warm-up, never get a
    // reply. The timeout is longer than the run, so none of them times out.
    let server = TestServer::start();
    server.serve_at_most(2);
    let c = cfg(
        &server,
        &[
            "--connections",
            "6",
            "--pipeline",
            "2",
            "--warmup",
            "300ms",
            "--duration",
            "700ms",
            "--timeout",
            "10s",
            "--mix",
            "get=1",
        ],
    );
    let started = Instant::now();
    let outcome = run(c).unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    let s = &outcome.summary;
    let get = op(s, "get");
    assert!(get.counters.completed > 0, "two connections are served");
    assert_eq!(s.errors.timeouts, 0);
    assert_eq!(s.connections_never_answered, 4, "{s:?}");
    // Four connections x two in flight, all sent in the warm-up and never
    // answered; the served connections' last requests were answered in the
    // drain after the window.
    let never = get.counters.unanswered_at_end;
    assert_eq!(never, 8, "unanswered at end: {:?}", get.counters);
    // They waited through the window: measured, as unfinished requests.
    assert_eq!(get.counters.unfinished, 8, "{:?}", get.counters);
    assert_eq!(
        get.counters.completed + get.counters.unfinished,
        get.counters.requests
    );
    assert_eq!(s.total.counters.unanswered_at_end, never);
    // And summary.json carries the fields.
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["connections_never_answered"], 4);
    assert_eq!(json["operations"]["get"]["unanswered_at_end"], never);
    assert!(json["total"].get("warmup_lost").is_some());
}

#[test]
fn latency_counts_the_requests_a_server_never_answers_as_lower_bounds() {
    // As above: 2 of 6 connections served, 4 left waiting from the warm-up on.
    let server = TestServer::start();
    server.serve_at_most(2);
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(
        &server,
        &[
            "--connections",
            "6",
            "--warmup",
            "300ms",
            "--duration",
            "700ms",
            "--timeout",
            "10s",
            "--mix",
            "get=1",
            "--out",
            dir.path().to_str().unwrap(),
        ],
    );
    let outcome = run(c).unwrap();
    let s = &outcome.summary;
    let get = op(s, "get");
    let l = &get.latency_us;
    // The unserved connections' four requests waited at least the whole
    // window (0.7 s, most of the warm-up too) and count as censored samples.
    assert_eq!(l.censored, 4, "{l:?}");
    assert_eq!(l.count, get.counters.completed + 4);
    // The censored samples are the four largest (every answer came far
    // sooner): a percentile whose rank falls among them is at least the wait
    // and marked as a lower bound; one below them is exact.
    let waited = 700_000;
    let n = l.count;
    for (name, q, v) in [
        ("p50", 0.5, l.p50),
        ("p90", 0.9, l.p90),
        ("p99", 0.99, l.p99),
        ("p99_9", 0.999, l.p99_9),
        ("p99_99", 0.9999, l.p99_99),
        ("max", 1.0, l.max),
    ] {
        let rank = ((q * n as f64).ceil() as u64).max(1);
        if rank > n - 4 {
            assert!(v >= waited && l.is_lower_bound(name), "{name}: {l:?}");
        } else {
            assert!(v < waited && !l.is_lower_bound(name), "{name}: {l:?}");
        }
    }
    assert!(l.is_lower_bound("mean"));
    // The answered-only figures stay under their own name, without them.
    let a = &get.latency_answered_us;
    assert_eq!(a.count, get.counters.completed);
    assert!(a.max < waited, "{a:?}");
    assert!(a.lower_bounds.is_empty());
    // The .hgrm of every request says so too; the answered one does not.
    let hgrm = std::fs::read_to_string(dir.path().join("get.hgrm")).unwrap();
    assert!(
        hgrm.contains(&format!("#[Censored = {:>12}, LowerBoundFrom = ", 4)),
        "{hgrm}"
    );
    let answered = std::fs::read_to_string(dir.path().join("get-answered.hgrm")).unwrap();
    assert!(!answered.contains("Censored"));
    // The table on stdout marks the lower bounds.
    let table = loadgen::summary::table(s);
    assert!(table.contains(">="), "{table}");
    assert!(table.contains("censored: 4 of"), "{table}");
}

#[test]
fn a_timed_out_request_counts_at_its_timeout() {
    let server = TestServer::start();
    server.go_silent();
    let c = cfg(
        &server,
        &[
            "--connections",
            "2",
            "--duration",
            "1s",
            "--timeout",
            "300ms",
            "--mix",
            "get=1",
        ],
    );
    let outcome = run(c).unwrap();
    let get = op(&outcome.summary, "get");
    assert!(get.counters.timeouts >= 2, "{:?}", get.counters);
    assert_eq!(get.counters.completed, 0);
    let l = &get.latency_us;
    assert_eq!(
        l.censored,
        get.counters.timeouts + get.counters.unfinished,
        "{l:?}"
    );
    assert!(
        l.p50 >= 300_000,
        "a timed-out request waited its timeout: {l:?}"
    );
    assert!(l.is_lower_bound("p50"), "{l:?}");
}
