//! Reply matching: the requests in flight on one connection and the bytes
//! received on it, turned into answered requests.
//!
//! A memcached connection answers its requests in the order they were sent,
//! so the requests wait in a FIFO and every reply decoded (by [`wire`],
//! classic or meta) applies to the oldest one. A reply that cannot apply to
//! it (one that does not parse, arrives with nothing in flight, or does not
//! fit the request, such as `STORED` for a get, or a value for a key that was
//! not asked for) means the stream is out of step: nothing after it can be
//! matched, and the owner closes the connection.
//!
//! The matcher knows nothing of sockets or clocks: its owner reads into
//! [`Matcher::spare`], says how much arrived with [`Matcher::filled`], and
//! [`Matcher::take`] hands back what the complete replies did. Partial
//! replies stay buffered until the rest arrives.

use std::collections::VecDeque;
use std::time::Instant;

use crate::config::{OpKind, Protocol};
use crate::record::VerifyFailure;
use crate::wire::{self, Reply};
use crate::workload::{KeySpace, Values};

/// How much a connection's input buffer holds at first (it doubles when a
/// reply does not fit).
const INPUT_START: usize = 16 * 1024;

/// The keys of a request.
#[derive(Debug)]
pub(super) enum Keys {
    One(u64),
    Many(Box<[u64]>),
}

impl Keys {
    /// The keys, in the order they were requested.
    pub(super) fn as_slice(&self) -> &[u64] {
        match self {
            Keys::One(k) => std::slice::from_ref(k),
            Keys::Many(v) => v,
        }
    }
}

/// A request sent and not yet answered.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) kind: OpKind,
    pub(super) keys: Keys,
    pub(super) intended: Instant,
    pub(super) sent: Instant,
    /// Intended at or after the start of measurement.
    pub(super) measured: bool,
    /// Part of the preload.
    pub(super) preload: bool,
    /// Values received so far (get/mget).
    pub(super) values: u32,
    /// Next requested key a returned value may match (mget: in order).
    pub(super) cursor: usize,
    /// Its first value answers it whole (a meta get of one key): no `END`
    /// or `MN` follows.
    pub(super) value_ends: bool,
}

impl Pending {
    /// A request of `kind` for `keys`, in protocol `proto`, meant to be sent
    /// at `intended` and handed to the socket at `sent`.
    pub(super) fn new(
        kind: OpKind,
        keys: Keys,
        proto: Protocol,
        intended: Instant,
        sent: Instant,
        measured: bool,
        preload: bool,
    ) -> Pending {
        let value_ends = matches!(kind, OpKind::Get | OpKind::Mget)
            && wire::value_ends_get(proto, keys.as_slice().len());
        Pending {
            kind,
            keys,
            intended,
            sent,
            measured,
            preload,
            values: 0,
            cursor: 0,
            value_ends,
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Answered as asked: a get's `END` (its values, possibly none, before
    /// it), `STORED`, `DELETED`, meta `HD`.
    Hit,
    /// Answered, without effect: `NOT_STORED`, `EXISTS`, `NOT_FOUND`.
    Miss,
    ServerError,
    ClientError,
    Error,
}

/// What the replies taken from the buffer did, in the order they came.
#[derive(Debug)]
pub(super) enum Matched {
    /// A value that failed `--verify`. It still counts as a value of its
    /// request, which goes on (or ends) as with a right one.
    WrongValue(VerifyFailure),
    /// A request was answered and has left the queue.
    Answered(Pending, Ending),
}

/// Why the reply stream can no longer be matched to the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Desync {
    /// Bytes that are not a reply.
    Unparsable(String),
    /// A reply with no request in flight.
    Unrequested,
    /// A reply that does not fit the oldest request.
    Misfit,
}

/// The requests in flight on one connection, oldest first, and the bytes
/// received on it that are not yet a whole reply.
#[derive(Debug)]
pub(super) struct Matcher {
    pending: VecDeque<Pending>,
    input: Vec<u8>,
    /// Bytes of `input` received and not yet consumed.
    in_len: usize,
}

/// What one reply does to the request it answers.
enum Step {
    /// Part of a multi-line reply; the request goes on.
    More,
    /// The reply does not fit the request: the stream is out of step.
    Misfit,
    /// The request is answered.
    Done(Ending),
}

/// A value that failed verification: what is wrong with it.
struct WrongValue(String);

impl Matcher {
    /// Nothing in flight, nothing received.
    pub(super) fn new() -> Matcher {
        Matcher {
            pending: VecDeque::new(),
            input: vec![0; INPUT_START],
            in_len: 0,
        }
    }

