//! Executes one request against the engine and appends memcached's reply:
//! one function per command family, each with memcached 1.6.18's semantics
//! and counters. The session ([`crate::Session`]) decodes and dispatches;
//! this module owns what a command does.
//!
//! Every conditional write (add, replace, cas, append, prepend, incr, decr,
//! touch) is one engine operation (`put` with a [`Condition`] or `update`),
//! so it is atomic against other connections. Each write's sync ticket is
//! folded into [`Effects::hold`] so the front-end holds the reply until the
//! write is durable. A write that fails is answered `SERVER_ERROR <reason>`
//! even under `noreply`: a client must learn that a write it did not wait
//! for was lost.
//!
//! Every reply is spelled by `protocol` ([`Response`] and its encoders),
//! written straight into the connection's [`Output`].

use crate::output::Output;
use std::sync::atomic::Ordering::Relaxed;

use engine::{Condition, Meta, PutOutcome, SyncTicket, Update, WriteError};
use protocol::{
    encode_data_end, encode_server_error, encode_value_header, MetaStatus, Request, Response,
    StorageCommand, StorageHeader,
};

use crate::arith::{self, Direction};
use crate::stats::{Counters, ServerStats};
use crate::Service;

/// What executing requests left for the front-end besides reply bytes.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// The newest write not yet durable.
    pub hold: Option<SyncTicket>,
    /// The connection must close after the replies (quit).
    pub close: bool,
}

impl Effects {
    pub(crate) fn wrote(&mut self, service: &Service, ticket: SyncTicket) {
        if service.engine.is_durable(ticket) {
            return;
        }
        self.hold = Some(self.hold.map_or(ticket, |h| h.max(ticket)));
    }
}

/// Appends a reply unless `noreply` asked for silence.
fn reply(out: &mut Output, noreply: bool, reply: Response<'_>) {
    if !noreply {
        reply.encode(out);
    }
}

/// The reply to a storage command's outcome, counted as memcached counts it.
fn store_outcome(c: &Counters, outcome: PutOutcome, is_cas: bool) -> Response<'static> {
    match outcome {
        PutOutcome::Stored { .. } => {
            ServerStats::bump(&c.total_items);
            if is_cas {
                ServerStats::bump(&c.cas_hits);
            }
            Response::Stored
        }
        PutOutcome::NotStored => Response::NotStored,
        PutOutcome::Exists => {
            ServerStats::bump(&c.cas_badval);
            Response::Exists
        }
        PutOutcome::NotFound => {
            ServerStats::bump(&c.cas_misses);
            Response::NotFound
        }
    }
}

/// The engine condition a storage command's value is put under, for a
/// value that came whole and one streamed in chunks alike; `None` for
/// append and prepend, which read the old value (an engine `update`).
pub(crate) fn condition(h: &StorageHeader<'_>) -> Option<Condition> {
    let cond = match h.command {
        StorageCommand::Append | StorageCommand::Prepend => return None,
        StorageCommand::Set => Condition::Always,
        StorageCommand::Add => Condition::IfAbsent,
        StorageCommand::Replace => Condition::IfPresent,
        StorageCommand::Cas => Condition::IfSeq(h.cas),
    };
    // An `ms` with `C` compares in every mode but add, which ignores it
    // (as memcached does: there is no item to compare with).
    if h.command == StorageCommand::Add {
        return Some(cond);
    }
    Some(h.compare_cas().map_or(cond, Condition::IfSeq))
}

/// What a storage write did: its outcome (`None`: an append or prepend
/// whose result would exceed the item size limit) and its sync ticket.
pub(crate) type Stored = Result<(Option<PutOutcome>, SyncTicket), WriteError>;

/// How a multi-key request goes: its first `skip` keys were answered by an
/// earlier call, and it stops once the output holds `limit` bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resume {
    pub skip: usize,
    pub limit: usize,
}

