//! memcached's numeric rules for `incr`/`decr`, kept apart from the
//! executors so each rule is tested on its own.
//!
//! memcached reads a counter with `strtoull` and accepts what it accepts:
//! leading whitespace, an optional sign, digits, then whitespace or the end
//! (a negative number is refused only when it wraps past 2^63, which is how
//! `safe_strtoull` spots a minus sign). The new value is written in decimal;
//! when it is not longer than the old value it is written in place, padded
//! with spaces to the old length, so a value's length never shrinks.

/// Parses `bytes` as memcached's `safe_strtoull` does. `None`: not a number
/// memcached would increment (empty, trailing garbage, more than 2^64-1, or
/// a negative number).
pub fn parse_counter(bytes: &[u8]) -> Option<u64> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let mut i = 0;
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    let negative = match bytes.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits_start = i;
    let mut value: u64 = 0;
    while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
        // Overflow is ERANGE in strtoull: refused.
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    if let Some(&b) = bytes.get(i) {
        if !is_space(b) {
            return None;
        }
    }
    if negative {
        value = value.wrapping_neg();
        // safe_strtoull refuses a '-' only when the result looks negative
        // as a signed number; "-0" passes.
        if (value as i64) < 0 {
            return None;
        }
    }
    Some(value)
}

/// Parses an `incr`/`decr` delta the same way (the whole token must be a number).
pub fn parse_delta(token: &[u8]) -> Option<u64> {
    parse_counter(token)
}

/// Whether a counter goes up or down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Incr,
    Decr,
}

/// Applies `delta`: `incr` wraps at 2^64, `decr` stops at 0.
pub fn apply(current: u64, delta: u64, direction: Direction) -> u64 {
    match direction {
        Direction::Incr => current.wrapping_add(delta),
        Direction::Decr => current.saturating_sub(delta),
    }
}

/// The stored bytes for `value` replacing a value of `old_len` bytes: its
/// decimal digits, padded with spaces to `old_len` when shorter.
pub fn encode_counter(value: u64, old_len: usize) -> Vec<u8> {
    let mut digits = value.to_string().into_bytes();
    if digits.len() < old_len {
        digits.resize(old_len, b' ');
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_as_memcached_reads_them() {
        assert_eq!(parse_counter(b"10"), Some(10));
        assert_eq!(parse_counter(b"00010"), Some(10));
        assert_eq!(parse_counter(b"12 "), Some(12));
        assert_eq!(parse_counter(b" 5"), Some(5));
        assert_eq!(parse_counter(b"+5"), Some(5));
        assert_eq!(parse_counter(b"5\r\n"), Some(5));
        assert_eq!(parse_counter(b"-0"), Some(0));
        assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_counter(b"000000000000000000000000000001"), Some(1));
        for bad in [
            &b""[..],
            b" ",
            b"abc",
            b"5x",
            b"-1",
            b"-5",
            b"18446744073709551616",
            b"100000000000000000000",
        ] {
            assert_eq!(
                parse_counter(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn incr_wraps_decr_floors() {
        assert_eq!(apply(u64::MAX, 2, Direction::Incr), 1);
        assert_eq!(apply(5, 100, Direction::Decr), 0);
        assert_eq!(apply(10, 5, Direction::Incr), 15);
    }

    #[test]
    fn shorter_results_are_padded() {
        assert_eq!(encode_counter(1, 20), b"1                   ");
        assert_eq!(encode_counter(100, 2), b"100");
        assert_eq!(encode_counter(0, 3), b"0  ");
        assert_eq!(encode_counter(15, 2), b"15");
    }
}