    /// A request was sent: its reply comes after those of the ones before it.
    pub(super) fn push(&mut self, p: Pending) {
        self.pending.push_back(p);
    }

    /// Requests in flight.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    /// The requests in flight, oldest first.
    pub(super) fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.pending.iter()
    }

    /// The connection is gone: forgets what it received and hands back the
    /// requests that will get no reply, oldest first.
    pub(super) fn reset(&mut self) -> impl Iterator<Item = Pending> + '_ {
        self.in_len = 0;
        self.pending.drain(..)
    }

    /// Room for the next read, never empty: the buffer grows when a reply
    /// longer than it is still incomplete.
    pub(super) fn spare(&mut self) -> &mut [u8] {
        if self.in_len == self.input.len() {
            let grow = self.input.len();
            self.input.resize(grow * 2, 0);
        }
        &mut self.input[self.in_len..]
    }

    /// `n` bytes were read into [`Matcher::spare`].
    pub(super) fn filled(&mut self, n: usize) {
        self.in_len += n;
    }

    /// Applies every complete reply received to the requests in flight,
    /// telling `on` what each did. Requested keys are formatted by
    /// `keyspace` into `key_buf` to compare them with returned ones; values
    /// are checked by `values` when verifying.
    ///
    /// An error means the stream is out of step; what was reported before
    /// it stands.
    pub(super) fn take(
        &mut self,
        keyspace: &KeySpace,
        values: &Values,
        key_buf: &mut Vec<u8>,
        mut on: impl FnMut(Matched),
    ) -> Result<(), Desync> {
        let mut used = 0;
        let result = loop {
            let buf = &self.input[used..self.in_len];
            if buf.is_empty() {
                break Ok(());
            }
            let reply = match wire::decode(buf) {
                Ok(Some((reply, n))) => {
                    used += n;
                    reply
                }
                Ok(None) => break Ok(()),
                Err(e) => {
                    tracing::debug!("bad reply: {}", e.0);
                    break Err(Desync::Unparsable(e.0));
                }
            };
            let Some(p) = self.pending.front_mut() else {
                tracing::debug!("reply without a request");
                break Err(Desync::Unrequested);
            };
            let step = match on_reply(keyspace, values, p, &reply, key_buf) {
                Ok(step) => step,
                Err(WrongValue(detail)) => {
                    on(Matched::WrongValue(VerifyFailure {
                        key: String::from_utf8_lossy(reply_key(&reply)).into_owned(),
                        op: p.kind.name().to_string(),
                        detail,
                    }));
                    value_step(p)
                }
            };
            match step {
                Step::More => {}
                Step::Misfit => break Err(Desync::Misfit),
                Step::Done(ending) => {
                    if let Some(p) = self.pending.pop_front() {
                        on(Matched::Answered(p, ending));
                    }
                }
            }
        };
        if used > 0 {
            self.input.copy_within(used..self.in_len, 0);
            self.in_len -= used;
        }
        result
    }
}

fn reply_key<'a>(r: &Reply<'a>) -> &'a [u8] {
    match r {
        Reply::Value { key, .. } => key,
        _ => b"",
    }
}

