//! One connection's protocol state: the decoder, and a large value being
//! received in chunks. [`Session::process`] is the whole interface a
//! front-end needs: bytes in, reply bytes out, plus what to do next.
//!
//! Large values arrive as `ValueStart`/`ValueChunk`/`ValueEnd` frames so the
//! front-end's input buffer stays small; the engine has no streaming write
//! yet, so the session gathers the chunks (at most `max_item_size` bytes,
//! which the decoder enforces) and stores the value at `ValueEnd`.

use std::sync::Arc;

use engine::SyncTicket;
use protocol::{Decoder, Frame};

use crate::execute::Effects;
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
}

/// The result of one [`Session::process`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of input used; the caller drops them from its buffer.
    pub consumed: usize,
    pub step: Step,
    /// Replies appended to `out` must not be sent before this ticket is
    /// durable; if waiting fails, the connection is closed without sending
    /// them. `None`: nothing to wait for.
    pub hold: Option<SyncTicket>,
}

/// A storage request whose value is arriving in chunks.
struct PendingValue {
    command: crate::execute::OwnedStore,
    data: Vec<u8>,
}

/// One connection's state. Not shared: each connection owns one.
pub struct Session {
    service: Arc<Service>,
    decoder: Decoder,
    pending: Option<PendingValue>,
}

impl Session {
    pub(crate) fn new(service: Arc<Service>) -> Self {
        let decoder = Decoder::new(service.limits());
        Session {
            service,
            decoder,
            pending: None,
        }
    }

    /// Executes up to `max_requests` complete requests from `input`,
    /// appending their replies to `out`. Stops early at the end of the
    /// complete requests or when the connection must close.
    pub fn process(&mut self, input: &[u8], out: &mut Vec<u8>, max_requests: usize) -> Progress {
        let (mut counted_read, mut counted_written) = (0, out.len());
        let mut fx = Effects::default();
        let mut consumed = 0;
        let mut executed = 0;
        let mut step = Step::NeedInput;
        while executed < max_requests.max(1) && consumed < input.len() {
            match self.decoder.decode(&input[consumed..]) {
                Ok(None) => break,
                Ok(Some((frame, used))) => {
                    consumed += used;
                    match frame {
                        Frame::Request(request) => {
                            executed += 1;
                            if matches!(request, protocol::Request::Stats { .. }) {
                                // Counted per call, not per request (one shared
                                // atomic add, not one per request), so bring
                                // them up to date before they are reported.
                                self.count_bytes(
                                    consumed - counted_read,
                                    out.len() - counted_written,
                                );
                                (counted_read, counted_written) = (consumed, out.len());
                            }
                            self.service.run_due_flush(&mut fx);
                            self.service.execute(request, out, &mut fx);
                        }
                        Frame::ValueStart(header) => {
                            let command = crate::execute::OwnedStore::from_header(&header);
                            let capacity = command.len.min(self.service.config().max_item_size);
                            self.pending = Some(PendingValue {
                                command,
                                data: Vec::with_capacity(capacity),
                            });
                        }
                        Frame::ValueChunk(chunk) => {
                            if let Some(pending) = &mut self.pending {
                                pending.data.extend_from_slice(chunk);
                            }
                        }
                        Frame::Discarded => {}
                        Frame::ValueEnd => {
                            executed += 1;
                            if let Some(pending) = self.pending.take() {
                                self.service.run_due_flush(&mut fx);
                                pending
                                    .command
                                    .execute(&self.service, &pending.data, out, &mut fx);
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
                    consumed += error.consumed;
                    out.extend_from_slice(error.reply());
                    if error.kind == protocol::ErrorKind::TooLarge {
                        crate::stats::ServerStats::bump(
                            &self.service.stats().counters.store_too_large,
                        );
                    }
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
        self.count_bytes(consumed - counted_read, out.len() - counted_written);
        Progress {
            consumed,
            step,
            hold: fx.hold,
        }
    }

    fn count_bytes(&self, read: usize, written: usize) {
        let counters = &self.service.stats().counters;
        crate::stats::ServerStats::add(&counters.bytes_read, read as u64);
        crate::stats::ServerStats::add(&counters.bytes_written, written as u64);
    }
}
