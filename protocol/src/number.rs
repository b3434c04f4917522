//! Number parsing with the exact semantics memcached 1.6.18 gets from
//! `strtoul`/`strtol` on a 64-bit Linux (its `safe_strto*` helpers in util.c).
//!
//! These quirks are observable on the wire, so they are reproduced on purpose:
//! leading whitespace and a sign are accepted, a number may be followed by a
//! whitespace byte (the tokenizer only splits on spaces, so `5\t` is a token),
//! values that overflow 64 bits are rejected, and the 32-bit results are
//! truncated, not range-checked (`set k 4294967296 0 1` stores flags 0).

/// C `isspace` in the "C" locale.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What `strtoull(s, &end, 10)` computes: (magnitude, negative, digits end).
/// `None` when there are no digits or the magnitude overflows (ERANGE).
fn strto_magnitude(s: &[u8]) -> Option<(u64, bool, usize)> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut value: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        value = value.checked_mul(10)?.checked_add(u64::from(s[i] - b'0'))?;
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((value, negative, i))
}

/// The token must end right after the digits or at a whitespace byte.
fn ends_cleanly(s: &[u8], end: usize) -> bool {
    end == s.len() || is_c_space(s[end])
}

/// `safe_strtoull`: a u64, rejecting a minus sign that wraps to a huge value.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    let (magnitude, negative, end) = strto_magnitude(s)?;
    if !ends_cleanly(s, end) {
        return None;
    }
    let value = if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    // NOTE: memcached only rejects a '-' when the result looks negative as a
    // signed number, so "-0" is accepted as 0.
    if (value as i64) < 0 && s[..end].contains(&b'-') {
        return None;
    }
    Some(value)
}

/// `safe_strtoul` into a `uint32_t`: parsed as 64 bits, then truncated.
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "memcached stores the unsigned long into a uint32_t"
    )]
    parse_u64(s).map(|v| v as u32)
}

/// `safe_strtol` into an `int32_t`: `strtol` range-checks 64 bits, then the
/// result is truncated to 32 bits (so `4294967296` reads as 0).
pub(crate) fn parse_i32(s: &[u8]) -> Option<i32> {
    let (magnitude, negative, end) = strto_magnitude(s)?;
    if !ends_cleanly(s, end) {
        return None;
    }
    let value: i64 = if negative {
        if magnitude > 1 << 63 {
            return None;
        }
        (magnitude as i64).wrapping_neg()
    } else {
        i64::try_from(magnitude).ok()?
    };
    #[expect(
        clippy::cast_possible_truncation,
        reason = "memcached stores the long into an int32_t"
    )]
    Some(value as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_quirks() {
        assert_eq!(parse_u32(b"5"), Some(5));
        assert_eq!(parse_u32(b"+5"), Some(5));
        assert_eq!(parse_u32(b"\t5"), Some(5));
        assert_eq!(parse_u32(b"5\t"), Some(5));
        assert_eq!(parse_u32(b"-0"), Some(0));
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), Some(0));
        assert_eq!(parse_u32(b"5x"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"-"), None);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
    }

    #[test]
    fn signed_quirks() {
        assert_eq!(parse_i32(b"-1"), Some(-1));
        assert_eq!(parse_i32(b"4294967296"), Some(0));
        assert_eq!(parse_i32(b"4294967297"), Some(1));
        assert_eq!(parse_i32(b"9223372036854775808"), None);
        assert_eq!(parse_i32(b"-9223372036854775808"), Some(0));
        assert_eq!(parse_i32(b"abc"), None);
    }
}
