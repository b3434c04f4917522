//! One connection's life on a worker: blocking reads into a fixed buffer,
//! every complete request executed by the service's [`Session`], the replies
//! written back with vectored writes once the writes they acknowledge are
//! durable.
//!
//! Memory per connection is bounded whatever the client sends: the input
//! buffer never grows (a large value reaches the session in chunks, so it is
//! consumed as it arrives, and an oversized one is swallowed), and the
//! replies wait in a [`service::Output`], whose values are references to the
//! engine's map and which the session stops filling at the output limit,
//! in the middle of a multi-key get too: the worker writes, then the session
//! resumes. What remains is the session's own: an append or prepend value
//! (up to `--max-item-size`) gathered before it is applied.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use engine::{Engine, SyncTicket};
use service::{Output, Service, Session, Step};

use crate::pool::Serve;

/// Requests executed per `Session::process` call. The session itself stops
/// at the output limit, so a batch of pipelined gets of large values cannot
/// pile up replies; the whole batch still goes out in one vectored write.
const REQUESTS_PER_CALL: usize = 64;
/// Input buffer size floor; the buffer must also hold the longest request
/// line plus a whole unchunked value (see [`input_capacity`]).
const MIN_INPUT: usize = 16 * 1024;

/// Serves memcached connections with the shared [`Service`].
pub(crate) struct Memcached {
    pub service: Arc<Service>,
    /// Read timeout: a silent client frees its worker after this.
    pub idle_timeout: Option<Duration>,
    /// Write timeout: a client that takes none of its replies for this long
    /// frees its worker.
    pub write_timeout: Option<Duration>,
    /// Bytes of input buffer a connection starts with (and shrinks back to).
    pub input_capacity: usize,
    /// The most input buffer a connection may grow to: what the decoder may
    /// need whole (a long multi-get line), as in the event loop.
    pub max_input: usize,
}

/// The smallest input buffer that holds any request the decoder hands over
/// whole: the longest line, plus a value up to the chunking threshold and its
/// CRLF.
pub(crate) fn input_capacity(max_line_len: usize, chunk_threshold: usize) -> usize {
    (max_line_len + chunk_threshold + 2).max(MIN_INPUT)
}

impl Serve for Memcached {
    fn serve(&self, stream: TcpStream) {
        let mut conn = Connection {
            stream,
            session: self.service.session(),
            engine: self.service.engine(),
            input: vec![0; self.input_capacity],
            input_floor: self.input_capacity,
            max_input: self.max_input,
            start: 0,
            end: 0,
            out: Output::new(),
            hold: None,
        };
        match conn.run(self.idle_timeout, self.write_timeout) {
            Ok(End::ClientLeft | End::Closed) => {}
            Ok(End::Idle) => {
                self.service.stats().idle_kick();
                tracing::debug!("idle timeout: connection closed");
            }
            Ok(End::WriteStalled) => {
                tracing::debug!("client read no reply within the write timeout: connection closed");
            }
            Ok(End::NotDurable(e)) => {
                tracing::warn!(error = %e, "write not durable; connection closed without replies");
            }
            Err(e) => tracing::debug!(error = %e, "connection ended"),
        }
    }
}

/// Why a connection ended without an I/O error.
enum End {
    /// End of input (the client closed, or shutdown closed our read side).
    ClientLeft,
    /// The session asked to close (`quit`, or an error memcached closes on).
    Closed,
    /// No input for the idle timeout.
    Idle,
    /// The client took none of its replies for the write timeout.
    WriteStalled,
    /// A write could not be made durable; its replies were not sent.
    NotDurable(engine::WriteError),
}

