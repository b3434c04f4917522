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

use crate::config::OpKind;
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
        (OpKind::Get | OpKind::Mget, Reply::End) => Step::Done(Ending::Hit),
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
