//! What an event loop asks of the code that answers requests.
//!
//! The loops only move bytes. Everything else (parsing, executing, encoding,
//! stats, durability) sits behind [`Handler`], which `service::Service`
//! implements in production. Keeping the seam this narrow lets the loop's own
//! tests drive it with a tiny scripted handler, without an engine.

use std::sync::Arc;

/// The outcome of one [`Handler::process`] call.
#[derive(Debug)]
pub struct Processed<T> {
    /// Bytes of input used; the rest is offered again, with more appended.
    pub consumed: usize,
    /// The connection must be closed once the output so far is written.
    pub close: bool,
    /// Replies appended by this call must not reach the client before this
    /// ticket is durable; if it fails, the connection is closed unsent.
    pub hold: Option<T>,
    /// The output reached its limit before the input was done: write, and
    /// call again with the same input once the output has drained.
    pub output_full: bool,
}

/// Called once when a held write is durable (`true`) or its sync failed.
pub type DurableCallback = Box<dyn FnOnce(bool) + Send>;

/// Answers the requests of many connections; shared by every loop.
pub trait Handler: Send + Sync + 'static {
    /// Per-connection protocol state (a partial large value, for example).
    type Session: Send + 'static;
    /// Says when held replies may go out.
    type Ticket: Send + 'static;

    /// A fresh session for a newly accepted connection.
    fn session(self: &Arc<Self>) -> Self::Session;

    /// Executes at most `max_requests` complete requests found at the front of
    /// `input`, appending their replies to `out`. Consuming nothing, unless
    /// the output is full, means more input is needed.
    fn process(
        &self,
        session: &mut Self::Session,
        input: &[u8],
        out: &mut service::Output,
        max_requests: usize,
    ) -> Processed<Self::Ticket>;

    /// Arranges for `done` to run once `ticket` is durable. It may run at once
    /// on this thread or later on another one; it must not block.
    fn on_durable(&self, ticket: Self::Ticket, done: DurableCallback);

    /// A connection was accepted and is being served.
    fn connection_opened(&self) {}
    /// A served connection was closed, for whatever reason.
    fn connection_closed(&self) {}
    /// A connection was refused because of the connection limit, after
    /// `reply_bytes` of refusal were sent to it.
    fn connection_rejected(&self, _reply_bytes: u64) {}
    /// Serving a connection panicked; it was closed.
    fn connection_panicked(&self) {}
    /// A connection is being closed for being idle too long.
    fn idle_kick(&self) {}
}
