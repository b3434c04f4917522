//! The conformance suite every front-end is held to: memcached 1.6 text
//! protocol behaviour, checked over a real TCP connection, byte for byte.
//!
//! It is defined once, here, and run against memcached itself (to keep the
//! table honest), against the in-process service and against both front-ends.
//! Two kinds of case:
//!
//! * [`TABLE`]: `(name, request, expected reply)`. The request is written in
//!   one `write` (so each row also exercises pipelining), followed by `mn\r\n`
//!   whose `MN\r\n` reply marks the end: a reply that is missing, extra or
//!   different anywhere shows up as a mismatch without waiting for timeouts.
//! * scripted cases: anything with a variable part (CAS values, stats,
//!   version), a closing connection, a large value, or a wait on the clock.
//!
//! Keys carry a prefix unique to the run (`@` in the table stands for it), so
//! the suite can be re-run against a live server. The `flush_all` cases wipe
//! the whole server; [`RunOptions::include_flush`] leaves them out.
//!
//! Against any server: `cargo run -p service --bin conformance -- 127.0.0.1:11211`
//! (`--no-flush`, `--fast`, `--only <name>`), or `make conformance ADDR=...`.
//! From a test: `testkit::conformance::run(addr)?.ok()`.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one read may wait before a case counts as stalled.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound on one case's exchange, so a trickling server cannot hang a run.
const CASE_DEADLINE: Duration = Duration::from_secs(10);
/// Appended to every table request; its reply ends the exchange.
const SENTINEL: &str = "mn\r\n";
const SENTINEL_REPLY: &str = "MN\r\n";

/// Length of the over-long key: one more than memcached's limit of 250.
const LONG_KEY_LEN: usize = 251;

