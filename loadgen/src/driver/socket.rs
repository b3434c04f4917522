//! Socket lifecycle: connecting, reading, writing, timeouts, losing a
//! connection and opening it again.
//!
//! Each client has one [`Sock`] per server. A connection is registered with
//! the thread's mio `Poll` (edge-triggered, READABLE|WRITABLE) under a token
//! that names its slot and its generation. Reads go until `WouldBlock` and
//! hand the bytes to the socket's reply matcher; writes go until the socket
//! takes no more, and the rest waits for a WRITABLE event.
//!
//! A connection is lost when the server closes it, when a read or write
//! fails, when its reply stream is out of step, or when its oldest request
//! is older than `--timeout` (everything behind it on that socket counts as
//! a timeout too, since the stream can no longer be matched). Its requests
//! are settled and it is reopened at once; a connect that fails is retried
//! after a short delay.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Token};

use super::matcher::{Matched, Matcher, Pending};
use super::tally::LostAs;
use super::Driver;

#[derive(Debug, PartialEq, Eq)]
enum SockState {
    Connecting,
    Ready,
    /// Closed; reopen at this time.
    Down(Instant),
}

/// One TCP connection of a client to one server.
#[derive(Debug)]
pub(super) struct Sock {
    stream: Option<TcpStream>,
    state: SockState,
    out: Vec<u8>,
    out_pos: usize,
    /// The requests in flight and the reply bytes received.
    matcher: Matcher,
    /// Already on the thread's flush list.
    dirty: bool,
    /// Counts the connections opened on this slot (in the low bits of the token).
    generation: u32,
    /// Load phase: a request was queued on this slot (over any of its connections).
    load_sent: bool,
    /// Load phase: a reply completed on this slot.
    load_answered: bool,
}

impl Sock {
    /// A slot not yet connected, due to connect at `now`.
    pub(super) fn new(now: Instant) -> Sock {
        Sock {
            stream: None,
            state: SockState::Down(now),
            out: Vec::with_capacity(4096),
            out_pos: 0,
            matcher: Matcher::new(),
            dirty: false,
            generation: 0,
            load_sent: false,
            load_answered: false,
        }
    }

    /// Where a request is encoded before [`Sock::queue`].
    pub(super) fn outbox(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Queues request `p`, just encoded into the outbox. True when the
    /// socket must go on the thread's flush list (it is not on it yet).
    pub(super) fn queue(&mut self, p: Pending) -> bool {
        self.load_sent |= !p.preload;
        self.matcher.push(p);
        !std::mem::replace(&mut self.dirty, true)
    }

    /// The requests in flight, oldest first.
    pub(super) fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.matcher.pending()
    }

    /// The run is over: the requests still in flight, which will get no reply.
    pub(super) fn abandon(&mut self) -> impl Iterator<Item = Pending> + '_ {
        self.matcher.reset()
    }

    /// Requests were sent on this slot in the load phase and none was answered.
    pub(super) fn never_answered(&self) -> bool {
        self.load_sent && !self.load_answered
    }
}

/// Why an open connection was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    Closed,
    BadReply,
    Timeout,
}

/// Index of a client's socket to one server, as used on the flush list.
fn slot_of(client: usize, server: usize, nservers: usize) -> usize {
    client * nservers + server
}

/// The mio token of connection number `generation` of a slot. Each reopen
/// gets a new token, so an event of a closed connection that is still in the
/// batch being handled is recognised as stale instead of being applied to
/// the connection that replaced it.
fn token_of(slot: usize, generation: u32) -> Token {
    Token((generation as usize) << 32 | slot)
}

/// Slot and generation of a token.
fn untoken(t: Token) -> (usize, u32) {
    (t.0 & 0xFFFF_FFFF, (t.0 >> 32) as u32)
}

impl Driver {
    /// Puts client `c`'s socket to server `s` on the flush list.
    pub(super) fn mark_dirty(&mut self, c: usize, s: usize) {
        self.dirty.push(slot_of(c, s, self.nservers));
    }

    pub(super) fn flush_dirty(&mut self, now: Instant) {
        while let Some(t) = self.dirty.pop() {
            let (c, s) = (t / self.nservers, t % self.nservers);
            self.clients[c].socks[s].dirty = false;
            self.flush(c, s, now);
        }
    }