impl Service {
    /// Executes one complete request. A multi-key get skips its first
    /// `skip` keys (answered by an earlier call) and stops when the output
    /// reaches `limit` with keys left: then it returns how many of its keys
    /// are answered, and the caller runs it again later with that `skip`.
    pub(crate) fn execute(
        &self,
        request: Request<'_>,
        out: &mut Output,
        fx: &mut Effects,
        skip: usize,
        limit: usize,
    ) -> Option<usize> {
        let r = Resume { skip, limit };
        match request {
            Request::Get { keys } => return self.exec_get(keys, false, None, out, fx, r),
            Request::Gets { keys } => return self.exec_get(keys, true, None, out, fx, r),
            Request::Gat { exptime, keys } => {
                return self.exec_get(keys, false, Some(exptime), out, fx, r)
            }
            Request::Gats { exptime, keys } => {
                return self.exec_get(keys, true, Some(exptime), out, fx, r)
            }
            Request::Store { header, data } => self.exec_storage(&header, data, out, fx),
            Request::Delete { key, noreply } => self.exec_delete(key, noreply, out, fx),
            Request::Incr {
                key,
                delta,
                noreply,
            } => self.exec_arith(key, delta, Direction::Incr, noreply, out, fx),
            Request::Decr {
                key,
                delta,
                noreply,
            } => self.exec_arith(key, delta, Direction::Decr, noreply, out, fx),
            Request::Touch {
                key,
                exptime,
                noreply,
            } => self.exec_touch(key, exptime, noreply, out, fx),
            Request::FlushAll { delay, noreply } => self.exec_flush(delay, noreply, out, fx),
            Request::Version => self.exec_version(out),
            Request::Verbosity { level, noreply } => self.exec_verbosity(level, noreply, out),
            Request::Stats { args } => {
                let mut args = args.iter();
                match (args.next(), args.next()) {
                    (group, None) => self.exec_stats(group, out),
                    _ => Response::Error.encode(out),
                }
            }
            Request::Quit => fx.close = true,
            Request::MetaGet { key, flags } => self.exec_mg(key, &flags, out, fx),
            Request::MetaDelete { key, flags } => self.exec_md(key, &flags, out, fx),
            Request::MetaNoop => {
                ServerStats::bump(&self.stats.counters().cmd_meta);
                Response::Meta {
                    status: MetaStatus::Mn,
                    flags: b"",
                    data: None,
                }
                .encode(out);
            }
        }
        None
    }

    /// A classic storage command or `ms`, with its whole value.
    pub(crate) fn exec_storage(
        &self,
        h: &StorageHeader<'_>,
        data: &[u8],
        out: &mut Output,
        fx: &mut Effects,
    ) {
        match &h.meta {
            Some(meta) => self.exec_ms(h, meta, data, out, fx),
            None => self.exec_store(h, data, out, fx),
        }
    }