/// `(name, request, expected reply)`. `@` is replaced by the run's key
/// prefix; `<LONG_KEY>` by a 251-byte key. Every expected reply here was
/// checked against memcached 1.6.18.
pub const TABLE: &[(&str, &str, &str)] = &[
    // Storage and retrieval.
    ("set_get", "set @a 5 0 3\r\nabc\r\nget @a\r\n", "STORED\r\nVALUE @a 5 3\r\nabc\r\nEND\r\n"),
    ("get_miss", "get @nothing\r\n", "END\r\n"),
    (
        "get_multi",
        "set @m1 1 0 1\r\nx\r\nset @m2 2 0 2\r\nyy\r\nget @m1 @nothing @m2\r\n",
        "STORED\r\nSTORED\r\nVALUE @m1 1 1\r\nx\r\nVALUE @m2 2 2\r\nyy\r\nEND\r\n",
    ),
    (
        "set_overwrites",
        "set @o 0 0 3\r\none\r\nset @o 9 0 5\r\nthree\r\nget @o\r\n",
        "STORED\r\nSTORED\r\nVALUE @o 9 5\r\nthree\r\nEND\r\n",
    ),
    ("empty_value", "set @e 0 0 0\r\n\r\nget @e\r\n", "STORED\r\nVALUE @e 0 0\r\n\r\nEND\r\n"),
    (
        "flags_max",
        "set @f 4294967295 0 1\r\nx\r\nget @f\r\n",
        "STORED\r\nVALUE @f 4294967295 1\r\nx\r\nEND\r\n",
    ),
    (
        "value_with_crlf_inside",
        "set @crlf 0 0 6\r\na\r\nb\r\n\r\nget @crlf\r\n",
        "STORED\r\nVALUE @crlf 0 6\r\na\r\nb\r\n\r\nEND\r\n",
    ),
    (
        "add",
        "add @add 0 0 1\r\na\r\nadd @add 0 0 1\r\nb\r\nget @add\r\n",
        "STORED\r\nNOT_STORED\r\nVALUE @add 0 1\r\na\r\nEND\r\n",
    ),
    (
        "replace",
        "replace @rep 0 0 1\r\na\r\nset @rep 0 0 1\r\nb\r\nreplace @rep 3 0 1\r\nc\r\nget @rep\r\n",
        "NOT_STORED\r\nSTORED\r\nSTORED\r\nVALUE @rep 3 1\r\nc\r\nEND\r\n",
    ),
    (
        "append_prepend_keep_flags",
        "set @ap 7 0 1\r\nb\r\nappend @ap 9 0 2\r\ncd\r\nprepend @ap 9 0 1\r\na\r\nget @ap\r\n",
        "STORED\r\nSTORED\r\nSTORED\r\nVALUE @ap 7 4\r\nabcd\r\nEND\r\n",
    ),
    (
        "append_prepend_missing",
        "append @apm 0 0 1\r\na\r\nprepend @apm 0 0 1\r\na\r\nget @apm\r\n",
        "NOT_STORED\r\nNOT_STORED\r\nEND\r\n",
    ),
    (
        "delete",
        "set @d 0 0 1\r\na\r\ndelete @d\r\ndelete @d\r\nget @d\r\n",
        "STORED\r\nDELETED\r\nNOT_FOUND\r\nEND\r\n",
    ),
    ("delete_legacy_zero", "delete @dz 0\r\n", "NOT_FOUND\r\n"),
    (
        "delete_with_time_rejected",
        "delete @dt 5\r\n",
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
    ),
    (
        "negative_exptime_expires_at_once",
        "set @neg 0 -1 1\r\na\r\nget @neg\r\n",
        "STORED\r\nEND\r\n",
    ),
    // incr / decr.
    (
        "incr_decr",
        "set @n 0 0 2\r\n10\r\nincr @n 5\r\ndecr @n 3\r\nget @n\r\n",
        "STORED\r\n15\r\n12\r\nVALUE @n 0 2\r\n12\r\nEND\r\n",
    ),
    ("incr_missing", "incr @nx 1\r\ndecr @nx 1\r\n", "NOT_FOUND\r\nNOT_FOUND\r\n"),
    (
        "incr_non_numeric",
        "set @nn 0 0 3\r\nabc\r\nincr @nn 1\r\ndecr @nn 1\r\n",
        "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    ),
    (
        "incr_too_many_digits",
        "set @big 0 0 21\r\n100000000000000000000\r\nincr @big 1\r\n",
        "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    ),
    (
        "incr_empty_value",
        "set @ev 0 0 0\r\n\r\nincr @ev 1\r\n",
        "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    ),
    (
        "incr_negative_value",
        "set @nv 0 0 2\r\n-1\r\nincr @nv 1\r\n",
        "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    ),
    (
        "incr_wraps_at_2_64",
        "set @w 0 0 20\r\n18446744073709551615\r\nincr @w 2\r\nget @w\r\n",
        "STORED\r\n1\r\nVALUE @w 0 20\r\n1                   \r\nEND\r\n",
    ),
    (
        "incr_grows",
        "set @g 0 0 2\r\n99\r\nincr @g 1\r\nget @g\r\n",
        "STORED\r\n100\r\nVALUE @g 0 3\r\n100\r\nEND\r\n",
    ),
    (
        "decr_floor_zero_pads",
        "set @fl 0 0 3\r\n100\r\ndecr @fl 1000\r\nget @fl\r\n",
        "STORED\r\n0\r\nVALUE @fl 0 3\r\n0  \r\nEND\r\n",
    ),
    (
        "incr_leading_zeros_and_space",
        "set @lz 0 0 5\r\n00010\r\nincr @lz 1\r\nset @sp 0 0 3\r\n12 \r\nincr @sp 1\r\n",
        "STORED\r\n11\r\nSTORED\r\n13\r\n",
    ),
    (
        "incr_bad_delta",
        "set @bd 0 0 1\r\n1\r\nincr @bd abc\r\nincr @bd -1\r\nincr @bd 18446744073709551616\r\n",
        "STORED\r\nCLIENT_ERROR invalid numeric delta argument\r\nCLIENT_ERROR invalid numeric delta argument\r\nCLIENT_ERROR invalid numeric delta argument\r\n",
    ),
    (
        "incr_max_delta",
        "set @md 0 0 1\r\n0\r\nincr @md 18446744073709551615\r\n",
        "STORED\r\n18446744073709551615\r\n",
    ),
    // cas.
    ("cas_not_found", "cas @cnf 0 0 1 1\r\na\r\n", "NOT_FOUND\r\n"),
    (
        "cas_exists",
        "set @ce 0 0 1\r\na\r\ncas @ce 0 0 1 18446744073709551615\r\nb\r\nget @ce\r\n",
        "STORED\r\nEXISTS\r\nVALUE @ce 0 1\r\na\r\nEND\r\n",
    ),
    (
        "cas_bad_unique",
        "cas @cb 0 0 1 abc\r\nb\r\n",
        "CLIENT_ERROR bad command line format\r\nERROR\r\n",
    ),
    // touch / gat.
    (
        "touch",
        "set @t 0 0 1\r\na\r\ntouch @t 100\r\ntouch @tnx 100\r\n",
        "STORED\r\nTOUCHED\r\nNOT_FOUND\r\n",
    ),
    (
        "touch_bad_exptime",
        "touch @t abc\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    ),
    (
        "gat",
        "set @gat 3 0 2\r\nhi\r\ngat 100 @gat @gatnx\r\n",
        "STORED\r\nVALUE @gat 3 2\r\nhi\r\nEND\r\n",
    ),
    (
        "gat_to_past_expires",
        "set @gp 0 0 1\r\na\r\ngat -1 @gp\r\nget @gp\r\n",
        "STORED\r\nVALUE @gp 0 1\r\na\r\nEND\r\nEND\r\n",
    ),
    // noreply: every command that accepts it; `mn` proves nothing was sent.
    (
        "noreply_all",
        "set @nr 0 0 1 noreply\r\n1\r\nadd @nr 0 0 1 noreply\r\n2\r\nreplace @nr 0 0 1 noreply\r\n3\r\n\
         append @nr 0 0 1 noreply\r\n4\r\nprepend @nr 0 0 1 noreply\r\n5\r\nincr @nr 1 noreply\r\n\
         decr @nr 2 noreply\r\ntouch @nr 100 noreply\r\ncas @nr 0 0 1 1 noreply\r\n6\r\n\
         verbosity 1 noreply\r\nget @nr\r\ndelete @nr noreply\r\nget @nr\r\n",
        "VALUE @nr 0 3\r\n533\r\nEND\r\nEND\r\n",
    ),
    (
        "noreply_silences_errors",
        "incr @nrx abc noreply\r\nget @nrx\r\n",
        "END\r\n",
    ),
    // Errors and the resync after them.
    ("unknown_command", "bogus\r\nget @u\r\n", "ERROR\r\nEND\r\n"),
    ("empty_line", "\r\nget @u\r\n", "ERROR\r\nEND\r\n"),
    ("bare_get", "get\r\n", "ERROR\r\n"),
    ("bare_incr", "incr\r\nincr @x\r\n", "ERROR\r\nERROR\r\n"),
    ("verbosity_without_level", "verbosity\r\n", "ERROR\r\n"),
    (
        "bad_command_line_format",
        "set @bf 0 0 abc\r\nabc\r\nget @bf\r\n",
        "CLIENT_ERROR bad command line format\r\nERROR\r\nEND\r\n",
    ),
    (
        "negative_length",
        "set @bf 0 0 -1\r\nget @bf\r\n",
        "CLIENT_ERROR bad command line format\r\nEND\r\n",
    ),
    (
        "bad_flags",
        "set @bf abc 0 1\r\na\r\nget @bf\r\n",
        "CLIENT_ERROR bad command line format\r\nERROR\r\nEND\r\n",
    ),
    (
        "bad_exptime",
        "set @bf 0 abc 1\r\na\r\nget @bf\r\n",
        "CLIENT_ERROR bad command line format\r\nERROR\r\nEND\r\n",
    ),
    (
        "bad_data_chunk",
        "set @bc 0 0 3\r\nabcde\r\nget @bc\r\n",
        "CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n",
    ),
    (
        "key_too_long_set",
        "set <LONG_KEY> 0 0 3\r\nabc\r\nget @ktl\r\n",
        "CLIENT_ERROR bad command line format\r\nERROR\r\nEND\r\n",
    ),
    (
        "key_too_long_others",
        "get <LONG_KEY>\r\ndelete <LONG_KEY>\r\nincr <LONG_KEY> 1\r\ntouch <LONG_KEY> 1\r\n",
        "CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n\
         CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n",
    ),
    ("stats_unknown_group", "stats nosuchgroup\r\n", "ERROR\r\n"),
    // Misc.
    ("verbosity", "verbosity 1\r\n", "OK\r\n"),
    // Meta commands.
    ("mn", "mn\r\n", "MN\r\n"),
    (
        "mg_basics",
        "set @mg 1 0 2\r\nhi\r\nmg @mg v\r\nmg @mg\r\nmg @mg s v\r\nmg @mg f v\r\nmg @mg k v\r\nmg @mgnx v\r\n",
        "STORED\r\nVA 2\r\nhi\r\nHD\r\nVA 2 s2\r\nhi\r\nVA 2 f1\r\nhi\r\nVA 2 k@mg\r\nhi\r\nEN\r\n",
    ),
    ("mg_quiet_miss", "mg @mgq v q\r\n", ""),
    (
        "ms_md_basics",
        "ms @ms 3\r\nabc\r\nmg @ms v\r\nms @ms2 2 F5\r\nhi\r\nmg @ms2 f v\r\nmd @ms\r\nmd @ms\r\nmg @ms v\r\n",
        "HD\r\nVA 3\r\nabc\r\nHD\r\nVA 2 f5\r\nhi\r\nHD\r\nNF\r\nEN\r\n",
    ),
    (
        // A `C` compares in every mode but add, which ignores it.
        "ms_modes_with_cas",
        "ms @mc1 1 ME C999\r\nx\r\nms @mc1 1 ME C999\r\ny\r\nms @mc2 1 MR C999\r\nx\r\n\
         set @mc3 0 0 1\r\nz\r\nms @mc3 1 MR C999\r\nx\r\nms @mc3 1 MA C999\r\nx\r\n\
         ms @mc3 1 MS C999\r\nx\r\nms @mc4 1 MS C999\r\nx\r\nms @mc4 1 MA C999\r\nx\r\n\
         mg @mc3 v\r\nmg @mc1 v\r\n",
        "HD\r\nNS\r\nNF\r\nSTORED\r\nEX\r\nEX\r\nEX\r\nNF\r\nNS\r\nVA 1\r\nz\r\nVA 1\r\nx\r\n",
    ),
    (
        "meta_quiet",
        "ms @mq 2 q\r\nhi\r\nmd @mq q\r\nmd @mq q\r\n",
        "NF\r\n",
    ),
];

/// What a run includes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Run the `flush_all` cases, which empty the whole server.
    pub include_flush: bool,
    /// Run the cases that wait on the clock (expiry, delayed flush: a few seconds).
    pub include_slow: bool,
    /// Only cases whose name contains this.
    pub filter: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            include_flush: true,
            include_slow: true,
            filter: None,
        }
    }
}

/// One failed case: what was expected and what came back, both escaped.
#[derive(Clone, Debug)]
pub struct CaseFailure {
    pub name: String,
    pub expected: String,
    pub got: String,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub passed: Vec<String>,
    pub failed: Vec<CaseFailure>,
}

impl Report {
    /// True when every case that ran passed.
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in &self.failed {
            writeln!(f, "FAIL {}", failure.name)?;
            writeln!(f, "  expected: {}", failure.expected)?;
            writeln!(f, "  got:      {}", failure.got)?;
        }
        write!(
            f,
            "{} passed, {} failed",
            self.passed.len(),
            self.failed.len()
        )
    }
}

/// Why a run could not start at all (a failing case is not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Nothing accepted a connection at the address: is the server running?
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs every case against the server at `addr`.
pub fn run(addr: SocketAddr) -> Result<Report, RunError> {
    run_with(addr, &RunOptions::default())
}

/// Runs the cases `options` selects against the server at `addr`.
pub fn run_with(addr: SocketAddr, options: &RunOptions) -> Result<Report, RunError> {
    // Fail fast with a clear error when nothing listens there.
    TcpStream::connect_timeout(&addr, READ_TIMEOUT)
        .map_err(|source| RunError::Connect { addr, source })?;
    let prefix = unique_prefix();
    let selected = |name: &str| options.filter.as_deref().is_none_or(|f| name.contains(f));
    let mut report = Report::default();

    for &(name, request, expected) in TABLE {
        if !selected(name) {
            continue;
        }
        let request = expand(request, &prefix) + SENTINEL;
        let expected = expand(expected, &prefix) + SENTINEL_REPLY;
        let outcome = table_case(addr, request.as_bytes(), expected.as_bytes());
        record(&mut report, name, outcome);
    }
    for &(name, kind, case) in SCRIPTED {
        let wanted = match kind {
            Kind::Plain => true,
            Kind::Slow => options.include_slow,
            Kind::Flush => options.include_flush,
            Kind::SlowFlush => options.include_flush && options.include_slow,
        };
        if !wanted || !selected(name) {
            continue;
        }
        let mut ctx = Ctx {
            addr,
            prefix: prefix.clone(),
        };
        record(&mut report, name, case(&mut ctx));
    }
    Ok(report)
}

fn record(report: &mut Report, name: &str, outcome: Result<(), Mismatch>) {
    match outcome {
        Ok(()) => report.passed.push(name.to_string()),
        Err(m) => report.failed.push(CaseFailure {
            name: name.to_string(),
            expected: m.expected,
            got: m.got,
        }),
    }
}

/// A failed expectation, already escaped for printing.
struct Mismatch {
    expected: String,
    got: String,
}

impl Mismatch {
    fn bytes(expected: &[u8], got: &[u8]) -> Self {
        Mismatch {
            expected: escape(expected),
            got: escape(got),
        }
    }
    fn text(expected: impl Into<String>, got: impl Into<String>) -> Self {
        Mismatch {
            expected: expected.into(),
            got: got.into(),
        }
    }
}

fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Mix in the pid so two runs started in the same nanosecond differ.
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("cf{mixed:x}:")
}

