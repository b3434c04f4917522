//! One connection's life on a worker: blocking reads into a fixed buffer,
//! every complete request executed by the [`Handler`] (the service's
//! `Session` in the server), the replies written back with vectored writes
//! once the writes they acknowledge are durable.
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

use service::frontend::{Config, Handler};
use service::{Output, Step};

/// Requests executed per `Handler::process` call. The session itself stops
/// at the output limit, so a batch of pipelined gets of large values cannot
/// pile up replies; the whole batch still goes out in one vectored write.
const REQUESTS_PER_CALL: usize = 64;
/// Input buffer size floor; the buffer must also hold the longest request
/// line plus a whole unchunked value (see [`Settings::new`]).
const MIN_INPUT: usize = 16 * 1024;

/// What every connection of the pool is allowed.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Read timeout: a silent client frees its worker after this.
    idle_timeout: Option<Duration>,
    /// Write timeout: a client that takes none of its replies for this long
    /// frees its worker.
    write_timeout: Option<Duration>,
    /// Bytes of input buffer a connection starts with (and shrinks back to):
    /// the longest line, plus a value up to the chunking threshold and its
    /// CRLF, so any request the decoder hands over whole fits.
    input_capacity: usize,
    /// The most input buffer a connection may grow to (a long multi-get
    /// line), as in the event loop.
    max_input: usize,
}

impl Settings {
    pub(crate) fn new(config: &Config) -> Settings {
        let limits = &config.limits;
        Settings {
            idle_timeout: config.idle_timeout,
            write_timeout: config.write_timeout,
            input_capacity: (limits.max_line_len + limits.chunk_threshold + 2).max(MIN_INPUT),
            max_input: config.max_input(),
        }
    }
}

/// Serves one connection until it ends; blocks the worker meanwhile.
pub(crate) fn serve<H: Handler>(handler: &Arc<H>, stream: TcpStream, settings: &Settings) {
    let mut conn = Connection {
        stream,
        session: handler.session(),
        handler: &**handler,
        input: vec![0; settings.input_capacity],
        input_floor: settings.input_capacity,
        max_input: settings.max_input,
        start: 0,
        end: 0,
        out: Output::new(),
        hold: None,
    };
    match conn.run(settings.idle_timeout, settings.write_timeout) {
        Ok(End::ClientLeft | End::Closed | End::NotDurable) => {}
        Ok(End::Idle) => {
            handler.idle_kick();
            tracing::debug!("idle timeout: connection closed");
        }
        Ok(End::WriteStalled) => {
            tracing::debug!("client read no reply within the write timeout: connection closed");
        }
        Err(e) => tracing::debug!(error = %e, "connection ended"),
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
    /// A write could not be made durable; its replies were not sent (the
    /// handler logged why).
    NotDurable,
}

struct Connection<'a, H: Handler> {
    stream: TcpStream,
    session: H::Session,
    handler: &'a H,
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
    /// The greatest ticket of the writes whose replies are in `out`.
    hold: Option<H::Ticket>,
}

impl<H: Handler> Connection<'_, H> {
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
            let progress = self.handler.process(
                &mut self.session,
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

    /// Keeps the greatest ticket: this connection's writes happen one after
    /// another, so it covers every earlier one (a write that wrote nothing
    /// has the least ticket and covers nothing).
    fn hold_until(&mut self, ticket: H::Ticket) {
        if self.hold.as_ref().is_none_or(|held| *held < ticket) {
            self.hold = Some(ticket);
        }
    }

    /// Waits for the held writes to be durable, then writes every pending
    /// reply (vectored writes, values straight from the engine's map).
    /// `Some` means the connection must end.
    fn flush(&mut self) -> io::Result<Option<End>> {
        if let Some(ticket) = self.hold.take() {
            if !self.handler.wait_durable(ticket) {
                // Never acknowledge a write that may be lost: drop the
                // replies and close.
                self.out.clear();
                return Ok(Some(End::NotDurable));
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