/// Applies one reply to the request at the head of the queue. A wrong value
/// is an `Err`, counted as a value of the request all the same.
fn on_reply(
    keyspace: &KeySpace,
    values: &Values,
    p: &mut Pending,
    reply: &Reply<'_>,
    key_buf: &mut Vec<u8>,
) -> Result<Step, WrongValue> {
    Ok(match (p.kind, reply) {
        (_, Reply::Error) => Step::Done(Ending::Error),
        (_, Reply::ClientError) => Step::Done(Ending::ClientError),
        (_, Reply::ServerError) => Step::Done(Ending::ServerError),
        (OpKind::Get | OpKind::Mget, Reply::Value { key, data }) => {
            let requested = p.keys.as_slice();
            // Values come back in request order, each key at most once per request.
            let mut found = false;
            while p.cursor < requested.len() {
                keyspace.write_key(requested[p.cursor], key_buf);
                p.cursor += 1;
                if key_buf.as_slice() == *key {
                    found = true;
                    break;
                }
            }
            if !found {
                return Ok(Step::Misfit);
            }
            p.values += 1;
            if values.verifying() {
                if let Err(e) = values.check(key, data) {
                    return Err(WrongValue(e.to_string()));
                }
            }
            value_step(p)
        }
        // END or MN ends a classic get and a meta multi-get; EN ends a
        // meta get of one key.
        (OpKind::Get | OpKind::Mget, Reply::End) if !p.value_ends => Step::Done(Ending::Hit),
        (OpKind::Get | OpKind::Mget, Reply::Miss) if p.value_ends => Step::Done(Ending::Hit),
        (OpKind::Set, Reply::Stored | Reply::Done) => Step::Done(Ending::Hit),
        (OpKind::Set, Reply::NotStored | Reply::Exists | Reply::NotFound) => {
            Step::Done(Ending::Miss)
        }
        (OpKind::Delete, Reply::Deleted | Reply::Done) => Step::Done(Ending::Hit),
        (OpKind::Delete, Reply::NotFound) => Step::Done(Ending::Miss),
        _ => Step::Misfit,
    })
}