fn expand(template: &str, prefix: &str) -> String {
    template
        .replace("<LONG_KEY>", &"k".repeat(LONG_KEY_LEN))
        .replace('@', prefix)
}

/// Escapes bytes so `\r`, `\n` and binary show; long runs are cut in the middle.
pub fn escape(bytes: &[u8]) -> String {
    const KEEP: usize = 400;
    let shown: Vec<u8> = if bytes.len() > 2 * KEEP {
        let mut v = bytes[..KEEP].to_vec();
        v.extend_from_slice(format!("...<{} bytes>...", bytes.len() - 2 * KEEP).as_bytes());
        v.extend_from_slice(&bytes[bytes.len() - KEEP..]);
        v
    } else {
        bytes.to_vec()
    };
    let mut out = String::with_capacity(shown.len() + 2);
    out.push('"');
    for &b in &shown {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

fn table_case(addr: SocketAddr, request: &[u8], expected: &[u8]) -> Result<(), Mismatch> {
    let mut conn = Conn::open(addr)?;
    conn.send(request)?;
    conn.expect(expected)
}

/// One client connection with the suite's timeouts and a buffer of replies
/// not yet looked at.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl Conn {
    fn open(addr: SocketAddr) -> Result<Conn, Mismatch> {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .map_err(|e| Mismatch::text("a connection", format!("connect failed: {e}")))?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(CASE_DEADLINE)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| Mismatch::text("socket options set", e.to_string()))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            closed: false,
        })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Mismatch> {
        self.stream
            .write_all(bytes)
            .map_err(|e| Mismatch::text("request sent", format!("write failed: {e}")))
    }

    /// Reads until `want` bytes are buffered, the peer closes, or time runs out.
    fn fill(&mut self, want: usize) {
        let start = Instant::now();
        let mut chunk = vec![0u8; 64 * 1024];
        while self.buf.len() < want && !self.closed && start.elapsed() < CASE_DEADLINE {
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                // A reset counts as the server closing the connection.
                Err(_) => self.closed = true,
            }
        }
    }

    /// Reads until a full line (`\r\n`) is buffered, returning it without the CRLF.
    fn line(&mut self) -> Result<String, Mismatch> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).take(pos).collect();
                return String::from_utf8(line)
                    .map_err(|e| Mismatch::text("a UTF-8 line", escape(e.as_bytes())));
            }
            let before = self.buf.len();
            self.fill(before + 1);
            if self.buf.len() == before {
                return Err(Mismatch::text(
                    "a line ending in \\r\\n",
                    format!("{} then nothing", escape(&self.buf)),
                ));
            }
        }
    }

    /// Takes exactly `expected` from the replies.
    fn expect(&mut self, expected: &[u8]) -> Result<(), Mismatch> {
        self.fill(expected.len());
        if self.buf.starts_with(expected) {
            self.buf.drain(..expected.len());
            Ok(())
        } else {
            Err(Mismatch::bytes(expected, &self.buf))
        }
    }

    /// Expects the server to close, allowing at most one error line first.
    fn expect_close(&mut self) -> Result<(), Mismatch> {
        let start = Instant::now();
        while !self.closed && start.elapsed() < CASE_DEADLINE {
            let before = self.buf.len();
            self.fill(before + 1);
            if self.buf.len() == before && !self.closed {
                break;
            }
        }
        let error_line_only = self.buf.is_empty()
            || (self.buf.ends_with(b"\r\n")
                && self.buf.iter().filter(|&&b| b == b'\n').count() == 1
                && (self.buf.starts_with(b"CLIENT_ERROR ")
                    || self.buf.starts_with(b"SERVER_ERROR ")
                    || self.buf.starts_with(b"ERROR")));
        if self.closed && error_line_only {
            Ok(())
        } else {
            let state = if self.closed { "closed" } else { "still open" };
            Err(Mismatch::text(
                "connection closed (after at most one error line)",
                format!("{} and {state}", escape(&self.buf)),
            ))
        }
    }
}

