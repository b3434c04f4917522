//! One connection's protocol state: the decoder, and a large value being
//! received in chunks. [`Session::process`] is the whole interface a
//! front-end needs: bytes in, reply bytes out, plus what to do next.
//!
//! Large values arrive as `ValueStart`/`ValueChunk`/`ValueEnd` frames so the
//! front-end's input buffer stays small. For set, add, replace and cas each
//! chunk goes straight into an engine streaming write
//! ([`engine::Engine::put_stream`]), committed with the command's condition
//! at `ValueEnd`: the session holds no copy of the value, and a connection
//! that drops mid-value leaves nothing stored. append, prepend and meta `ms`
//! (which read the old value or echo flags) gather the chunks (at most
//! `max_item_size` bytes, which the decoder enforces) and run at `ValueEnd`.

use crate::output::Output;
use std::sync::Arc;

use engine::{Condition, Meta, SyncTicket, ValueWriter};
use protocol::{Decoder, Frame, OwnedStorageHeader, StorageHeader};

use crate::execute::{condition, Effects};
use crate::Service;

/// What the front-end does after [`Session::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send the replies, then read more input (if nothing was consumed, the
    /// input holds only part of a request).
    NeedInput,
    /// Send the replies, then close the connection (`quit`, or an error
    /// memcached closes on).
    Close,
    /// The replies reached the connection's output limit: write them, and
    /// call again with the same unconsumed input once the output has
    /// drained below the limit. A multi-key request stopped half-way
    /// resumes where it stopped.
    OutputFull,
}

/// The result of one [`Session::process`] call. `T` is what says when held
/// replies may go out: the engine's [`SyncTicket`] here, something simpler
/// in a front-end loop's own tests (see `frontend::Handler`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress<T = SyncTicket> {
    /// Bytes of input used; the caller drops them from its buffer.
    pub consumed: usize,
    pub step: Step,
    /// Replies appended to `out` must not be sent before this ticket is
    /// durable; if waiting fails, the connection is closed without sending
    /// them. `None`: nothing to wait for.
    pub hold: Option<T>,
}

/// A storage request whose value is arriving in chunks: the command, which
/// owns its bytes (the input its line was read from is gone by the last
/// chunk), and where its value goes.
struct PendingValue {
    command: OwnedStorageHeader,
    body: Body,
}

/// Where a value arriving in chunks goes.
enum Body {
    /// Gathered, then executed like a request with its whole value.
    Gather(Vec<u8>),
    /// Streamed into the engine as it arrives, committed under the
    /// command's condition.
    Stream {
        writer: ValueWriter,
        cond: Condition,
    },
}

impl PendingValue {
    /// Starts receiving the value of `h`: streamed into the engine for a
    /// classic set, add, replace or cas whose value fits the item size
    /// (unless the engine refuses to start one: the gathered path then
    /// reports its error), gathered for the others.
    fn start(service: &Service, h: &StorageHeader<'_>) -> Self {
        let body = Self::stream(service, h).unwrap_or_else(|| {
            Body::Gather(Vec::with_capacity(
                h.len.min(service.config().max_item_size),
            ))
        });
        PendingValue {
            command: OwnedStorageHeader::from(h),
            body,
        }
    }

    fn stream(service: &Service, h: &StorageHeader<'_>) -> Option<Body> {
        if h.meta.is_some() || service.limits.too_large(h.key.len(), h.flags, h.len) {
            return None;
        }
        let cond = condition(h)?;
        let meta = Meta {
            flags: h.flags,
            expiry: service.expiry(h.exptime),
        };
        let writer = service.engine.put_stream(h.key, h.len, meta).ok()?;
        Some(Body::Stream { writer, cond })
    }

    /// The value's last chunk arrived: executes the command and replies as
    /// for a value that came whole.
    fn finish(self, service: &Service, out: &mut Output, fx: &mut Effects) {
        let h = self.command.header();
        match self.body {
            Body::Gather(data) => service.exec_storage(&h, &data, out, fx),
            Body::Stream { writer, cond } => {
                crate::stats::ServerStats::bump(&service.stats().counters().cmd_set);
                let stored = writer.commit(cond).map(|w| (Some(w.result), w.ticket));
                service.reply_store(&h, stored, out, fx);
            }
        }
    }
}

