//! Parse benchmark: requests decoded per second for a small `get` and a
//! 100-byte `set`, from a buffer of pipelined requests (the decoder's hot
//! path in a server). Run with `make bench-protocol`; prints requests/s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use protocol::{Decoder, Frame, Limits};

/// Decodes `buf` (whole requests back to back) until `min_time` has passed;
/// returns requests per second.
fn run(buf: &[u8], min_time: Duration) -> f64 {
    let mut decoder = Decoder::new(Limits::default());
    let mut requests: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < min_time {
        let mut pos = 0;
        while pos < buf.len() {
            match decoder.decode(black_box(&buf[pos..])) {
                Ok(Some((frame, used))) => {
                    if let Frame::Request(r) = frame {
                        black_box(r);
                        requests += 1;
                    }
                    pos += used;
                }
                other => panic!("benchmark input did not decode: {other:?}"),
            }
        }
    }
    requests as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let min_time = Duration::from_secs(2);
    let batch = 1000;

    let get = b"get key:000000000001\r\n".repeat(batch);
    let mut set = Vec::new();
    for _ in 0..batch {
        set.extend_from_slice(b"set key:000000000001 0 0 100\r\n");
        set.extend_from_slice(&[b'x'; 100]);
        set.extend_from_slice(b"\r\n");
    }
    let get_rate = run(&get, min_time);
    let set_rate = run(&set, min_time);
    println!(
        "get (16-byte key):            {:>12.0} requests/s",
        get_rate
    );
    println!(
        "set (16-byte key, 100 bytes): {:>12.0} requests/s",
        set_rate
    );
}