struct Connection<'a> {
    stream: TcpStream,
    session: Session,
    engine: &'a Engine,
    /// Input buffer; `input[start..end]` is unconsumed. Grows (up to
    /// `max_input`) only for a request that needs more, and shrinks back to
    /// `input_floor` once empty.
    input: Vec<u8>,
    input_floor: usize,
    max_input: usize,
    start: usize,
    end: usize,
    /// Replies not yet written.
    out: Output,
    /// The newest not-yet-durable write whose reply is in `out`.
    hold: Option<SyncTicket>,
}

impl Connection<'_> {
    fn run(
        &mut self,
        idle_timeout: Option<Duration>,
        write_timeout: Option<Duration>,
    ) -> io::Result<End> {
        self.stream.set_read_timeout(idle_timeout)?;
        self.stream.set_write_timeout(write_timeout)?;
        loop {
            if let Some(end) = self.execute()? {
                return Ok(end);
            }
            if let Some(end) = self.flush()? {
                return Ok(end);
            }
            self.make_room()?;
            match self.stream.read(&mut self.input[self.end..]) {
                Ok(0) => return Ok(End::ClientLeft),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(End::Idle)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Executes every complete request in the buffer, sending replies early
    /// only when the session stops at the output limit. Returns `Some` when
    /// the connection must end.
    fn execute(&mut self) -> io::Result<Option<End>> {
        while self.start < self.end {
            let progress = self.session.process(
                &self.input[self.start..self.end],
                &mut self.out,
                REQUESTS_PER_CALL,
            );
            self.start += progress.consumed;
            if let Some(ticket) = progress.hold {
                self.hold_until(ticket);
            }
            match progress.step {
                Step::Close => return Ok(Some(self.flush()?.unwrap_or(End::Closed))),
                Step::OutputFull => {
                    if let Some(end) = self.flush()? {
                        return Ok(Some(end));
                    }
                }
                Step::NeedInput if progress.consumed == 0 => break,
                Step::NeedInput => {}
            }
        }
        Ok(None)
    }

    /// Keeps the newest ticket that is not yet durable. This connection's
    /// writes happen one after another, so a later ticket covers every
    /// earlier one; a ticket that is already durable (a write that wrote
    /// nothing, or durability `none`) covers nothing and is dropped.
    fn hold_until(&mut self, ticket: SyncTicket) {
        if !self.engine.is_durable(ticket) {
            self.hold = Some(ticket);
        }
    }

    /// Waits for the held writes to be durable, then writes every pending
    /// reply (vectored writes, values straight from the engine's map).
    /// `Some` means the connection must end.
    fn flush(&mut self) -> io::Result<Option<End>> {
        if let Some(ticket) = self.hold.take() {
            if let Err(e) = self.engine.wait_durable(ticket) {
                // Never acknowledge a write that may be lost: drop the
                // replies and close.
                self.out.clear();
                return Ok(Some(End::NotDurable(e)));
            }
        }
        while self.out.has_writable() {
            match self.out.write_once(&mut self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    // The write timeout: a client that does not read its
                    // replies frees its worker.
                    self.out.clear();
                    return Ok(Some(End::WriteStalled));
                }
                Err(e) => return Err(e),
            }
        }
        let mut spare = Vec::new();
        self.out.release(&mut spare);
        Ok(None)
    }

    /// Moves the unconsumed tail of the input (a partial request, usually a
    /// few bytes) to the front so the next read has the whole buffer, and
    /// grows the buffer when a partial request fills it (a multi-get line
    /// longer than the buffer), up to `max_input`.
    fn make_room(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.input.len() > self.input_floor {
                // A long request is done: give its buffer back.
                self.input = vec![0; self.input_floor];
            }
        } else if self.start > 0 {
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.input.len() {
            if self.input.len() >= self.max_input {
                // The decoder refuses anything longer than this itself, so
                // this means the limits and the buffer disagree.
                return Err(io::Error::other(
                    "request does not fit the input buffer and the decoder took none of it",
                ));
            }
            let grown = (self.input.len() * 2).min(self.max_input);
            self.input.resize(grown, 0);
        }
        Ok(())
    }
}