/// The key of a classic `set` (or a meta `ms` in its default set mode)
/// request line: the commands after whose refusal as too large memcached
/// removes the key's old value, so a client never reads a stale value
/// after a failed update.
fn set_key(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let cmd = tokens.next()?;
    let key = tokens.next()?;
    let is_set = match cmd {
        b"set" => true,
        // `ms` sets unless an M flag names another mode.
        b"ms" => tokens
            .skip(1)
            .all(|t| !t.starts_with(b"M") || t.eq_ignore_ascii_case(b"MS")),
        _ => false,
    };
    is_set.then_some(key)
}

/// One connection's state. Not shared: each connection owns one.
pub struct Session {
    service: Arc<Service>,
    decoder: Decoder,
    pending: Option<PendingValue>,
    /// Keys of the request at the front of the input already answered: a
    /// multi-key request stopped at the output limit goes on from here.
    resume: usize,
}

impl Session {
    pub(crate) fn new(service: Arc<Service>) -> Self {
        let decoder = Decoder::new(service.limits());
        Session {
            service,
            decoder,
            pending: None,
            resume: 0,
        }
    }

    /// Executes up to `max_requests` complete requests from `input`,
    /// appending their replies to `out`. Stops early at the end of the
    /// complete requests, when the connection must close, or when `out`
    /// holds the connection's output limit ([`Step::OutputFull`]), also in
    /// the middle of a multi-key request: the memory of pending replies is
    /// bounded by the limit plus one value, whatever a request asks for.
    pub fn process(&mut self, input: &[u8], out: &mut Output, max_requests: usize) -> Progress {
        let limit = self.service.config().output_limit;
        let (mut counted_read, mut counted_mark) = (0, out.mark());
        let mut fx = Effects::default();
        let mut consumed = 0;
        let mut executed = 0;
        let mut step = Step::NeedInput;
        while executed < max_requests.max(1) && consumed < input.len() {
            if out.pending() >= limit {
                step = Step::OutputFull;
                break;
            }
            match self.decoder.decode(&input[consumed..]) {
                Ok(None) => break,
                Ok(Some((frame, used))) => {
                    consumed += used;
                    match frame {
                        Frame::Request(request) => {
                            if matches!(request, protocol::Request::Stats { .. }) {
                                // Counted per call, not per request (one shared
                                // atomic add, not one per request), so bring
                                // them up to date before they are reported.
                                self.count_bytes(consumed - counted_read, out.since(counted_mark));
                                (counted_read, counted_mark) = (consumed, out.mark());
                            }
                            self.service.run_due_flush(&mut fx);
                            let skip = std::mem::take(&mut self.resume);
                            if let Some(answered) =
                                self.service.execute(request, out, &mut fx, skip, limit)
                            {
                                // Stopped at the output limit: the request
                                // stays in the input, to be decoded again
                                // and resumed after its answered keys.
                                consumed -= used;
                                self.resume = answered;
                                step = Step::OutputFull;
                                break;
                            }
                            executed += 1;
                        }
                        Frame::ValueStart(header) => {
                            self.pending = Some(PendingValue::start(&self.service, &header));
                        }
                        Frame::ValueChunk(chunk) => {
                            match self.pending.as_mut().map(|p| &mut p.body) {
                                Some(Body::Gather(data)) => data.extend_from_slice(chunk),
                                Some(Body::Stream { writer, .. }) => {
                                    // A failed chunk write shows at commit (the
                                    // length will not match): the reply comes
                                    // at ValueEnd, in order.
                                    let _ = writer.write(chunk);
                                }
                                None => {}
                            }
                        }
                        Frame::Discarded => {}
                        Frame::ValueEnd => {
                            executed += 1;
                            if let Some(pending) = self.pending.take() {
                                self.service.run_due_flush(&mut fx);
                                pending.finish(&self.service, out, &mut fx);
                            }
                        }
                    }
                    if fx.close {
                        step = Step::Close;
                        break;
                    }
                }
                Err(error) => {
                    // A value being streamed ends here (bad data chunk).
                    self.pending = None;
                    // The decoder accounted for the bad request's bytes
                    // (including a too-large value's data, which it swallows).
                    let line = &input[consumed..consumed + error.consumed];
                    consumed += error.consumed;
                    if error.kind == protocol::ErrorKind::TooLarge {
                        crate::stats::ServerStats::bump(
                            &self.service.stats().counters().store_too_large,
                        );
                        if let Some(key) = set_key(line) {
                            self.service.drop_stale(key, &mut fx);
                        }
                    }
                    out.extend_from_slice(error.reply());
                    if error.close {
                        step = Step::Close;
                        // Nothing after a fatal error is looked at.
                        consumed = input.len();
                        break;
                    }
                    executed += 1;
                    if error.consumed == 0 {
                        // Defensive: never spin on an error that used nothing.
                        break;
                    }
                }
            }
        }
        self.count_bytes(consumed - counted_read, out.since(counted_mark));
        Progress {
            consumed,
            step,
            hold: fx.hold,
        }
    }