/// The context a scripted case runs in.
struct Ctx {
    addr: SocketAddr,
    prefix: String,
}

impl Ctx {
    fn conn(&self) -> Result<Conn, Mismatch> {
        Conn::open(self.addr)
    }
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Plain,
    Slow,
    Flush,
    SlowFlush,
}

type Script = fn(&mut Ctx) -> Result<(), Mismatch>;

/// Cases with variable replies, closes, big values or waits. The flush cases
/// come last: they empty the server.
const SCRIPTED: &[(&str, Kind, Script)] = &[
    ("pipeline_many_in_one_write", Kind::Plain, pipeline_many),
    ("request_split_byte_by_byte", Kind::Plain, byte_by_byte),
    ("large_value_round_trip", Kind::Plain, large_value),
    ("object_too_large_swallowed", Kind::Plain, too_large),
    (
        "refused_set_removes_the_old_value",
        Kind::Plain,
        refused_set_removes_old,
    ),
    ("line_too_long_closes", Kind::Plain, line_too_long),
    ("http_request_closes", Kind::Plain, http_closes),
    ("quit_closes", Kind::Plain, quit_closes),
    ("gets_cas_usable_by_cas", Kind::Plain, gets_cas),
    ("gats_returns_cas", Kind::Plain, gats_cas),
    ("version_format", Kind::Plain, version_format),
    ("stats_shape", Kind::Plain, stats_shape),
    ("stats_counts_gets", Kind::Plain, stats_counts),
    ("stats_settings_shape", Kind::Plain, stats_settings),
    ("expiry_and_touch", Kind::Slow, expiry),
    ("flush_all", Kind::Flush, flush_all),
    ("flush_all_delay", Kind::SlowFlush, flush_all_delay),
];

