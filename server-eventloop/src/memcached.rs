//! The loops serving the store: `service` behind [`Handler`], the shared
//! flags mapped to [`Settings`], and [`run`].
//!
//! Nothing here interprets requests; it only forwards bytes to
//! `Session::process`, turns the engine's durability completion into a
//! loop wake-up, and reports connections to the server's stats.

use std::sync::Arc;

use engine::SyncTicket;
use service::{Flags, Service, Session, Step};

use crate::handler::{DurableCallback, Handler, Processed};
use crate::listen::Listeners;
use crate::{default_loops, serve_with, Error, Settings};
use service::Shutdown;

/// Input a connection may buffer beyond what one request can need: a line
/// plus a value below the streaming threshold. Generous, because reaching it
/// means a client broke the protocol and only then is it enforced.
const INPUT_SLACK: usize = 64 * 1024;

impl Handler for Service {
    type Session = Session;
    type Ticket = SyncTicket;

    fn session(self: &Arc<Self>) -> Session {
        Service::session(self)
    }

    fn process(
        &self,
        session: &mut Session,
        input: &[u8],
        out: &mut service::Output,
        max_requests: usize,
    ) -> Processed<SyncTicket> {
        let progress = session.process(input, out, max_requests);
        Processed {
            consumed: progress.consumed,
            close: progress.step == Step::Close,
            hold: progress.hold,
            output_full: progress.step == Step::OutputFull,
        }
    }

    fn on_durable(&self, ticket: SyncTicket, done: DurableCallback) {
        self.engine().on_durable(
            ticket,
            Box::new(move |result| {
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "write not durable; its connection is closed without replies");
                }
                done(result.is_ok());
            }),
        );
    }

    fn connection_opened(&self) {
        self.stats().connection_opened();
    }

    fn connection_closed(&self) {
        self.stats().connection_closed();
    }

    fn connection_rejected(&self, reply_bytes: u64) {
        self.stats().refused(reply_bytes);
    }

    fn connection_panicked(&self) {
        self.stats().connection_panicked();
    }

    fn idle_kick(&self) {
        self.stats().idle_kick();
    }
}

/// The loop settings the shared flags ask for: `--threads` loops (default
/// one per core), pinned unless `--pin off`, with the connection limit and
/// idle timeout. `limits` sizes the input bound.
pub fn settings_from_flags(flags: &Flags, limits: &protocol::Limits) -> Settings {
    let defaults = Settings::default();
    Settings {
        loops: flags.threads_or(default_loops()),
        pin: flags.pin_or(true),
        max_connections: flags.max_connections,
        idle_timeout: flags.idle_timeout_or(0),
        write_timeout: flags.write_timeout(),
        // What the decoder may need whole, as the thread pool allows, with
        // room for the next request's first bytes.
        max_input: limits.max_buffered() + INPUT_SLACK,
        ..defaults
    }
}

/// Serves `service` on `listeners` until `shutdown` is triggered; then
/// stops accepting, sends the replies in hand (and those waiting on a sync)
/// and returns. The caller closes the engine afterwards.
pub fn run(
    service: Arc<Service>,
    settings: &Settings,
    listeners: Listeners,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    serve_with(service, settings, listeners, shutdown)
}
