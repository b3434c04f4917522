//! One client connection as an event loop sees it: the socket, the protocol
//! session, its input buffer, and its queue of replies ([`service::Output`],
//! shared with the thread pool: segments written with vectored writes,
//! values by reference).
//!
//! Memory per idle connection is the point of this module. An idle
//! connection owns no buffer at all: when it becomes readable it borrows the
//! loop's spare input buffer (and, to reply, the spare output buffer), and
//! when it has nothing left pending it hands them back. Only a connection
//! holding a partial request or unsent replies keeps a buffer, and a buffer
//! that grew for one large request is freed (or cut down to a small one)
//! once the request is done.

use std::io::{self, Read};
use std::time::Instant;

use mio::net::TcpStream;
use service::Output;

/// Size of a freshly allocated input buffer: one read of this many bytes
/// takes in a large pipeline, and a value below the protocol's streaming
/// threshold fits whole.
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// A read is only attempted with at least this much free space; below it the
/// buffer is compacted or grown first.
const MIN_READ: usize = 4 * 1024;

/// A connection left holding a partial request keeps at most a buffer of
/// this size when the partial request is small; see [`Input::release`].
const SMALL_BUFFER: usize = 4 * 1024;

/// Buffers larger than this (grown for a large request or reply) are freed
/// rather than kept as the loop's spare.
pub(crate) const SPARE_MAX: usize = 2 * READ_BUFFER;

/// Bytes read from the client and not yet consumed by the session.
///
/// `data` is zero-filled once when allocated and then reused, so reads go
/// straight into it without unsafe code or re-zeroing.
#[derive(Debug, Default)]
pub(crate) struct Input {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    /// The bytes waiting to be processed.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The memory this buffer holds (for tests of the idle footprint).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space to read into, taking the loop's spare buffer when this
    /// connection has none, and compacting or growing when space is short.
    fn space(&mut self, spare: &mut Vec<u8>) -> &mut [u8] {
        if self.data.is_empty() {
            self.data = std::mem::take(spare);
            if self.data.is_empty() {
                self.data = vec![0; READ_BUFFER];
            }
        }
        if self.data.len() - self.end < MIN_READ {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.data.len() - self.end < MIN_READ {
                let grown = (self.data.len() * 2).max(self.end + MIN_READ);
                self.data.resize(grown, 0);
            }
        }
        &mut self.data[self.end..]
    }

    /// Gives the buffer back to the loop when empty, or trades a big buffer
    /// holding a small partial request for a small one.
    fn release(&mut self, spare: &mut Vec<u8>) {
        let big = if self.is_empty() {
            self.start = 0;
            self.end = 0;
            std::mem::take(&mut self.data)
        } else if self.data.len() > SMALL_BUFFER && self.len() <= SMALL_BUFFER / 2 {
            let mut small = vec![0; SMALL_BUFFER];
            let n = self.len();
            small[..n].copy_from_slice(self.pending());
            self.start = 0;
            self.end = n;
            std::mem::replace(&mut self.data, small)
        } else {
            return;
        };
        if spare.is_empty() && big.len() <= SPARE_MAX {
            *spare = big;
        }
    }
}

/// A served connection.
pub(crate) struct Connection<S> {
    pub(crate) stream: TcpStream,
    pub(crate) session: S,
    /// Tells this connection apart from a later one reusing its slab slot,
    /// so a late sync completion cannot release another client's replies.
    pub(crate) id: u64,
    pub(crate) input: Input,
    pub(crate) output: Output,
    /// Last successful read or write, for the idle timeout.
    pub(crate) last_active: Instant,
    /// The session consumed nothing from the pending input: read before
    /// processing again.
    pub(crate) starved: bool,
    /// The client sent end-of-input, or the server decided to close: write
    /// what is pending, then close.
    pub(crate) closing: bool,
    /// WRITABLE is part of the registered interest.
    pub(crate) writable: bool,
    /// The token sits in the loop's queue of connections to serve again.
    pub(crate) queued: bool,
    /// The last read came back short: the socket had nothing more then, and
    /// edge-triggered epoll reports the next arrival, so reading again
    /// before that event would only return WouldBlock (one syscall saved
    /// per request for a client that waits for each reply).
    pub(crate) drained: bool,
}

impl<S> Connection<S> {
    pub(crate) fn new(stream: TcpStream, session: S, id: u64) -> Self {
        Self {
            stream,
            session,
            id,
            input: Input::default(),
            output: Output::new(),
            last_active: Instant::now(),
            starved: false,
            closing: false,
            writable: false,
            queued: false,
            drained: false,
        }
    }

    /// One read into the input buffer; `Ok(0)` is end-of-input. Sets
    /// [`Connection::drained`] when the read did not fill the space offered.
    pub(crate) fn read(&mut self, spare: &mut Vec<u8>) -> io::Result<usize> {
        let space = self.input.space(spare);
        let offered = space.len();
        let n = self.stream.read(space)?;
        self.input.end += n;
        if n > 0 {
            self.last_active = Instant::now();
        }
        self.drained = n > 0 && n < offered;
        Ok(n)
    }

    /// Writes what may be written until done or the socket would block.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.output.flush_to(&mut self.stream)? > 0 {
            self.last_active = Instant::now();
        }
        Ok(())
    }

    /// Returns buffers the connection no longer needs to the loop.
    pub(crate) fn release_buffers(&mut self, spare_in: &mut Vec<u8>, spare_out: &mut Vec<u8>) {
        self.input.release(spare_in);
        self.output.release(spare_out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_borrows_the_spare_and_gives_it_back_when_consumed() {
        let mut spare = vec![0; READ_BUFFER];
        let mut input = Input::default();
        let space = input.space(&mut spare);
        space[..5].copy_from_slice(b"get a");
        input.end += 5;
        assert!(spare.is_empty(), "the spare moved into the connection");
        assert_eq!(input.pending(), b"get a");
        input.consume(5);
        input.release(&mut spare);
        assert_eq!(input.capacity(), 0);
        assert_eq!(spare.len(), READ_BUFFER);
    }

    #[test]
    fn a_small_partial_request_keeps_only_a_small_buffer() {
        let mut spare = Vec::new();
        let mut input = Input::default();
        let space = input.space(&mut spare);
        space[..3].copy_from_slice(b"get");
        input.end += 3;
        assert_eq!(input.capacity(), READ_BUFFER);
        input.release(&mut spare);
        assert_eq!(input.capacity(), SMALL_BUFFER);
        assert_eq!(input.pending(), b"get");
        assert_eq!(spare.len(), READ_BUFFER, "the big buffer went back");
    }

    #[test]
    fn input_compacts_then_grows_when_short_of_space() {
        let mut spare = Vec::new();
        let mut input = Input::default();
        let len = input.space(&mut spare).len();
        input.end += len - 10;
        input.consume(len - 20);
        // 10 pending bytes at the far end: compaction makes room.
        let space = input.space(&mut spare).len();
        assert_eq!(input.start, 0);
        assert_eq!(space, READ_BUFFER - 10);
        // Now fill it: it must grow.
        input.end += space;
        assert!(input.space(&mut spare).len() >= MIN_READ);
        assert_eq!(input.len(), READ_BUFFER);
        // A grown buffer is not kept as the spare once emptied.
        input.consume(READ_BUFFER);
        input.release(&mut spare);
        assert!(spare.is_empty() || spare.len() <= SPARE_MAX);
    }
}
