//! Bounded property test over the decoder invariants: the same check the
//! cargo-fuzz target runs (`protocol::invariants::check_decoder`), driven by
//! proptest with mutated valid requests and random bytes, so CI exercises it
//! on stable Rust. `make fuzz-ci` raises the case count.

use proptest::prelude::*;

/// Valid requests and near misses the mutations start from.
const SEEDS: &[&[u8]] = &[
    b"get a b c\r\n",
    b"gets a\r\n",
    b"gat 10 a b\r\n",
    b"set k 5 0 3\r\nabc\r\n",
    b"set k 5 0 3 noreply\r\nabc\r\n",
    b"cas k 0 0 1 99\r\nx\r\n",
    b"append k 0 0 100\r\n",
    b"set k 0 0 5000\r\n",
    b"delete k 0 noreply\r\n",
    b"incr k 18446744073709551615\r\n",
    b"touch k -1\r\n",
    b"flush_all 10 noreply\r\n",
    b"verbosity 1\r\n",
    b"stats settings\r\n",
    b"mg k v k c f t s Oabc q\r\n",
    b"ms k 3 T0 F5 MA\r\nabc\r\n",
    b"md k q C5\r\n",
    b"mn\r\n",
    b"GET / HTTP/1.1\r\n",
    b"quit\r\n",
];

fn cases() -> u32 {
    std::env::var("PROTOCOL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seed = prop::sample::select(SEEDS);
    let pieces = prop::collection::vec(seed, 1..6).prop_map(|v| v.concat());
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 0..8);
    (pieces, edits).prop_map(|(mut buf, edits)| {
        for (at, byte, op) in edits {
            if buf.is_empty() {
                buf.push(byte);
                continue;
            }
            let i = at.index(buf.len());
            match op {
                0 => buf[i] = byte,
                1 => buf.insert(i, byte),
                2 => {
                    buf.remove(i);
                }
                // Interesting bytes: separators and digits.
                _ => buf[i] = b" \r\n0-9\t\0"[usize::from(byte) % 8],
            }
        }
        buf
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_requests_keep_invariants(input in mutated()) {
        protocol::invariants::check_decoder(&input);
    }

    #[test]
    fn random_bytes_keep_invariants(input in prop::collection::vec(any::<u8>(), 0..600)) {
        protocol::invariants::check_decoder(&input);
    }

    #[test]
    fn long_lines_keep_invariants(head in prop::sample::select(&["get ", "gets ", "set ", "  get ", "x"][..]), n in 0usize..400) {
        let mut input = head.as_bytes().to_vec();
        input.extend(std::iter::repeat_n(b"a ".as_slice(), n).flatten());
        input.extend_from_slice(b"\r\nversion\r\n");
        protocol::invariants::check_decoder(&input);
    }
}