fn pipeline_many(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200 {
        let key = ctx.key(&format!("pl{i}"));
        let value = format!("value-{i}");
        request.extend_from_slice(
            format!(
                "set {key} {i} 0 {}\r\n{value}\r\nget {key}\r\n",
                value.len()
            )
            .as_bytes(),
        );
        expected.extend_from_slice(
            format!(
                "STORED\r\nVALUE {key} {i} {}\r\n{value}\r\nEND\r\n",
                value.len()
            )
            .as_bytes(),
        );
    }
    let mut conn = ctx.conn()?;
    conn.send(&request)?;
    conn.expect(&expected)
}

fn byte_by_byte(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let key = ctx.key("bb");
    let request = format!("set {key} 1 0 5\r\nhello\r\ngets {key}\r\n");
    let mut conn = ctx.conn()?;
    for b in request.as_bytes() {
        conn.send(std::slice::from_ref(b))?;
    }
    conn.expect(b"STORED\r\n")?;
    let header = conn.line()?;
    let want = format!("VALUE {key} 1 5 ");
    if !header.starts_with(&want) || header[want.len()..].parse::<u64>().is_err() {
        return Err(Mismatch::text(format!("{want}<cas>"), header));
    }
    conn.expect(b"hello\r\nEND\r\n")
}

