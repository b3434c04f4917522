//! `bench run` end to end, seconds long: a tiny matrix in two rounds against
//! both servers (the thread pool, the event loop and its A/A twin), the
//! report rendered, and `bench compare` of the run with itself. A broken
//! `make bench` fails here.

use std::path::Path;
use std::process::Command;

#[test]
fn a_tiny_matrix_runs_and_renders_its_report() {
    let bins = testkit::build(&["loadgen", "server-threadpool", "server-eventloop"]);
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["run", "--no-build", "--bin-dir"])
        .arg(&bins)
        .arg("--results")
        .arg(&results)
        .args([
            "--run-id",
            "e2e",
            "--frontends",
            "threadpool-2,eventloop,eventloop-twin",
            "--workloads",
            "read-heavy",
            "--connections",
            "4",
            "--rounds",
            "2",
            "--duration",
            "0.5",
            "--warmup",
            "0.2",
            "--keys",
            "2000",
            "--loads",
            "none",
            "--disk-probe-mib",
            "16",
        ])
        .output()
        .expect("bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench run failed:\n{stderr}");
    // Progress names the rounds.
    assert!(stderr.contains("round 2"), "{stderr}");
    let dir = results.join("e2e");
    let report = std::fs::read_to_string(dir.join("REPORT.md")).unwrap();
    assert!(report.contains("## The answer"), "{report}");
    // Both servers measured in both rounds (threadpool-2 starves 2 of 4).
    for row in [
        "| `threadpool-2` | 4\u{2020} | 2/2 |",
        "| `eventloop` | 4 | 2/2 |",
        "| `eventloop-twin` | 4 | 2/2 |",
    ] {
        assert!(report.contains(row), "{row} missing from\n{report}");
    }
    // Two rounds are too few for a verdict, and the report says so.
    assert!(report.contains("too few rounds"), "{report}");
    assert!(report.contains("| Disk write bandwidth | "));
    assert!(dir.join("charts/throughput-read-heavy.svg").exists());
    assert_eq!(
        std::fs::read_link(results.join("latest")).unwrap(),
        Path::new("e2e")
    );
    assert!(!dir.join(".data").exists(), "data directories removed");

    let cmp = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("compare")
        .arg(&dir)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        cmp.status.success(),
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert!(text.contains("B is better in 0, worse in 0"), "{text}");
    assert!(results.join("compare_e2e_vs_e2e.md").exists());
}
