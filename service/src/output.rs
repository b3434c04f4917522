//! A connection's pending replies: a queue of segments written with
//! vectored writes, shared by both front-ends.
//!
//! ```text
//!   pushed ───────────────────────────────────────────────▶
//!   [ "VALUE k 0 1048576\r\n" ][ Value: 1 MiB of the map ][ "\r\nEND\r\n" ]
//!     Bytes (owned, small)       Value (a slice of an        Bytes
//!                                HSTable's map, no copy)
//!   ◀── written ──▶|◀──────────── pending ───────────────────────────▶|
//!                          held from here ▶ (durability `always`)
//! ```
//!
//! Headers and small replies are copied into owned byte segments (one
//! buffer holds a whole pipeline of small replies); a value of at least
//! [`ZERO_COPY_MIN`] bytes is queued as an [`engine::Value`], a reference
//! to the engine's memory map, so a 64 KiB or 1 MiB value goes from the page
//! cache to the socket without an intermediate copy, and a multi-get naming
//! it many times costs a reference per key, not a copy. [`Output::pending`]
//! counts every byte still to be written, referenced or owned: that is what
//! the connection's output limit bounds (see `Session::process`), inside a
//! multi-key request as well as between requests.
//!
//! Replies to writes not yet durable are *held*: [`Output::hold_from`] marks
//! a position, and only the bytes before it are writable until
//! [`Output::release_hold`].

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use engine::Value;

/// Values at least this long are queued by reference; shorter ones are
/// copied, which is cheaper than a segment of their own.
pub const ZERO_COPY_MIN: usize = 16 * 1024;

/// An owned segment is not grown past this; a new one starts instead, so
/// that a written-out segment can be dropped while the rest waits.
const SEGMENT_MAX: usize = 64 * 1024;

/// First capacity of an owned segment.
const SEGMENT_INITIAL: usize = 4 * 1024;

/// Slices handed to one `writev`.
const MAX_IOVECS: usize = 64;

/// An owned buffer up to this size is kept as a spare when written out.
pub const SPARE_MAX: usize = 128 * 1024;

#[derive(Debug)]
enum Segment {
    Bytes(Vec<u8>),
    Value(Value),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Segment::Bytes(b) => b,
            Segment::Value(v) => v,
        }
    }
}

/// Replies waiting to be written, as segments.
#[derive(Debug, Default)]
pub struct Output {
    segs: VecDeque<Segment>,
    /// Bytes of the front segment already written.
    front_sent: usize,
    /// Bytes ever queued (a position: see [`Output::mark`]).
    pushed: u64,
    /// Bytes ever written.
    written: u64,
    /// Bytes from this position on wait for a sync to land.
    held_from: Option<u64>,
    /// A written-out owned buffer kept for the next replies.
    spare: Vec<u8>,
}

impl Output {
    /// An empty queue; it allocates nothing until a reply is queued.
    pub fn new() -> Output {
        Output::default()
    }

    /// Queues bytes (copied).
    pub fn extend_from_slice(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        self.pushed += b.len() as u64;
        if let Some(Segment::Bytes(last)) = self.segs.back_mut() {
            if last.len() + b.len() <= SEGMENT_MAX.max(last.capacity()) || last.is_empty() {
                last.extend_from_slice(b);
                return;
            }
        }
        let mut buf = std::mem::take(&mut self.spare);
        if buf.capacity() == 0 {
            buf = Vec::with_capacity(SEGMENT_INITIAL.max(b.len()));
        }
        buf.extend_from_slice(b);
        self.segs.push_back(Segment::Bytes(buf));
    }

    /// Queues a value: by reference when it is at least [`ZERO_COPY_MIN`]
    /// long, copied otherwise.
    pub fn push_value(&mut self, v: &Value) {
        if v.len() < ZERO_COPY_MIN {
            self.extend_from_slice(v);
            return;
        }
        self.pushed += v.len() as u64;
        self.segs.push_back(Segment::Value(v.clone()));
    }

    /// The current end of the queue, as a position for [`Output::hold_from`].
    pub fn mark(&self) -> u64 {
        self.pushed
    }

    /// Bytes queued since `mark`.
    pub fn since(&self, mark: u64) -> usize {
        (self.pushed - mark.min(self.pushed)) as usize
    }

    /// Bytes not yet written, held or not, owned or referenced.
    pub fn pending(&self) -> usize {
        (self.pushed - self.written) as usize
    }

