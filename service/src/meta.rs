//! The meta commands (`mg`, `ms`, `md`, `mn`) as memcached 1.6.18 answers
//! them, for the flags a client uses most:
//!
//! * `mg`: `v` value, `f` flags, `s` size, `c` CAS, `t` remaining TTL (-1:
//!   none), `k` key, `O` opaque, `q` quiet (no `EN`), `T<ttl>` touch.
//! * `ms <key> <len>`: `F<flags>`, `T<ttl>`, `C<cas>`, `M<mode>` (`S` set,
//!   `E` add, `A` append, `P` prepend, `R` replace), `q`, `O`, `k`, `c`.
//! * `md`: `C<cas>`, `q`, `O`, `k`.
//!
//! Return flags come back in the order the client gave them, as memcached
//! does. Flags this server has nothing to say about (`h`, `l`, `N`, `I`,
//! `b` ...) are accepted and ignored.

use std::io::Write as _;

use engine::{Condition, Meta, PutOutcome, Update};

use crate::arith;
use crate::execute::Effects;
use crate::stats::ServerStats;
use crate::Service;

/// One meta flag token: its letter and the rest of the token.
fn split(token: &[u8]) -> (u8, &[u8]) {
    match token.split_first() {
        Some((&letter, arg)) => (letter, arg),
        None => (0, &[]),
    }
}

fn number<T: std::str::FromStr>(arg: &[u8]) -> Option<T> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

const BAD_FLAG: &[u8] = b"CLIENT_ERROR bad token in command line format\r\n";

/// Appends the return flags (`O`, `k`, and per command `c`, `f`, `s`, `t`).
fn return_flags(
    out: &mut Vec<u8>,
    tokens: &[&[u8]],
    key: &[u8],
    item: Option<(u32, usize, u64, u32)>,
    now: u32,
) {
    for token in tokens {
        let (letter, arg) = split(token);
        match (letter, item) {
            (b'O', _) => {
                out.extend_from_slice(b" O");
                out.extend_from_slice(arg);
            }
            (b'k', _) => {
                out.extend_from_slice(b" k");
                out.extend_from_slice(key);
            }
            (b'c', Some((_, _, cas, _))) => {
                let _ = write!(out, " c{cas}");
            }
            (b'f', Some((flags, _, _, _))) => {
                let _ = write!(out, " f{flags}");
            }
            (b's', Some((_, len, _, _))) => {
                let _ = write!(out, " s{len}");
            }
            (b't', Some((_, _, _, expiry))) => {
                if expiry == 0 {
                    out.extend_from_slice(b" t-1");
                } else {
                    let _ = write!(out, " t{}", i64::from(expiry) - i64::from(now));
                }
            }
            _ => {}
        }
    }
}

