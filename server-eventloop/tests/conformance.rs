//! The shared memcached conformance suite and libmemcached's `memccapable -a`
//! against this front-end, in both accept modes. Durability `always` in
//! dispatch mode sends every write's reply through the sync completion path.

mod common;

use std::process::Command;

use common::InProcess;
use engine::Durability;
use server_eventloop::AcceptMode;
use service::conformance::{run_with, RunOptions};

/// The ASCII tests memccapable 1.x runs.
const MEMCCAPABLE_TESTS: usize = 27;

#[test]
fn conformance_suite_in_reuseport_mode() {
    let server = InProcess::start(
        AcceptMode::ReusePort,
        Durability::Interval(engine::DEFAULT_SYNC_INTERVAL),
    );
    let report = run_with(server.addr, &RunOptions::default()).expect("suite runs");
    assert!(report.ok(), "{report}");
    server.stop();
}

#[test]
fn conformance_suite_in_dispatch_mode_with_durability_always() {
    let server = InProcess::start(AcceptMode::Dispatch, Durability::Always);
    let report = run_with(server.addr, &RunOptions::default()).expect("suite runs");
    assert!(report.ok(), "{report}");
    server.stop();
}

fn memccapable() -> Option<&'static str> {
    ["memccapable", "memcapable"]
        .into_iter()
        .find(|name| Command::new(name).arg("-h").output().is_ok())
}

#[test]
fn memccapable_ascii_passes_in_both_modes() {
    let Some(tool) = memccapable() else {
        eprintln!("skipped: memccapable not installed (apt-get install libmemcached-tools)");
        return;
    };
    for (mode, durability) in [
        (AcceptMode::ReusePort, Durability::None),
        (AcceptMode::Dispatch, Durability::Always),
    ] {
        let server = InProcess::start(mode, durability);
        let output = Command::new(tool)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &server.addr.port().to_string(),
                "-a",
                "-t",
                "10",
            ])
            .output()
            .expect("run memccapable");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        let passed = text
            .lines()
            .filter(|l| l.trim_end().ends_with("[pass]"))
            .count();
        let failed: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("[FAIL]") || l.contains("[fail]"))
            .collect();
        assert!(
            failed.is_empty() && passed == MEMCCAPABLE_TESTS,
            "memccapable ({mode}): {passed}/{MEMCCAPABLE_TESTS} passed, failed: {failed:?}\n{text}"
        );
        assert!(
            output.status.success(),
            "memccapable exit: {:?}\n{text}",
            output.status
        );
        server.stop();
    }
}