    /// Whether nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.pushed == self.written
    }

    /// Owned bytes held in memory (referenced values excluded).
    pub fn owned_bytes(&self) -> usize {
        self.segs
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.capacity(),
                Segment::Value(_) => 0,
            })
            .sum::<usize>()
            + self.spare.capacity()
    }

    /// Holds everything queued from `mark` on until [`Output::release_hold`].
    pub fn hold_from(&mut self, mark: u64) {
        let mark = mark.clamp(self.written, self.pushed);
        self.held_from = Some(self.held_from.map_or(mark, |h| h.min(mark)));
    }

    /// Lets the held bytes be written.
    pub fn release_hold(&mut self) {
        self.held_from = None;
    }

    /// Whether some replies wait for a sync.
    pub fn is_held(&self) -> bool {
        self.held_from.is_some()
    }

    /// Whether there are bytes that may be written now.
    pub fn has_writable(&self) -> bool {
        self.written < self.writable_end()
    }

    fn writable_end(&self) -> u64 {
        self.held_from.unwrap_or(self.pushed).min(self.pushed)
    }

    /// Drops every pending reply (a write could not be made durable: its
    /// replies must never be sent).
    pub fn clear(&mut self) {
        self.segs.clear();
        self.front_sent = 0;
        self.written = self.pushed;
        self.held_from = None;
    }

    /// One vectored write of what may be written now; the number of bytes
    /// the writer took (errors, WouldBlock included, are the writer's).
    pub fn write_once<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut budget = self.writable_end() - self.written;
        if budget == 0 {
            return Ok(0);
        }
        // On the stack: one write per flush must not cost an allocation.
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut used = 0;
        for (i, s) in self.segs.iter().enumerate() {
            if budget == 0 || used == MAX_IOVECS {
                break;
            }
            let mut b = s.bytes();
            if i == 0 {
                b = &b[self.front_sent..];
            }
            let take = b.len().min(usize::try_from(budget).unwrap_or(usize::MAX));
            slices[used] = IoSlice::new(&b[..take]);
            used += 1;
            budget -= take as u64;
        }
        let n = w.write_vectored(&slices[..used])?;
        self.advance(n);
        Ok(n)
    }

    /// Writes until nothing writable is left or the writer would block;
    /// returns the bytes written. A writer that takes nothing is an error.
    pub fn flush_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut total = 0;
        while self.has_writable() {
            match self.write_once(w) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Marks `n` more bytes written, dropping the segments written out.
    fn advance(&mut self, mut n: usize) {
        self.written += n as u64;
        while n > 0 {
            let Some(front) = self.segs.front() else {
                break;
            };
            let left = front.bytes().len() - self.front_sent;
            if n < left {
                self.front_sent += n;
                return;
            }
            n -= left;
            self.front_sent = 0;
            if let Some(Segment::Bytes(mut b)) = self.segs.pop_front() {
                if self.spare.capacity() == 0 && b.capacity() <= SPARE_MAX {
                    b.clear();
                    self.spare = b;
                }
            }
        }
        if self.segs.is_empty() && self.held_from.is_some_and(|h| h <= self.written) {
            self.held_from = None;
        }
    }

    /// Frees what an empty queue still holds, giving an owned buffer to
    /// `spare` (a loop-wide spare) when that has none: an idle connection
    /// keeps no allocation.
    pub fn release(&mut self, spare: &mut Vec<u8>) {
        if !self.is_empty() {
            return;
        }
        self.segs = VecDeque::new();
        let buf = std::mem::take(&mut self.spare);
        if spare.capacity() == 0 && buf.capacity() <= SPARE_MAX {
            *spare = buf;
        }
    }

    /// Adopts `spare` as the buffer for the next replies when this queue
    /// has none.
    pub fn adopt(&mut self, spare: &mut Vec<u8>) {
        if self.spare.capacity() == 0 && self.segs.is_empty() {
            self.spare = std::mem::take(spare);
            self.spare.clear();
        }
    }

    /// The pending bytes, copied (for tests and small tools).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.pending());
        for (i, s) in self.segs.iter().enumerate() {
            let b = s.bytes();
            v.extend_from_slice(if i == 0 { &b[self.front_sent..] } else { b });
        }
        v
    }

    /// Number of segments queued (for tests of the zero-copy path).
    pub fn segments(&self) -> usize {
        self.segs.len()
    }
}

/// Replies are spelled by `protocol` straight into the queue: a header
/// lands in the owned buffer it is sent from, next to the value it frames.
impl protocol::ReplySink for Output {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `per_call` bytes per write.
    struct Trickle {
        got: Vec<u8>,
        per_call: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            let mut left = self.per_call;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.got.extend_from_slice(&b[..take]);
                left -= take;
                n += take;
                if left == 0 {
                    break;
                }
            }
            if n == 0 && self.per_call == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_come_out_in_order_through_partial_writes() {
        let mut o = Output::new();
        let mut want = Vec::new();
        for i in 0..2000u32 {
            let line = format!("VALUE k{i} 0 5\r\nhello\r\n");
            o.extend_from_slice(line.as_bytes());
            want.extend_from_slice(line.as_bytes());
        }
        assert_eq!(o.pending(), want.len());
        let mut w = Trickle {
            got: Vec::new(),
            per_call: 777,
            calls: 0,
        };
        o.flush_to(&mut w).unwrap();
        assert_eq!(w.got, want);
        assert!(o.is_empty());
        assert!(o.segments() == 0);
    }

    #[test]
    fn held_bytes_wait_for_the_release() {
        let mut o = Output::new();
        o.extend_from_slice(b"END\r\n");
        let m = o.mark();
        o.extend_from_slice(b"STORED\r\n");
        o.hold_from(m);
        let mut w = Trickle {
            got: Vec::new(),
            per_call: 1000,
            calls: 0,
        };
        o.flush_to(&mut w).unwrap();
        assert_eq!(w.got, b"END\r\n");
        assert!(o.is_held() && !o.has_writable());
        assert_eq!(o.pending(), 8);
        o.release_hold();
        o.flush_to(&mut w).unwrap();
        assert_eq!(w.got, b"END\r\nSTORED\r\n");
    }

    #[test]
    fn clear_drops_what_was_pending() {
        let mut o = Output::new();
        o.extend_from_slice(b"STORED\r\n");
        o.hold_from(0);
        o.clear();
        assert!(o.is_empty() && !o.is_held() && !o.has_writable());
        o.extend_from_slice(b"x");
        assert_eq!(o.to_vec(), b"x");
    }

    #[test]
    fn an_empty_queue_hands_its_buffer_back() {
        let mut spare = Vec::with_capacity(8192);
        let mut o = Output::new();
        o.adopt(&mut spare);
        assert_eq!(spare.capacity(), 0);
        o.extend_from_slice(b"END\r\n");
        let mut w = Trickle {
            got: Vec::new(),
            per_call: 100,
            calls: 0,
        };
        o.flush_to(&mut w).unwrap();
        o.release(&mut spare);
        assert!(spare.capacity() >= 8192);
        assert_eq!(o.owned_bytes(), 0);
    }
}