    fn count_bytes(&self, read: usize, written: usize) {
        let counters = &self.service.stats().counters();
        crate::stats::ServerStats::add(&counters.bytes_read, read as u64);
        crate::stats::ServerStats::add(&counters.bytes_written, written as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::tests::service;

    /// Feeds `input` as a front-end that reads `read` more bytes at a time
    /// would (all of it at once for `usize::MAX`), and returns the reply.
    fn feed(session: &mut Session, input: &[u8], read: usize) -> Vec<u8> {
        let mut out = Output::new();
        let (mut start, mut end) = (0usize, 0usize);
        while start < input.len() {
            end = end.saturating_add(read).min(input.len());
            let progress = session.process(&input[start..end], &mut out, usize::MAX);
            assert!(
                progress.consumed > 0 || end < input.len(),
                "no progress with the whole rest of the input"
            );
            start += progress.consumed;
        }
        out.to_vec()
    }

    /// Feeds `input` in one call and returns (reply text, progress).
    fn run(session: &mut Session, input: &[u8]) -> (String, Progress) {
        let mut out = Output::new();
        let progress = session.process(input, &mut out, usize::MAX);
        (
            String::from_utf8_lossy(&out.to_vec()).into_owned(),
            progress,
        )
    }

    #[test]
    fn pipelined_requests_in_one_call() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let input = b"set a 1 0 2\r\nhi\r\nget a b\r\ndelete a\r\nget a\r\n";
        let (reply, progress) = run(&mut session, input);
        assert_eq!(
            reply,
            "STORED\r\nVALUE a 1 2\r\nhi\r\nEND\r\nDELETED\r\nEND\r\n"
        );
        assert_eq!(
            progress,
            Progress {
                consumed: input.len(),
                step: Step::NeedInput,
                hold: None
            }
        );
        let c = s.stats().totals();
        assert_eq!(c.bytes_read, input.len() as u64);
        assert_eq!(c.bytes_written, reply.len() as u64);
    }

    #[test]
    fn incomplete_request_consumes_nothing() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let (reply, progress) = run(&mut session, b"set a 0 0 5\r\nhel");
        assert_eq!(
            (reply.as_str(), progress.consumed, progress.step),
            ("", 0, Step::NeedInput)
        );
        let (reply, progress) = run(&mut session, b"set a 0 0 5\r\nhello\r\nget");
        assert_eq!(reply, "STORED\r\n");
        assert_eq!(
            progress.consumed, 20,
            "the partial `get` is left for the next call"
        );
    }