    /// Writes what the socket will take; the rest waits for a WRITABLE event.
    fn flush(&mut self, c: usize, s: usize, now: Instant) {
        let sock = &mut self.clients[c].socks[s];
        if sock.state != SockState::Ready {
            return;
        }
        let Some(stream) = sock.stream.as_mut() else {
            return;
        };
        while sock.out_pos < sock.out.len() {
            match stream.write(&sock.out[sock.out_pos..]) {
                Ok(0) => {
                    self.lost(c, s, now, Loss::Closed);
                    return;
                }
                Ok(n) => sock.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.lost(c, s, now, Loss::Closed);
                    return;
                }
            }
        }
        sock.out.clear();
        sock.out_pos = 0;
    }

    /// Applies a batch of readiness events.
    pub(super) fn handle(&mut self, events: &Events) {
        let now = Instant::now();
        for ev in events.iter() {
            let (t, generation) = untoken(ev.token());
            let (c, s) = (t / self.nservers, t % self.nservers);
            if c >= self.clients.len() || self.clients[c].socks[s].generation != generation {
                // A connection closed earlier in this batch: its events are void.
                continue;
            }
            if self.clients[c].socks[s].state == SockState::Connecting {
                if ev.is_writable() || ev.is_error() || ev.is_write_closed() {
                    self.finish_connect(c, s, now);
                }
                continue;
            }
            if self.clients[c].socks[s].state != SockState::Ready {
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                self.read(c, s, now);
                // Send the requests these replies made room for before reading
                // the next connection, so the server works while we read.
                self.flush_dirty(now);
            }
            if ev.is_writable() && self.clients[c].socks[s].state == SockState::Ready {
                self.flush(c, s, now);
            }
        }
        self.flush_dirty(now);
    }

    /// Opens client `c`'s connection to server `s`.
    pub(super) fn connect(&mut self, c: usize, s: usize, now: Instant) {
        let addr = self.shared.addrs[s];
        let sock = &mut self.clients[c].socks[s];
        sock.generation = sock.generation.wrapping_add(1);
        let token = token_of(slot_of(c, s, self.nservers), sock.generation);
        match TcpStream::connect(addr) {
            Ok(mut stream) => {
                let _ = stream.set_nodelay(true);
                match self.poll.registry().register(
                    &mut stream,
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    Ok(()) => {
                        sock.stream = Some(stream);
                        sock.state = SockState::Connecting;
                    }
                    Err(e) => {
                        tracing::debug!(%addr, "register failed: {e}");
                        self.connect_failed(c, s, now);
                    }
                }
            }
            Err(e) => {
                tracing::debug!(%addr, "connect failed: {e}");
                self.connect_failed(c, s, now);
            }
        }
    }

    fn finish_connect(&mut self, c: usize, s: usize, now: Instant) {
        let sock = &mut self.clients[c].socks[s];
        let Some(stream) = sock.stream.as_ref() else {
            return;
        };
        let ok = matches!(stream.take_error(), Ok(None)) && stream.peer_addr().is_ok();
        if ok {
            sock.state = SockState::Ready;
            self.flush(c, s, now);
            // Replies may already be waiting (edge-triggered: no second event).
            if self.clients[c].socks[s].state == SockState::Ready {
                self.read(c, s, now);
            }
        } else {
            self.connect_failed(c, s, now);
        }
    }

    fn connect_failed(&mut self, c: usize, s: usize, now: Instant) {
        if self.pace.measuring(now) {
            self.tally.cur.counters.errors.connect_failed += 1;
        }
        self.drop_sock(c, s, now, LostAs::Unfinished);
        let retry = (self.shared.cfg.timeout.0 / 10)
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        self.clients[c].socks[s].state = SockState::Down(now + retry);
    }

    /// Closes a socket and settles its pending requests.
    fn drop_sock(&mut self, c: usize, s: usize, now: Instant, how: LostAs) {
        let client = &mut self.clients[c];
        let sock = &mut client.socks[s];
        if let Some(mut stream) = sock.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        sock.out.clear();
        sock.out_pos = 0;
        let n = sock.matcher.len();
        for p in sock.matcher.reset() {
            self.tally.given_up(&p, how, now, &self.pace.sched);
        }
        client.in_flight -= n;
        sock.state = SockState::Down(now);
        for _ in 0..n {
            // Freed slots refill on other sockets (or this one once reopened).
            self.slot_freed(c, now);
        }
    }

    /// A socket failed while open: count it, reopen it at once.
    fn lost(&mut self, c: usize, s: usize, now: Instant, why: Loss) {
        if self.pace.measuring(now) {
            let e = &mut self.tally.cur.counters.errors;
            match why {
                Loss::Closed => e.connection_closed += 1,
                Loss::BadReply => e.bad_reply += 1,
                Loss::Timeout => {}
            }
            e.reconnects += 1;
        }
        let how = if why == Loss::Timeout {
            LostAs::Timeout
        } else {
            LostAs::Unfinished
        };
        // Settle the pending requests before reconnecting so that refills
        // triggered by freed slots land on the new connection.
        let sock = &mut self.clients[c].socks[s];
        sock.state = SockState::Down(now);
        self.drop_sock(c, s, now, how);
        self.connect(c, s, now);
    }

    /// Timeouts and due reconnects.
    pub(super) fn scan(&mut self, now: Instant) {
        let timeout = self.shared.cfg.timeout.0;
        for c in 0..self.clients.len() {
            for s in 0..self.nservers {
                let sock = &self.clients[c].socks[s];
                match sock.state {
                    SockState::Down(at) if at <= now => {
                        if self.pace.measuring(now) {
                            self.tally.cur.counters.errors.reconnects += 1;
                        }
                        self.connect(c, s, now);
                    }
                    _ => {
                        let oldest = sock.pending().next().map(|p| p.sent);
                        if oldest.is_some_and(|sent| now.duration_since(sent) > timeout) {
                            self.lost(c, s, now, Loss::Timeout);
                        }
                    }
                }
            }
        }
    }

    fn read(&mut self, c: usize, s: usize, now: Instant) {
        loop {
            let sock = &mut self.clients[c].socks[s];
            let Some(stream) = sock.stream.as_mut() else {
                return;
            };
            match stream.read(sock.matcher.spare()) {
                Ok(0) => {
                    self.lost(c, s, now, Loss::Closed);
                    return;
                }
                Ok(n) => {
                    sock.matcher.filled(n);
                    if !self.take_replies(c, s, now) {
                        return;
                    }
                    // Edge-triggered readiness is only re-armed by a read
                    // that says WouldBlock (epoll(7)); a short read is not
                    // taken as proof that the socket is drained, since a
                    // socket left with unread bytes or an unread EOF may
                    // never be reported again.
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.lost(c, s, now, Loss::Closed);
                    return;
                }
            }
        }
    }

    /// Settles every request the socket's complete replies answer. False
    /// if the socket was closed because of what it received.
    fn take_replies(&mut self, c: usize, s: usize, now: Instant) -> bool {
        let shared = Arc::clone(&self.shared);
        let tally = &mut self.tally;
        let sched = &self.pace.sched;
        let sock = &mut self.clients[c].socks[s];
        let mut freed = 0usize;
        let mut load_answered = false;
        let matched =
            sock.matcher.take(
                &shared.keyspace,
                &shared.values,
                &mut self.key_buf,
                |m| match m {
                    Matched::WrongValue(failure) => tally.wrong_value(failure),
                    Matched::Answered(p, ending) => {
                        freed += 1;
                        load_answered |= !p.preload;
                        tally.answered(&p, ending, now, sched);
                    }
                },
            );
        sock.load_answered |= load_answered;
        self.clients[c].in_flight -= freed;
        if matched.is_err() {
            self.lost(c, s, now, Loss::BadReply);
            return false;
        }
        for _ in 0..freed {
            self.slot_freed(c, now);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_connection_gets_a_token_of_its_own() {
        let slot = slot_of(70_000, 1, 2);
        let first = token_of(slot, 1);
        let second = token_of(slot, 2);
        assert_ne!(first, second, "events of the old connection must not match");
        assert_eq!(untoken(first), (slot, 1));
        assert_eq!(untoken(second), (slot, 2));
        assert_eq!(untoken(token_of(slot, u32::MAX)), (slot, u32::MAX));
    }
}
