//! Ketama consistent hashing exactly as libmemcached's weighted ketama and
//! twemproxy (`distribution: ketama`, `hash: md5`) place keys, so that
//! loadgen talking to servers directly sends every key where a proxy or a
//! ketama client would.
//!
//! The continuum (twemproxy's `src/hashkit/nc_ketama.c`): every server, all
//! of weight 1, gets 160 points (156 at a few server counts, where
//! twemproxy's single-precision arithmetic rounds down, e.g. 25); for `i` in
//! `0..40` the MD5 digest of
//! `"<name>-<i>"` gives four points, the digest's bytes `4x..4x+4` read
//! little-endian. Points are sorted by value. A key's hash is the first four
//! bytes of the MD5 of the key, little-endian; the key belongs to the server
//! of the first point whose value is at least the hash, wrapping to the
//! first point past the end.
//!
//! A server's name is what twemproxy hashes: the `host:port` of its
//! configuration as written (not resolved), or the host alone when the port
//! is 11211 (kept for compatibility with libmemcached). So loadgen's
//! `--server` strings must be written as in the proxy's `servers:` list.

use md5::{Digest, Md5};

/// Points per server of weight 1 (twemproxy's `KETAMA_POINTS_PER_SERVER`).
const POINTS_PER_SERVER: u32 = 160;

/// Points taken from one MD5 digest.
const POINTS_PER_HASH: u32 = 4;

/// The memcached port that twemproxy leaves out of a server's name.
const DEFAULT_PORT: &str = "11211";

/// One point of the continuum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    value: u32,
    server: usize,
}

/// The continuum of a fixed set of servers.
#[derive(Debug, Clone)]
pub struct Ketama {
    points: Vec<Point>,
}

/// The name ketama hashes for a server written as `host:port`.
pub fn server_name(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((host, DEFAULT_PORT)) => host,
        _ => addr,
    }
}

/// The four continuum values of one MD5 digest, or the key hash (`x = 0`).
fn digest_word(d: &[u8; 16], x: usize) -> u32 {
    u32::from_le_bytes([d[4 * x], d[4 * x + 1], d[4 * x + 2], d[4 * x + 3]])
}

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// Points one server of weight 1 gets among `n` servers of weight 1,
/// computed in twemproxy's single-precision arithmetic, so that a rounding
/// there gives the same count here.
fn points_per_server(n: usize) -> u32 {
    let pct = 1.0f32 / n as f32;
    let raw = pct * POINTS_PER_SERVER as f32 / 4.0 * n as f32;
    let per_hash_groups = ((raw as f64 + 0.000_000_000_1) as f32).floor();
    per_hash_groups as u32 * 4
}

impl Ketama {
    /// The continuum of `servers`, each written as `host:port` (see
    /// [`server_name`]), in the order their indices are returned.
    pub fn new<S: AsRef<str>>(servers: &[S]) -> Ketama {
        let per_server = points_per_server(servers.len());
        let mut points = Vec::with_capacity(servers.len() * per_server as usize);
        for (server, addr) in servers.iter().enumerate() {
            let name = server_name(addr.as_ref());
            for i in 0..per_server / POINTS_PER_HASH {
                let d = md5(format!("{name}-{i}").as_bytes());
                for x in 0..POINTS_PER_HASH as usize {
                    points.push(Point {
                        value: digest_word(&d, x),
                        server,
                    });
                }
            }
        }
        // twemproxy sorts with qsort, which leaves equal values in no
        // defined order; two servers sharing a 32-bit point is too rare to
        // matter, and the sort by value alone matches it everywhere else.
        points.sort_by_key(|p| p.value);
        Ketama { points }
    }

    /// The key's hash: the first four bytes of its MD5, little-endian.
    pub fn hash(key: &[u8]) -> u32 {
        digest_word(&md5(key), 0)
    }

    /// The index of the server `key` belongs to.
    pub fn server_of(&self, key: &[u8]) -> usize {
        let h = Ketama::hash(key);
        let i = self.points.partition_point(|p| p.value < h);
        self.points.get(i).unwrap_or(&self.points[0]).server
    }

    /// Points on the continuum.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the continuum has no point (no server).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_only_the_default_port() {
        assert_eq!(server_name("127.0.0.11:11211"), "127.0.0.11");
        assert_eq!(server_name("127.0.0.11:22122"), "127.0.0.11:22122");
        assert_eq!(server_name("cache-a:11211"), "cache-a");
        assert_eq!(server_name("cache-a"), "cache-a");
    }

    #[test]
    fn servers_get_160_points_but_where_twemproxy_rounds_down() {
        // twemproxy's float arithmetic gives 156 points at these counts
        // (the same expression compiled from C prints the same list).
        for n in 1..=64 {
            let want = if [25, 47, 50, 55, 61].contains(&n) {
                156
            } else {
                160
            };
            assert_eq!(points_per_server(n), want, "{n} servers");
        }
        let k = Ketama::new(&["a:1", "b:2", "c:3"]);
        assert_eq!(k.len(), 480);
        assert!(k.points.windows(2).all(|w| w[0].value <= w[1].value));
    }

    #[test]
    fn md5_words_are_little_endian() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e.
        assert_eq!(Ketama::hash(b""), 0xd98c_1dd4);
    }

    #[test]
    fn a_key_goes_to_the_next_point_and_wraps() {
        let k = Ketama::new(&["127.0.0.11:11211", "127.0.0.12:11211"]);
        for key in [&b"k000000000000001"[..], b"foo", b"bar", b""] {
            let h = Ketama::hash(key);
            let want = k
                .points
                .iter()
                .find(|p| p.value >= h)
                .unwrap_or(&k.points[0])
                .server;
            assert_eq!(k.server_of(key), want);
        }
    }

    #[test]
    fn keys_spread_roughly_evenly_and_move_little() {
        let three = Ketama::new(&["127.0.0.11:11211", "127.0.0.12:11211", "127.0.0.13:11211"]);
        let two = Ketama::new(&["127.0.0.11:11211", "127.0.0.12:11211"]);
        let mut per = [0u32; 3];
        let mut moved = 0;
        for n in 0..30_000u32 {
            let key = format!("k{n:015}");
            let s = three.server_of(key.as_bytes());
            per[s] += 1;
            // Removing the third server moves only its own keys.
            if s != 2 && two.server_of(key.as_bytes()) != s {
                moved += 1;
            }
        }
        assert!(per.iter().all(|&c| c > 6_000), "{per:?}");
        assert_eq!(moved, 0);
    }
}