impl Service {
    /// mg.
    pub(crate) fn exec_mg(
        &self,
        key: &[u8],
        tokens: &[&[u8]],
        out: &mut Vec<u8>,
        fx: &mut Effects,
    ) {
        let c = &self.stats.counters;
        ServerStats::bump(&c.cmd_meta);
        ServerStats::bump(&c.cmd_get);
        let mut want_value = false;
        let mut quiet = false;
        let mut touch = None;
        for token in tokens {
            match split(token) {
                (b'v', _) => want_value = true,
                (b'q', _) => quiet = true,
                (b'T', arg) => match number::<i64>(arg) {
                    Some(ttl) => touch = Some(ttl),
                    None => {
                        out.extend_from_slice(BAD_FLAG);
                        return;
                    }
                },
                _ => {}
            }
        }
        let now = self.now();
        let found = match touch {
            None => self
                .engine
                .get(key)
                .map(|item| item.map(|i| (i.flags, i.value.to_vec(), i.seq, i.expiry)))
                .map_err(|e| e.to_string()),
            Some(ttl) => {
                ServerStats::bump(&c.cmd_touch);
                let expiry = arith::expiry_from(ttl, now);
                self.engine
                    .update(key, |item| match item {
                        None => (Update::Keep, None),
                        Some(i) => {
                            let value = i.value.to_vec();
                            let meta = Meta {
                                flags: i.flags,
                                expiry,
                            };
                            (
                                Update::Put {
                                    value: value.clone(),
                                    meta,
                                },
                                Some((i.flags, value)),
                            )
                        }
                    })
                    .map(|w| {
                        fx.wrote(self, w.ticket);
                        w.result
                            .map(|(flags, value)| (flags, value, w.ticket.seq(), expiry))
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
                if !quiet {
                    out.extend_from_slice(b"EN\r\n");
                }
            }
            Ok(Some((flags, value, seq, expiry))) => {
                ServerStats::bump(&c.get_hits);
                if want_value {
                    let _ = write!(out, "VA {}", value.len());
                } else {
                    out.extend_from_slice(b"HD");
                }
                return_flags(
                    out,
                    tokens,
                    key,
                    Some((flags, value.len(), seq, expiry)),
                    now,
                );
                out.extend_from_slice(b"\r\n");
                if want_value {
                    out.extend_from_slice(&value);
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// ms.
    pub(crate) fn exec_ms(
        &self,
        key: &[u8],
        tokens: &[&[u8]],
        data: &[u8],
        out: &mut Vec<u8>,
        fx: &mut Effects,
    ) {
        let c = &self.stats.counters;
        ServerStats::bump(&c.cmd_meta);
        ServerStats::bump(&c.cmd_set);
        let (mut flags, mut ttl, mut cas, mut quiet, mut mode) = (0u32, 0i64, None, false, b'S');
        for token in tokens {
            let ok = match split(token) {
                (b'F', arg) => number(arg).map(|v| flags = v).is_some(),
                (b'T', arg) => number(arg).map(|v| ttl = v).is_some(),
                (b'C', arg) => number(arg).map(|v| cas = Some(v)).is_some(),
                (b'M', [m]) if b"SEAPRseapr".contains(m) => {
                    mode = m.to_ascii_uppercase();
                    true
                }
                (b'M', _) => false,
                (b'q', _) => {
                    quiet = true;
                    true
                }
                _ => true,
            };
            if !ok {
                out.extend_from_slice(BAD_FLAG);
                return;
            }
        }
        if data.len() > self.config.max_item_size {
            ServerStats::bump(&c.store_too_large);
            out.extend_from_slice(b"SERVER_ERROR object too large for cache\r\n");
            return;
        }
        let now = self.now();
        let meta = Meta {
            flags,
            expiry: arith::expiry_from(ttl, now),
        };
        let written = match mode {
            b'A' | b'P' => self
                .engine
                .update(key, |item| match item {
                    None => (Update::Keep, PutOutcome::NotStored),
                    Some(i) if cas.is_some_and(|cas| cas != i.seq) => {
                        (Update::Keep, PutOutcome::Exists)
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
                        (Update::Put { value, meta }, PutOutcome::Stored { seq: 0 })
                    }
                })
                .map(|w| {
                    let result = match w.result {
                        PutOutcome::Stored { .. } => PutOutcome::Stored {
                            seq: w.ticket.seq(),
                        },
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
                    .put(key, data, meta, cond)
                    .map(|w| (w.result, w.ticket))
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
        let (code, seq): (&[u8], _) = match result {
            PutOutcome::Stored { seq } => {
                ServerStats::bump(&c.total_items);
                if quiet {
                    return;
                }
                (b"HD", seq)
            }
            PutOutcome::NotStored => (b"NS", 0),
            PutOutcome::Exists => {
                ServerStats::bump(&c.cas_badval);
                (b"EX", 0)
            }
            PutOutcome::NotFound => {
                ServerStats::bump(&c.cas_misses);
                (b"NF", 0)
            }
        };
        out.extend_from_slice(code);
        let item = (seq != 0).then_some((flags, data.len(), seq, meta.expiry));
        return_flags(out, tokens, key, item, now);
        out.extend_from_slice(b"\r\n");
    }

    /// md.
    pub(crate) fn exec_md(
        &self,
        key: &[u8],
        tokens: &[&[u8]],
        out: &mut Vec<u8>,
        fx: &mut Effects,
    ) {
        let c = &self.stats.counters;
        ServerStats::bump(&c.cmd_meta);
        let mut quiet = false;
        let mut cas = None;
        for token in tokens {
            match split(token) {
                (b'q', _) => quiet = true,
                (b'C', arg) => match number::<u64>(arg) {
                    Some(v) => cas = Some(v),
                    None => {
                        out.extend_from_slice(BAD_FLAG);
                        return;
                    }
                },
                _ => {}
            }
        }
        #[derive(PartialEq)]
        enum Outcome {
            Deleted,
            Missing,
            Exists,
        }
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
                        if quiet {
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
        return_flags(out, tokens, key, None, 0);
        out.extend_from_slice(b"\r\n");
    }
}