/// What a value (right or wrong) means for the get it answers: the end of
/// a meta get of one key, a part of any other.
fn value_step(p: &Pending) -> Step {
    if p.value_ends {
        Step::Done(Ending::Hit)
    } else {
        Step::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;

    /// What the matcher reported, in a form tests compare.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        Answered {
            kind: OpKind,
            ending: Ending,
            values: u32,
        },
        Wrong {
            key: String,
            op: String,
        },
    }

    use Ending::{ClientError, Error, Hit, Miss, ServerError};
    use OpKind::{Delete, Get, Mget, Set};

    /// A matcher with its key space (8-byte keys) and verified values.
    struct Rig {
        proto: Protocol,
        keyspace: KeySpace,
        values: Values,
        matcher: Matcher,
        key_buf: Vec<u8>,
    }

    impl Rig {
        fn new(proto: Protocol, args: &[&str]) -> Rig {
            let mut all = vec!["--key-size", "8", "--keys", "1000"];
            all.extend_from_slice(args);
            let cfg = RunConfig::from_args(&all).unwrap();
            Rig {
                proto,
                keyspace: KeySpace {
                    keys: cfg.keys,
                    key_size: cfg.key_size,
                    servers: 1,
                    ketama: None,
                },
                values: Values::new(&cfg),
                matcher: Matcher::new(),
                key_buf: Vec::new(),
            }
        }

        fn classic() -> Rig {
            Rig::new(Protocol::Classic, &["--verify", "--value-size", "40"])
        }

        fn meta() -> Rig {
            Rig::new(Protocol::Meta, &["--verify", "--value-size", "40"])
        }

        fn key(&self, n: u64) -> String {
            self.keyspace.key_string(n)
        }

        /// Sends a request (as far as the matcher knows).
        fn send(&mut self, kind: OpKind, keys: &[u64]) {
            let keys = match keys {
                [one] => Keys::One(*one),
                many => Keys::Many(many.into()),
            };
            let now = Instant::now();
            let p = Pending::new(kind, keys, self.proto, now, now, true, false);
            self.matcher.push(p);
        }

        /// The right value of key `n`, `len` bytes.
        fn value(&self, n: u64, len: usize) -> Vec<u8> {
            let mut v = Vec::new();
            self.values
                .write(self.key(n).as_bytes(), n + 7, len, &mut v);
            v
        }

        /// A value reply carrying `data` for key `n`, in the rig's protocol.
        fn value_reply(&self, n: u64, data: &[u8]) -> Vec<u8> {
            let key = self.key(n);
            let mut r = match self.proto {
                Protocol::Classic => format!("VALUE {key} 0 {}\r\n", data.len()),
                Protocol::Meta => format!("VA {} k{key}\r\n", data.len()),
            }
            .into_bytes();
            r.extend_from_slice(data);
            r.extend_from_slice(b"\r\n");
            r
        }

        /// A value reply with key `n`'s right value.
        fn hit(&self, n: u64) -> Vec<u8> {
            self.value_reply(n, &self.value(n, 40))
        }

        /// Delivers `bytes` in reads of at most `chunk` bytes, taking the
        /// replies after each, until all are delivered or the stream is out
        /// of step.
        fn feed(&mut self, bytes: &[u8], chunk: usize) -> (Vec<Seen>, Result<(), Desync>) {
            let mut seen = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                let room = self.matcher.spare();
                assert!(!room.is_empty(), "no room to read into");
                let n = room.len().min(chunk).min(rest.len());
                room[..n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                self.matcher.filled(n);
                let result =
                    self.matcher
                        .take(&self.keyspace, &self.values, &mut self.key_buf, |m| {
                            seen.push(match m {
                                Matched::Answered(p, ending) => Seen::Answered {
                                    kind: p.kind,
                                    ending,
                                    values: p.values,
                                },
                                Matched::WrongValue(f) => Seen::Wrong {
                                    key: f.key,
                                    op: f.op,
                                },
                            })
                        });
                if result.is_err() {
                    return (seen, result);
                }
            }
            (seen, Ok(()))
        }

        /// Delivers `bytes` in one read, which must keep the stream in step.
        fn answers(&mut self, bytes: &[u8]) -> Vec<Seen> {
            let (seen, result) = self.feed_all(bytes);
            assert_eq!(result, Ok(()), "{:?}: {seen:?}", self.proto);
            seen
        }

        /// Delivers `bytes` in one read.
        fn feed_all(&mut self, bytes: &[u8]) -> (Vec<Seen>, Result<(), Desync>) {
            self.feed(bytes, usize::MAX)
        }
    }

    fn answered(kind: OpKind, ending: Ending, values: u32) -> Seen {
        Seen::Answered {
            kind,
            ending,
            values,
        }
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// The replies that end a request, in one protocol.
    struct Ends {
        /// After the value of a get of one key (meta: the value is the end).
        get_hit: &'static [u8],
        get_miss: &'static [u8],
        /// After the values of a multi-get.
        mget: &'static [u8],
        stored: &'static [u8],
        not_stored: &'static [u8],
        deleted: &'static [u8],
    }

    impl Ends {
        fn of(proto: Protocol) -> Ends {
            match proto {
                Protocol::Classic => Ends {
                    get_hit: b"END\r\n",
                    get_miss: b"END\r\n",
                    mget: b"END\r\n",
                    stored: b"STORED\r\n",
                    not_stored: b"NOT_STORED\r\n",
                    deleted: b"DELETED\r\n",
                },
                Protocol::Meta => Ends {
                    get_hit: b"",
                    get_miss: b"EN\r\n",
                    mget: b"MN\r\n",
                    stored: b"HD\r\n",
                    not_stored: b"NS\r\n",
                    deleted: b"HD\r\n",
                },
            }
        }
    }

    /// Requests of every kind, and a stream answering them, classic or meta.
    fn mixed(rig: &mut Rig) -> (Vec<u8>, Vec<Seen>) {
        rig.send(Get, &[1]);
        rig.send(Set, &[2]);
        rig.send(Get, &[3]);
        rig.send(Mget, &[4, 5, 6]);
        rig.send(Delete, &[7]);
        rig.send(Set, &[8]);
        let e = Ends::of(rig.proto);
        let stream = cat(&[
            &rig.hit(1),
            e.get_hit,
            e.stored,
            e.get_miss,
            &rig.hit(4),
            &rig.hit(6),
            e.mget,
            e.deleted,
            e.not_stored,
        ]);
        let expect = vec![
            answered(Get, Hit, 1),
            answered(Set, Hit, 0),
            answered(Get, Hit, 0),
            answered(Mget, Hit, 2),
            answered(Delete, Hit, 0),
            answered(Set, Miss, 0),
        ];
        (stream, expect)
    }

    #[test]
    fn pipelined_replies_in_one_read_answer_their_requests_in_order() {
        for mut rig in [Rig::classic(), Rig::meta()] {
            let (stream, expect) = mixed(&mut rig);
            assert_eq!(rig.answers(&stream), expect, "{:?}", rig.proto);
            assert_eq!(rig.matcher.len(), 0, "every request answered");
        }
    }

    #[test]
    fn a_reply_split_at_every_byte_boundary_gives_the_same_outcomes() {
        for proto in [Protocol::Classic, Protocol::Meta] {
            let (stream, expect) = mixed(&mut Rig::new(proto, &["--verify", "--value-size", "40"]));
            for at in 1..stream.len() {
                let mut rig = Rig::new(proto, &["--verify", "--value-size", "40"]);
                mixed(&mut rig);
                let (mut seen, first) = rig.feed_all(&stream[..at]);
                assert_eq!(first, Ok(()), "{proto:?}, split at {at}");
                let answered_early = seen.len();
                assert_eq!(rig.matcher.len(), expect.len() - answered_early);
                let (rest, second) = rig.feed_all(&stream[at..]);
                assert_eq!(second, Ok(()), "{proto:?}, split at {at}");
                seen.extend(rest);
                assert_eq!(seen, expect, "{proto:?}, split at {at}");
            }
            // And one byte per read.
            let mut rig = Rig::new(proto, &["--verify", "--value-size", "40"]);
            mixed(&mut rig);
            assert_eq!(rig.feed(&stream, 1), (expect, Ok(())), "{proto:?}");
        }
    }

    #[test]
    fn a_reply_longer_than_the_input_buffer_waits_for_its_end() {
        let len = 3 * INPUT_START + 5;
        let mut rig = Rig::new(
            Protocol::Classic,
            &["--verify", "--value-size", &len.to_string()],
        );
        rig.send(Get, &[9]);
        rig.send(Set, &[9]);
        let stream = cat(&[
            &rig.value_reply(9, &rig.value(9, len)),
            b"END\r\nSTORED\r\n",
        ]);
        let (seen, result) = rig.feed(&stream, 4096);
        assert_eq!(result, Ok(()));
        assert_eq!(seen, [answered(Get, Hit, 1), answered(Set, Hit, 0)]);
    }

    #[test]
    fn a_multi_get_counts_the_values_of_the_keys_it_found() {
        let mut rig = Rig::classic();
        // First, middle and last keys missing in turn, then all, then none.
        rig.send(Mget, &[1, 2, 3, 4]);
        rig.send(Mget, &[1, 2, 3, 4]);
        rig.send(Mget, &[1, 2, 3, 4]);
        rig.send(Mget, &[1, 2]);
        rig.send(Mget, &[1, 2]);
        // A key asked twice is answered twice.
        rig.send(Mget, &[5, 5]);
        let stream = cat(&[
            &rig.hit(2),
            &rig.hit(3),
            &rig.hit(4),
            b"END\r\n",
            &rig.hit(1),
            &rig.hit(4),
            b"END\r\n",
            &rig.hit(1),
            &rig.hit(2),
            &rig.hit(3),
            b"END\r\n",
            b"END\r\n",
            &rig.hit(1),
            &rig.hit(2),
            b"END\r\n",
            &rig.hit(5),
            &rig.hit(5),
            b"END\r\n",
        ]);
        let values_found = [3, 2, 3, 0, 2, 2];
        assert_eq!(
            rig.answers(&stream),
            values_found.map(|v| answered(Mget, Hit, v))
        );
    }

    #[test]
    fn a_multi_get_answered_out_of_order_is_a_protocol_failure() {
        // Servers return a multi-get's values in the order of its keys; one
        // that comes back in another order cannot be told from a value of
        // the next request, so the stream is out of step.
        for proto in [Protocol::Classic, Protocol::Meta] {
            let mut rig = Rig::new(proto, &["--verify", "--value-size", "40"]);
            rig.send(Mget, &[1, 2, 3]);
            rig.send(Get, &[2]);
            let stream = cat(&[&rig.hit(2), &rig.hit(1)]);
            let (seen, result) = rig.feed_all(&stream);
            assert_eq!(result, Err(Desync::Misfit), "{proto:?}");
            assert_eq!(seen, [], "{proto:?}");
            assert_eq!(rig.matcher.len(), 2, "nothing answered: {proto:?}");
        }
        // And a value for a key that was not asked for.
        let mut rig = Rig::classic();
        rig.send(Mget, &[1, 2]);
        let (seen, result) = rig.feed_all(&rig.hit(3));
        assert_eq!((seen, result), (vec![], Err(Desync::Misfit)));
    }

    #[test]
    fn error_replies_end_their_request_and_keep_the_stream_in_step() {
        for proto in [Protocol::Classic, Protocol::Meta] {
            let mut rig = Rig::new(proto, &["--verify", "--value-size", "40"]);
            rig.send(Get, &[1]);
            rig.send(Set, &[2]);
            rig.send(Delete, &[3]);
            // An error in the middle of a multi-get ends it.
            rig.send(Mget, &[4, 5]);
            rig.send(Get, &[6]);
            let stream = cat(&[
                b"ERROR\r\n",
                b"CLIENT_ERROR bad data chunk\r\n",
                b"SERVER_ERROR out of memory\r\n",
                &rig.hit(4),
                b"SERVER_ERROR object too large for cache\r\n",
                &rig.hit(6),
                Ends::of(proto).get_hit,
            ]);
            assert_eq!(
                rig.answers(&stream),
                [
                    answered(Get, Error, 0),
                    answered(Set, ClientError, 0),
                    answered(Delete, ServerError, 0),
                    answered(Mget, ServerError, 1),
                    answered(Get, Hit, 1),
                ],
                "{proto:?}"
            );
        }
    }

    #[test]
    fn a_reply_that_does_not_fit_its_request_is_a_protocol_failure() {
        let cases: &[(Protocol, OpKind, &[u8])] = &[
            (Protocol::Classic, Get, b"STORED\r\n"),
            (Protocol::Classic, Get, b"DELETED\r\n"),
            (Protocol::Classic, Get, b"NOT_FOUND\r\n"),
            (Protocol::Classic, Set, b"END\r\n"),
            (Protocol::Classic, Set, b"DELETED\r\n"),
            (Protocol::Classic, Delete, b"STORED\r\n"),
            (Protocol::Classic, Delete, b"END\r\n"),
            (Protocol::Classic, Get, b"VERSION 1.6.0\r\n"),
            (Protocol::Meta, Get, b"HD\r\n"),
            (Protocol::Meta, Get, b"NF\r\n"),
            (Protocol::Meta, Set, b"EN\r\n"),
            (Protocol::Meta, Delete, b"NS\r\n"),
            (Protocol::Meta, Delete, b"MN\r\n"),
            // A meta value without its key cannot be matched.
            (Protocol::Meta, Get, b"VA 2\r\nab\r\n"),
        ];
        for &(proto, kind, reply) in cases {
            let mut rig = Rig::new(proto, &["--verify", "--value-size", "40"]);
            rig.send(kind, &[1]);
            rig.send(Set, &[2]);
            let stream = cat(&[reply, b"STORED\r\n"]);
            let (seen, result) = rig.feed_all(&stream);
            let what = String::from_utf8_lossy(reply);
            assert_eq!(result, Err(Desync::Misfit), "{proto:?} {kind:?} {what}");
            assert_eq!(seen, [], "{proto:?} {kind:?} {what}");
        }
        // A meta multi-get's misses are quiet: an EN there is not its end
        // (taking it so would match every later reply to the wrong
        // request), and a meta get of one key ends with EN, not MN.
        let mut rig = Rig::meta();
        rig.send(Mget, &[1, 2]);
        assert_eq!(rig.feed_all(b"EN\r\nMN\r\n"), (vec![], Err(Desync::Misfit)));
        let mut rig = Rig::meta();
        rig.send(Get, &[1]);
        assert_eq!(rig.feed_all(b"MN\r\n"), (vec![], Err(Desync::Misfit)));
        // A value for a set.
        let mut rig = Rig::classic();
        rig.send(Set, &[1]);
        assert_eq!(rig.feed_all(&rig.hit(1)), (vec![], Err(Desync::Misfit)));
        // A reply with nothing in flight, after the ones that had a request.
        let mut rig = Rig::classic();
        rig.send(Set, &[1]);
        assert_eq!(
            rig.feed_all(b"STORED\r\nSTORED\r\n"),
            (vec![answered(Set, Hit, 0)], Err(Desync::Unrequested))
        );
        // Bytes that are no reply at all.
        let mut rig = Rig::classic();
        rig.send(Get, &[1]);
        let (seen, result) = rig.feed_all(b"BOGUS\r\n");
        assert_eq!(seen, []);
        assert!(matches!(result, Err(Desync::Unparsable(_))), "{result:?}");
    }

    #[test]
    fn verify_reports_a_wrong_value_with_its_key_and_counts_it_as_a_value() {
        for proto in [Protocol::Classic, Protocol::Meta] {
            let mut rig = Rig::new(proto, &["--verify", "--value-size", "40"]);
            rig.send(Get, &[1]);
            rig.send(Mget, &[2, 3]);
            rig.send(Get, &[4]);
            let mut flipped = rig.value(2, 40);
            flipped[30] ^= 1;
            let e = Ends::of(proto);
            let stream = cat(&[
                // Key 1 answered with key 4's value: right bytes, wrong key.
                &rig.value_reply(1, &rig.value(4, 40)),
                e.get_hit,
                &rig.value_reply(2, &flipped),
                &rig.hit(3),
                e.mget,
                // Too short to hold its checksum.
                &rig.value_reply(4, b"short"),
                e.get_hit,
            ]);
            let seen = rig.answers(&stream);
            let wrong = |n: u64, op: &str| Seen::Wrong {
                key: rig.key(n),
                op: op.to_string(),
            };
            assert_eq!(
                seen,
                [
                    wrong(1, "get"),
                    answered(Get, Hit, 1),
                    wrong(2, "mget"),
                    answered(Mget, Hit, 2),
                    wrong(4, "get"),
                    answered(Get, Hit, 1),
                ],
                "{proto:?}"
            );
        }
        // Without --verify a value is not checked.
        let mut rig = Rig::new(Protocol::Classic, &["--value-size", "40"]);
        rig.send(Get, &[1]);
        let stream = cat(&[&rig.value_reply(1, b"anything"), b"END\r\n"]);
        assert_eq!(rig.feed_all(&stream), (vec![answered(Get, Hit, 1)], Ok(())));
    }

    #[test]
    fn meta_replies_answer_what_the_meta_requests_asked() {
        let mut rig = Rig::meta();
        // A meta get of one key ends with its value or its EN.
        rig.send(Get, &[1]);
        rig.send(Get, &[2]);
        // A meta multi-get (quiet gets and mn): misses say nothing, MN ends it.
        rig.send(Mget, &[3, 4, 5]);
        rig.send(Mget, &[6, 7]);
        rig.send(Set, &[1]);
        rig.send(Set, &[1]);
        rig.send(Set, &[1]);
        rig.send(Set, &[1]);
        rig.send(Delete, &[1]);
        rig.send(Delete, &[1]);
        let stream = cat(&[
            &rig.hit(1),
            b"EN\r\n",
            &rig.hit(3),
            &rig.hit(5),
            b"MN\r\n",
            b"MN\r\n",
            b"HD\r\n",
            b"NS\r\n",
            b"EX\r\n",
            b"NF\r\n",
            b"HD\r\n",
            b"NF\r\n",
        ]);
        assert_eq!(
            rig.answers(&stream),
            [
                answered(Get, Hit, 1),
                answered(Get, Hit, 0),
                answered(Mget, Hit, 2),
                answered(Mget, Hit, 0),
                answered(Set, Hit, 0),
                answered(Set, Miss, 0),
                answered(Set, Miss, 0),
                answered(Set, Miss, 0),
                answered(Delete, Hit, 0),
                answered(Delete, Miss, 0),
            ]
        );
        // A meta value with a key of another request is out of step.
        let mut rig = Rig::meta();
        rig.send(Get, &[1]);
        assert_eq!(rig.feed_all(&rig.hit(2)), (vec![], Err(Desync::Misfit)));
    }

    #[test]
    fn a_lost_connection_forgets_its_partial_reply() {
        let mut rig = Rig::classic();
        rig.send(Get, &[1]);
        let reply = rig.hit(1);
        let (seen, result) = rig.feed_all(&reply[..10]);
        assert_eq!((seen, result), (vec![], Ok(())));
        let lost: Vec<OpKind> = rig.matcher.reset().map(|p| p.kind).collect();
        assert_eq!(lost, [Get]);
        // The new connection's first reply is read from its start.
        rig.send(Set, &[1]);
        assert_eq!(
            rig.feed_all(b"STORED\r\n"),
            (vec![answered(Set, Hit, 0)], Ok(()))
        );
    }
}