fn large_value(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let key = ctx.key("large");
    let value: Vec<u8> = (0..600 * 1024u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut request = format!("set {key} 42 0 {}\r\n", value.len()).into_bytes();
    request.extend_from_slice(&value);
    request.extend_from_slice(format!("\r\nget {key}\r\n").as_bytes());
    let mut expected = format!("STORED\r\nVALUE {key} 42 {}\r\n", value.len()).into_bytes();
    expected.extend_from_slice(&value);
    expected.extend_from_slice(b"\r\nEND\r\n");
    let mut conn = ctx.conn()?;
    // Several writes, so the value arrives in pieces.
    for piece in request.chunks(100_000) {
        conn.send(piece)?;
    }
    conn.expect(&expected)
}

fn too_large(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let key = ctx.key("toolarge");
    let size = 2_000_000;
    let mut request = format!("set {key} 0 0 {size}\r\n").into_bytes();
    request.resize(request.len() + size, b'z');
    request.extend_from_slice(format!("\r\nget {key}\r\n{SENTINEL}").as_bytes());
    let mut conn = ctx.conn()?;
    conn.send(&request)?;
    conn.expect(
        format!("SERVER_ERROR object too large for cache\r\nEND\r\n{SENTINEL_REPLY}").as_bytes(),
    )
}

/// memcached unlinks the key when a `set` of it fails as too large, so no
/// client reads the value the set meant to replace; `add` keeps it.
fn refused_set_removes_old(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let (key, kept) = (ctx.key("refusedset"), ctx.key("refusedadd"));
    let size = 2_000_000;
    let mut request =
        format!("set {key} 0 0 3\r\nold\r\nset {kept} 0 0 4\r\nkeep\r\n").into_bytes();
    for line in [
        format!("set {key} 0 0 {size}"),
        format!("add {kept} 0 0 {size}"),
    ] {
        request.extend_from_slice(format!("{line}\r\n").as_bytes());
        request.resize(request.len() + size, b'z');
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(format!("get {key} {kept}\r\n{SENTINEL}").as_bytes());
    let mut conn = ctx.conn()?;
    conn.send(&request)?;
    conn.expect(
        format!(
            "STORED\r\nSTORED\r\nSERVER_ERROR object too large for cache\r\n\
             SERVER_ERROR object too large for cache\r\nVALUE {kept} 0 4\r\nkeep\r\nEND\r\n\
             {SENTINEL_REPLY}"
        )
        .as_bytes(),
    )
}

fn line_too_long(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let mut conn = ctx.conn()?;
    conn.send(&[b'x'; 4096])?;
    conn.expect_close()
}

fn http_closes(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let mut conn = ctx.conn()?;
    conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    conn.expect_close()
}

fn quit_closes(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let key = ctx.key("quit");
    let mut conn = ctx.conn()?;
    conn.send(format!("set {key} 0 0 1\r\na\r\nquit\r\nget {key}\r\n").as_bytes())?;
    conn.expect(b"STORED\r\n")?;
    conn.fill(1);
    if conn.closed && conn.buf.is_empty() {
        Ok(())
    } else {
        Err(Mismatch::text(
            "close with nothing after STORED",
            escape(&conn.buf),
        ))
    }
}

/// Reads `VALUE <key> <flags> <len> <cas>` and returns the CAS value.
fn value_with_cas(conn: &mut Conn, key: &str, flags: u32, len: usize) -> Result<u64, Mismatch> {
    let header = conn.line()?;
    let want = format!("VALUE {key} {flags} {len} ");
    header
        .strip_prefix(&want)
        .and_then(|cas| cas.parse::<u64>().ok())
        .ok_or_else(|| Mismatch::text(format!("{want}<cas>"), header.clone()))
}

fn gets_cas(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let key = ctx.key("gc");
    let mut conn = ctx.conn()?;
    conn.send(format!("set {key} 0 0 1\r\na\r\ngets {key}\r\n").as_bytes())?;
    conn.expect(b"STORED\r\n")?;
    let cas = value_with_cas(&mut conn, &key, 0, 1)?;
    conn.expect(b"a\r\nEND\r\n")?;
    conn.send(
        format!("cas {key} 5 0 1 {cas}\r\nb\r\ncas {key} 0 0 1 {cas}\r\nc\r\ngets {key}\r\n")
            .as_bytes(),
    )?;
    conn.expect(b"STORED\r\nEXISTS\r\n")?;
    let cas2 = value_with_cas(&mut conn, &key, 5, 1)?;
    conn.expect(b"b\r\nEND\r\n")?;
    if cas2 == cas {
        return Err(Mismatch::text(
            "a new CAS value after cas",
            format!("{cas2} again"),
        ));
    }
    // Every other write changes the CAS value too.
    conn.send(format!("touch {key} 0\r\nappend {key} 0 0 1\r\nx\r\ngets {key}\r\n").as_bytes())?;
    conn.expect(b"TOUCHED\r\nSTORED\r\n")?;
    let cas3 = value_with_cas(&mut conn, &key, 5, 2)?;
    conn.expect(b"bx\r\nEND\r\n")?;
    if cas3 == cas2 {
        return Err(Mismatch::text(
            "a new CAS value after append",
            format!("{cas3} again"),
        ));
    }
    Ok(())
}

fn gats_cas(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let key = ctx.key("gats");
    let mut conn = ctx.conn()?;
    conn.send(format!("set {key} 4 0 2\r\nhi\r\ngats 100 {key}\r\n").as_bytes())?;
    conn.expect(b"STORED\r\n")?;
    value_with_cas(&mut conn, &key, 4, 2)?;
    conn.expect(b"hi\r\nEND\r\n")
}

fn version_format(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let mut conn = ctx.conn()?;
    conn.send(b"version\r\n")?;
    let line = conn.line()?;
    match line.strip_prefix("VERSION ") {
        Some(v) if !v.is_empty() && !v.contains(' ') => Ok(()),
        _ => Err(Mismatch::text("VERSION <one token>", line)),
    }
}

/// Reads `STAT <name> <value>` lines up to `END`.
fn stat_lines(conn: &mut Conn) -> Result<Vec<(String, String)>, Mismatch> {
    let mut stats = Vec::new();
    loop {
        let line = conn.line()?;
        if line == "END" {
            return Ok(stats);
        }
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("STAT"), Some(name), Some(value)) if !name.is_empty() => {
                stats.push((name.to_string(), value.to_string()));
            }
            _ => return Err(Mismatch::text("STAT <name> <value> or END", line)),
        }
        if stats.len() > 10_000 {
            return Err(Mismatch::text("END", "more than 10000 STAT lines"));
        }
    }
}

