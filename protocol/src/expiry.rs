//! memcached's exptime rule, shared by the service (which converts what a
//! client sent) and anything else that needs to agree with it.

/// Exptimes up to this many seconds are relative to now; larger ones are
/// absolute unix times (memcached's `REALTIME_MAXDELTA`, 30 days).
pub const MAX_RELATIVE_EXPTIME: i64 = 60 * 60 * 24 * 30;

/// When an item with a given exptime expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Exptime 0: the item never expires.
    Never,
    /// The item expires at this absolute unix time (seconds).
    At(u64),
    /// Negative, or absolute and not in the future: the item is already
    /// expired (memcached stores it and never returns it).
    Expired,
}

impl Expiry {
    /// The engine's representation: absolute unix seconds, 0 = never.
    /// `Expired` maps to 1, a time that is always in the past.
    pub fn as_unix(self) -> u64 {
        match self {
            Expiry::Never => 0,
            Expiry::At(t) => t,
            Expiry::Expired => 1,
        }
    }
}

/// Converts an exptime as sent by a client, given the current unix time.
pub fn expiry_from_exptime(exptime: i64, now: u64) -> Expiry {
    if exptime == 0 {
        Expiry::Never
    } else if exptime < 0 {
        Expiry::Expired
    } else if exptime > MAX_RELATIVE_EXPTIME {
        // exptime > 0 here, so the cast is lossless.
        let at = exptime.unsigned_abs();
        if at <= now {
            Expiry::Expired
        } else {
            Expiry::At(at)
        }
    } else {
        Expiry::At(now.saturating_add(exptime.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_absolute_negative() {
        let now = 1_700_000_000;
        assert_eq!(expiry_from_exptime(0, now), Expiry::Never);
        assert_eq!(expiry_from_exptime(10, now), Expiry::At(now + 10));
        assert_eq!(
            expiry_from_exptime(MAX_RELATIVE_EXPTIME, now),
            Expiry::At(now + 2_592_000)
        );
        assert_eq!(
            expiry_from_exptime(MAX_RELATIVE_EXPTIME + 1, now),
            Expiry::Expired
        );
        assert_eq!(
            expiry_from_exptime(now as i64 + 5, now),
            Expiry::At(now + 5)
        );
        assert_eq!(expiry_from_exptime(now as i64, now), Expiry::Expired);
        assert_eq!(expiry_from_exptime(-1, now), Expiry::Expired);
        assert_eq!(Expiry::Expired.as_unix(), 1);
        assert_eq!(Expiry::Never.as_unix(), 0);
    }
}
