//! The meta commands (`mg`, `ms`, `md`; `mn` is a fixed reply) as
//! memcached 1.6.18 answers them, for the flags a client uses most:
//!
//! * `mg`: `v` value, `f` flags, `s` size, `c` CAS, `t` remaining TTL (-1:
//!   none), `k` key, `O` opaque, `q` quiet (no `EN`), `T<ttl>` touch.
//! * `ms <key> <len>`: `F<flags>`, `T<ttl>`, `C<cas>`, `M<mode>` (`S` set,
//!   `E` add, `A` append, `P` prepend, `R` replace), `q`, `O`, `k`, `c`.
//! * `md`: `C<cas>`, `q`, `O`, `k`.
//!
//! Return flags come back in the order the client gave them, as memcached
//! does. Flags this server keeps nothing for (`h`, `l`, `N`, `R`, `I`, `u`,
//! `b`) are accepted and ignored.

use crate::output::Output;

use engine::{Meta, PutOutcome, Update};
use protocol::{
    encode_data_end, encode_meta_line, encode_server_error, MetaFlags, MetaItem, MetaStatus,
    Response, StorageHeader,
};

use crate::execute::Effects;
use crate::stats::ServerStats;
use crate::Service;

/// Seconds an item with this expiry has left at `now` (its `t` flag): -1
/// when it never expires.
fn ttl_left(expiry: u32, now: u32) -> i64 {
    if expiry == 0 {
        -1
    } else {
        i64::from(expiry) - i64::from(now)
    }
}

/// A value `mg` returns: the engine's (sent by reference when large), or
/// the copy a touch rewrote.
enum Found {
    Mapped(engine::Value),
    Owned(Vec<u8>),
}

impl Service {
    /// mg.
    pub(crate) fn exec_mg(
        &self,
        key: &[u8],
        meta: &MetaFlags<'_>,
        out: &mut Output,
        fx: &mut Effects,
    ) {
        let c = &self.stats.counters();
        ServerStats::bump(&c.cmd_meta);
        ServerStats::bump(&c.cmd_get);
        let now = self.now();
        let found = match meta.ttl {
            None => self
                .engine
                .get(key)
                .map(|item| {
                    item.map(|i| {
                        let shown = MetaItem {
                            flags: i.flags,
                            size: i.value.len(),
                            cas: i.seq,
                            ttl: ttl_left(i.expiry, now),
                        };
                        (Found::Mapped(i.value), shown)
                    })
                })
                .map_err(|e| e.to_string()),
            Some(ttl) => {
                ServerStats::bump(&c.cmd_touch);
                let expiry = self.expiry(ttl);
                self.engine
                    .update(key, |item| match item {
                        None => (Update::Keep, None),
                        Some(i) => {
                            let value = i.value.to_vec();
                            let put = Update::Put {
                                value: value.clone(),
                                meta: Meta {
                                    flags: i.flags,
                                    expiry,
                                },
                            };
                            (put, Some((value, i.flags)))
                        }
                    })
                    .map(|w| {
                        fx.wrote(self, w.ticket);
                        w.result.map(|(value, flags)| {
                            let shown = MetaItem {
                                flags,
                                size: value.len(),
                                cas: w.ticket.seq(),
                                ttl: ttl_left(expiry, now),
                            };
                            (Found::Owned(value), shown)
                        })
                    })
                    .map_err(|e| e.to_string())
            }
        };
        match found {
            Err(e) => encode_server_error(out, &e),
            Ok(None) => {
                ServerStats::bump(&c.get_misses);
                if !meta.quiet {
                    Response::Meta {
                        status: MetaStatus::En,
                        flags: b"",
                        data: None,
                    }
                    .encode(out);
                }
            }
            Ok(Some((value, shown))) => {
                ServerStats::bump(&c.get_hits);
                let (status, len) = if meta.return_value {
                    (MetaStatus::Va, Some(shown.size))
                } else {
                    (MetaStatus::Hd, None)
                };
                encode_meta_line(out, status, len, meta, key, Some(&shown));
                if meta.return_value {
                    match &value {
                        Found::Mapped(v) => out.push_value(v),
                        Found::Owned(v) => out.extend_from_slice(v),
                    }
                    encode_data_end(out);
                }
            }
        }
    }

    /// ms (its flags were parsed by the decoder into `h`; `data` is the
    /// whole value). It writes as the classic commands do and replies with
    /// a meta line.
    pub(crate) fn exec_ms(
        &self,
        h: &StorageHeader<'_>,
        meta: &MetaFlags<'_>,
        data: &[u8],
        out: &mut Output,
        fx: &mut Effects,
    ) {
        let c = &self.stats.counters();
        ServerStats::bump(&c.cmd_meta);
        ServerStats::bump(&c.cmd_set);
        let now = self.now();
        let (result, ticket) = match self.write_store(h, data) {
            Ok(r) => r,
            Err(e) => {
                encode_server_error(out, &e);
                return;
            }
        };
        fx.wrote(self, ticket);
        let (status, seq) = match result {
            None => {
                Response::OUT_OF_MEMORY.encode(out);
                return;
            }
            Some(PutOutcome::Stored { seq }) => {
                ServerStats::bump(&c.total_items);
                if meta.quiet {
                    return;
                }
                (MetaStatus::Hd, seq)
            }
            Some(PutOutcome::NotStored) => (MetaStatus::Ns, 0),
            Some(PutOutcome::Exists) => {
                ServerStats::bump(&c.cas_badval);
                (MetaStatus::Ex, 0)
            }
            Some(PutOutcome::NotFound) => {
                ServerStats::bump(&c.cas_misses);
                (MetaStatus::Nf, 0)
            }
        };
        let shown = (seq != 0).then(|| MetaItem {
            flags: h.flags,
            size: data.len(),
            cas: seq,
            ttl: ttl_left(self.expiry(h.exptime), now),
        });
        encode_meta_line(out, status, None, meta, h.key, shown.as_ref());
    }

    /// md.
    pub(crate) fn exec_md(
        &self,
        key: &[u8],
        meta: &MetaFlags<'_>,
        out: &mut Output,
        fx: &mut Effects,
    ) {
        #[derive(PartialEq)]
        enum Outcome {
            Deleted,
            Missing,
            Exists,
        }
        let c = &self.stats.counters();
        ServerStats::bump(&c.cmd_meta);
        let cas = meta.compare_cas;
        let written = self.engine.update(key, |item| match (item, cas) {
            (None, _) => (Update::Keep, Outcome::Missing),
            (Some(i), Some(cas)) if i.seq != cas => (Update::Keep, Outcome::Exists),
            (Some(_), _) => (Update::Delete, Outcome::Deleted),
        });
        let status = match written {
            Err(e) => {
                encode_server_error(out, &e);
                return;
            }
            Ok(w) => {
                fx.wrote(self, w.ticket);
                match w.result {
                    Outcome::Deleted => {
                        ServerStats::bump(&c.delete_hits);
                        if meta.quiet {
                            return;
                        }
                        MetaStatus::Hd
                    }
                    Outcome::Missing => {
                        ServerStats::bump(&c.delete_misses);
                        MetaStatus::Nf
                    }
                    Outcome::Exists => MetaStatus::Ex,
                }
            }
        };
        encode_meta_line(out, status, None, meta, key, None);
    }
}