    #[test]
    fn max_requests_bounds_one_call() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let input = b"get a\r\nget b\r\nget c\r\n";
        let mut out = Output::new();
        let progress = session.process(input, &mut out, 2);
        assert_eq!(out.to_vec(), b"END\r\nEND\r\n");
        assert_eq!(progress.consumed, 14);
        let progress = session.process(&input[14..], &mut out, 2);
        assert_eq!(progress.consumed, 7);
    }

    #[test]
    fn a_huge_multi_get_stops_at_the_output_limit_and_resumes_where_it_stopped() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        // One 1 MB value, named 400 times (the servers' tests name it 3,000
        // times over a socket; here every byte is copied out to check it).
        let value: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        s.engine()
            .put(
                b"k",
                &value,
                engine::Meta::default(),
                engine::Condition::Always,
            )
            .expect("put");
        let mut line = b"get".to_vec();
        for _ in 0..400 {
            line.extend_from_slice(b" k");
        }
        line.extend_from_slice(b"\r\nget k\r\n");
        let limit = s.config().output_limit;
        let header = b"VALUE k 0 1000000\r\n";
        let mut out = Output::new();
        let mut sent = 0usize;
        let mut start = 0;
        let mut calls = 0;
        let mut peak_owned = 0;
        let mut reply_tail = Vec::new();
        loop {
            let progress = session.process(&line[start..], &mut out, usize::MAX);
            start += progress.consumed;
            calls += 1;
            // Never more pending than the limit plus one value and its header.
            assert!(
                out.pending() <= limit + value.len() + header.len() + 2,
                "{} pending",
                out.pending()
            );
            // Values are referenced, not copied: owned memory stays small.
            peak_owned = peak_owned.max(out.owned_bytes());
            // Check and drain, as a socket would.
            let bytes = out.to_vec();
            sent += bytes.len();
            reply_tail.extend_from_slice(&bytes[bytes.len().saturating_sub(64)..]);
            if reply_tail.len() > 4096 {
                reply_tail.drain(..reply_tail.len() - 64);
            }
            out.clear();
            match progress.step {
                Step::OutputFull => assert!(calls < 10_000, "no progress"),
                _ => break,
            }
        }
        assert_eq!(start, line.len(), "both requests done");
        let per_key = header.len() + value.len() + 2;
        assert_eq!(sent, 401 * per_key + 2 * b"END\r\n".len());
        assert!(calls > 400 / 2, "it paused: {calls} calls");
        assert!(peak_owned < 64 * 1024, "owned bytes {peak_owned}");
        assert!(reply_tail.ends_with(b"END\r\n"));
        let t = s.stats().totals();
        assert_eq!((t.cmd_get, t.get_hits), (401, 401), "each key counted once");
    }

    #[test]
    fn a_resumed_multi_get_replies_exactly_as_an_unbounded_one() {
        let (s, _dir) = service(engine::Durability::None);
        for (k, n) in [(&b"a"[..], 300_000usize), (b"b", 10), (b"c", 200_000)] {
            s.engine()
                .put(
                    k,
                    &vec![k[0]; n],
                    engine::Meta::default(),
                    engine::Condition::Always,
                )
                .expect("put");
        }
        let input = b"gets a b x c a c b\r\nmn\r\n";
        let mut whole = Output::new();
        let mut one = s.session();
        // One call with a limit nothing reaches: the reference reply.
        let mut unbounded = s.session();
        let p = unbounded.process(input, &mut whole, usize::MAX);
        assert_eq!(p.step, Step::OutputFull, "the default limit is reached");
        let mut expected = whole.to_vec();
        let mut rest = &input[p.consumed..];
        loop {
            whole.clear();
            let p = unbounded.process(rest, &mut whole, usize::MAX);
            expected.extend_from_slice(&whole.to_vec());
            rest = &rest[p.consumed..];
            if p.step != Step::OutputFull {
                break;
            }
        }
        // Drained in small steps instead: the same bytes.
        let mut got = Vec::new();
        let mut out = Output::new();
        let mut rest = &input[..];
        loop {
            let p = one.process(rest, &mut out, usize::MAX);
            rest = &rest[p.consumed..];
            got.extend_from_slice(&out.to_vec());
            out.clear();
            if p.step != Step::OutputFull {
                break;
            }
        }
        assert_eq!(got, expected);
        assert!(got.ends_with(b"END\r\nMN\r\n"));
        assert_eq!(got.iter().filter(|&&b| b == b'V').count(), 6);
    }

    #[test]
    fn a_set_refused_as_too_large_removes_the_old_value() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let mut input = b"set k 0 0 3\r\nold\r\nset k 0 0 2000000\r\n".to_vec();
        input.resize(input.len() + 2_000_000, b'z');
        input.extend_from_slice(b"\r\nget k\r\nset a 0 0 1\r\nx\r\nadd a 0 0 2000000\r\n");
        input.resize(input.len() + 2_000_000, b'z');
        input.extend_from_slice(b"\r\nget a\r\n");
        let reply = feed(&mut session, &input, usize::MAX);
        // As memcached: a failed `set` leaves no stale value; a failed
        // `add` (or replace, append, ...) leaves the old one.
        assert_eq!(
            String::from_utf8_lossy(&reply),
            "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\nSTORED\r\n\
             SERVER_ERROR object too large for cache\r\nVALUE a 0 1\r\nx\r\nEND\r\n"
        );
    }

    #[test]
    fn set_keys_of_refused_lines() {
        assert_eq!(set_key(b"set k 0 0 9\r\n"), Some(&b"k"[..]));
        assert_eq!(set_key(b"ms k 9 T0\r\n"), Some(&b"k"[..]));
        assert_eq!(set_key(b"ms k 9 MS\r\n"), Some(&b"k"[..]));
        assert_eq!(set_key(b"ms k 9 MA\r\n"), None);
        assert_eq!(set_key(b"add k 0 0 9\r\n"), None);
        assert_eq!(set_key(b"cas k 0 0 9 1\r\n"), None);
    }

    #[test]
    fn noreply_sends_nothing() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let (reply, _) = run(
            &mut session,
            b"set n 0 0 1 noreply\r\n5\r\nincr n 2 noreply\r\ntouch n 10 noreply\r\ndelete x noreply\r\nget n\r\n",
        );
        assert_eq!(reply, "VALUE n 0 1\r\n7\r\nEND\r\n");
    }

    #[test]
    fn quit_closes_and_ignores_the_rest() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let (reply, progress) = run(&mut session, b"version\r\nquit\r\nget a\r\n");
        assert_eq!(reply, format!("VERSION {}\r\n", crate::VERSION));
        assert_eq!(progress.step, Step::Close);
        assert_eq!(progress.consumed, 15);
    }

    #[test]
    fn line_too_long_closes() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let (reply, progress) = run(&mut session, &[b'x'; 4096]);
        assert_eq!((reply.as_str(), progress.step), ("", Step::Close));
    }

    #[test]
    fn errors_resync() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let (reply, progress) = run(&mut session, b"bogus\r\nset k 0 0 3\r\nabcde\r\nget k\r\n");
        assert_eq!(
            reply,
            "ERROR\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n"
        );
        assert_eq!(progress.step, Step::NeedInput);
    }

    #[test]
    fn large_value_arrives_in_chunks() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let value: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut input = b"set big 3 0 300000\r\n".to_vec();
        input.extend_from_slice(&value);
        input.extend_from_slice(b"\r\n");
        // Feed it in 10 000-byte reads, as a front-end with a small buffer would.
        assert_eq!(feed(&mut session, &input, 10_000), b"STORED\r\n");
        let item = s.engine().get(b"big").expect("get").expect("stored");
        assert_eq!((&item.value[..], item.flags), (&value[..], 3));
    }

    #[test]
    fn streamed_values_keep_conditions_and_vanish_with_the_connection() {
        let (s, _dir) = service(engine::Durability::None);
        let value = vec![b'v'; 200_000];
        let mut input = b"add big 1 0 200000\r\n".to_vec();
        input.extend_from_slice(&value);
        input.extend_from_slice(b"\r\nadd big 2 0 200000\r\n");
        input.extend_from_slice(&value);
        input.extend_from_slice(b"\r\n");
        let mut session = s.session();
        assert_eq!(
            feed(&mut session, &input, 50_000),
            b"STORED\r\nNOT_STORED\r\n"
        );
        assert_eq!(s.engine().get(b"big").expect("get").expect("big").flags, 1);

        // A connection that goes away mid-value stores nothing.
        let mut session = s.session();
        let mut input = b"set half 0 0 200000\r\n".to_vec();
        input.extend_from_slice(&value[..120_000]);
        let mut out = Output::new();
        let consumed = session.process(&input, &mut out, usize::MAX).consumed;
        assert!(consumed > 100_000 && out.is_empty());
        drop(session);
        assert!(s.engine().get(b"half").expect("get").is_none());
    }

    #[test]
    fn too_large_value_is_refused_and_swallowed() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let mut input = b"set big 0 0 2000000\r\n".to_vec();
        input.resize(input.len() + 2_000_000, b'z');
        input.extend_from_slice(b"\r\nget big\r\n");
        assert_eq!(
            feed(&mut session, &input, usize::MAX),
            b"SERVER_ERROR object too large for cache\r\nEND\r\n"
        );
        assert_eq!(s.stats().totals().store_too_large, 1);
    }

    #[test]
    fn streamed_cas_replies_and_counts_as_a_whole_one() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let big = |cmd: &str| {
            let mut input = format!("{cmd}\r\n").into_bytes();
            input.resize(input.len() + 200_000, b'v');
            input.extend_from_slice(b"\r\n");
            input
        };
        let mut input = big("cas nope 0 0 200000 1");
        input.extend(big("set big 0 0 200000"));
        input.extend(big("cas big 0 0 200000 12345"));
        assert_eq!(
            feed(&mut session, &input, usize::MAX),
            b"NOT_FOUND\r\nSTORED\r\nEXISTS\r\n"
        );
        let t = s.stats().totals();
        assert_eq!((t.cas_misses, t.cas_badval, t.total_items), (1, 1, 1));
    }

    #[test]
    fn always_durability_sets_hold() {
        let (s, _dir) = service(engine::Durability::Always);
        let mut session = s.session();
        let (_, progress) = run(&mut session, b"get a\r\n");
        assert_eq!(progress.hold, None, "reads wait for nothing");
        let (reply, progress) = run(
            &mut session,
            b"set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\nget a\r\n",
        );
        assert_eq!(reply, "STORED\r\nSTORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
        let hold = progress
            .hold
            .expect("writes under `always` hold their replies");
        let b_seq = s.engine().get(b"b").expect("get").expect("live").seq;
        assert_eq!(hold.seq(), b_seq, "the hold covers the newest write");
        s.engine().wait_durable(hold).expect("sync");
        // A failed conditional write writes nothing and holds nothing.
        let (reply, progress) = run(&mut session, b"add a 0 0 1\r\nz\r\n");
        assert_eq!((reply.as_str(), progress.hold), ("NOT_STORED\r\n", None));
    }

    #[test]
    fn meta_commands() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let (reply, _) = run(
            &mut session,
            b"ms m 2 F7 T0\r\nhi\r\nmg m v f s k Oab\r\nmg m\r\nmg zz v q\r\nmd m q\r\nmd m\r\nmn\r\n",
        );
        assert_eq!(reply, "HD\r\nVA 2 f7 s2 km Oab\r\nhi\r\nHD\r\nNF\r\nMN\r\n");
        let (reply, _) = run(
            &mut session,
            b"ms c 1\r\na\r\nms c 1 MA\r\nb\r\nms c 1 MP\r\nz\r\nmg c v t\r\n",
        );
        assert_eq!(reply, "HD\r\nHD\r\nHD\r\nVA 3 t-1\r\nzab\r\n");
    }

    #[test]
    fn large_ms_keeps_its_flags_across_chunks() {
        let (s, _dir) = service(engine::Durability::None);
        let mut session = s.session();
        let mut input = b"ms big 100000 F9 Oxy k\r\n".to_vec();
        input.resize(input.len() + 100_000, b'q');
        input.extend_from_slice(b"\r\nmg big s f\r\n");
        let reply = feed(&mut session, &input, usize::MAX);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            "HD Oxy kbig\r\nHD s100000 f9\r\n"
        );
    }

    #[test]
    fn a_failed_write_is_answered_with_one_line_by_every_command() {
        // The engine's error names a file of the data directory: a
        // directory whose name holds a line break must not split a reply,
        // or the client reads the rest as the next reply.
        let dir = tempfile::Builder::new()
            .prefix("data\r\ndir")
            .tempdir()
            .expect("temp dir");
        let options = engine::Options {
            durability: engine::Durability::None,
            ..engine::Options::default()
        };
        let engine = Arc::new(engine::Engine::open(dir.path(), options).expect("engine opens"));
        engine
            .put(b"k", b"v", Meta::default(), Condition::Always)
            .expect("put");
        engine.fail_next_sync_for_tests();
        assert!(engine.sync().is_err(), "the sync fails");
        let frontend = crate::FrontendInfo {
            model: "test",
            threads: 1,
        };
        let s = Arc::new(Service::new(
            engine,
            crate::ServiceConfig::default(),
            frontend,
        ));
        let mut session = s.session();
        let requests: &[&[u8]] = &[
            b"set k 0 0 1 noreply\r\nx\r\n",
            b"delete k\r\n",
            b"incr k 1\r\n",
            b"ms k 1 T0\r\nx\r\n",
            b"md k\r\n",
            b"mg k v T30\r\n",
        ];
        for request in requests {
            let (reply, _) = run(&mut session, request);
            assert!(
                reply.starts_with("SERVER_ERROR writes refused after a failed sync")
                    && reply.ends_with("\r\n")
                    && reply.matches('\n').count() == 1
                    && !reply[..reply.len() - 2].contains('\r'),
                "{:?} got {reply:?}",
                String::from_utf8_lossy(request)
            );
        }
    }
}