fn numeric_stat(stats: &[(String, String)], name: &str) -> Result<f64, Mismatch> {
    let value = stats
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| Mismatch::text(format!("STAT {name}"), "missing"))?;
    value
        .parse::<f64>()
        .map_err(|_| Mismatch::text(format!("a number for {name}"), value.to_string()))
}

fn stats_shape(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let mut conn = ctx.conn()?;
    conn.send(b"stats\r\n")?;
    let stats = stat_lines(&mut conn)?;
    for name in [
        "pid",
        "uptime",
        "time",
        "pointer_size",
        "rusage_user",
        "rusage_system",
        "curr_connections",
        "total_connections",
        "rejected_connections",
        "cmd_get",
        "cmd_set",
        "cmd_flush",
        "cmd_touch",
        "get_hits",
        "get_misses",
        "get_expired",
        "delete_hits",
        "delete_misses",
        "incr_hits",
        "incr_misses",
        "decr_hits",
        "decr_misses",
        "cas_hits",
        "cas_misses",
        "cas_badval",
        "touch_hits",
        "touch_misses",
        "bytes_read",
        "bytes_written",
        "limit_maxbytes",
        "threads",
        "curr_items",
        "total_items",
        "bytes",
    ] {
        numeric_stat(&stats, name)?;
    }
    if !stats.iter().any(|(n, v)| n == "version" && !v.is_empty()) {
        return Err(Mismatch::text("STAT version <v>", "missing"));
    }
    if numeric_stat(&stats, "curr_connections")? < 1.0 {
        return Err(Mismatch::text("curr_connections >= 1", "0"));
    }
    // The connection is still usable afterwards.
    conn.send(SENTINEL.as_bytes())?;
    conn.expect(SENTINEL_REPLY.as_bytes())
}

