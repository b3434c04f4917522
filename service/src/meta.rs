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
use std::io::Write as _;

use engine::{Condition, Meta, PutOutcome, Update};
use protocol::MetaFlags;

use crate::execute::Effects;
use crate::stats::ServerStats;
use crate::Service;

/// What the return flags can report about an item.
#[derive(Clone, Copy)]
struct Shown {
    flags: u32,
    size: usize,
    cas: u64,
    expiry: u32,
}

/// Appends the return flags (`O`, `k`, and with an item `c`, `f`, `s`, `t`)
/// in the order the client sent them.
fn return_flags(out: &mut Output, meta: &MetaFlags<'_>, key: &[u8], item: Option<Shown>, now: u32) {
    for token in meta.tokens.into_iter().flatten() {
        let Some((&letter, arg)) = token.split_first() else {
            continue;
        };
        match (letter, item) {
            (b'O', _) => {
                out.extend_from_slice(b" O");
                out.extend_from_slice(arg);
            }
            (b'k', _) => {
                out.extend_from_slice(b" k");
                out.extend_from_slice(key);
            }
            (b'c', Some(i)) => {
                let _ = write!(out, " c{}", i.cas);
            }
            (b'f', Some(i)) => {
                let _ = write!(out, " f{}", i.flags);
            }
            (b's', Some(i)) => {
                let _ = write!(out, " s{}", i.size);
            }
            (b't', Some(i)) => {
                if i.expiry == 0 {
                    out.extend_from_slice(b" t-1");
                } else {
                    let _ = write!(out, " t{}", i64::from(i.expiry) - i64::from(now));
                }
            }
            _ => {}
        }
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
                        let size = i.value.len();
                        (
                            Found::Mapped(i.value),
                            Shown {
                                flags: i.flags,
                                size,
                                cas: i.seq,
                                expiry: i.expiry,
                            },
                        )
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
                            let shown = Shown {
                                flags,
                                size: value.len(),
                                cas: w.ticket.seq(),
                                expiry,
                            };
                            (Found::Owned(value), shown)
                        })
                    })
                    .map_err(|e| e.to_string())
            }
        };
        match found {
            Err(e) => {
                let _ = write!(out, "SERVER_ERROR {e}\r\n");
            }
            Ok(None) => {
                ServerStats::bump(&c.get_misses);
                if !meta.quiet {
                    out.extend_from_slice(b"EN\r\n");
                }
            }
            Ok(Some((value, shown))) => {
                ServerStats::bump(&c.get_hits);
                if meta.return_value {
                    let _ = write!(out, "VA {}", shown.size);
                } else {
                    out.extend_from_slice(b"HD");
                }
                return_flags(out, meta, key, Some(shown), now);
                out.extend_from_slice(b"\r\n");
                if meta.return_value {
                    match &value {
                        Found::Mapped(v) => out.push_value(v),
                        Found::Owned(v) => out.extend_from_slice(v),
                    }
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// ms (its flags were parsed by the decoder; `data` is the whole value).
    pub(crate) fn exec_ms(
        &self,
        key: &[u8],
        meta: &MetaFlags<'_>,
        data: &[u8],
        out: &mut Output,
        fx: &mut Effects,
    ) {
        let c = &self.stats.counters();
        ServerStats::bump(&c.cmd_meta);
        ServerStats::bump(&c.cmd_set);
        let now = self.now();
        let flags = meta.client_flags.unwrap_or(0);
        let expiry = self.expiry(meta.ttl.unwrap_or(0));
        let mode = meta.mode.map_or(b'S', |m| m.to_ascii_uppercase());
        let cas = meta.compare_cas;
        let limits = self.limits;
        let written = match mode {
            b'A' | b'P' => self
                .engine
                .update(key, |item| match item {
                    None => (Update::Keep, Some(PutOutcome::NotStored)),
                    Some(i) if cas.is_some_and(|cas| cas != i.seq) => {
                        (Update::Keep, Some(PutOutcome::Exists))
                    }
                    Some(i) if limits.too_large(key.len(), i.flags, i.value.len() + data.len()) => {
                        (Update::Keep, None)
                    }
                    Some(i) => {
                        let value = if mode == b'A' {
                            [&i.value[..], data].concat()
                        } else {
                            [data, &i.value[..]].concat()
                        };
                        let meta = Meta {
                            flags: i.flags,
                            expiry: i.expiry,
                        };
                        (
                            Update::Put { value, meta },
                            Some(PutOutcome::Stored { seq: 0 }),
                        )
                    }
                })
                .map(|w| {
                    let result = match w.result {
                        Some(PutOutcome::Stored { .. }) => Some(PutOutcome::Stored {
                            seq: w.ticket.seq(),
                        }),
                        other => other,
                    };
                    (result, w.ticket)
                }),
            _ => {
                let cond = match (cas, mode) {
                    (Some(cas), _) => Condition::IfSeq(cas),
                    (None, b'E') => Condition::IfAbsent,
                    (None, b'R') => Condition::IfPresent,
                    _ => Condition::Always,
                };
                self.engine
                    .put(key, data, Meta { flags, expiry }, cond)
                    .map(|w| (Some(w.result), w.ticket))
            }
        };
        let (result, ticket) = match written {
            Ok(r) => r,
            Err(e) => {
                let _ = write!(out, "SERVER_ERROR {e}\r\n");
                return;
            }
        };
        fx.wrote(self, ticket);
        let (code, seq): (&[u8], u64) = match result {
            None => {
                out.extend_from_slice(b"SERVER_ERROR out of memory storing object\r\n");
                return;
            }
            Some(PutOutcome::Stored { seq }) => {
                ServerStats::bump(&c.total_items);
                if meta.quiet {
                    return;
                }
                (b"HD", seq)
            }
            Some(PutOutcome::NotStored) => (b"NS", 0),
            Some(PutOutcome::Exists) => {
                ServerStats::bump(&c.cas_badval);
                (b"EX", 0)
            }
            Some(PutOutcome::NotFound) => {
                ServerStats::bump(&c.cas_misses);
                (b"NF", 0)
            }
        };
        out.extend_from_slice(code);
        let shown = (seq != 0).then_some(Shown {
            flags,
            size: data.len(),
            cas: seq,
            expiry,
        });
        return_flags(out, meta, key, shown, now);
        out.extend_from_slice(b"\r\n");
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
        let code: &[u8] = match written {
            Err(e) => {
                let _ = write!(out, "SERVER_ERROR {e}\r\n");
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
                        b"HD"
                    }
                    Outcome::Missing => {
                        ServerStats::bump(&c.delete_misses);
                        b"NF"
                    }
                    Outcome::Exists => b"EX",
                }
            }
        };
        out.extend_from_slice(code);
        return_flags(out, meta, key, None, 0);
        out.extend_from_slice(b"\r\n");
    }
}
