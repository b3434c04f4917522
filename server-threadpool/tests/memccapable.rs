//! libmemcached's `memccapable -a` (its 27 ASCII protocol tests) against a
//! fresh server. Skipped, with a note, where the tool is not installed.

mod common;

use std::process::Command;

use common::ServerProcess;

/// The ASCII tests memccapable 1.x runs.
const ASCII_TESTS: usize = 27;

fn tool() -> Option<&'static str> {
    ["memccapable", "memcapable"].into_iter().find(|name| {
        Command::new(name)
            .arg("-h")
            .output()
            .map(|_| true)
            .unwrap_or(false)
    })
}

#[test]
fn memccapable_ascii_passes() {
    let Some(tool) = tool() else {
        eprintln!("skipped: memccapable not installed (apt-get install libmemcached-tools)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(dir.path(), &["--threads", "4"]);
    let output = Command::new(tool)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.addr.port().to_string(),
            "-a",
            "-t",
            "5",
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
        failed.is_empty() && passed == ASCII_TESTS && text.contains("All tests passed"),
        "memccapable: {passed}/{ASCII_TESTS} passed, failed: {failed:?}\n{text}"
    );
    assert!(
        output.status.success(),
        "memccapable exit: {:?}\n{text}",
        output.status
    );
    server.kill();
}