fn stats_counts(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let key = ctx.key("sc");
    let mut conn = ctx.conn()?;
    conn.send(b"stats\r\n")?;
    let before = stat_lines(&mut conn)?;
    conn.send(format!("set {key} 0 0 1\r\na\r\nget {key}\r\nget {key}nx\r\nstats\r\n").as_bytes())?;
    conn.expect(format!("STORED\r\nVALUE {key} 0 1\r\na\r\nEND\r\nEND\r\n").as_bytes())?;
    let after = stat_lines(&mut conn)?;
    // Other clients may be running, so counters must move by at least ours.
    for (name, at_least) in [
        ("cmd_get", 2.0),
        ("get_hits", 1.0),
        ("get_misses", 1.0),
        ("cmd_set", 1.0),
        ("bytes_read", 20.0),
    ] {
        let delta = numeric_stat(&after, name)? - numeric_stat(&before, name)?;
        if delta < at_least {
            return Err(Mismatch::text(
                format!("{name} up by >= {at_least}"),
                format!("up by {delta}"),
            ));
        }
    }
    Ok(())
}

fn stats_settings(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let mut conn = ctx.conn()?;
    conn.send(b"stats settings\r\n")?;
    let stats = stat_lines(&mut conn)?;
    for name in ["maxbytes", "maxconns", "tcpport", "item_size_max"] {
        numeric_stat(&stats, name)?;
    }
    conn.send(SENTINEL.as_bytes())?;
    conn.expect(SENTINEL_REPLY.as_bytes())
}

fn expiry(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let (a, b, c, keep) = (
        ctx.key("ex1"),
        ctx.key("ex2"),
        ctx.key("ex3"),
        ctx.key("ex4"),
    );
    let mut conn = ctx.conn()?;
    conn.send(
        format!(
            "set {a} 0 1 1\r\na\r\nset {b} 0 0 1\r\nb\r\ntouch {b} 1\r\nset {c} 0 0 1\r\nc\r\ngat 1 {c}\r\n\
             set {keep} 0 100 1\r\nk\r\n"
        )
        .as_bytes(),
    )?;
    conn.expect(
        format!("STORED\r\nSTORED\r\nTOUCHED\r\nSTORED\r\nVALUE {c} 0 1\r\nc\r\nEND\r\nSTORED\r\n")
            .as_bytes(),
    )?;
    std::thread::sleep(Duration::from_millis(2200));
    conn.send(format!("get {a} {b} {c} {keep}\r\n").as_bytes())?;
    conn.expect(format!("VALUE {keep} 0 1\r\nk\r\nEND\r\n").as_bytes())
}

fn flush_all(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let (a, b) = (ctx.key("fa"), ctx.key("fb"));
    let mut conn = ctx.conn()?;
    conn.send(
        format!(
            "set {a} 0 0 1\r\na\r\nflush_all\r\nget {a}\r\nset {b} 0 0 1\r\nb\r\nflush_all noreply\r\nget {b}\r\n\
             flush_all 0\r\nflush_all abc\r\n"
        )
        .as_bytes(),
    )?;
    conn.expect(
        b"STORED\r\nOK\r\nEND\r\nSTORED\r\nEND\r\nOK\r\nCLIENT_ERROR invalid exptime argument\r\n",
    )
}

fn flush_all_delay(ctx: &mut Ctx) -> Result<(), Mismatch> {
    let a = ctx.key("fd");
    let mut conn = ctx.conn()?;
    // A delay of 3 s: memcached's clock ticks in whole seconds and it flushes
    // up to a second early, so only "still there at once, gone after 3.5 s"
    // holds for every conforming server.
    conn.send(format!("set {a} 0 0 1\r\na\r\nflush_all 3\r\nget {a}\r\n").as_bytes())?;
    conn.expect(format!("STORED\r\nOK\r\nVALUE {a} 0 1\r\na\r\nEND\r\n").as_bytes())?;
    std::thread::sleep(Duration::from_millis(3500));
    conn.send(format!("get {a}\r\n").as_bytes())?;
    conn.expect(b"END\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_shows_line_ends_and_binary() {
        assert_eq!(escape(b"OK\r\n\x00\"\\"), "\"OK\\r\\n\\x00\\\"\\\\\"");
    }

    #[test]
    fn escape_cuts_long_replies() {
        let long = vec![b'a'; 5000];
        let shown = escape(&long);
        assert!(shown.contains("...<4200 bytes>..."), "{shown}");
        assert!(shown.len() < 1000);
    }

    #[test]
    fn table_names_are_unique_and_requests_end_in_crlf() {
        let mut names: Vec<&str> = TABLE.iter().map(|(n, _, _)| *n).collect();
        names.extend(SCRIPTED.iter().map(|(n, _, _)| *n));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate case names");
        for (name, request, _) in TABLE {
            assert!(request.ends_with("\r\n"), "{name}");
        }
    }

    #[test]
    fn expand_replaces_prefix_and_long_key() {
        assert_eq!(
            expand("get @a <LONG_KEY>", "p:"),
            format!("get p:a {}", "k".repeat(251))
        );
    }

    #[test]
    fn unreachable_server_is_an_error() {
        // Bind then drop, so the port is (almost certainly) closed.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind");
        assert!(matches!(run(addr), Err(RunError::Connect { .. })));
    }
}
