//! Invariants of the request decoder, checked on arbitrary input. Shared by
//! the cargo-fuzz target (`fuzz/`) and the bounded property test
//! (`tests/fuzz_ci.rs`), so both hunt for the same bugs.

use crate::decoder::{Decoder, Frame};
use crate::error::ErrorKind;
use crate::limits::Limits;
use crate::request::{MetaFlags, Request};

/// What the decoder produced, with chunking differences smoothed out so a
/// buffer decoded at once and the same bytes fed one at a time compare equal.
#[derive(Debug, PartialEq)]
enum Event {
    Request(String),
    ValueStart(String),
    Chunk(Vec<u8>),
    ValueEnd,
    Discarded,
    Error(ErrorKind, bool, bool),
}

fn push(events: &mut Vec<Event>, e: Event) {
    match (events.last_mut(), e) {
        (Some(Event::Chunk(prev)), Event::Chunk(more)) => prev.extend_from_slice(&more),
        (Some(Event::Discarded), Event::Discarded) => {}
        (_, e) => events.push(e),
    }
}

fn check_key(key: &[u8], limits: &Limits) {
    assert!(!key.is_empty(), "empty key");
    assert!(key.len() <= limits.max_key_len, "key too long: {key:?}");
    // Tokens split on spaces, lines end at `\n` and are cut at NUL.
    assert!(
        !key.iter().any(|&b| matches!(b, b' ' | b'\n' | 0)),
        "key with a space, line end or NUL: {key:?}"
    );
}

fn check_meta(flags: &MetaFlags<'_>) {
    if let Some(tokens) = &flags.tokens {
        assert!(tokens.iter().all(|t| !t.is_empty()));
    }
}

fn check_request(r: &Request<'_>, limits: &Limits) {
    match r {
        Request::Get { keys }
        | Request::Gets { keys }
        | Request::Gat { keys, .. }
        | Request::Gats { keys, .. } => keys.iter().for_each(|k| check_key(k, limits)),
        Request::Store { header, data } => {
            check_key(header.key, limits);
            assert_eq!(header.len, data.len(), "value length mismatch");
            assert!(header.len <= limits.chunk_threshold);
            assert!(!limits.too_large(header.key.len(), header.flags, header.len));
        }
        Request::Delete { key, .. }
        | Request::Incr { key, .. }
        | Request::Decr { key, .. }
        | Request::Touch { key, .. } => check_key(key, limits),
        Request::MetaGet { key, flags } | Request::MetaDelete { key, flags } => {
            check_key(key, limits);
            check_meta(flags);
        }
        _ => {}
    }
}

/// Decodes `input` as one connection would, in `step`-byte reads (0: all at
/// once), and returns the events. Panics if an invariant breaks.
fn run(input: &[u8], limits: Limits, step: usize) -> Vec<Event> {
    let mut decoder = Decoder::new(limits);
    let mut events = Vec::new();
    let mut pos = 0; // start of unconsumed input
    let mut avail = if step == 0 { input.len() } else { 0 };
    // The expected size of a streamed value, checked at its end.
    let mut streaming: Option<(usize, usize)> = None;
    loop {
        let buf = &input[pos..avail];
        match decoder.decode(buf) {
            Ok(Some((frame, used))) => {
                assert!(used > 0, "a frame must use bytes");
                assert!(used <= buf.len(), "used {used} of {} bytes", buf.len());
                match frame {
                    Frame::Request(r) => {
                        check_request(&r, &limits);
                        push(&mut events, Event::Request(format!("{r:?}")));
                    }
                    Frame::ValueStart(h) => {
                        check_key(h.key, &limits);
                        assert!(h.len > limits.chunk_threshold);
                        assert!(streaming.is_none());
                        streaming = Some((h.len, 0));
                        push(&mut events, Event::ValueStart(format!("{h:?}")));
                    }
                    Frame::ValueChunk(c) => {
                        assert!(!c.is_empty());
                        let s = streaming.as_mut().expect("chunk outside a value");
                        s.1 += c.len();
                        assert!(s.1 <= s.0, "more value bytes than announced");
                        push(&mut events, Event::Chunk(c.to_vec()));
                    }
                    Frame::ValueEnd => {
                        let (len, got) = streaming.take().expect("end outside a value");
                        assert_eq!(len, got, "value ended early");
                        push(&mut events, Event::ValueEnd);
                    }
                    Frame::Discarded => push(&mut events, Event::Discarded),
                }
                pos += used;
            }
            Ok(None) => {
                if avail == input.len() {
                    return events;
                }
                avail = (avail + step).min(input.len());
            }
            Err(e) => {
                assert!(e.consumed <= buf.len(), "consumed more than the buffer");
                assert!(
                    e.consumed > 0 || e.close,
                    "a resyncable error must use bytes"
                );
                if e.kind != ErrorKind::BadDataChunk {
                    assert!(streaming.is_none() || e.kind == ErrorKind::LineTooLong);
                }
                streaming = None;
                push(&mut events, Event::Error(e.kind, e.close, e.silent));
                if e.close {
                    return events;
                }
                pos += e.consumed;
            }
        }
        // Keep `avail` ahead of `pos` when feeding piecewise.
        if avail < pos {
            avail = pos;
        }
    }
}

/// Checks every decoder invariant on `input`: no panic, nothing consumed
/// beyond the buffer, keys free of spaces, line ends and NUL and within
/// the limit, values of the announced length, and the same result whether
/// the bytes arrive at once or a few at a time (so incomplete input is never
/// mistaken for a complete or a bad request). Panics on a violation.
pub fn check_decoder(input: &[u8]) {
    // Small limits so short inputs reach every path (streaming, too large,
    // line too long).
    let limits = Limits {
        max_key_len: 250,
        max_line_len: 300,
        max_item_size: 4096,
        chunk_threshold: 64,
    };
    let whole = run(input, limits, 0);
    for step in [1, 7] {
        // Byte-at-a-time is quadratic; long inputs are covered by step 7.
        if step == 1 && input.len() > 2048 {
            continue;
        }
        let pieces = run(input, limits, step);
        assert_eq!(whole, pieces, "decoding in {step}-byte reads differs");
    }
}
