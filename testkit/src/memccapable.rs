//! libmemcached's `memccapable -a` (its ASCII protocol tests) run against a
//! server: the second, independent conformance check both front-ends face in
//! `make test`, beside the shared request/reply table.

use std::fmt;
use std::net::SocketAddr;
use std::process::Command;

/// How many ASCII tests memccapable 1.x runs.
pub const ASCII_TESTS: usize = 27;

/// What one run of `memccapable -a` said.
#[derive(Debug)]
pub struct Report {
    /// Tests reported as `[pass]`.
    pub passed: usize,
    /// The lines of tests reported as failed.
    pub failed: Vec<String>,
    /// Whether the tool exited with success.
    pub success: bool,
    /// Everything it printed, for the failure message.
    pub output: String,
}

impl Report {
    /// Reads what the tool printed (one `... [pass]` or `[FAIL]` line a test).
    pub fn parse(output: String, success: bool) -> Self {
        Report {
            passed: output
                .lines()
                .filter(|l| l.trim_end().ends_with("[pass]"))
                .count(),
            failed: output
                .lines()
                .filter(|l| l.contains("[FAIL]") || l.contains("[fail]"))
                .map(str::to_owned)
                .collect(),
            success,
            output,
        }
    }

    /// Every ASCII test passed and the tool agrees.
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
            && self.passed == ASCII_TESTS
            && self.success
            && self.output.contains("All tests passed")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "memccapable: {}/{ASCII_TESTS} passed, failed: {:?}",
            self.passed, self.failed
        )?;
        f.write_str(&self.output)
    }
}

/// The installed tool's name (Debian's libmemcached-tools calls it
/// `memccapable`, older packages `memcapable`), if any.
pub fn tool() -> Option<&'static str> {
    ["memccapable", "memcapable"]
        .into_iter()
        .find(|name| Command::new(name).arg("-h").output().is_ok())
}

/// Runs `memccapable -a` against `addr` with a per-test timeout in seconds.
/// `None` when the tool is not installed; an error when it cannot be run.
pub fn run(addr: SocketAddr, timeout_s: u32) -> Option<std::io::Result<Report>> {
    let tool = tool()?;
    let output = Command::new(tool)
        .args([
            "-h",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-a",
            "-t",
            &timeout_s.to_string(),
        ])
        .output();
    Some(output.map(|output| {
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        Report::parse(text, output.status.success())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pass: usize, fail: usize) -> String {
        let mut text = String::new();
        for i in 0..pass {
            text.push_str(&format!("ascii test {i}    [pass]\n"));
        }
        for i in 0..fail {
            text.push_str(&format!("ascii test f{i}   [FAIL]\n"));
        }
        if fail == 0 {
            text.push_str("All tests passed\n");
        }
        text
    }

    #[test]
    fn all_ascii_tests_passing_is_ok() {
        assert!(Report::parse(lines(ASCII_TESTS, 0), true).ok());
    }

    #[test]
    fn a_failure_a_missing_test_or_a_bad_exit_is_not_ok() {
        let one_failed = Report::parse(lines(ASCII_TESTS - 1, 1), false);
        assert!(!one_failed.ok());
        assert_eq!(one_failed.failed.len(), 1);
        assert!(!Report::parse(lines(ASCII_TESTS - 1, 0), true).ok());
        assert!(!Report::parse(lines(ASCII_TESTS, 0), false).ok());
    }
}