    /// get / gets (`touch: None`) and gat / gats (`touch: Some(exptime)`).
    /// Values are queued by reference (see [`Output::push_value`]); the
    /// request stops between two keys once the output holds `r.limit`
    /// bytes, returning the keys answered so far.
    pub(crate) fn exec_get<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        with_cas: bool,
        touch: Option<i64>,
        out: &mut Output,
        fx: &mut Effects,
        r: Resume,
    ) -> Option<usize> {
        let c = &self.stats.counters();
        let mut keys = keys.into_iter().enumerate().skip(r.skip).peekable();
        while let Some((i, key)) = keys.next() {
            ServerStats::bump(&c.cmd_get);
            let found = match touch {
                None => self.engine.get(key).map_err(|e| e.to_string()).map(|item| {
                    item.map(|item| {
                        encode_value_header(
                            out,
                            key,
                            item.flags,
                            item.value.len(),
                            with_cas.then_some(item.seq),
                        );
                        out.push_value(&item.value);
                        encode_data_end(out);
                    })
                }),
                Some(exptime) => {
                    ServerStats::bump(&c.cmd_touch);
                    let found = self.touch_item(key, exptime, fx).map(|written| {
                        written.map(|(flags, value, seq)| {
                            encode_value_header(
                                out,
                                key,
                                flags,
                                value.len(),
                                with_cas.then_some(seq),
                            );
                            out.extend_from_slice(&value);
                            encode_data_end(out);
                        })
                    });
                    match &found {
                        Ok(Some(())) => ServerStats::bump(&c.touch_hits),
                        Ok(None) => ServerStats::bump(&c.touch_misses),
                        Err(_) => {}
                    }
                    found.map_err(|e| e.to_string())
                }
            };
            match found {
                Ok(Some(())) => ServerStats::bump(&c.get_hits),
                Ok(None) => ServerStats::bump(&c.get_misses),
                Err(e) => {
                    encode_server_error(out, &e);
                    return None;
                }
            }
            if keys.peek().is_some() && out.pending() >= r.limit {
                return Some(i + 1);
            }
        }
        Response::End.encode(out);
        None
    }

    /// Rewrites `key` with a new expiry, keeping value and flags. Returns
    /// the item as written (flags, value, new CAS), `None` if missing.
    ///
    /// The engine has no metadata-only write, so a touch rewrites the value
    /// and, unlike memcached, gives the item a new CAS value.
    fn touch_item(
        &self,
        key: &[u8],
        exptime: i64,
        fx: &mut Effects,
    ) -> Result<Option<(u32, Vec<u8>, u64)>, WriteError> {
        let expiry = self.expiry(exptime);
        let written = self.engine.update(key, |item| match item {
            None => (Update::Keep, None),
            Some(item) => {
                let value = item.value.to_vec();
                let meta = Meta {
                    flags: item.flags,
                    expiry,
                };
                (
                    Update::Put {
                        value: value.clone(),
                        meta,
                    },
                    Some((item.flags, value)),
                )
            }
        })?;
        fx.wrote(self, written.ticket);
        // The ticket of a put carries the sequence number of the record it wrote.
        Ok(written
            .result
            .map(|(flags, value)| (flags, value, written.ticket.seq())))
    }

    /// touch.
    pub(crate) fn exec_touch(
        &self,
        key: &[u8],
        exptime: i64,
        noreply: bool,
        out: &mut Output,
        fx: &mut Effects,
    ) {
        let c = &self.stats.counters();
        ServerStats::bump(&c.cmd_touch);
        match self.touch_item(key, exptime, fx) {
            Ok(Some(_)) => {
                ServerStats::bump(&c.touch_hits);
                reply(out, noreply, Response::Touched);
            }
            Ok(None) => {
                ServerStats::bump(&c.touch_misses);
                reply(out, noreply, Response::NotFound);
            }
            Err(e) => encode_server_error(out, &e),
        }
    }

    /// set, add, replace, append, prepend, cas, with the whole value.
    pub(crate) fn exec_store(
        &self,
        h: &StorageHeader<'_>,
        data: &[u8],
        out: &mut Output,
        fx: &mut Effects,
    ) {
        let c = &self.stats.counters();
        ServerStats::bump(&c.cmd_set);
        if self.limits.too_large(h.key.len(), h.flags, data.len()) {
            ServerStats::bump(&c.store_too_large);
            if h.command == StorageCommand::Set {
                self.drop_stale(h.key, fx);
            }
            reply(out, h.noreply, Response::TOO_LARGE);
            return;
        }
        let stored = self.write_store(h, data);
        self.reply_store(h, stored, out, fx);
    }

    /// Writes a storage command's whole value: one engine operation under
    /// the command's [`condition`], or for append and prepend one `update`
    /// that keeps the item's flags and expiry (and compares an `ms`'s CAS).
    pub(crate) fn write_store(&self, h: &StorageHeader<'_>, data: &[u8]) -> Stored {
        let key = h.key;
        if let Some(cond) = condition(h) {
            let meta = Meta {
                flags: h.flags,
                expiry: self.expiry(h.exptime),
            };
            return self
                .engine
                .put(key, data, meta, cond)
                .map(|w| (Some(w.result), w.ticket));
        }
        let limits = self.limits;
        let cas = h.compare_cas();
        let append = h.command == StorageCommand::Append;
        self.engine
            .update(key, |item| match item {
                None => (Update::Keep, Some(PutOutcome::NotStored)),
                Some(item) if cas.is_some_and(|cas| cas != item.seq) => {
                    (Update::Keep, Some(PutOutcome::Exists))
                }
                Some(item)
                    if limits.too_large(key.len(), item.flags, item.value.len() + data.len()) =>
                {
                    (Update::Keep, None)
                }
                Some(item) => {
                    let mut value = Vec::with_capacity(item.value.len() + data.len());
                    if append {
                        value.extend_from_slice(&item.value);
                        value.extend_from_slice(data);
                    } else {
                        value.extend_from_slice(data);
                        value.extend_from_slice(&item.value);
                    }
                    let meta = Meta {
                        flags: item.flags,
                        expiry: item.expiry,
                    };
                    (
                        Update::Put { value, meta },
                        Some(PutOutcome::Stored { seq: 0 }),
                    )
                }
            })
            .map(|w| {
                // The ticket of a put carries the sequence number it wrote.
                let result = match w.result {
                    Some(PutOutcome::Stored { .. }) => Some(PutOutcome::Stored {
                        seq: w.ticket.seq(),
                    }),
                    other => other,
                };
                (result, w.ticket)
            })
    }

    /// Replies to a classic storage command's write, whether its value came
    /// whole or was streamed in chunks.
    pub(crate) fn reply_store(
        &self,
        h: &StorageHeader<'_>,
        stored: Stored,
        out: &mut Output,
        fx: &mut Effects,
    ) {
        let (result, ticket) = match stored {
            Ok(r) => r,
            Err(e) => {
                encode_server_error(out, &e);
                return;
            }
        };
        fx.wrote(self, ticket);
        let c = &self.stats.counters();
        let text = match result {
            None => Response::OUT_OF_MEMORY,
            Some(outcome) => store_outcome(c, outcome, h.command == StorageCommand::Cas),
        };
        reply(out, h.noreply, text);
    }

    /// Removes `key` after a `set` of it was refused as too large, as
    /// memcached does, so that no client reads the value the failed set
    /// meant to replace. Nothing to report: the refusal is the reply.
    pub(crate) fn drop_stale(&self, key: &[u8], fx: &mut Effects) {
        match self.engine.delete(key) {
            Ok(w) => fx.wrote(self, w.ticket),
            Err(e) => {
                tracing::warn!(error = %e, "could not remove the value a refused set replaces")
            }
        }
    }

    /// delete.
    pub(crate) fn exec_delete(
        &self,
        key: &[u8],
        noreply: bool,
        out: &mut Output,
        fx: &mut Effects,
    ) {
        let c = &self.stats.counters();
        match self.engine.delete(key) {
            Ok(w) => {
                fx.wrote(self, w.ticket);
                if w.result {
                    ServerStats::bump(&c.delete_hits);
                    reply(out, noreply, Response::Deleted);
                } else {
                    ServerStats::bump(&c.delete_misses);
                    reply(out, noreply, Response::NotFound);
                }
            }
            Err(e) => encode_server_error(out, &e),
        }
    }

    /// incr / decr.
    pub(crate) fn exec_arith(
        &self,
        key: &[u8],
        delta: u64,
        direction: Direction,
        noreply: bool,
        out: &mut Output,
        fx: &mut Effects,
    ) {
        enum Outcome {
            Missing,
            NonNumeric,
            Value(u64),
        }
        let written = self.engine.update(key, |item| {
            let Some(item) = item else {
                return (Update::Keep, Outcome::Missing);
            };
            let Some(current) = arith::parse_counter(&item.value) else {
                return (Update::Keep, Outcome::NonNumeric);
            };
            let next = arith::apply(current, delta, direction);
            let value = arith::encode_counter(next, item.value.len());
            let meta = Meta {
                flags: item.flags,
                expiry: item.expiry,
            };
            (Update::Put { value, meta }, Outcome::Value(next))
        });
        let c = &self.stats.counters();
        let (hits, misses) = match direction {
            Direction::Incr => (&c.incr_hits, &c.incr_misses),
            Direction::Decr => (&c.decr_hits, &c.decr_misses),
        };
        match written {
            Ok(w) => {
                fx.wrote(self, w.ticket);
                match w.result {
                    Outcome::Missing => {
                        ServerStats::bump(misses);
                        reply(out, noreply, Response::NotFound);
                    }
                    Outcome::NonNumeric => reply(out, noreply, Response::NON_NUMERIC),
                    Outcome::Value(n) => {
                        ServerStats::bump(hits);
                        reply(out, noreply, Response::Number(n));
                    }
                }
            }
            Err(e) => encode_server_error(out, &e),
        }
    }

    /// flush_all [delay]. A delay schedules the flush: the first request
    /// executed at or after that time runs it first (see
    /// [`Service::run_due_flush`]), which no client can tell apart from a
    /// flush on the dot, and needs no timer thread. A later flush_all
    /// replaces a pending one, as in memcached.
    pub(crate) fn exec_flush(&self, delay: i64, noreply: bool, out: &mut Output, fx: &mut Effects) {
        ServerStats::bump(&self.stats.counters().cmd_flush);
        if delay > 0 {
            let at = self.expiry(delay);
            self.flush_at.store(u64::from(at.max(1)), Relaxed);
            reply(out, noreply, Response::Ok);
            return;
        }
        self.flush_at.store(0, Relaxed);
        match self.engine.clear() {
            Ok(w) => {
                fx.wrote(self, w.ticket);
                reply(out, noreply, Response::Ok);
            }
            Err(e) => encode_server_error(out, &e),
        }
    }

    /// Runs a scheduled flush_all whose time has come. Called before each
    /// request; costs one atomic load when none is pending.
    pub(crate) fn run_due_flush(&self, fx: &mut Effects) {
        let at = self.flush_at.load(Relaxed);
        if at == 0 || u64::from(self.now()) < at {
            return;
        }
        // Only one session runs it, even when many notice at once.
        if self
            .flush_at
            .compare_exchange(at, 0, Relaxed, Relaxed)
            .is_ok()
        {
            match self.engine.clear() {
                Ok(w) => fx.wrote(self, w.ticket),
                Err(e) => tracing::error!(error = %e, "scheduled flush_all failed"),
            }
        }
    }

    /// stats [group].
    pub(crate) fn exec_stats(&self, group: Option<&[u8]>, out: &mut Output) {
        match group {
            None | Some(b"") => {
                let ctx = crate::stats::StatsContext {
                    stats: &self.stats,
                    engine: self.engine.stats(),
                    frontend: self.frontend,
                    max_connections: self.config.max_connections,
                };
                crate::stats::write_general(&ctx, out);
            }
            Some(b"settings") => {
                let s = crate::stats::Settings {
                    config: &self.config,
                    frontend: self.frontend,
                    verbosity: self.verbosity.load(Relaxed),
                };
                crate::stats::write_settings(&s, out);
            }
            // Groups about memcached's slab allocator: nothing to list here.
            Some(b"items" | b"slabs" | b"sizes" | b"conns") => Response::End.encode(out),
            Some(_) => Response::Error.encode(out),
        }
    }

    /// verbosity.
    pub(crate) fn exec_verbosity(&self, level: u32, noreply: bool, out: &mut Output) {
        self.verbosity.store(level, Relaxed);
        reply(out, noreply, Response::Ok);
    }

    /// version.
    pub(crate) fn exec_version(&self, out: &mut Output) {
        Response::Version(crate::VERSION).encode(out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{FrontendInfo, ServiceConfig};

    /// A service over an engine in a fresh temp dir (kept alive by the guard).
    pub(crate) fn service(durability: engine::Durability) -> (Arc<Service>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = engine::Options {
            durability,
            ..engine::Options::default()
        };
        let engine = Arc::new(engine::Engine::open(dir.path(), options).expect("engine opens"));
        let frontend = FrontendInfo {
            model: "test",
            threads: 1,
        };
        (
            Arc::new(Service::new(engine, ServiceConfig::default(), frontend)),
            dir,
        )
    }

    /// Decodes the requests in `input` (values whole) and executes them.
    fn exec(s: &Service, input: &[u8], out: &mut Output, fx: &mut Effects) {
        let mut decoder = protocol::Decoder::new(s.limits());
        let mut rest = input;
        while let Some((frame, used)) = decoder.decode(rest).expect("valid requests") {
            let protocol::Frame::Request(request) = frame else {
                panic!("{frame:?} is not a whole request");
            };
            s.execute(request, out, fx, 0, usize::MAX);
            rest = &rest[used..];
        }
        assert!(rest.is_empty(), "{rest:?} left");
    }

    fn text(out: &Output) -> String {
        String::from_utf8_lossy(&out.to_vec()).into_owned()
    }

    /// A get that runs to its end.
    const WHOLE: Resume = Resume {
        skip: 0,
        limit: usize::MAX,
    };

    #[test]
    fn store_and_get() {
        let (s, _dir) = service(engine::Durability::None);
        let (mut out, mut fx) = (Output::new(), Effects::default());
        let input = b"set k 5 0 3\r\nabc\r\nadd k 5 0 1\r\nx\r\nreplace nx 5 0 1\r\nx\r\n\
                      append k 9 0 2\r\nde\r\nprepend k 9 0 1\r\n_\r\n";
        exec(&s, input, &mut out, &mut fx);
        s.exec_get([&b"k"[..], b"nx"], false, None, &mut out, &mut fx, WHOLE);
        assert_eq!(text(&out), "STORED\r\nNOT_STORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\nVALUE k 5 6\r\n_abcde\r\nEND\r\n");
        assert_eq!(fx.hold, None, "durability none never holds replies");
        let c = s.stats().totals();
        assert_eq!(c.get_hits, 1);
        assert_eq!(c.get_misses, 1);
        assert_eq!(c.cmd_set, 5);
    }

    #[test]
    fn cas_uses_the_sequence_number() {
        let (s, _dir) = service(engine::Durability::None);
        let (mut out, mut fx) = (Output::new(), Effects::default());
        exec(&s, b"set k 0 0 1\r\na\r\n", &mut out, &mut fx);
        let seq = s.engine().get(b"k").expect("get").expect("live").seq;
        out = Output::new();
        let cas = format!(
            "cas k 0 0 1 {seq}\r\nb\r\ncas k 0 0 1 {seq}\r\nc\r\ncas nx 0 0 1 {seq}\r\nc\r\n"
        );
        exec(&s, cas.as_bytes(), &mut out, &mut fx);
        assert_eq!(text(&out), "STORED\r\nEXISTS\r\nNOT_FOUND\r\n");
        out = Output::new();
        s.exec_get([&b"k"[..]], true, None, &mut out, &mut fx, WHOLE);
        let new_seq = s.engine().get(b"k").expect("get").expect("live").seq;
        assert_eq!(text(&out), format!("VALUE k 0 1 {new_seq}\r\nb\r\nEND\r\n"));
        let c = s.stats().totals();
        assert_eq!((c.cas_hits, c.cas_badval, c.cas_misses), (1, 1, 1));
    }

    #[test]
    fn incr_decr_noreply_and_errors() {
        let (s, _dir) = service(engine::Durability::None);
        let (mut out, mut fx) = (Output::new(), Effects::default());
        exec(&s, b"set n 3 0 3 noreply\r\n100\r\n", &mut out, &mut fx);
        s.exec_arith(b"n", 95, Direction::Decr, false, &mut out, &mut fx);
        s.exec_arith(b"n", 1, Direction::Incr, true, &mut out, &mut fx);
        s.exec_arith(b"nx", 1, Direction::Incr, false, &mut out, &mut fx);
        exec(&s, b"set t 0 0 4 noreply\r\ntext\r\n", &mut out, &mut fx);
        s.exec_arith(b"t", 1, Direction::Incr, false, &mut out, &mut fx);
        s.exec_get([&b"n"[..]], false, None, &mut out, &mut fx, WHOLE);
        assert_eq!(
            text(&out),
            "5\r\nNOT_FOUND\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nVALUE n 3 3\r\n6  \r\nEND\r\n"
        );
    }

    #[test]
    fn always_durability_holds_replies() {
        let (s, _dir) = service(engine::Durability::Always);
        let (mut out, mut fx) = (Output::new(), Effects::default());
        s.exec_get([&b"k"[..]], false, None, &mut out, &mut fx, WHOLE);
        assert_eq!(fx.hold, None, "a read holds nothing");
        exec(&s, b"set k 0 0 1\r\nv\r\n", &mut out, &mut fx);
        let first = fx.hold.expect("a write under `always` holds its reply");
        s.exec_delete(b"k", false, &mut out, &mut fx);
        let second = fx.hold.expect("still held");
        assert!(second > first, "the hold is the newest write");
        s.engine().wait_durable(second).expect("sync");
        assert!(s.engine().is_durable(first));
    }

    #[test]
    fn delayed_flush_runs_when_due() {
        let (s, _dir) = service(engine::Durability::None);
        let (mut out, mut fx) = (Output::new(), Effects::default());
        exec(&s, b"set k 0 0 1 noreply\r\nv\r\n", &mut out, &mut fx);
        s.exec_flush(100, false, &mut out, &mut fx);
        s.run_due_flush(&mut fx);
        assert!(s.engine().get(b"k").expect("get").is_some(), "not due yet");
        // Pretend the time has come.
        s.flush_at.store(1, Relaxed);
        s.run_due_flush(&mut fx);
        assert!(s.engine().get(b"k").expect("get").is_none());
        assert_eq!(s.flush_at.load(Relaxed), 0);
        assert_eq!(text(&out), "OK\r\n");
    }

    #[test]
    fn stats_replies_end_with_end() {
        let (s, _dir) = service(engine::Durability::None);
        let mut out = Output::new();
        s.exec_stats(None, &mut out);
        let general = text(&out);
        assert!(general.starts_with("STAT pid "), "{general}");
        assert!(general.ends_with("END\r\n"));
        for name in [
            "cmd_get",
            "curr_items",
            "engine_files",
            "frontend_model test",
            "threads 1",
            // Clients gate 1.6 behaviour on this; the package is reported apart.
            "version 1.6.18\r\n",
            "server_version ",
        ] {
            assert!(
                general.contains(&format!("STAT {name}")),
                "{name} missing from {general}"
            );
        }
        out = Output::new();
        s.exec_stats(Some(b"settings"), &mut out);
        let settings = text(&out);
        assert!(
            settings.contains("STAT item_size_max 1048576\r\n"),
            "{settings}"
        );
        assert!(settings.ends_with("END\r\n"));
        out = Output::new();
        s.exec_stats(Some(b"bogus"), &mut out);
        assert_eq!(text(&out), "ERROR\r\n");
    }
}
